"""Import this first in a benchmark run as ``python bench/NAME.py``.

Python puts the script's folder (bench/) first on ``sys.path``, where ``bench/collector.py`` would
hide the ``collector`` package; the repository root goes ahead of it, so our packages win.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO_ROOT = str(Path(__file__).resolve().parent.parent)

if sys.path[:1] != [REPO_ROOT]:
    sys.path.insert(0, REPO_ROOT)

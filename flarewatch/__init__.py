"""flarewatch shared kernel: wire contract, settings, errors and the CLI composition root."""

from flarewatch.errors import FlarewatchError

__all__ = ["FlarewatchError"]
__version__ = "0.1.0"

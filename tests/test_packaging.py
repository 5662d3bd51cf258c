"""The package metadata declares its licence the current way (PEP 639: an SPDX expression and the
licence file), so installing prints no deprecation warning, and asks for a setuptools that reads
it."""

from __future__ import annotations

import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent


def test_licence_is_an_spdx_expression_with_its_file() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    project = pyproject["project"]
    assert project["license"] == "Apache-2.0"  # a table ({text = …}) is deprecated
    licence = " ".join((ROOT / "LICENSE").read_text().split())
    assert licence.startswith("Apache License Version 2.0, January 2004")  # the full text
    assert project["license-files"] and all(
        list(ROOT.glob(pattern)) for pattern in project["license-files"]
    )
    setuptools = next(
        Requirement(r) for r in pyproject["build-system"]["requires"] if r.startswith("setuptools")
    )
    # setuptools reads the SPDX form from 77.0 on; older ones refuse it
    lowest = min(Version(spec.version) for spec in setuptools.specifier if ">" in spec.operator)
    assert lowest >= Version("77.0.3")

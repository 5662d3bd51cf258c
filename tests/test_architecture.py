"""The import direction of GUIDE §2 / STYLE rule 1, checked on the source."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ALLOWED = {
    "flarewatch": {"flarewatch"},
    "collector": {"flarewatch", "collector"},
    "models": {"flarewatch", "models"},
    "service": {"flarewatch", "models", "service"},
}
OURS = set(ALLOWED)
COMPOSITION_ROOTS = {ROOT / "flarewatch" / name for name in ("cli.py", "demo.py", "demo_view.py")}


def imported_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names & OURS


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_packages_import_only_what_they_may(package: str) -> None:
    offenders = {}
    for path in (ROOT / package).rglob("*.py"):
        if path in COMPOSITION_ROOTS:
            continue
        extra = imported_packages(path) - ALLOWED[package]
        if extra:
            offenders[str(path.relative_to(ROOT))] = sorted(extra)
    assert not offenders, f"forbidden imports: {offenders}"

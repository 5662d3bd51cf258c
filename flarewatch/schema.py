"""Write the contract's JSON Schema files: ``python -m flarewatch.schema [DIR]``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from flarewatch.payloads import json_schemas

DEFAULT_DIR = Path(__file__).resolve().parent.parent / "docs" / "schema"


def render() -> dict[str, str]:
    """File name → text of every schema file, exactly as committed."""
    return {
        name: json.dumps(s, indent=2, sort_keys=True) + "\n" for name, s in json_schemas().items()
    }


def write(directory: Path = DEFAULT_DIR) -> list[Path]:
    """Regenerate the schema files in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, text in render().items():
        path = directory / name
        path.write_text(text)
        paths.append(path)
    return paths


if __name__ == "__main__":
    for written in write(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_DIR):
        print(written)  # noqa: T201

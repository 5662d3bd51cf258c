"""A component whose commands cannot be loaded is named, not silently left out of the CLI."""

from __future__ import annotations

import sys

import pytest

from flarewatch.cli import main


def test_a_command_of_a_broken_component_says_why_it_is_missing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # None in sys.modules makes the import fail, as a broken or partial install does.
    monkeypatch.setitem(sys.modules, "service.cli", None)
    with pytest.raises(SystemExit) as exited:
        main(["admin", "patient", "list"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'admin'" in err
    assert "service.cli" in err  # before: only "invalid choice", no hint why
    assert "Traceback" not in err

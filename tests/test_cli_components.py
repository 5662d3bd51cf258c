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


class _InterruptedImport:
    """A meta-path finder that is interrupted while loading one module, as Ctrl-C does."""

    def __init__(self, name: str) -> None:
        self.name = name

    def find_spec(self, fullname: str, path: object, target: object = None) -> None:
        if fullname == self.name:
            raise KeyboardInterrupt
        return None


def test_ctrl_c_while_the_commands_load_ends_quietly(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The components load for a second or two at every start: Ctrl-C then printed a
    KeyboardInterrupt traceback instead of ending like Ctrl-C later does (exit 130)."""
    monkeypatch.delitem(sys.modules, "service.cli", raising=False)
    monkeypatch.setattr(sys, "meta_path", [_InterruptedImport("service.cli"), *sys.meta_path])
    try:
        code = main(["admin", "patient", "list"])
    except KeyboardInterrupt:
        pytest.fail("Ctrl-C while loading escaped main() as a traceback")
    assert code == 130
    assert "Traceback" not in capsys.readouterr().err

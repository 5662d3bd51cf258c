"""The CLI loads only the module of the command being run; one that cannot load is named."""

from __future__ import annotations

import argparse
import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from flarewatch.cli import COMMAND_MODULES, main

HEAVY_MODULES = ("sklearn", "skops", "bumble", "apprise", "sqlalchemy", "pandas")
"""What the detectors, the Bluetooth stack, push delivery and the service database bring."""


@pytest.mark.parametrize("module_name", sorted(set(COMMAND_MODULES.values())))
def test_each_module_declares_exactly_the_commands_routed_to_it(module_name: str) -> None:
    subparsers = argparse.ArgumentParser().add_subparsers()
    importlib.import_module(module_name).add_commands(subparsers)
    routed = {command for command, owner in COMMAND_MODULES.items() if owner == module_name}
    assert set(subparsers.choices) == routed


def _run_and_list_imports(
    argv: list[str], watched: tuple[str, ...] = HEAVY_MODULES
) -> tuple[int, list[str], str]:
    """Run the CLI in a fresh interpreter: its exit code, which ``watched`` modules it loaded and
    its stdout."""
    script = (
        "import contextlib, io, json, sys\n"
        "from flarewatch.cli import main\n"
        "out = io.StringIO()\n"
        "with contextlib.redirect_stdout(out):\n"
        "    try:\n"
        f"        code = main({argv!r})\n"
        "    except SystemExit as exited:\n"
        "        code = exited.code\n"
        f"heavy = sorted(m for m in {watched!r} if m in sys.modules)\n"
        "print(json.dumps([code, heavy, out.getvalue()]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    code, heavy, stdout = json.loads(result.stdout)
    return code, heavy, stdout


def test_decoding_a_payload_loads_none_of_the_other_commands_modules() -> None:
    """Before, every command imported all of them: ``gatt decode`` took 11 s on a slow machine."""
    argv = ["--log-level", "warning", "gatt", "decode", "--uuid", "2a37", "--hex", "0048"]
    code, heavy, stdout = _run_and_list_imports(argv)
    assert code == 0
    assert json.loads(stdout)["heart_rate_bpm"] == 72
    assert heavy == []


def test_demo_options_that_do_not_go_together_are_refused_before_the_demo_loads() -> None:
    """The demo loads every component (7.5 s on a slow machine) only to run."""
    argv = ["demo", "--ble-sim", "--speed", "20"]
    code, heavy, _ = _run_and_list_imports(argv, (*HEAVY_MODULES, "flarewatch.demo"))
    assert code == 1
    assert heavy == []


def test_help_lists_every_command_without_loading_the_model_or_bluetooth() -> None:
    """The command modules declare options only: the demo, the detectors' model and the service
    load when a command runs (``flarewatch --help`` took 9 s on a slow machine, now 0.4 s)."""
    command_modules = tuple(dict.fromkeys(COMMAND_MODULES.values()))
    code, loaded, stdout = _run_and_list_imports(["--help"], HEAVY_MODULES + command_modules)
    assert code == 0
    # "    serve               run the service: …": the command, then its help
    listed = [
        line.split()[0]
        for line in stdout.splitlines()
        if line.startswith("    ") and line[4] != " "
    ]
    assert listed == list(COMMAND_MODULES)
    assert set(command_modules) <= set(loaded)
    assert not {"sklearn", "skops", "bumble", "apprise", "pandas"} & set(loaded)


def test_an_admin_listing_loads_neither_push_delivery_nor_pandas(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only the commands that check, show or send channel URLs load Apprise, and only those that
    read or replay recordings load pandas (every ``admin`` command loaded both: 2.5 s on a slow
    machine)."""
    monkeypatch.setenv("FLAREWATCH_SERVICE__SECRET_KEY", "k" * 40)
    url = f"sqlite:///{tmp_path / 'service.db'}"
    argv = ["--log-level", "error", "admin", "--database-url", url]
    code, heavy, _ = _run_and_list_imports([*argv, "patient", "add", "p-1", "--name", "Ann"])
    assert (code, heavy) == (0, ["sqlalchemy"])
    code, heavy, stdout = _run_and_list_imports([*argv, "patient", "list"])
    assert (code, heavy) == (0, ["sqlalchemy"])
    assert "p-1" in stdout and "Ann" in stdout
    # a channel URL is checked and redacted by Apprise itself
    channel = ["--url", "json://localhost:1/hook"]
    code, heavy, _ = _run_and_list_imports([*argv, "caregiver", "add", "p-1", "Bo", *channel])
    assert (code, heavy) == (0, ["apprise", "sqlalchemy"])
    code, heavy, stdout = _run_and_list_imports([*argv, "caregiver", "list", "p-1"])
    assert (code, heavy) == (0, ["apprise", "sqlalchemy"])
    assert "Bo" in stdout and "json://" in stdout


@pytest.mark.parametrize(("level", "heard"), [("info", False), ("debug", True)])
def test_alembic_is_heard_only_at_debug(tmp_path: Path, level: str, heard: bool) -> None:
    """Alembic 1.16 and newer log each of their plugins at INFO as they load: seven lines at
    every start of ``serve`` and ``demo``, which load the service database after logging is set
    up. A fresh interpreter with logging set up first, for alembic loads once a process."""
    url = f"sqlite:///{tmp_path / 'service.db'}"
    argv = ["--log-level", level, "admin", "--database-url", url, "patient", "list"]
    script = (
        "import logging, sys\n"
        "logging.basicConfig(level=logging.DEBUG, stream=sys.stdout, format='%(name)s')\n"
        "from flarewatch.cli import main\n"
        f"sys.exit(main({argv!r}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    said = result.stdout.splitlines()
    assert any(line.startswith("alembic") for line in said) is heard
    assert "service.db.session" in said  # the database says it was created, in one line


def test_a_command_of_a_broken_module_says_why_it_is_missing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # None in sys.modules makes the import fail, as a broken or partial install does.
    monkeypatch.setitem(sys.modules, "service.admin_cli", None)
    with pytest.raises(SystemExit) as exited:
        main(["admin", "patient", "list"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'admin'" in err
    assert "service.admin_cli" in err  # before: only "invalid choice", no hint why
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
    monkeypatch.delitem(sys.modules, "service.admin_cli", raising=False)
    monkeypatch.setattr(sys, "meta_path", [_InterruptedImport("service.admin_cli"), *sys.meta_path])
    try:
        code = main(["admin", "patient", "list"])
    except KeyboardInterrupt:
        pytest.fail("Ctrl-C while loading escaped main() as a traceback")
    assert code == 130
    assert "Traceback" not in capsys.readouterr().err

"""The care-team commands of docs/alerts.md run as written, in order, against a real service
database: every channel URL is one Apprise accepts, so the ids the later commands use are right."""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

import pytest

from flarewatch.cli import build_parser, main
from tests.test_deploy import ROOT, _shell_commands

DOC = ROOT / "docs" / "alerts.md"
NO_NETWORK = ("caregiver", "test")
"""Sends to Pushover and an SMTP server on the internet: parsed only."""


def _care_team_commands() -> list[list[str]]:
    section = DOC.read_text().split("## Setting up a care team", 1)[1]
    block = re.search(r"```sh\n.*?```", section, re.DOTALL)
    assert block, "docs/alerts.md no longer shows the care-team commands"
    return [shlex.split(line, comments=True) for line in _shell_commands(block.group(0))]


def test_documented_care_team_setup_runs_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in [key for key in os.environ if key.startswith("FLAREWATCH_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("FLAREWATCH_SERVICE__DATABASE_URL", f"sqlite:///{tmp_path}/service.sqlite3")
    # the docs export a key of the deployment's own first: `caregiver add` refuses the demo key
    monkeypatch.setenv("FLAREWATCH_SERVICE__SECRET_KEY", "care-team-docs-test-key-0123456789")
    # and the service's own mail and ntfy servers, which `channel-add --email/--ntfy` need
    mail = "mailtos://alerts:PASSWORD@mail.example.org?from=alerts@example.org"
    monkeypatch.setenv("FLAREWATCH_SERVICE__MAIL_URL", mail)
    monkeypatch.setenv("FLAREWATCH_SERVICE__NTFY_URL", "https://ntfy.example.org")
    parser = build_parser()
    commands = _care_team_commands()
    assert len(commands) >= 10
    for argv in commands:
        assert argv[0] == "flarewatch", argv
        assert parser.parse_args(argv[1:]).handler, argv
        if tuple(argv[2:4]) == NO_NETWORK:
            continue
        assert main(argv[1:]) == 0, (shlex.join(argv), capsys.readouterr())
    printed = capsys.readouterr().out
    added = re.findall(r"(\w+) (.+) added with id (\d+)", printed)
    assert [(name, int(i)) for _, name, i in added] == [
        ("Sam", 1),
        ("Kim", 2),
        ("Emergency line", 3),
        ("Alex", 4),
    ]
    assert "escalation order of alex: [2, 1]" in printed

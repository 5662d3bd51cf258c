"""Start-up time of each ``flarewatch`` command: how long ``flarewatch COMMAND --help`` takes.

Each command loads only its own module (``flarewatch.cli.COMMAND_MODULES``), which declares its
options, and what it runs once they are parsed. Measured in the same run, in fresh interpreters
like the commands: the floor (``import flarewatch.cli``, what every command pays), ``flarewatch
--help`` (every command module) and the ceiling, every component the commands run (the demo, which
wires them all, and every command module): what every command loaded before it started until
November 2026. Each figure is the median of ``--runs`` starts.

Usage: .venv/bin/python bench/cli_start.py [--runs 5]
Last line: one JSON object with the figures (seconds).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

from rich.progress import Progress

from flarewatch.cli import COMMAND_MODULES


def start_time_s(command: list[str], runs: int) -> float:
    """The median wall time of ``runs`` runs of ``command``, which must succeed."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="starts per figure (median)")
    args = parser.parse_args()
    cli = [sys.executable, "-m", "flarewatch.cli"]
    everything = ", ".join(["flarewatch.demo", *dict.fromkeys(COMMAND_MODULES.values())])
    cases = {
        "floor: import flarewatch.cli": [sys.executable, "-c", "import flarewatch.cli"],
        **{f"{command} --help": [*cli, command, "--help"] for command in COMMAND_MODULES},
        "--help (every command module)": [*cli, "--help"],
        "ceiling: every component": [sys.executable, "-c", f"import {everything}"],
    }
    figures: dict[str, float] = {}
    with Progress(transient=True) as progress:
        task = progress.add_task("starting the commands", total=len(cases))
        for name, command in cases.items():
            figures[name] = start_time_s(command, args.runs)
            progress.advance(task)
    floor = figures["floor: import flarewatch.cli"]
    ceiling = figures["ceiling: every component"]
    width = max(map(len, figures))
    for name, seconds in figures.items():
        print(f"{name:<{width}}  {seconds:6.2f} s  {seconds / ceiling:5.0%} of the ceiling")
    print(
        json.dumps(
            {
                "bench": "cli_start",
                "runs": args.runs,
                "floor_s": round(floor, 3),
                "ceiling_s": round(ceiling, 3),
                "help_s": round(figures["--help (every command module)"], 3),
                "commands_s": {
                    command: round(figures[f"{command} --help"], 3) for command in COMMAND_MODULES
                },
            }
        )
    )


if __name__ == "__main__":
    main()

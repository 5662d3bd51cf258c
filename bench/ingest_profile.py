"""py-spy profile of the ingest service during the benchmark, summarised per stage and function."""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path


def log(text: str) -> None:
    print(text, flush=True)


# -- profile --------------------------------------------------------------------------------------


def start_profiler(
    pid: int, args: argparse.Namespace
) -> tuple[subprocess.Popen[bytes], Path] | None:
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(spy).exists():
        log("py-spy not installed: no profile (pip install py-spy)")
        return None
    out = Path(tempfile.mkdtemp(prefix="flarewatch-profile-")) / "service.txt"
    proc = subprocess.Popen(
        [
            spy,
            "record",
            "--pid",
            str(pid),
            "--rate",
            "100",
            "--nonblocking",
            "--format",
            "raw",
            "--duration",
            str(int(args.duration - 1)),
            "--output",
            str(out),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return proc, out


def finish_profiler(
    profiler: tuple[subprocess.Popen[bytes], Path] | None,
) -> dict[str, float] | None:
    """Share of the service's on-CPU samples per leaf function and per ingest stage."""
    if profiler is None:
        return None
    proc, out = profiler
    proc.wait(120)
    try:
        return _shares(out) if out.exists() else None
    finally:
        shutil.rmtree(out.parent, ignore_errors=True)  # the raw stacks: nothing reads them later


def _shares(out: Path) -> dict[str, float]:
    """The shares of :func:`finish_profiler`, from py-spy's raw output file."""
    leaves: Counter[str] = Counter()
    stages: Counter[str] = Counter()
    total = 0
    stage_markers = {
        "decode (pydantic)": "decode_sample_batch",
        "line protocol": "lines_of",
        "gzip": "compress",
        "HTTP to InfluxDB": "_request",
        "dedup": "accept",
        "MQTT receive (paho)": "_packet_read",
        "ack": "_ack",
        "stats": "snapshot",
    }
    for line in out.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        n = int(count)
        total += n
        frames = stack.split(";")
        leaf = (
            frames[-1].split(" (")[0]
            + " ("
            + frames[-1].split(" (")[-1].split(":")[0].rsplit("/", 1)[-1]
            + ")"
        )
        leaves[leaf] += n
        for stage, marker in stage_markers.items():
            if any(f.startswith(marker + " ") for f in frames):
                stages[stage] += n
    shares = {f"stage: {k}": round(100 * v / total, 1) for k, v in stages.most_common()}
    shares.update({f"leaf: {k}": round(100 * v / total, 1) for k, v in leaves.most_common(12)})
    return shares

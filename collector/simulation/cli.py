"""``flarewatch simulate``: simulated patients published through the outbox and MQTT publisher."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import logging
import signal
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table

from collector.errors import SimulationError
from collector.outbox import Outbox, wall_clock_ms
from collector.publisher import MqttPublisher, PublisherStatus
from collector.simulation.cohort import Cohort
from collector.simulation.const import (
    DEFAULT_FLUSH_TIMEOUT_S,
    EXIT_PENDING,
    LOG_EVERY_S,
    REFRESH_S,
)
from collector.simulation.driver import SimulatedSource
from collector.simulation.episodes import EpisodeScript, parse_episode
from collector.simulation.profile import patient_id_for
from flarewatch import __version__, cli_types
from flarewatch.output_files import check_writable, writing
from flarewatch.settings import load_settings

log = logging.getLogger(__name__)


def add_commands(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    """Add ``flarewatch simulate``."""
    cmd = subparsers.add_parser(
        "simulate",
        help="publish simulated patients (with scripted episodes) to an MQTT broker",
        description=(
            "Generate physiologically plausible wearable samples for N patients and publish them "
            "through the durable outbox, like a gateway would. Time can be accelerated."
        ),
    )
    cmd.add_argument(
        "--patients", type=cli_types.positive_int, default=5, help="number of patients (default 5)"
    )
    cmd.add_argument("--mqtt-url", default=None, help="broker, e.g. mqtt://127.0.0.1:1883")
    cli_types.add_speed_argument(
        cmd, "simulated seconds per real second; 0 = as fast as possible (default 1)"
    )
    cmd.add_argument(
        "--duration", type=cli_types.positive, default=None, help="simulated seconds to run"
    )
    cmd.add_argument(
        "--episode",
        action="append",
        default=[],
        metavar="PATIENT:KIND:AT_S",
        help="scripted episode, e.g. p1:flush:60 or 2:anaphylaxis:300 (repeatable)",
    )
    cmd.add_argument("--seed", type=cli_types.seed, default=1, help="random seed (default 1)")
    cmd.add_argument("--outbox", type=Path, default=None, help="outbox file (default from config)")
    cmd.add_argument("--gateway-id", default=None, help="gateway id (default from config)")
    cmd.add_argument(
        "--start-ms",
        type=cli_types.epoch_ms,
        default=None,
        help="simulated start, UTC epoch ms (default: now, or now - duration when accelerated)",
    )
    cmd.add_argument("--interval-ms", type=int, default=1000, help="sample interval (default 1000)")
    cmd.add_argument(
        "--flush-timeout",
        type=cli_types.non_negative,
        default=DEFAULT_FLUSH_TIMEOUT_S,
        help="seconds to wait at end",
    )
    cmd.add_argument(
        "--truth-file", type=Path, default=None, help="write episode ground truth JSON"
    )
    cmd.set_defaults(handler=run_simulate)


def _start_ms(args: argparse.Namespace) -> int:
    if args.start_ms is not None:
        return int(args.start_ms)
    now = wall_clock_ms()
    if args.speed != 1 and args.duration is not None:
        return now - round(float(args.duration) * 1000)
    return now


def run_simulate(args: argparse.Namespace) -> int:
    """Run the simulation until ``--duration`` is covered (or Ctrl-C); returns the exit code."""
    settings = load_settings(getattr(args, "config", None))
    mqtt = settings.mqtt
    if args.mqtt_url:
        mqtt = mqtt.model_copy(update={"url": args.mqtt_url})
    gateway_id = args.gateway_id or settings.collector.gateway_id
    start_ms = _start_ms(args)
    end_ms = None if args.duration is None else start_ms + round(args.duration * 1000)
    patient_ids = [patient_id_for(i) for i in range(args.patients)]
    episodes = [parse_episode(text, start_ms, patient_ids) for text in args.episode]
    for text, episode in zip(args.episode, episodes, strict=True):
        if end_ms is not None and episode.onset_ms >= end_ms:
            raise SimulationError(
                f"episode {text!r} begins at or after the end of --duration {args.duration:g}: "
                "it would not be simulated"
            )
    cohort = Cohort(
        args.patients,
        seed=args.seed,
        band_on_ms=start_ms,
        interval_ms=args.interval_ms,
        episodes=episodes,
    )
    if args.truth_file:
        check_writable(args.truth_file, "--truth-file")  # before the outbox and the broker
    with Outbox(args.outbox or settings.collector.outbox_path) as outbox:
        resume = {c.device_id: c.last_time_ms for c in outbox.devices()}
        source = SimulatedSource(
            cohort, start_ms=start_ms, end_ms=end_ms, speed=args.speed, resume_ms=resume
        )
        _check_resumed(source, episodes, outbox.path, truth_file=args.truth_file)
        if args.truth_file:
            truth = [dataclasses.asdict(t) for t in cohort.ground_truth()]
            with writing("--truth-file", args.truth_file):
                args.truth_file.write_text(json.dumps(truth, indent=2) + "\n")
        publisher = MqttPublisher(
            mqtt, outbox, gateway_id=gateway_id, software=f"flarewatch-simulate {__version__}"
        )
        previous = signal.signal(signal.SIGTERM, _raise_interrupt)
        try:
            with publisher:
                asyncio.run(_run(source, publisher, args.flush_timeout))
        except KeyboardInterrupt:
            log.info("interrupted; unsent samples stay in the outbox for the next run")
        finally:
            signal.signal(signal.SIGTERM, previous)
        stats = outbox.stats()
    print(
        json.dumps(
            {
                "generated": source.progress.generated,
                "stored": stats.appended,
                "acked": stats.acked,
                "pending": stats.pending,
                "rejected": stats.rejected,
            }
        )
    )
    return 0 if stats.pending == 0 else EXIT_PENDING


def _check_resumed(
    source: SimulatedSource,
    episodes: Sequence[EpisodeScript],
    outbox: Path,
    *,
    truth_file: Path | None,
) -> None:
    """Say which devices resume after the outbox's newest samples, and which episodes that skips.

    An episode whose onset lies before its device's resume point is not simulated by this run:
    a truth file listing it would not match what is published, so that is refused.
    """
    resumed = source.resumed_ms
    if not resumed:
        return
    device_of = {p.profile.patient_id: p.profile.device_id for p in source.cohort.patients}
    skipped = [
        f"{e.kind} of {e.patient_id} at {_fmt_time(e.onset_ms)}"
        for e in episodes
        if e.onset_ms < resumed.get(device_of[e.patient_id], e.onset_ms)
    ]
    if skipped and truth_file is not None:
        raise SimulationError(
            f"the outbox {outbox} already has samples of {_devices(resumed)}, past this run's "
            "start: the run resumes after them and would not simulate the "
            f"{', '.join(skipped)}, which --truth-file {truth_file} would list. Give the run an "
            "outbox of its own (--outbox); to finish an interrupted run, run it again without "
            "--truth-file (its first start wrote it)"
        )
    log.warning(
        "the outbox %s already has samples of %s, past this run's start: they resume after "
        "them, the time before is not simulated again (an outbox of its own simulates it all)",
        outbox,
        _devices(resumed),
    )
    for episode in skipped:
        log.warning("the %s is not simulated: its device resumes after it", episode)


def _devices(resumed_ms: Mapping[str, int]) -> str:
    """``p1-band (up to …), …``: the first few resumed devices, and how many more."""
    shown = [f"{device} (up to {_fmt_time(at - 1)})" for device, at in list(resumed_ms.items())[:3]]
    more = len(resumed_ms) - len(shown)
    return ", ".join(shown) + (f" and {more} more devices" if more else "")


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


async def _run(source: SimulatedSource, publisher: MqttPublisher, flush_timeout_s: float) -> None:
    console = Console(stderr=True)
    task = asyncio.create_task(source.run(publisher))
    live = Live(_table(source, publisher), console=console, refresh_per_second=4, transient=False)
    with live if console.is_terminal else contextlib.nullcontext():
        last_log = 0.0
        deadline: float | None = None
        while True:
            done = task.done()
            if done and deadline is None:
                task.result()  # re-raise a failure of the source
                deadline = time.monotonic() + flush_timeout_s
            if deadline is not None and (
                publisher.outbox.pending == 0 or time.monotonic() > deadline
            ):
                break
            if console.is_terminal:
                live.update(_table(source, publisher))
            elif time.monotonic() - last_log >= LOG_EVERY_S:
                last_log = time.monotonic()
                log.info("simulate: %s", _summary(source, publisher))
            await asyncio.sleep(REFRESH_S)
        if console.is_terminal:
            live.update(_table(source, publisher))
    log.info("simulate finished: %s", _summary(source, publisher))


def _summary(source: SimulatedSource, publisher: MqttPublisher) -> str:
    status = publisher.status()
    return (
        f"simulated {_fmt_time(source.progress.simulated_ms)}, generated "
        f"{source.progress.generated}, acked {status.acked_samples}, outbox pending "
        f"{status.outbox.pending}, broker {broker_state(status)}"
    )


def broker_state(status: PublisherStatus) -> str:
    """``connected``, ``connecting`` before the first answer, or ``DOWN (why)`` once it failed."""
    if status.connected:
        return "connected"
    if status.last_failure is not None:
        return f"DOWN ({status.last_failure})"
    return "reconnecting" if status.connects else "connecting"


def _fmt_time(ms: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ms / 1000)) + "Z"


def _table(source: SimulatedSource, publisher: MqttPublisher) -> Table:
    status = publisher.status()
    table = Table(title="flarewatch simulate", show_header=False)
    progress = source.progress
    if progress.end_ms is not None:
        span = max(progress.end_ms - source.start_ms, 1)
        done = 100 * (progress.simulated_ms - source.start_ms) / span
        table.add_row("simulated time", f"{_fmt_time(progress.simulated_ms)} ({done:.0f} %)")
    else:
        table.add_row("simulated time", _fmt_time(progress.simulated_ms))
    table.add_row("patients", str(len(source.cohort.patients)))
    table.add_row("samples generated", str(progress.generated))
    table.add_row("acknowledged by broker", str(status.acked_samples))
    table.add_row("waiting in outbox", str(status.outbox.pending))
    table.add_row(
        "rejected / dropped", f"{status.outbox.rejected} / {status.outbox.dropped_over_budget}"
    )
    table.add_row("broker", f"{publisher.address} {broker_state(status)}")
    return table

"""What ``flarewatch demo`` shows: the live per-patient table and the final report."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from rich.console import Console
from rich.live import Live
from rich.table import Table
from sqlalchemy import select

from service.alerts.runtime import AlertingRuntime
from service.db.models import Episode
from service.ingest import IngestService
from service.processing import LatestVitalsProcessor

log = logging.getLogger("flarewatch.demo")

REFRESH_S: Final = 0.5
LOG_EVERY_S: Final = 5.0


@dataclass
class DemoResult:
    """What the demo stored, for the final report and its exit code."""

    broker: str
    store: str
    stored_by_patient: dict[str, int] = field(default_factory=dict)
    generated_by_patient: dict[str, int] | None = None
    """Samples the simulated bands produced (None: virtual BLE bands, whose radio decides)."""
    flush_patient: str | None = "p1"
    flush_samples_in_store: int = 0
    rejected: int = 0
    episodes: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether the demo worked: nothing lost, and the flush stored.

        Every patient has stored samples, the flush patient's flush window included, and every
        sample the simulated bands produced is stored.
        """
        flush_ok = self.flush_patient is None or self.flush_samples_in_store > 0
        return (
            bool(self.stored_by_patient)
            and all(n > 0 for n in self.stored_by_patient.values())
            and flush_ok
            and not self.lost_by_patient
        )

    @property
    def lost_by_patient(self) -> dict[str, int]:
        """Samples produced but not stored, per patient (none: nothing was lost)."""
        produced = self.generated_by_patient or {}
        lost = {p: n - self.stored_by_patient.get(p, 0) for p, n in produced.items()}
        return {p: n for p, n in lost.items() if n > 0}


def report(result: DemoResult) -> None:
    """Print the final table (stderr) and the machine-readable summary (stdout)."""
    console = Console(stderr=True)
    table = Table(
        title="flarewatch demo", caption=f"broker: {result.broker}, store: {result.store}"
    )
    table.add_column("patient")
    produced = result.generated_by_patient
    if produced is not None:
        table.add_column("samples produced", justify="right")
    table.add_column("stored samples", justify="right")
    for patient, count in result.stored_by_patient.items():
        made = [] if produced is None else [str(produced.get(patient, 0))]
        table.add_row(patient, *made, str(count))
    console.print(table)
    for patient, lost in result.lost_by_patient.items():
        console.print(f"[red]{patient}: {lost} sample(s) produced but not stored[/red]")
    if result.flush_patient is not None:
        console.print(
            f"flush patient {result.flush_patient}: {result.flush_samples_in_store} samples "
            "stored since its flush began"
        )
    for episode in result.episodes:
        console.print(
            f"episode: {episode['patient_id']} {episode['kind']} ({episode['severity']}, "
            f"{episode['state']}) raised by model {episode['model_version']}"
        )
    console.print(f"{len(result.episodes)} episode(s); {result.rejected} message(s) rejected")
    print(  # noqa: T201 - the machine-readable summary is the command's output
        json.dumps(
            {
                "ok": result.ok,
                "broker": result.broker,
                "store": result.store,
                "stored_by_patient": result.stored_by_patient,
                "generated_by_patient": result.generated_by_patient,
                "flush_patient": result.flush_patient,
                "flush_samples_in_store": result.flush_samples_in_store,
                "rejected": result.rejected,
                "episodes": result.episodes,
            }
        )
    )


@dataclass(frozen=True, slots=True)
class WebAppSignIn:
    """Where the demo's web app is and how to sign in (the first patient's own account)."""

    url: str
    username: str
    password: str
    password_file: Path
    """The password, also in this file (mode 0600): a log line names the file, not the password."""


class LiveView:
    """The live terminal table (or a log line every few seconds without a terminal)."""

    def __init__(
        self,
        patients: list[str],
        view: LatestVitalsProcessor,
        ingest: IngestService,
        runtime: AlertingRuntime,
        outbox_pending: Callable[[], int],
        *,
        web: WebAppSignIn | None = None,
    ) -> None:
        self.patients = patients
        self.web = web
        self.view = view
        self.ingest = ingest
        self.runtime = runtime
        self.outbox_pending = outbox_pending
        self.phase = "starting"
        self.console = Console(stderr=True)
        self._live: Live | None = None

    async def around(self, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` while refreshing the view; the view closes when the work ends."""
        refresher = asyncio.create_task(self._refresh())
        try:
            await work
        finally:
            refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await refresher
            self.final()

    async def _refresh(self) -> None:
        if self.console.is_terminal:
            self._live = Live(self.table(), console=self.console, refresh_per_second=2)
            self._live.start()
        elif self.web is not None:  # a log line: the password stays in its file
            log.info(
                "web app: %s (sign in as %s with the password in %s)",
                self.web.url,
                self.web.username,
                self.web.password_file,
            )
        last_log = 0.0
        while True:
            if self._live is not None:
                self._live.update(self.table())
            elif time.monotonic() - last_log >= LOG_EVERY_S:
                last_log = time.monotonic()
                log.info("demo %s: %s", self.phase, self.ingest.stats().summary())
            await asyncio.sleep(REFRESH_S)

    def final(self) -> None:
        """Show the last state and release the terminal."""
        if self._live is not None:
            self._live.update(self.table())
            self._live.stop()

    def _episodes(self) -> Mapping[str, str]:
        with self.runtime.db.session() as session:
            rows = session.scalars(select(Episode).where(Episode.state == "open"))
            return {e.patient_id: f"{e.kind} ({e.severity})" for e in rows}

    def table(self) -> Table:
        """Per patient: vitals, samples stored, rejects, device state, open episode."""
        stats = self.ingest.stats()
        snapshot = self.view.snapshot()
        episodes = self._episodes()
        table = Table(
            title=f"flarewatch demo — {self.phase} — stored {stats.stored_samples} samples, "
            f"rejected {stats.rejected_total}, gateway outbox {self.outbox_pending()}",
            caption="Ctrl-C to stop"
            if self.web is None
            else f"web app: {self.web.url} (sign in as {self.web.username}, password "
            f"{self.web.password}) · Ctrl-C to stop",
        )
        for column in ("patient", "heart rate", "skin temp", "movement", "stored", "rejects"):
            table.add_column(column, justify="left" if column == "patient" else "right")
        table.add_column("device")
        table.add_column("episode")
        for patient in self.patients:
            view = snapshot.get(patient)
            vitals = view.vitals if view else {}
            devices = view.devices if view else {}
            table.add_row(
                patient,
                _fmt(vitals.get("heart_rate_bpm"), "{:.0f} bpm"),
                _fmt(vitals.get("skin_temperature_c"), "{:.2f} °C"),
                _fmt(vitals.get("acceleration_sd_g"), "{:.3f} g"),
                str(stats.stored_by_patient.get(patient, 0)),
                str(stats.rejected_by_patient.get(patient, 0)),
                ", ".join(str(d.state) for d in devices.values()) or "—",
                episodes.get(patient, "—"),
            )
        return table


def _fmt(reading: Any, pattern: str) -> str:
    return "—" if reading is None else pattern.format(reading.value)

"""The counterexamples the delivery properties found, and the checkpoint's held-back parts.

Each was found by a property of ``test_delivery_properties.py``; as a plain test it runs the
exact delivery that failed, every time.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from flarewatch.cli import main
from flarewatch.payloads import Sample, SampleBatch
from flarewatch.settings import load_settings
from models.alarm import Alarm, AlarmKind, Severity, alarm_record
from models.artifacts import default_bank
from service.alerts.runtime import AlertingRuntime
from service.episodes.checkpoint import (
    DEVICES_KEY,
    HELD_KEY,
    SILENCES_KEY,
    DetectorCheckpoint,
    HeldBack,
)
from service.processing import IngestCycle
from tests.alerting_helpers import SECRET
from tests.delivery_helpers import (
    STRAP_THERMO,
    T0_MS,
    Devices,
    Message,
    Sampling,
    Service,
    World,
    drive,
    events,
    in_time_order,
    reference,
    rounds,
    silences,
)

Cycles = list[tuple[int, list[Message]]]


def strap_and_thermometer_by_the_minute() -> tuple[dict[str, list[Sample]], list[Alarm], Cycles]:
    """The surge session from a strap and a thermometer, a round a minute, strap first; the
    replay's alarms."""
    split = Devices(two=True).split(Sampling("surge", None).samples())
    return split, reference(in_time_order(split)), rounds(split, 60, ["strap", "thermo"])


def restart_before(cycles: Cycles, device: str, onset: Alarm) -> int:
    """The cycle of ``device``'s message of the minute before ``onset``: restart before it."""
    return next(
        number
        for number, (_, (message,)) in enumerate(cycles)
        if message.device == device and message.samples[-1].time_ms + 60_000 >= onset.time_s * 1000
    )


def test_a_restart_between_two_devices_messages_of_a_round_skips_nothing(
    delivery_world: World,
) -> None:
    """Regression: a restart after the strap's message of a round, before the thermometer's.

    The stop handed the strap's held minute to the detectors, so the thermometer's minute,
    delivered after the restart, was older than the detector's newest sample and skipped: the
    surge alarm came 55 s late (found by the restart property).
    """
    split, expected, cycles = strap_and_thermometer_by_the_minute()
    restart = restart_before(cycles, "thermo", expected[0])
    served = drive(Service(delivery_world, list(split)), cycles, restart)
    assert served.events == events(expected)
    assert served.skipped_by_detector == 0


def test_a_restart_between_two_unregistered_devices_messages_skips_nothing(
    delivery_world: World,
) -> None:
    """The same restart, the two devices never registered: the alignment had learnt them from
    their data, and forgot them at the stop. The restarted service handed the strap's minute on
    without waiting for the thermometer's, whose readings came too old for the detector: 60 more
    skipped, and the surge alarmed 56 s late."""
    split, expected, cycles = strap_and_thermometer_by_the_minute()
    restart = restart_before(cycles, "strap", expected[0])
    served = drive(Service(delivery_world, list(split), registered=False), cycles, restart)
    unbroken = drive(Service(delivery_world, list(split), registered=False), cycles)
    # the thermometer's first minute, before the strap was known to wait for it: as without
    # the restart (a device not registered is unknown until it reports)
    assert served.skipped_by_detector == unbroken.skipped_by_detector == 60
    assert served.events == unbroken.events


def test_a_device_its_gateway_says_is_online_is_waited_for_from_its_first_data(
    delivery_world: World,
) -> None:
    """Regression: two devices never registered, the thermometer's first minute a cycle after
    the strap's. Unknown until it reported, it was not waited for: its first minute came too old
    for the detector, 60 readings skipped. The gateway's "online" status, published when the
    device connects, says it is coming."""
    split, expected, cycles = strap_and_thermometer_by_the_minute()
    service = Service(delivery_world, list(split), registered=False)
    service.cycle(cycles[0][0] - 30_000, online=["strap", "thermo"])
    served = drive(service, cycles)
    assert served.skipped_by_detector == served.released_late == 0
    assert served.events == events(expected)


def test_a_silence_while_the_gateway_is_minutes_behind_is_raised(delivery_world: World) -> None:
    """Regression: a band's rounds of 30 s reach the service 250 s late; the band falls silent.

    The tick found the silence within a minute of the last round's arrival: "no data" was
    latched in the detector but held back (a gateway catching up is not a silent patient), and
    then never told; only its end was (found by the slow-gateway property).
    """
    split = Devices(two=False).split(Sampling("surge", None, ((20, 600),)).samples())
    expected = reference(split["band"])
    assert [a.resolved for a in expected if a.kind is AlarmKind.NO_DATA] == [False, True]
    cycles = [(arrive_ms + 250_000, sent) for arrive_ms, sent in rounds(split, 30, ["band"])]
    served = drive(Service(delivery_world, ["band"]), cycles)
    assert silences(served.alarms) == silences(expected)
    assert served.events == events(expected)


def test_a_silence_held_over_a_restart_is_raised(delivery_world: World) -> None:
    """Regression: the service restarts while a "no data" waits for the gateway to catch up.

    The held alarm lived in memory only, and the restored detector, its latch set, never raised
    it again: the silence of the data was never told, only its end.
    """
    split = Devices(two=False).split(Sampling("surge", None, ((20, 600),)).samples())
    expected = reference(split["band"])
    silent_ms = next(round(a.time_s * 1000) for a in expected if a.kind is AlarmKind.NO_DATA)
    cycles = [(arrive_ms + 250_000, sent) for arrive_ms, sent in rounds(split, 30, ["band"])]
    # after the tick found the silence, before the minute since the last round ran out
    last_ms = max(at_ms for at_ms, _ in cycles if at_ms <= silent_ms)
    assert silent_ms < last_ms + 60_000
    restart_ms = (silent_ms + last_ms + 60_000) // 2
    restart = next(number for number, (at_ms, _) in enumerate(cycles) if at_ms > restart_ms)
    cycles.insert(restart, (restart_ms, []))
    served = drive(Service(delivery_world, ["band"]), cycles, restart)
    assert silences(served.alarms) == silences(expected)
    assert served.events == events(expected)


def test_a_gateway_still_catching_up_after_a_restart_raises_no_silence(
    delivery_world: World,
) -> None:
    """A gateway 7 min behind, with no silence in its data: the "no data" the service holds
    over a restart is dropped when the next round comes, as without the restart; the restarted
    service gives the gateway its grace again instead of telling it at once."""
    split = Devices(two=False).split(Sampling("surge", None).samples())
    expected = reference(split["band"])
    assert silences(expected) == []
    cycles = [(arrive_ms + 420_000, sent) for arrive_ms, sent in rounds(split, 30, ["band"])]
    restart = len(cycles) // 2
    cycles.insert(restart, (cycles[restart - 1][0] + 10_000, []))  # between two rounds
    served = drive(Service(delivery_world, ["band"]), cycles, restart)
    assert silences(served.alarms) == []
    assert served.events == events(expected)


def test_what_a_checkpoint_holds_back_is_checked_at_the_restore(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The samples a stop kept for another device, the "no data" it held and the devices it
    lined up are restored; a damaged part is left out (logged, without its values), never a
    crash, and the rest is kept."""
    path = tmp_path / "detectors.json"
    samples = [
        SampleBatch(patient_id="p1", device_id="strap", samples=(Sample(seq=1, time_ms=T0_MS),))
    ]
    silence = Alarm("p1", T0_MS / 1000 + 301.25, AlarmKind.NO_DATA, Severity.WARNING, "v1", False)
    devices = {"p1": ["strap", "thermo"]}
    held = HeldBack(samples, [silence], devices)
    assert DetectorCheckpoint(path).save(default_bank(), held)
    restored = DetectorCheckpoint(path)
    restored.restore(default_bank())
    assert restored.held == held
    state = json.loads(path.read_text())
    record = alarm_record(silence)
    damaged = {
        HELD_KEY: (
            {"v": 1},
            "strap",
            [{"patient_id": "p1", "device_id": "strap", "samples": []}],
        ),
        SILENCES_KEY: (
            {"v": 1},
            [{**record, "time_s": "NaN"}],
            [{**record, "evidence": {"hr_bpm": "171 bpm"}}],
            [{**record, "kind": "anaphylaxis"}],  # only a "no data" is ever held
            [{**record, "resolved": True}],
            [{**record, "patient_id": ""}],
            [{key: value for key, value in record.items() if key != "severity"}],
        ),
        DEVICES_KEY: (["p1"], {"p1": "strap"}, {"p1": [171]}),
    }
    for key, values in damaged.items():
        for value in values:
            path.write_text(json.dumps({**state, key: value}))
            caplog.clear()
            restored.restore(default_bank())
            assert restored.held == HeldBack(
                [] if key == HELD_KEY else samples,
                [] if key == SILENCES_KEY else [silence],
                {} if key == DEVICES_KEY else devices,
            ), value
            assert "left out" in caplog.text
            assert "171" not in caplog.text
            assert restored.restore(default_bank()) == 0  # the patients' part: nothing saved


def test_an_erasure_drops_what_the_checkpoint_held_for_the_patient(tmp_path: Path) -> None:
    path = tmp_path / "detectors.json"
    held = HeldBack(
        [
            SampleBatch(patient_id=p, device_id="strap", samples=(Sample(seq=1, time_ms=T0_MS),))
            for p in ("p1", "p2")
        ],
        [Alarm(p, T0_MS / 1000, AlarmKind.NO_DATA, Severity.WARNING, "v1") for p in ("p1", "p2")],
        {p: [f"{p}-strap", f"{p}-thermo"] for p in ("p1", "p2")},
    )
    assert DetectorCheckpoint(path).save(default_bank(), held)
    restored = DetectorCheckpoint(path)
    restored.restore(default_bank())
    restored.forget("p1")
    assert restored.held == HeldBack(
        held.samples[1:], held.silences[1:], {"p2": ["p2-strap", "p2-thermo"]}
    )


def test_held_samples_of_a_patient_erased_while_stopped_are_dropped_at_the_start(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The checkpoint keeps a stopped service's held samples: an erasure meanwhile drops them.

    Lined up after the start, they would make the erased patient a detector again.
    """
    monkeypatch.setenv("FLAREWATCH_SERVICE__SECRET_KEY", SECRET)
    monkeypatch.setenv("FLAREWATCH_STORE__SQLITE_PATH", str(tmp_path / "samples.sqlite3"))
    monkeypatch.delenv("FLAREWATCH_INFLUX__URL", raising=False)
    url = f"sqlite:///{tmp_path}/fw.sqlite3"
    for argv in (["patient", "add", "p1"], *(["device", "add", "p1", d] for d in STRAP_THERMO)):
        assert main(["admin", "--database-url", url, *argv]) == 0
    settings = load_settings(
        service={
            "database_url": url,
            "detector_state_path": str(tmp_path / "state.json"),
            "secret_key": SECRET,
        },
        mqtt={"url": None},
    )
    strap = Devices(two=True).split(Sampling("surge", None).samples()[:60])["strap"]
    batch = SampleBatch(patient_id="p1", device_id="strap", samples=tuple(strap))
    now_ms = strap[-1].time_ms + 1_000
    runtime = AlertingRuntime(settings, serve_api=False)
    runtime.processor.process(IngestCycle(now_ms, batches=(batch,)))
    assert runtime.processor.alignment.waiting == len(strap)  # for the thermometer
    runtime.stop()
    assert main(["admin", "--database-url", url, "patient", "erase", "p1", "--yes"]) == 0
    capsys.readouterr()

    runtime = AlertingRuntime(settings, serve_api=False)
    for later_s in (1, 10):  # past the alignment's wait
        runtime.processor.process(IngestCycle(now_ms + later_s * 1000))
    assert "p1" not in runtime.processor.bank.state_dict()["patients"]
    runtime.stop()

"""Running Speed and Cadence: RSC Measurement 0x2A53, RSC Feature 0x2A54, and steps from cadence.

Vectors are written from the Bluetooth SIG *Running Speed and Cadence Service* 1.0 (RSCS):
§3.1.1.1 flags (bit 0 stride length, bit 1 total distance, bit 2 running), §3.1.1.2 speed (uint16,
1/256 m/s), §3.1.1.3 cadence (uint8, 1/minute), §3.1.1.4 stride length (uint16, 1/100 m),
§3.1.1.5 total distance (uint32, 1/10 m), §3.2 feature bits. The steps mapping is tested through
``MeasurementPlan.to_sample_fields`` (what the BLE manager calls), and once end to end: a Bumble
virtual foot pod, bleak with the Bumble backend and the connection manager.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest

from collector.ble.backend import select_backend
from collector.ble.devices import ConfiguredDevice
from collector.ble.manager import ConnectionManager
from collector.const import CADENCE_MAX_GAP_S
from collector.errors import GattParseError
from collector.gatt import (
    RscFeature,
    RscMeasurement,
    decode,
    parse_rsc_feature,
    parse_rsc_measurement,
)
from collector.gatt.uuids import RSC_FEATURE, RSC_MEASUREMENT
from collector.profiles import DeviceDescription, MeasurementPlan, default_registry
from collector.simulation import PatientSimulator, random_profile
from collector.sources.base import Reading
from collector.virtual.control import serve_world
from collector.virtual.feeds import SimulatorVitals
from collector.virtual.wearable import SteadyVitals, encode_rsc_measurement
from collector.virtual.world import VirtualWorld
from flarewatch.cli import main
from flarewatch.payloads import LinkState, Sample

# --- the parsers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        # flags 0: walking, speed 0x0180/256 = 1.5 m/s, cadence 0x5a = 90/min, nothing optional.
        ("0080015a", RscMeasurement(1.5, 90, None, None, False)),
        # bit 0: stride length 0x0048 = 72 cm follows the cadence.
        ("0100035a4800", RscMeasurement(3.0, 90, 0.72, None, False)),
        # bit 1: total distance uint32 0x00002710 = 10000 dm = 1000 m.
        ("0200035a10270000", RscMeasurement(3.0, 90, None, 1000.0, False)),
        # bit 2: running.
        ("0400049a", RscMeasurement(4.0, 154, None, None, True)),
        # everything, stride before distance.
        ("0700035a480010270000", RscMeasurement(3.0, 90, 0.72, 1000.0, True)),
        # standing still: speed 0, cadence 0 (an explicit "no steps").
        ("00000000", RscMeasurement(0.0, 0, None, None, False)),
        # extremes: uint16 speed, uint8 cadence, uint16 stride, uint32 distance.
        (
            "07ffffffffffffffffff",
            RscMeasurement(65535 / 256, 255, 655.35, 429496729.5, True),
        ),
        # bits 3-7 are reserved for future use and ignored (Core spec Vol 1 Part E §2.9).
        ("f880015a", RscMeasurement(1.5, 90, None, None, False)),
    ],
)
def test_measurement_spec_vectors(payload: str, expected: RscMeasurement) -> None:
    assert parse_rsc_measurement(bytes.fromhex(payload)) == expected


@pytest.mark.parametrize("flags", range(8))
def test_every_flag_combination_and_every_cut(flags: int) -> None:
    """All 8 combinations of the defined flag bits: full value parses, every prefix is refused."""
    stride = b"\x64\x00" if flags & 0x01 else b""
    distance = b"\x01\x02\x03\x04" if flags & 0x02 else b""
    payload = bytes([flags]) + struct.pack("<HB", 0x0200, 120) + stride + distance
    value = parse_rsc_measurement(payload)
    assert (value.speed_m_s, value.cadence_per_min) == (2.0, 120)
    assert value.stride_length_m == (1.0 if flags & 0x01 else None)
    assert value.total_distance_m == (0x04030201 / 10 if flags & 0x02 else None)
    assert value.running is bool(flags & 0x04)
    for cut in range(len(payload)):
        with pytest.raises(GattParseError) as info:
            parse_rsc_measurement(payload[:cut])
        assert info.value.reason == "truncated"
        assert info.value.uuid == RSC_MEASUREMENT
    with pytest.raises(GattParseError) as trailing:
        parse_rsc_measurement(payload + b"\x00")
    assert trailing.value.reason == "trailing_bytes"


def test_truncated_error_names_the_missing_field() -> None:
    with pytest.raises(GattParseError, match="total distance"):
        parse_rsc_measurement(bytes.fromhex("0200035a1027"))
    with pytest.raises(GattParseError, match="instantaneous cadence"):
        parse_rsc_measurement(bytes.fromhex("000003"))


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ("0000", RscFeature(False, False, False, False, False)),
        ("0100", RscFeature(True, False, False, False, False)),
        ("0600", RscFeature(False, True, True, False, False)),
        ("1800", RscFeature(False, False, False, True, True)),
        ("ffff", RscFeature(True, True, True, True, True)),  # bits 5-15 reserved: ignored
    ],
)
def test_feature_spec_vectors(payload: str, expected: RscFeature) -> None:
    assert parse_rsc_feature(bytes.fromhex(payload)) == expected


@pytest.mark.parametrize(("payload", "reason"), [("", "truncated"), ("1f", "truncated"),
                                                 ("1f0000", "trailing_bytes")])  # fmt: skip
def test_feature_bad_lengths(payload: str, reason: str) -> None:
    with pytest.raises(GattParseError) as info:
        parse_rsc_feature(bytes.fromhex(payload))
    assert (info.value.reason, info.value.uuid) == (reason, RSC_FEATURE)


def test_dispatcher_decodes_and_errors_carry_the_device() -> None:
    assert decode("2a53", bytes.fromhex("0080015a")) == RscMeasurement(1.5, 90, None, None, False)
    assert decode(0x2A54, bytes.fromhex("0400")).running_status_supported  # type: ignore[attr-defined]
    with pytest.raises(GattParseError) as info:
        decode("2a53", b"\x01\x00\x01\x5a", device_id="pod-1")
    assert info.value.device_id == "pod-1"


def test_gatt_decode_cli(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["gatt", "decode", "--uuid", "2a53", "--hex", "07 00 03 5a 48 00 10 27 00 00"]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "speed_m_s": 3.0,
        "cadence_per_min": 90,
        "stride_length_m": 0.72,
        "total_distance_m": 1000.0,
        "running": True,
    }


@pytest.mark.parametrize("cadence", [0, 1, 90, 139, 140, 255])
def test_virtual_encoder_agrees_with_the_parser(cadence: int) -> None:
    """The virtual wearable's encoder (struct, from the spec) and our parser read alike."""
    value = parse_rsc_measurement(encode_rsc_measurement(cadence))
    assert value.cadence_per_min == cadence
    assert value.running is (cadence >= 140)
    assert value.speed_m_s == pytest.approx(cadence / 60 * 0.7, abs=1 / 256)


# --- steps from cadence, through the measurement plan --------------------------------------------

MIDNIGHT_MS = 1_767_225_600_000  # 2026-01-01 00:00 UTC
FOOT_POD = DeviceDescription(name="Stride", service_uuids=frozenset({"1814", "180f"}))


def rsc(cadence: int) -> bytes:
    return struct.pack("<BHB", 0, 0x0180, cadence)


def steps_of(plan: MeasurementPlan, cadence: int, received_s: float) -> int | None:
    """The ``steps`` of the sample one notification becomes (validated by the contract)."""
    decoded = plan.to_sample_fields("2a53", rsc(cadence), device_id="pod", received_s=received_s)
    return Sample.model_validate({"seq": 1, "time_ms": MIDNIGHT_MS, **decoded.fields}).steps


def test_profile_is_recognised_by_its_service_and_subscribes() -> None:
    plan = default_registry().plan_for(FOOT_POD)
    assert "running_speed_cadence" in [p.name for p in plan.profiles]
    assert [m.uuid for m in plan.subscriptions if m.uuid == RSC_MEASUREMENT]
    assert RSC_FEATURE in [m.uuid for m in plan.reads_on_connect]
    assert plan.to_sample_fields("2a54", bytes.fromhex("0400"), received_s=0.0).fields == {}
    assert default_registry().plan_for(DeviceDescription(name="Stride")).measurements == {}


def test_steps_accumulate_with_the_fraction_carried_over() -> None:
    plan = default_registry().plan_for(FOOT_POD)
    steps = [steps_of(plan, 90, 100.0 + second) for second in range(61)]
    assert steps[0] == 0, "the first notification has no interval behind it"
    assert steps[1:7] == [1, 2, 1, 2, 1, 2]
    assert sum(s or 0 for s in steps) == 90, "one minute at 90/min is 90 steps"


def test_steps_follow_the_interval_not_the_notification_count() -> None:
    plan = default_registry().plan_for(FOOT_POD)
    assert [steps_of(plan, 120, t) for t in (0.0, 0.25, 2.25, 2.5, 5.0)] == [0, 0, 4, 1, 5]


def test_zero_cadence_is_an_explicit_zero() -> None:
    plan = default_registry().plan_for(FOOT_POD)
    decoded = [plan.to_sample_fields("2a53", rsc(0), received_s=t) for t in (0.0, 1.0, 2.0)]
    assert [d.fields for d in decoded] == [{"steps": 0}] * 3
    assert steps_of(plan, 60, 3.0) == 1, "walking again counts at once"


def test_a_gap_restarts_without_inventing_steps() -> None:
    plan = default_registry().plan_for(FOOT_POD)
    assert [steps_of(plan, 120, t) for t in (0.0, 1.0, 1.5)] == [0, 2, 1]
    after_gap = 1.5 + CADENCE_MAX_GAP_S + 0.5  # times exact in binary: no rounding at the limit
    assert steps_of(plan, 120, after_gap) == 0, "no steps for the gap"
    assert steps_of(plan, 120, after_gap + 1.0) == 2
    assert steps_of(plan, 120, after_gap + 1.0 + CADENCE_MAX_GAP_S - 0.5) == 19, "just below"
    assert steps_of(plan, 120, 0.0) == 0, "a clock that went back restarts too"


def test_a_reconnect_starts_afresh_and_devices_are_independent() -> None:
    registry = default_registry()
    first = registry.plan_for(FOOT_POD)
    other_device = registry.plan_for(FOOT_POD)
    assert [steps_of(first, 90, t) for t in (0.0, 1.0)] == [0, 1]  # half a step carried
    assert steps_of(other_device, 90, 1.5) == 0, "another device's history is not shared"
    reconnected = registry.plan_for(FOOT_POD)  # the manager builds a plan per connection
    assert steps_of(reconnected, 90, 2.0) == 0
    assert steps_of(reconnected, 90, 3.0) == 1, "counting resumes"


def test_without_a_receive_time_no_steps_are_guessed() -> None:
    plan = default_registry().plan_for(FOOT_POD)
    assert plan.to_sample_fields("2a53", rsc(90)).fields == {}


# --- the virtual foot pod ------------------------------------------------------------------------


def test_simulator_cadence_follows_the_simulated_steps() -> None:
    simulator = PatientSimulator(random_profile(1, 0), seed=1, band_on_ms=MIDNIGHT_MS)
    hour_ms = 3_600_000
    # the waking hours of a day
    readings = simulator.generate(MIDNIGHT_MS + 8 * hour_ms, MIDNIGHT_MS + 20 * hour_ms).readings()
    walking = next(r for r in readings if r.steps)
    feed = SimulatorVitals(simulator, clock_ms=lambda: walking.time_ms)
    expected = round(walking.steps * 60_000 / simulator.interval_ms)  # type: ignore[operator]
    assert feed.vitals_at(0.0).cadence_per_min == min(expected, 255) > 0


@dataclass
class Sink:
    """Keeps what the connection manager stores (the outbox has its own tests)."""

    readings: list[Reading] = field(default_factory=list)

    def submit(self, patient_id: str, device_id: str, readings: Sequence[Reading]) -> int:
        self.readings.extend(readings)
        return len(readings)

    def update_device(self, patient_id: str, device_id: str, state: LinkState, **_: object) -> None:
        pass

    def steps(self) -> list[Reading]:
        return [r for r in self.readings if r.steps is not None]


async def test_rsc_notifications_become_samples_with_steps_end_to_end(world: VirtualWorld) -> None:
    """A virtual foot pod at 240 steps/min, bleak + Bumble, the manager: steps add up."""
    cadence = 240
    pod = await world.add_wearable(
        "pod-1",
        SteadyVitals(cadence_per_min=cadence),
        heart_rate_interval_s=0.5,
        temperature_interval_s=0.5,
        rsc_interval_s=0.1,
    )
    sink = Sink()
    manager = ConnectionManager(
        [ConfiguredDevice("pod-1", "patient-1", pod.address)],
        sink,
        default_registry(),
        backend=select_backend("bumble:" + world.hci_transport),
        watchdog_tick_s=0.05,
    )
    task = asyncio.create_task(manager.run())
    try:
        async with asyncio.timeout(20):
            while len(sink.steps()) < 25:  # noqa: ASYNC110 - polls what the manager stored
                await asyncio.sleep(0.05)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    stepping = sink.steps()
    assert stepping[0].steps == 0, "the first notification of a connection counts nothing"
    assert all(r.heart_rate_bpm is None for r in stepping), "RSC samples carry steps only"
    assert any(r.heart_rate_bpm is not None for r in sink.readings), "heart rate still streams"
    assert set(world.delivered["pod-1"].rsc_cadences) == {cadence}
    elapsed_s = (stepping[-1].time_ms - stepping[0].time_ms) / 1000
    counted = sum(r.steps or 0 for r in stepping)
    # Whole steps with the fraction carried: the sum lags the exact count by less than one step.
    assert cadence * elapsed_s / 60 - 1.2 <= counted <= cadence * elapsed_s / 60 + 0.2
    assert counted > 0
    assert manager.links["pod-1"].parse_errors.total() == 0


async def test_ble_sim_serves_running_speed_cadence_on_request() -> None:
    """``flarewatch ble-sim --cadence``: every band also serves 0x1814 (and none does without)."""
    for enabled in (True, False):
        world, control, _ready = await serve_world(
            1, simulator=False, running_speed_cadence=enabled
        )
        try:
            assert (world.wearables["band-1"].rsc_handle is not None) is enabled
        finally:
            control.close()
            await world.close()

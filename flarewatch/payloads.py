"""Payloads of wire contract v1, defined once; the JSON Schema in ``docs/schema`` is generated here.

Units are part of every field name (``heart_rate_bpm``, ``skin_temperature_c``); times are UTC
epoch milliseconds (``time_ms``). Every sample carries a per-device sequence number that only ever
grows, so receivers can drop duplicates after an at-least-once redelivery and spot gaps.
"""

from __future__ import annotations

import itertools
from enum import StrEnum
from typing import Annotated, Any, Final, Literal, Self, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, model_validator

from flarewatch.const import (
    ID_PATTERN,
    MAX_FUTURE_SKEW_MS,
    MAX_PAYLOAD_BYTES,
    MAX_SAMPLE_AGE_MS,
    MAX_SAMPLES_PER_BATCH,
    MIN_VALID_TIME_MS,
    SCHEMA_VERSION,
)
from flarewatch.errors import ContractError, describe_validation_error

MAX_SEQ: Final = 2**53 - 1
"""Largest ``seq``: exact in a JSON number everywhere (JavaScript, dashboards), and within the
signed 64-bit integers both sample stores keep. The collector starts a device at the clock in
epoch ms (~1.8e12 in 2026); 2**53 ms are some 285,000 years, so it never gets near."""

Id = Annotated[str, Field(pattern=ID_PATTERN, description="patient/device/gateway id")]
Seq = Annotated[int, Field(ge=0, le=MAX_SEQ)]
TimeMs = Annotated[
    int, Field(ge=MIN_VALID_TIME_MS, description="UTC epoch milliseconds", examples=[1764081600000])
]


class _Message(BaseModel):
    """Strict, closed JSON objects: unknown fields, NaN and infinities are rejected."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False, strict=True)


def _check_clock(time_ms: int | None, info: ValidationInfo, *, max_age: bool) -> None:
    """Refuse a time beyond the receiver's clock (``now_ms`` in the validation context), if any.

    A clock in microseconds or years off would otherwise reach alerts as a date no calendar
    holds. ``max_age`` also refuses times older than the replay horizon (samples only: a
    retained status may rightly be old).
    """
    now_ms = (info.context or {}).get("now_ms")
    if now_ms is None or time_ms is None:
        return
    if time_ms > now_ms + MAX_FUTURE_SKEW_MS:
        raise ValueError("time_ms lies in the future: check the device clock")
    if max_age and time_ms < now_ms - MAX_SAMPLE_AGE_MS:
        raise ValueError("time_ms is older than the replay horizon")


class Sample(_Message):
    """One reading of a wearable at one instant; absent fields were not measured."""

    seq: Seq = Field(description="per-device sequence number, strictly increasing")
    time_ms: TimeMs
    heart_rate_bpm: float | None = Field(None, ge=20, le=300)
    rr_intervals_s: tuple[Annotated[float, Field(gt=0.15, lt=3.0)], ...] | None = Field(
        None, max_length=64, description="beat-to-beat intervals since the previous sample"
    )
    skin_temperature_c: float | None = Field(None, ge=10, le=45)
    steps: int | None = Field(None, ge=0, le=10_000, description="steps since the previous sample")
    acceleration_g: float | None = Field(None, ge=0, le=32, description="mean |acceleration|")
    acceleration_sd_g: float | None = Field(
        None, ge=0, le=32, description="standard deviation of |acceleration| (movement)"
    )
    energy_expended_kj: int | None = Field(None, ge=0, le=65_535)
    contact_detected: bool | None = Field(None, description="sensor reports skin contact")
    battery_percent: int | None = Field(None, ge=0, le=100)

    @model_validator(mode="after")
    def _plausible_time(self, info: ValidationInfo) -> Self:
        _check_clock(self.time_ms, info, max_age=True)
        return self


M = TypeVar("M", bound="_Message")


class SampleBatch(_Message):
    """Samples of one device, in sequence order, published on ``.../{patient}/{device}/samples``."""

    v: Literal[1] = Field(SCHEMA_VERSION, description="contract version")
    patient_id: Id
    device_id: Id
    gateway_id: Id | None = None
    samples: tuple[Sample, ...] = Field(min_length=1, max_length=MAX_SAMPLES_PER_BATCH)

    @model_validator(mode="after")
    def _increasing_seq(self) -> Self:
        seqs = [s.seq for s in self.samples]
        if any(b <= a for a, b in itertools.pairwise(seqs)):
            raise ValueError("samples must be in strictly increasing seq order")
        return self


class LinkState(StrEnum):
    """State of the BLE link (device) or the MQTT session (gateway)."""

    ONLINE = "online"
    CONNECTING = "connecting"
    OFFLINE = "offline"


OFFLINE_PAIRING: Final = "pairing"
"""A device status's ``reason`` when the gateway cannot pair with the band (refused, reset, or a
passkey wanted): the wearer's to mend, by putting the band in its pairing mode."""


class DeviceStatus(_Message):
    """Latest known state of a wearable, retained on ``.../{patient}/{device}/status``."""

    v: Literal[1] = SCHEMA_VERSION
    patient_id: Id
    device_id: Id
    gateway_id: Id | None = None
    time_ms: TimeMs
    state: LinkState
    battery_percent: int | None = Field(None, ge=0, le=100)
    contact_detected: bool | None = None
    last_seq: Seq | None = Field(None, description="seq of the newest sample taken")
    reason: str | None = Field(None, max_length=200, description="why the state changed")

    @model_validator(mode="after")
    def _plausible_time(self, info: ValidationInfo) -> Self:
        _check_clock(self.time_ms, info, max_age=False)
        return self


class GatewayStatus(_Message):
    """State of a collector gateway, retained; the ``offline`` form is its MQTT Last Will."""

    v: Literal[1] = SCHEMA_VERSION
    gateway_id: Id
    state: LinkState
    time_ms: TimeMs | None = Field(None, description="absent in the Last Will (sent by the broker)")
    software: str | None = Field(None, max_length=100)
    outbox_pending: int | None = Field(None, ge=0, description="samples not yet acknowledged")
    devices: tuple[Id, ...] = ()

    @model_validator(mode="after")
    def _plausible_time(self, info: ValidationInfo) -> Self:
        _check_clock(self.time_ms, info, max_age=False)
        return self


def _decode(model: type[M], payload: bytes, now_ms: int | None) -> M:
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise ContractError("too_large", f"{len(payload)} bytes > {MAX_PAYLOAD_BYTES}")
    try:
        return model.model_validate_json(payload, context={"now_ms": now_ms})
    except ValidationError as exc:
        errors = exc.errors(include_input=False, include_url=False)
        if errors and errors[0]["type"] == "json_invalid":
            raise ContractError("not_json", "payload is not valid JSON") from exc
        raise ContractError("invalid", describe_validation_error(exc, limit=5)) from exc


def decode_sample_batch(payload: bytes, *, now_ms: int | None = None) -> SampleBatch:
    """Parse and validate a samples message; ``now_ms`` enables the clock plausibility checks."""
    return _decode(SampleBatch, payload, now_ms)


def decode_device_status(payload: bytes, *, now_ms: int | None = None) -> DeviceStatus:
    """Parse and validate a device status message; ``now_ms`` refuses a time in the future."""
    return _decode(DeviceStatus, payload, now_ms)


def decode_gateway_status(payload: bytes, *, now_ms: int | None = None) -> GatewayStatus:
    """Parse and validate a gateway status message; ``now_ms`` refuses a time in the future."""
    return _decode(GatewayStatus, payload, now_ms)


def encode(message: _Message) -> bytes:
    """Serialize a contract message compactly (absent values are left out)."""
    return message.model_dump_json(exclude_none=True).encode()


def json_schemas() -> dict[str, dict[str, Any]]:
    """JSON Schema of every contract message, keyed by file name under ``docs/schema``."""
    return {
        f"{name}.schema.json": model.model_json_schema(mode="validation")
        for name, model in (
            ("sample-batch", SampleBatch),
            ("device-status", DeviceStatus),
            ("gateway-status", GatewayStatus),
        )
    }

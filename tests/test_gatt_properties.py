"""Totality of the GATT parsers: every input parses or raises ``GattParseError``, nothing else.

Random bytes alone rarely get past the flags octet, so the fuzzers also mutate valid values
(flip, insert, delete, truncate) to reach the optional fields.
"""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collector.errors import GattParseError
from collector.gatt import STANDARD_CHARACTERISTICS, GattValue, decode
from collector.profiles import default_registry

SUPPORTED = sorted(STANDARD_CHARACTERISTICS)
VALID_VALUES = [
    bytes.fromhex(h)
    for h in (
        "1f4800ffff000400020001",
        "16480301",
        "066e0100ffe2070b190e1e0002",
        "07da0300ffe2070b190e1e0005",
        "4c0e",
        "64",
        "01e00001001001",
        "0102030405112200",
        "41636d65",
    )
]


def _check_total(uuid: str, payload: bytes, device_id: str | None = None) -> None:
    try:
        value = decode(uuid, payload, device_id=device_id)
    except GattParseError as exc:
        assert exc.uuid == uuid
        assert exc.device_id == device_id
        assert exc.reason in {
            "truncated",
            "trailing_bytes",
            "reserved_value",
            "out_of_range",
            "bad_text",
        }
        return
    assert isinstance(value, GattValue)
    json.dumps(value.to_json_dict(), allow_nan=False)  # the CLI's output is always valid JSON


@settings(deadline=None)  # shared CI cores: timing noise is not a failure
@given(uuid=st.sampled_from(SUPPORTED), payload=st.binary(max_size=40))
def test_random_bytes(uuid: str, payload: bytes) -> None:
    _check_total(uuid, payload)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(VALID_VALUES)))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "insert", "delete", "truncate"]))
        position = draw(st.integers(0, max(len(data) - 1, 0)))
        if op == "flip" and data:
            data[position] ^= 1 << draw(st.integers(0, 7))
        elif op == "insert":
            data.insert(position, draw(st.integers(0, 255)))
        elif op == "delete" and data:
            del data[position]
        elif op == "truncate":
            del data[position:]
    return bytes(data)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(uuid=st.sampled_from(SUPPORTED), payload=mutated(), device=st.none() | st.text(max_size=8))
def test_mutated_valid_values(uuid: str, payload: bytes, device: str | None) -> None:
    _check_total(uuid, payload, device)


@settings(max_examples=1500, deadline=None)
@given(uuid=st.sampled_from(SUPPORTED), payload=st.binary(max_size=300))
def test_dispatcher_fuzz_long_values(uuid: str, payload: bytes) -> None:
    """Large example count and values up to an MTU of 300 bytes (many RR intervals)."""
    _check_total(uuid, payload)


@settings(deadline=None)  # shared CI cores: timing noise is not a failure
@given(uuid=st.text(max_size=40) | st.integers(-(2**40), 2**40), payload=st.binary(max_size=8))
def test_any_uuid_either_decodes_or_raises_the_typed_error(uuid: str | int, payload: bytes) -> None:
    try:
        value = decode(uuid, payload)
    except GattParseError as exc:
        assert exc.reason  # a tag for the counters: bad_uuid, unsupported_uuid, truncated...
        return
    assert isinstance(value, GattValue)


@settings(deadline=None)  # shared CI cores: timing noise is not a failure
@given(payload=st.binary(max_size=16))
def test_plug_in_parser_is_total(payload: bytes) -> None:
    registry = default_registry(["collector.profiles.plugins.example_skin_motion"])
    try:
        registry.decode("7f6f0002-3c4e-4a1b-9d1e-5a1f1ae70000", payload, device_id="band")
    except GattParseError as exc:
        assert exc.device_id == "band"

"""InfluxDB line protocol for sample batches, built by hand (pure functions, no I/O).

``influxdb_client.Point`` builds the same lines but costs ~10x more CPU per sample (measured by
``bench/ingest.py``, which prints both); at tens of thousands of samples per second that decides
whether one core keeps up. ``tests/test_store_contract.py`` checks both produce the same line.

Layout (one point per sample)::

    vitals,device=<id>,patient=<id> seq=<n>i,heart_rate_bpm=<f>,...,rr_intervals_s="<f>,<f>" <ms>

Tags are sorted by key (what InfluxDB does itself, so it need not re-sort); ids follow the
contract's ``ID_PATTERN`` and need no escaping. ``seq`` is an integer field, so every sample can be
queried by sequence number. Absent values are left out. RR intervals are a comma-separated
string field (line protocol has no arrays).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Final

from flarewatch.payloads import Sample, SampleBatch
from service.const import INFLUX_MEASUREMENT

FLOAT_FIELDS: Final = (
    "heart_rate_bpm",
    "skin_temperature_c",
    "acceleration_g",
    "acceleration_sd_g",
)
INT_FIELDS: Final = ("steps", "energy_expended_kj", "battery_percent")
BOOL_FIELD: Final = "contact_detected"
RR_FIELD: Final = "rr_intervals_s"


_FLOAT_PREFIXES: Final = tuple((name, f"{name}=") for name in FLOAT_FIELDS)
_INT_PREFIXES: Final = tuple((name, f"{name}=") for name in INT_FIELDS)


def rr_to_field(rr: Sequence[float]) -> str:
    """RR intervals as the comma-separated text stored in the ``rr_intervals_s`` string field."""
    return ",".join(map(repr, rr))


def rr_from_field(text: str) -> tuple[float, ...]:
    """Inverse of :func:`rr_to_field`."""
    return tuple(float(value) for value in text.split(",")) if text else ()


def sample_fields(sample: Sample) -> str:
    """The field set of one sample (``seq=..i,heart_rate_bpm=..``)."""
    # Validated samples hold floats in float fields (pydantic converts JSON integers), so repr()
    # is exact; reading __dict__ directly halves the cost of attribute access on this hot path.
    values = sample.__dict__
    parts = [f"seq={values['seq']}i"]
    for name, prefix in _FLOAT_PREFIXES:
        value = values[name]
        if value is not None:
            parts.append(prefix + repr(value))
    for name, prefix in _INT_PREFIXES:
        value = values[name]
        if value is not None:
            parts.append(f"{prefix}{value}i")
    contact = values[BOOL_FIELD]
    if contact is not None:
        parts.append("contact_detected=true" if contact else "contact_detected=false")
    rr = values[RR_FIELD]
    if rr is not None:
        parts.append(f'rr_intervals_s="{",".join(map(repr, rr))}"')
    return ",".join(parts)


def batch_lines(batch: SampleBatch) -> Iterator[str]:
    """One line per sample of ``batch``, timestamps in milliseconds."""
    head = f"{INFLUX_MEASUREMENT},device={batch.device_id},patient={batch.patient_id} "
    for sample in batch.samples:
        yield f"{head}{sample_fields(sample)} {sample.time_ms}"


def lines_of(batches: Iterable[SampleBatch]) -> list[str]:
    """Every line of every batch, in order."""
    return [line for batch in batches for line in batch_lines(batch)]

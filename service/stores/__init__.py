"""Sample stores: the :class:`SampleStore` interface and its InfluxDB and SQLite implementations."""

from service.stores.base import (
    LATEST_VITAL_FIELDS,
    EncodedWrite,
    Reading,
    SampleStore,
    StoredSample,
    VitalValue,
)

__all__ = [
    "LATEST_VITAL_FIELDS",
    "EncodedWrite",
    "Reading",
    "SampleStore",
    "StoredSample",
    "VitalValue",
]

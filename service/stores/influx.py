"""InfluxDB sample store through the v1-compatible HTTP API (InfluxDB 1.x, 2.x, 3.x Core).

Writes: gzip line protocol to ``/write`` (precision ms), at most ``INFLUX_WRITE_LINES_MAX`` lines
per request. Reads: InfluxQL on ``/query``. Auth: ``Authorization: Token …`` (2.x/3.x) or basic
auth with user and password (1.x). A point is identified by series (measurement + tags) and
timestamp, so writing a sample twice overwrites it with itself: writes are idempotent.
"""

from __future__ import annotations

import gzip
import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

import httpx
from pydantic import SecretStr

from flarewatch.payloads import Sample, SampleBatch
from flarewatch.redaction import address_of, scrubbed
from service.const import (
    INFLUX_ANNOTATION_MEASUREMENT,
    INFLUX_CONNECT_TIMEOUT_S,
    INFLUX_GZIP_LEVEL,
    INFLUX_MEASUREMENT,
    INFLUX_WRITE_LINES_MAX,
)
from service.errors import StoreError
from service.stores.base import (
    LATEST_VITAL_FIELDS,
    EncodedWrite,
    IntervalMeans,
    Reading,
    SampleStore,
    StoredSample,
)
from service.stores.lineprotocol import FLOAT_FIELDS, RR_FIELD, lines_of, rr_from_field

log = logging.getLogger(__name__)

_RETRYABLE_STATUS = frozenset({401, 403, 404, 408, 429, 500, 502, 503, 504})
"""Outages, overload, credentials and a missing database (404) an operator can fix: the same
request may succeed later, so the ingest keeps the messages and retries instead of giving up."""

_MISSING_DATABASE = "database not found"
"""How InfluxDB 1.x answers a query on a database that does not exist (yet)."""


def _quote(value: str) -> str:
    """An InfluxQL string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _where(
    patient_id: str | None = None,
    device_id: str | None = None,
    start_ms: int | None = None,
    end_ms: int | None = None,
    seq: int | None = None,
) -> str:
    terms = []
    if patient_id is not None:
        terms.append(f"patient = {_quote(patient_id)}")
    if device_id is not None:
        terms.append(f"device = {_quote(device_id)}")
    if start_ms is not None:
        terms.append(f"time >= {start_ms}ms")
    if end_ms is not None:
        terms.append(f"time < {end_ms}ms")
    if seq is not None:
        terms.append(f"seq = {int(seq)}")
    return f" WHERE {' AND '.join(terms)}" if terms else ""


def _without_data(error_text: str) -> str:
    """InfluxDB's error text, cut before the first quote: ``unable to parse '...'`` echoes lines."""
    # The echoed line protocol holds vital values, which must never reach logs.
    return error_text.split("'", 1)[0][:300].strip()


class InfluxStore(SampleStore):
    """Samples in InfluxDB, measurement ``vitals`` with tags ``patient`` and ``device``."""

    name = "influx"

    def __init__(
        self,
        url: str,
        *,
        database: str = "flarewatch",
        retention_policy: str | None = None,
        token: SecretStr | None = None,
        username: str | None = None,
        password: SecretStr | None = None,
        gzip_body: bool = True,
        timeout_s: float = 10.0,
        lines_per_request: int = INFLUX_WRITE_LINES_MAX,
    ) -> None:
        self.url = url.rstrip("/")
        self.address = address_of(self.url)
        """Where the server is, for messages: the URL may carry a user and password."""
        self.database = database
        self.retention_policy = retention_policy
        self.gzip_body = gzip_body
        self.lines_per_request = lines_per_request
        headers = {"Authorization": f"Token {token.get_secret_value()}"} if token else {}
        auth = (username, password.get_secret_value() if password else "") if username else None
        self._http = httpx.Client(
            base_url=self.url,
            headers=headers,
            auth=auth,
            timeout=httpx.Timeout(timeout_s, connect=INFLUX_CONNECT_TIMEOUT_S),
        )

    # -- HTTP -------------------------------------------------------------------------------------

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TimeoutException as exc:
            raise StoreError(
                f"InfluxDB at {self.address} did not answer in time ({exc.__class__.__name__}); "
                "is it overloaded?",
                store=self.name,
                retryable=True,
            ) from exc
        except httpx.HTTPError as exc:
            raise StoreError(
                f"cannot reach InfluxDB at {self.address} "
                f"({exc.__class__.__name__}: {scrubbed(str(exc), self.url)}); "
                "is it running and is the URL right?",
                store=self.name,
                retryable=True,
            ) from exc
        if response.status_code >= 300:
            raise self._status_error(response)
        return response

    def _status_error(self, response: httpx.Response) -> StoreError:
        status = response.status_code
        text = _without_data(response.text)
        if status in (401, 403):
            advice = "check the token (influx.token) or user/password (influx.username/password)"
        elif status == 404:
            advice = self._missing_database_advice()
        elif status >= 500 or status == 429:
            advice = "the server is failing or overloaded; the write will be retried"
        else:
            advice = "the request was refused"
        return StoreError(
            f"HTTP {status} from {response.request.url.path}: {text} ({advice})",
            store=self.name,
            retryable=status in _RETRYABLE_STATUS,
            status=status,
        )

    def _missing_database_advice(self) -> str:
        return f"create database {self.database!r} or map it (DBRP) on InfluxDB 2.x"

    def _params(self) -> dict[str, str]:
        params = {"db": self.database}
        if self.retention_policy:
            params["rp"] = self.retention_policy
        return params

    def query(self, influxql: str, *, changes: bool = False) -> list[dict[str, Any]]:
        """Run InfluxQL statements (``;``-separated); one result per statement, errors raised.

        ``changes``: the statements change data (``DELETE``), which InfluxDB takes only by POST.

        Read in chunks (``chunked=true``, one JSON object a line) and put back together here:
        a server's ``[http] max-row-limit`` cuts only unchunked answers, and InfluxDB 1.6 flags
        an unchunked series of over 10,000 points "partial" even when it sent it whole. A
        result whose last chunk is still partial is refused: read as whole, a month's replay
        would silently lack samples.
        """
        params = {
            **self._params(),
            "q": influxql,
            "epoch": "ms",
            "chunked": "true",
            "chunk_size": str(QUERY_CHUNK_POINTS),
        }
        method = "POST" if changes else "GET"
        answer = self._request(method, "/query", params=params).text
        results = _merged_chunks(json.loads(line) for line in answer.splitlines() if line.strip())
        for result in results:
            if result.get("partial"):
                raise StoreError(
                    "InfluxDB sent only part of its answer (the last chunk said more would "
                    "follow); try again, and check the server's log",
                    store=self.name,
                    retryable=True,
                )
            if "error" in result:
                missing = str(result["error"]).startswith(_MISSING_DATABASE)
                advice = f" ({self._missing_database_advice()})" if missing else ""
                raise StoreError(
                    f"query failed: {result['error']}{advice}", store=self.name, retryable=missing
                )
        return results

    # -- SampleStore ------------------------------------------------------------------------------

    def prepare(self) -> None:
        """Check that InfluxDB answers and create the database when the server allows it."""
        self._request("GET", "/ping")
        try:
            self._request("POST", "/query", params={"q": f'CREATE DATABASE "{self.database}"'})
        except StoreError as exc:
            if exc.status is None:
                raise
            # InfluxDB 2.x/3.x and 1.x users without admin rights cannot create databases: the
            # database (or DBRP mapping) must then exist already, which the first write will tell.
            log.info(
                "could not create database %r (%s); it must exist or be created", self.database, exc
            )

    def bodies(self, lines: Sequence[str]) -> list[bytes]:
        """Request bodies of at most ``lines_per_request`` lines, gzipped unless disabled."""
        bodies = []
        for start in range(0, len(lines), self.lines_per_request):
            body = "\n".join(lines[start : start + self.lines_per_request]).encode()
            bodies.append(gzip.compress(body, INFLUX_GZIP_LEVEL) if self.gzip_body else body)
        return bodies

    def write_bodies(self, bodies: Sequence[bytes]) -> None:
        """POST prepared bodies to ``/write``, in order.

        An outage stops at once (the caller retries the whole write: idempotent). A body refused
        for good (HTTP 400: a point beyond the retention policy, a field type conflict) does not
        stop the bodies after it, which hold other samples: their refusal is raised at the end.
        """
        headers = {"Content-Type": "text/plain; charset=utf-8"}
        if self.gzip_body:
            headers["Content-Encoding"] = "gzip"
        params = {**self._params(), "precision": "ms"}
        refused: StoreError | None = None
        for body in bodies:
            try:
                self._request("POST", "/write", params=params, content=body, headers=headers)
            except StoreError as exc:
                if exc.retryable:
                    raise
                refused = refused or exc
        if refused is not None:
            raise refused

    def encode(self, batches: Sequence[SampleBatch]) -> EncodedWrite:
        """Line protocol, split and gzipped, ready for :meth:`write_encoded`."""
        lines = lines_of(batches)
        return EncodedWrite(tuple(batches), len(lines), self.bodies(lines))

    def write_encoded(self, encoded: EncodedWrite) -> int:
        """Send a prepared write (idempotent: same series and time overwrite)."""
        self.write_bodies(encoded.payload)
        return encoded.samples

    def write(self, batches: Sequence[SampleBatch]) -> int:
        """Write every sample as one point (idempotent: same series and time overwrite)."""
        return self.write_encoded(self.encode(batches))

    def samples(
        self,
        *,
        patient_id: str | None = None,
        device_id: str | None = None,
        start_ms: int | None = None,
        end_ms: int | None = None,
        seq: int | None = None,
    ) -> list[StoredSample]:
        """Samples matching every filter, by device then time."""
        where = _where(patient_id, device_id, start_ms, end_ms, seq)
        (result,) = self.query(
            f"SELECT * FROM {INFLUX_MEASUREMENT}{where} GROUP BY device, patient"
        )
        found = []
        for series in result.get("series", ()):
            tags = series["tags"]
            columns = series["columns"]
            for row in series["values"]:
                values = {c: v for c, v in zip(columns, row, strict=True) if v is not None}
                values["time_ms"] = values.pop("time")
                if RR_FIELD in values:
                    values[RR_FIELD] = rr_from_field(values[RR_FIELD])
                sample = Sample.model_validate(values, strict=False)
                found.append(StoredSample(tags["patient"], tags["device"], sample))
        return found

    def interval_means(
        self, patient_id: str, start_ms: int, end_ms: int, interval_ms: int = 60_000
    ) -> list[IntervalMeans]:
        """Means per interval, grouped by InfluxDB (``GROUP BY time(…s)``, empty ones dropped)."""
        where = _where(patient_id, start_ms=start_ms, end_ms=end_ms)
        (result,) = self.query(
            "SELECT mean(heart_rate_bpm), mean(skin_temperature_c) "
            f"FROM {INFLUX_MEASUREMENT}{where} GROUP BY time({interval_ms // 1000}s)"
        )
        found = []
        for series in result.get("series", ()):
            for start, hr, temp in series["values"]:
                if hr is not None or temp is not None:
                    found.append(IntervalMeans(int(start), hr, temp))
        return found

    def count(self, *, patient_id: str | None = None, device_id: str | None = None) -> int:
        """Number of stored samples (points carrying ``seq``)."""
        where = _where(patient_id, device_id)
        (result,) = self.query(f"SELECT count(seq) FROM {INFLUX_MEASUREMENT}{where}")
        series = result.get("series")
        return int(series[0]["values"][0][1]) if series else 0

    def time_span_ms(self, patient_id: str) -> tuple[int, int] | None:
        """The patient's first and last sample times (``first``/``last`` of ``seq``)."""
        where = _where(patient_id)
        found = []
        for selector in ("first", "last"):
            (result,) = self.query(f"SELECT {selector}(seq) FROM {INFLUX_MEASUREMENT}{where}")
            series = result.get("series")
            if not series:
                return None
            found.append(int(series[0]["values"][0][0]))
        return found[0], found[1]

    def erase_patient(self, patient_id: str) -> int:
        """Delete the patient's samples and alert marks (InfluxQL ``DELETE``, a POST query).

        Returns how many samples there were. InfluxDB deletes whole series by tag, across every
        retention policy of the database.
        """
        found = self.count(patient_id=patient_id)
        where = _where(patient_id)
        statements = (
            f"DELETE FROM {measurement}{where}"
            for measurement in (INFLUX_MEASUREMENT, INFLUX_ANNOTATION_MEASUREMENT)
        )
        self.query("; ".join(statements), changes=True)
        return found

    def last_seqs(self) -> dict[str, int]:
        """Highest ``seq`` per device."""
        (result,) = self.query(f"SELECT max(seq) FROM {INFLUX_MEASUREMENT} GROUP BY device")
        return {s["tags"]["device"]: int(s["values"][0][1]) for s in result.get("series", ())}

    def recent_seqs(self, per_device: int) -> dict[str, list[int]]:
        """The highest ``seq`` and those of the ``per_device`` newest samples per device, ascending.

        The newest in time, because a series' tail is read without its history, while
        ``top(seq, n)`` reads all of it (7.4 s against 4.0 s for n = 1024 and 1000 devices of 2000
        points each, InfluxDB 1.6 on the 2-core development machine).
        """
        newest, highest = self.query(
            f"SELECT seq FROM {INFLUX_MEASUREMENT} GROUP BY device "
            f"ORDER BY time DESC LIMIT {int(per_device)};"
            f"SELECT max(seq) FROM {INFLUX_MEASUREMENT} GROUP BY device"
        )
        found: dict[str, set[int]] = {}
        for result in (newest, highest):
            for series in result.get("series", ()):
                seqs = found.setdefault(series["tags"]["device"], set())
                seqs.update(int(row[1]) for row in series["values"] if row[1] is not None)
        return {device: sorted(seqs) for device, seqs in found.items()}

    def latest_vitals(self, patient_id: str) -> Mapping[str, Reading]:
        """Newest value of each vital field (one ``last()`` per field, each with its own time)."""
        where = _where(patient_id)
        statements = ";".join(
            f"SELECT last({name}) FROM {INFLUX_MEASUREMENT}{where}" for name in LATEST_VITAL_FIELDS
        )
        latest = {}
        for name, result in zip(LATEST_VITAL_FIELDS, self.query(statements), strict=True):
            for series in result.get("series", ()):
                time_ms, value = series["values"][0][:2]
                if value is not None:
                    # JSON carries 72.0 as 72: give float fields back their type.
                    latest[name] = Reading(
                        int(time_ms), float(value) if name in FLOAT_FIELDS else value
                    )
        return latest

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._http.close()


QUERY_CHUNK_POINTS: Final = 10_000
"""Points per chunk of a query's answer: InfluxDB's own default, a few hundred kB of JSON each."""


def _merged_chunks(chunks: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The results of a chunked answer put back together: one per statement, in order.

    A series continued in the next chunk (same name and tags) gets its values appended; the
    result keeps the ``partial`` flag of its last chunk (false once complete) and any error.
    """
    merged: dict[int, dict[str, Any]] = {}
    for chunk in chunks:
        for piece in chunk.get("results", ()):
            result = merged.setdefault(
                piece.get("statement_id", 0), {"statement_id": piece.get("statement_id", 0)}
            )
            if "error" in piece:
                result["error"] = piece["error"]
            for series in piece.get("series", ()):
                kept = result.setdefault("series", [])
                last = kept[-1] if kept else None
                if (
                    last is not None
                    and last.get("name") == series.get("name")
                    and last.get("tags") == series.get("tags")
                ):
                    last["values"].extend(series.get("values", ()))
                else:
                    kept.append(series)
            result["partial"] = bool(piece.get("partial"))
    return [merged[key] for key in sorted(merged)]

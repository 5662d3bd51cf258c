"""Why an MQTT connection failed, and how long to wait before the next attempt (pure functions).

Transient failures (broker restarting, connection dropped, timeout) back off exponentially from
``RECONNECT_BASE_DELAY_S`` to ``RECONNECT_MAX_DELAY_S``: samples wait safely in the outbox, and a
returning broker should be found within seconds. Failures that only a person can fix (credentials,
TLS certificate, protocol refusal) retry at the slow ``RECONNECT_CONFIG_DELAY_S``. A publishing
round that failed while the session is up backs off from ``ROUND_RETRY_BASE_DELAY_S`` to
``ROUND_RETRY_MAX_DELAY_S`` (:func:`round_retry_delay_s`). A topic the broker refuses to accept
publishes on is tried again after :func:`refused_retry_delay_s`.
"""

from __future__ import annotations

import socket
import ssl
from enum import StrEnum

from collector.const import (
    PUBLISH_REFUSED_BASE_DELAY_S,
    PUBLISH_REFUSED_MAX_DELAY_S,
    RECONNECT_BASE_DELAY_S,
    RECONNECT_CONFIG_DELAY_S,
    RECONNECT_DNS_DELAY_S,
    RECONNECT_JITTER_FRACTION,
    RECONNECT_MAX_DELAY_S,
    ROUND_RETRY_BASE_DELAY_S,
    ROUND_RETRY_MAX_DELAY_S,
)

# CONNACK reason codes as paho reports them (MQTT 5 numbering, also used for 3.1.1 refusals).
_CONNACK_UNSUPPORTED_PROTOCOL = 132
_CONNACK_BAD_CLIENT_ID = 133
_CONNACK_BAD_CREDENTIALS = 134
_CONNACK_NOT_AUTHORIZED = 135
_CONNACK_SERVER_UNAVAILABLE = 136
_CONNACK_SERVER_BUSY = 137


class ConnectFailure(StrEnum):
    """Kind of connection failure; decides the backoff and the advice logged."""

    REFUSED = "refused"
    """TCP connection refused: the broker is down or restarting."""
    LOST = "lost"
    """An established session dropped."""
    TIMEOUT = "timeout"
    """No answer within the connect timeout (route, firewall, overloaded broker)."""
    DNS = "dns"
    """The broker's host name does not resolve."""
    NETWORK = "network"
    """Any other socket error (network unreachable, reset)."""
    UNAVAILABLE = "unavailable"
    """The broker answered but refused for now (server unavailable / busy)."""
    NOT_AUTHORIZED = "not_authorized"
    """Bad user name/password or not authorized: fix the credentials."""
    TLS = "tls"
    """TLS handshake or certificate verification failed: fix ``ca_file``/the broker certificate."""
    PROTOCOL = "protocol"
    """The broker refused the protocol version or client id: fix the broker configuration."""


_ADVICE = {
    ConnectFailure.NOT_AUTHORIZED: "check mqtt.username/mqtt.password and the broker's ACL",
    ConnectFailure.TLS: "check mqtt.ca_file and that the broker certificate matches the host name",
    ConnectFailure.PROTOCOL: "the broker must accept MQTT 5 or 3.1.1 (mqtt.protocol) and a "
    "fixed client id",
    ConnectFailure.DNS: "check the host name in mqtt.url and the gateway's network",
}


def advice(failure: ConnectFailure) -> str:
    """What a person can do about a failure (empty when waiting is the remedy)."""
    return _ADVICE.get(failure, "")


def classify_exception(exc: BaseException) -> ConnectFailure:
    """Map an exception raised while connecting or reading to a :class:`ConnectFailure`."""
    if isinstance(exc, ssl.SSLError | ssl.CertificateError):
        return ConnectFailure.TLS
    if isinstance(exc, socket.gaierror):
        return ConnectFailure.DNS
    if isinstance(exc, ConnectionRefusedError):
        return ConnectFailure.REFUSED
    if isinstance(exc, TimeoutError):
        return ConnectFailure.TIMEOUT
    return ConnectFailure.NETWORK


def classify_connack(reason_code: int) -> ConnectFailure | None:
    """Map a CONNACK reason code to a failure, or ``None`` when the connection was accepted."""
    if reason_code < 128:
        return None
    if reason_code in (_CONNACK_BAD_CREDENTIALS, _CONNACK_NOT_AUTHORIZED):
        return ConnectFailure.NOT_AUTHORIZED
    if reason_code in (_CONNACK_SERVER_UNAVAILABLE, _CONNACK_SERVER_BUSY):
        return ConnectFailure.UNAVAILABLE
    if reason_code in (_CONNACK_UNSUPPORTED_PROTOCOL, _CONNACK_BAD_CLIENT_ID):
        return ConnectFailure.PROTOCOL
    return ConnectFailure.PROTOCOL


def reconnect_delay_s(
    failure: ConnectFailure,
    attempt: int,
    *,
    jitter: float = 0.0,
    base_s: float = RECONNECT_BASE_DELAY_S,
    max_s: float = RECONNECT_MAX_DELAY_S,
) -> float:
    """Seconds to wait before connection attempt number ``attempt + 1`` (``attempt`` ≥ 1).

    ``jitter`` in [-1, 1] (drawn by the caller) spreads the delay by ±``RECONNECT_JITTER_FRACTION``
    so that many gateways do not retry in lockstep; the result never exceeds the cap for the kind.
    """
    if failure in (ConnectFailure.NOT_AUTHORIZED, ConnectFailure.TLS, ConnectFailure.PROTOCOL):
        nominal = RECONNECT_CONFIG_DELAY_S
        cap = RECONNECT_CONFIG_DELAY_S
    else:
        nominal = _doubling_s(base_s, attempt)
        if failure is ConnectFailure.DNS:
            nominal = max(nominal, RECONNECT_DNS_DELAY_S)
        cap = max(max_s, RECONNECT_DNS_DELAY_S if failure is ConnectFailure.DNS else 0.0)
    nominal = min(nominal, cap)
    spread = max(-1.0, min(1.0, jitter)) * RECONNECT_JITTER_FRACTION
    return min(cap, max(0.0, nominal * (1.0 + spread)))


def round_retry_delay_s(failures: int) -> float:
    """Seconds before retrying a publishing round that failed ``failures`` times in a row (≥ 1)."""
    return min(ROUND_RETRY_MAX_DELAY_S, _doubling_s(ROUND_RETRY_BASE_DELAY_S, failures))


def refused_retry_delay_s(refusals: int) -> float:
    """Seconds before trying again a topic whose publish was refused ``refusals`` times in a row."""
    return min(PUBLISH_REFUSED_MAX_DELAY_S, _doubling_s(PUBLISH_REFUSED_BASE_DELAY_S, refusals))


def _doubling_s(base_s: float, attempt: int) -> float:
    """``base_s`` doubled for each attempt after the first (exponent bounded against overflow)."""
    return base_s * 2.0 ** min(max(attempt, 1) - 1, 30)

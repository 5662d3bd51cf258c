"""How a rendered message reaches one channel: the :class:`Notifier` base and its result types."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

from models.alarm import Severity
from service.alerts.backoff import FailureKind


@dataclass(frozen=True, slots=True)
class Message:
    """A rendered notification; ``body`` may hold vitals, so it is never logged."""

    title: str
    body: str
    severity: Severity
    sms: str | None = None
    """The whole message as one text for SMS, laid out so that its first part (153 GSM-7
    characters) says who, what, to act and holds the link; ``None``: title and body are sent."""


@dataclass(frozen=True, slots=True)
class SendResult:
    """Outcome of one attempt; ``reason`` is a short text without secrets or health data."""

    ok: bool
    failure: FailureKind | None = None
    reason: str = ""


class Notifier(ABC):
    """Sends one message to one channel URL; implementations must be thread-safe."""

    @abstractmethod
    def send(self, url: str, message: Message) -> SendResult:
        """Deliver ``message`` to ``url`` once (the scheduler does retries and fall-through)."""

    @abstractmethod
    def validate(self, url: str) -> str | None:
        """Return why ``url`` cannot be used, or ``None`` if it looks deliverable."""

    @abstractmethod
    def redact(self, url: str) -> str:
        """``url`` with its credentials hidden, for listings."""

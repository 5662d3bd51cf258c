"""Which of two episode kinds or severities is worse: an episode's kind and severity only rise."""

from __future__ import annotations

from typing import Final

from models.alarm import AlarmKind, Severity

KIND_RANK: Final = {AlarmKind.FLUSH: 0, AlarmKind.ANAPHYLAXIS: 1}
"""Episode kinds from mild to severe (a ``resolved`` alarm closes an episode no worse than it)."""
SEVERITY_RANK: Final = {Severity.WARNING: 0, Severity.CRITICAL: 1}


def worse_kind(a: str, b: str) -> str:
    """The worse of two physiological episode kinds (``a`` on a tie)."""
    return a if KIND_RANK[AlarmKind(a)] >= KIND_RANK[AlarmKind(b)] else b


def worse_severity(a: str, b: str) -> Severity:
    """The worse of two severities (``a`` on a tie)."""
    sa, sb = Severity(a), Severity(b)
    return sa if SEVERITY_RANK[sa] >= SEVERITY_RANK[sb] else sb

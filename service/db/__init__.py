"""The service database: SQLAlchemy 2 tables, sessions and Alembic migrations."""

from service.db.models import (
    Alert,
    AlertState,
    AuditEvent,
    Base,
    Channel,
    Contact,
    Delivery,
    DeliveryState,
    Device,
    Episode,
    EpisodeLabel,
    EpisodeState,
    Patient,
    Role,
    SignalState,
)
from service.db.session import Database, upgrade_schema

__all__ = [
    "Alert",
    "AlertState",
    "AuditEvent",
    "Base",
    "Channel",
    "Contact",
    "Database",
    "Delivery",
    "DeliveryState",
    "Device",
    "Episode",
    "EpisodeLabel",
    "EpisodeState",
    "Patient",
    "Role",
    "SignalState",
    "upgrade_schema",
]

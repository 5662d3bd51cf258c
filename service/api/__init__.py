"""The service's HTTP API; for now the acknowledgement links and the ack / "I'm OK" endpoints."""

from service.api.app import create_app

__all__ = ["create_app"]

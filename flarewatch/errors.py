"""The root of every error flarewatch raises on purpose.

Each package adds its own subclasses beside the code that raises them; the tree::

    FlarewatchError
    ├── ConfigError                  settings or a config file are wrong (message says what to fix)
    ├── ContractError                a wire message breaks the contract (collected per field)
    ├── collector.errors.CollectorError
    │   ├── GattParseError           a BLE payload is malformed or truncated
    │   └── DeviceConnectionError    a wearable could not be reached / the link failed
    ├── models.errors.ModelError     a detector or model artifact cannot be used
    └── service.errors.ServiceError
        └── StoreError               the sample store refused or could not be reached

Third-party errors are translated at the boundary with ``raise ... from exc``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydantic import ValidationError


class FlarewatchError(Exception):
    """Base class of every flarewatch error, so callers can catch ours and only ours."""


class ConfigError(FlarewatchError):
    """Settings or a configuration file are invalid; the message says what to change."""


class ContractError(FlarewatchError):
    """A message on the wire does not follow contract v1.

    ``reason`` is a short machine-readable tag (``not_json``, ``invalid``, ``too_large``,
    ``bad_topic``) used to count rejections; ``detail`` is for humans and never contains the
    payload itself (it may carry health data).
    """

    def __init__(self, reason: str, detail: str, *, topic: str | None = None) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.topic = topic


def describe_validation_error(
    exc: ValidationError, *, root: str = "<root>", limit: int | None = None
) -> str:
    """Each problem (the first ``limit``) as ``where: what is wrong``, never the values given.

    Pydantic's own text quotes every input (``input_value=…``): a secret put in the wrong table,
    or a vital value in a wire message, would end up on the screen and in logs.
    """
    problems = exc.errors(include_url=False, include_input=False, include_context=False)
    return "; ".join(
        f"{'.'.join(str(part) for part in problem['loc']) or root}: {problem['msg']}"
        for problem in problems[:limit]
    )

"""Encrypting a link to a band: with its bond when there is one, else by pairing (and bonding).

A gateway has no screen and no keyboard, so it pairs "Just Works" (Core Vol 3 Part H 2.3.5.1):
the link is encrypted, not protected against a man in the middle during that one pairing. A band
that insists on a passkey (it shows six digits) is paired once by a person with
``flarewatch pair DEVICE``, which types the digits in (:class:`PasskeyDelegate`); the gateway then
encrypts every later link with that bond. The same flow as BlueZ's: pair when the band asks for
it, encrypt with the bond after that.

A band that was reset (or paired with another gateway) has forgotten its bond: encrypting with
the stored keys then fails with "PIN or key missing". The stale bond is dropped and the band paired
anew, once, with a warning: that band was reset, or someone else paired it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from bumble import core, hci
from bumble.device import Connection, Device
from bumble.pairing import PairingConfig, PairingDelegate

from collector.ble.const import PAIRING_TIMEOUT_S
from collector.errors import PairingError

log = logging.getLogger(__name__)


class PasskeyDelegate(PairingDelegate):
    """A person types the passkey the band shows (``flarewatch pair``)."""

    def __init__(self, ask: Callable[[], Awaitable[int | None]]) -> None:
        super().__init__(io_capability=PairingDelegate.KEYBOARD_INPUT_ONLY)
        self._ask = ask

    async def get_number(self) -> int | None:
        """The six digits the band shows (None: the person gave up)."""
        return await self._ask()


def pairing_config(delegate: PairingDelegate | None) -> PairingConfig:
    """LE Secure Connections with bonding; a passkey only with a delegate that can enter one."""
    chosen = delegate or PairingDelegate(io_capability=PairingDelegate.NO_OUTPUT_NO_INPUT)
    keyboard = chosen.io_capability != PairingDelegate.NO_OUTPUT_NO_INPUT
    return PairingConfig(sc=True, mitm=keyboard, bonding=True, delegate=chosen)


async def secure_link(
    device: Device,
    connection: Connection,
    *,
    fresh: bool = False,
    timeout_s: float = PAIRING_TIMEOUT_S,
    name: str = "",
) -> None:
    """Encrypt ``connection``: with its bond if ``device`` keeps one (unless ``fresh``), else pair.

    Raises :class:`~collector.errors.PairingError` when the band refuses, pairing does not
    complete within ``timeout_s``, or the link drops meanwhile.
    """
    who = name or connection.peer_address.to_string(False)
    keystore = device.keystore
    address = str(connection.peer_address)
    if not fresh and keystore is not None and await keystore.get(address) is not None:
        try:
            await _within(timeout_s, who, "encryption with its bond", connection.encrypt())
            return
        except PairingError as exc:
            if not _bond_forgotten(exc):
                raise
        log.warning(
            "%s no longer knows this gateway (reset, or paired elsewhere): pairing anew", who
        )
        await keystore.delete(address)
    await _within(timeout_s, who, "pairing", connection.pair())
    log.info("%s paired", who)


def _bond_forgotten(exc: PairingError) -> bool:
    """Whether encryption failed because the band no longer has the bond ("PIN or key missing")."""
    cause = exc.__cause__
    missing = hci.HCI_ErrorCode.PIN_OR_KEY_MISSING_ERROR
    return isinstance(cause, hci.HCI_Error) and cause.error_code == missing


async def _within(timeout_s: float, who: str, what: str, step: Awaitable[None]) -> None:
    """Run one security step; its failure (a refusal, a timeout, the link lost) as PairingError."""
    try:
        async with asyncio.timeout(timeout_s):
            await step
    except TimeoutError as exc:
        raise PairingError(who, f"{what} did not complete within {timeout_s:g} s") from exc
    except core.ProtocolError as exc:
        raise PairingError(
            who,
            f"{what} refused ({exc.error_name or exc.error_code}): put the band in pairing mode; "
            "if it shows a passkey, pair it once with `flarewatch pair`",
        ) from exc
    except (core.BaseBumbleError, hci.HCI_Error, asyncio.CancelledError) as exc:
        task = asyncio.current_task()
        if isinstance(exc, asyncio.CancelledError) and task is not None and task.cancelling():
            raise  # our caller was cancelled: let it unwind
        raise PairingError(who, f"{what} failed ({exc})") from exc

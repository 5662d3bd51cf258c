"""Events counted per key in a sliding window: past a maximum, the key waits.

What the web app limits this way: refused sign-ins per network address (a guesser trying many
usernames waits), and test messages per account (:mod:`service.accounts.own_channels`).

In memory, per service process, bounded (:data:`ADDRESSES_TRACKED_MAX`): a restart forgets, which
the per-account lockout (:mod:`service.accounts.sign_in`) does not. Behind a reverse proxy the
address is the client's only when the proxy passes it on (``X-Forwarded-For``, trusted from the
proxy's address: uvicorn's ``forwarded_allow_ips``); otherwise every sign-in shares the proxy's.
"""

from __future__ import annotations

from collections import OrderedDict, deque

from service.accounts.const import ADDRESS_FAILURES_MAX, ADDRESS_WINDOW_S, ADDRESSES_TRACKED_MAX


class WindowLimit:
    """Events per key (an address, an account) in a sliding window; past the maximum, it waits.

    Built for refused sign-ins per address: the defaults are theirs.
    """

    def __init__(
        self,
        max_failures: int = ADDRESS_FAILURES_MAX,
        window_s: float = ADDRESS_WINDOW_S,
        max_addresses: int = ADDRESSES_TRACKED_MAX,
    ) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self.max_addresses = max_addresses
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def wait_s(self, address: str, now_s: float) -> float:
        """How long ``address`` (any key) must wait before its next try (0: it may try now)."""
        failures = self._recent(address, now_s)
        if len(failures) < self.max_failures:
            return 0.0
        return failures[0] + self.window_s - now_s

    def count(self, address: str, now_s: float) -> None:
        """Count one event (a refused sign-in) of ``address`` (any key)."""
        failures = self._recent(address, now_s)
        failures.append(now_s)
        self._failures[address] = failures
        self._failures.move_to_end(address)
        while len(self._failures) > self.max_addresses:
            self._failures.popitem(last=False)

    def _recent(self, address: str, now_s: float) -> deque[float]:
        failures = self._failures.get(address, deque())
        while failures and failures[0] <= now_s - self.window_s:
            failures.popleft()
        if not failures:
            self._failures.pop(address, None)
        return failures

"""A context-manager mixin for things that are started and stopped (brokers, publishers, worlds)."""

from __future__ import annotations

from types import TracebackType
from typing import Self


class StartStop:
    """``with thing:`` calls ``start()`` on entry and ``stop()`` on exit, whatever happened."""

    def start(self) -> Self:
        """Start; return self so that ``with X(...).start() as x`` and ``with X(...)`` both work."""
        raise NotImplementedError

    def stop(self) -> None:
        """Stop and release everything ``start`` acquired."""
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

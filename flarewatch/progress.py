"""Progress bars of long command-line work, on stderr so that stdout stays the result."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.progress import Progress


def percent_progress() -> Progress:
    """A bar with the share done and the time left, gone once the work is done.

    Rich is imported here, not with the module: the command line starts without it.
    """
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TimeRemainingColumn

    return Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        "[progress.percentage]{task.percentage:>3.0f}%",
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    )

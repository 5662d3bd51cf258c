"""95 % intervals for the few real episodes and false alarms of ``evaluate --recordings``.

The bundled evaluation bootstraps over subjects (:mod:`models.uncertainty`); with a handful of
real episodes a bootstrap says nothing (three wearers who each had their one episode found give
"1.0 to 1.0"). These are the textbook intervals for small counts: Wilson's score interval for a
share (sensitivity), the exact (Garwood) Poisson interval for a count over an exposure (false
alarms per patient-day). Both treat episodes and alarms as independent, which those of one
wearer are not: with most of them from a few wearers the true uncertainty is wider.
"""

from __future__ import annotations

import math
from typing import Final

Z_95: Final = 1.959963984540054
"""The standard normal quantile of a two-sided 95 % interval."""

TAIL_95: Final = 0.025
"""Probability left out on each side of a two-sided 95 % interval."""

BISECTION_STEPS: Final = 200
"""Halvings of the Poisson search interval: far below any printed digit for any count."""


def wilson_interval(successes: int, trials: int) -> tuple[float, float] | None:
    """Wilson's 95 % score interval of ``successes / trials`` (None without trials)."""
    if trials <= 0:
        return None
    p = successes / trials
    z2 = Z_95 * Z_95
    denominator = 1.0 + z2 / trials
    centre = (p + z2 / (2 * trials)) / denominator
    half = Z_95 * math.sqrt(p * (1.0 - p) / trials + z2 / (4 * trials * trials)) / denominator
    return max(centre - half, 0.0), min(centre + half, 1.0)


def poisson_rate_interval(count: int, exposure: float) -> tuple[float, float] | None:
    """The exact 95 % interval of a rate of ``count`` events over ``exposure`` (None if none).

    The bounds are the means under which ``count`` or more (lower), ``count`` or fewer (upper)
    events have probability 2.5 % each.
    """
    if exposure <= 0:
        return None
    lower = 0.0 if count == 0 else _mean_where(count - 1, 1.0 - TAIL_95)
    upper = _mean_where(count, TAIL_95)
    return lower / exposure, upper / exposure


def _mean_where(count: int, probability: float) -> float:
    """The Poisson mean where P(X <= count) is ``probability`` (it falls as the mean rises)."""
    low, high = 0.0, 10.0 * count + 20.0  # P(X <= count) is far below 2.5 % up there
    for _ in range(BISECTION_STEPS):
        middle = (low + high) / 2.0
        if _cdf(count, middle) > probability:
            low = middle
        else:
            high = middle
    return (low + high) / 2.0


def _cdf(count: int, mean: float) -> float:
    """P(X <= count) for a Poisson variable of ``mean``, summed in logs (no underflow)."""
    if mean <= 0.0:
        return 1.0
    log_mean = math.log(mean)
    return math.fsum(math.exp(k * log_mean - mean - math.lgamma(k + 1)) for k in range(count + 1))

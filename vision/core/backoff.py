"""Exponential backoff with "equal jitter", for every retry loop (cameras, the sender).

Half of each delay is fixed and half random, so a hundred edge boxes coming
back after an outage spread out, yet none retries at once.
"""

from __future__ import annotations

import random


def backoff_delay(attempt: int, initial_s: float, max_s: float, rng: random.Random) -> float:
    """Delay before retry number `attempt` (1 = the first retry): initial·2^(attempt-1), capped."""
    ceiling = min(max_s, initial_s * (2.0 ** min(max(attempt - 1, 0), 30)))
    return ceiling / 2 + rng.uniform(0, ceiling / 2)


class Backoff:
    """A retry loop's own attempt counter around `backoff_delay`."""

    def __init__(self, initial_s: float, max_s: float, rng: random.Random | None = None) -> None:
        self.initial_s, self.max_s = initial_s, max_s
        self.attempt = 0
        self._rng = rng or random.Random()

    def next_delay(self) -> float:
        self.attempt += 1
        return backoff_delay(self.attempt, self.initial_s, self.max_s, self._rng)

    def reset(self) -> None:
        self.attempt = 0

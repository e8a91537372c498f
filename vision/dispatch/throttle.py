"""Login throttling: after a few wrong passwords for one username, or from one
client address, further logins are refused for a delay that doubles with every
further failure (up to a cap). A refused attempt costs no password hash and no
database access, so a flood of wrong logins cannot starve case intake of CPU or
of the SQLite write lock, and guessing a password takes years instead of hours.

Our own small limiter rather than `slowapi`: slowapi limits requests per key and
time window at the route, while this needs growing delays keyed on *failed*
attempts, on the username inside the form as well as the address, reset by a
success — which slowapi's fixed windows do not express. State is per process
(several workers each keep their own, so an attacker gets at most N times the
attempts); it is memory-bounded and forgets keys after a quiet period."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from vision.dispatch.errors import Unauthorized

ThrottleScope = Literal["user", "address"]


@dataclass(frozen=True)
class ThrottlePolicy:
    """How many failures are free, and how the delay after them grows."""

    free_failures_per_user: int = 5
    free_failures_per_address: int = 20  # higher: an office behind one NAT address shares it
    first_delay_s: float = 1.0
    max_delay_s: float = 15 * 60.0
    forget_after_s: float = 24 * 3600.0  # a key with no failure for this long starts afresh
    max_keys: int = 100_000  # memory bound; the least recently failed keys are dropped first

    def delay_after(self, failures: int, free: int) -> float:
        """Seconds to refuse logins after `failures` failures, of which `free` cost nothing."""
        over = failures - free
        if over <= 0:
            return 0.0
        return float(min(self.max_delay_s, self.first_delay_s * 2 ** min(over - 1, 40)))


class TooManyAttempts(Unauthorized):
    """Login refused without checking the password: too many recent failures (HTTP 429)."""

    def __init__(self, scope: ThrottleScope, retry_after_s: float) -> None:
        super().__init__(f"too many failed logins; try again in {retry_after_s:.0f} s")
        self.scope = scope
        self.retry_after_s = retry_after_s


@dataclass
class _Failures:
    count: int
    blocked_until: float
    last_failure: float


class LoginThrottle:
    """Thread-safe failure counters per username and per client address."""

    def __init__(self, policy: ThrottlePolicy | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.policy = policy or ThrottlePolicy()
        self.clock = clock
        self._lock = threading.Lock()
        self._failures: OrderedDict[tuple[ThrottleScope, str], _Failures] = OrderedDict()

    @staticmethod
    def _keys(username: str, address: str | None) -> list[tuple[ThrottleScope, str]]:
        keys: list[tuple[ThrottleScope, str]] = [("user", username.casefold())]
        if address:
            keys.append(("address", address))
        return keys

    def check(self, username: str, address: str | None) -> None:
        """Raises TooManyAttempts while the username or the address is blocked."""
        now = self.clock()
        with self._lock:
            for key in self._keys(username, address):
                entry = self._failures.get(key)
                if entry is not None and entry.blocked_until > now:
                    raise TooManyAttempts(key[0], entry.blocked_until - now)

    def failed(self, username: str, address: str | None) -> None:
        """Counts a wrong password (or unknown user) against both keys."""
        now = self.clock()
        policy = self.policy
        with self._lock:
            for key in self._keys(username, address):
                entry = self._failures.pop(key, None)
                if entry is None or now - entry.last_failure > policy.forget_after_s:
                    entry = _Failures(0, 0.0, now)
                entry.count += 1
                entry.last_failure = now
                free = policy.free_failures_per_user if key[0] == "user" else policy.free_failures_per_address
                entry.blocked_until = now + policy.delay_after(entry.count, free)
                self._failures[key] = entry  # most recently failed last
            while len(self._failures) > policy.max_keys:
                self._failures.popitem(last=False)

    def succeeded(self, username: str) -> None:
        """A right password clears the username's count (not the address's: one
        valid account must not reset an address that is guessing others)."""
        with self._lock:
            self._failures.pop(("user", username.casefold()), None)

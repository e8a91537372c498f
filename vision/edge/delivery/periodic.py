"""One background thread that calls a function every few seconds until stopped: the loop the
heartbeat, the model updater and the zone updater share. An exception in one call is logged
and the next call comes at its time (a bad answer from the center must not end the thread)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

__all__ = ["Periodic"]


class Periodic:
    def __init__(self, name: str, every_s: float, call: Callable[[], object], log: logging.Logger) -> None:
        self.name = name
        self.every_s = every_s
        self.call = call
        self.log = log
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """The first call at once, then one every `every_s` after the end of the one before."""
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.call()
            except Exception:  # noqa: BLE001 - one failed call must not end the thread for good
                self.log.exception("%s: unexpected error", self.name)
            self._stop.wait(self.every_s)

    def stop(self, timeout: float = 15.0) -> None:
        """Ends the thread after the call in progress (waits up to `timeout`)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

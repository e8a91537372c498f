"""Collecting what no request will come back for: staged uploads (`.upload-*`) a
crash or kill left behind, and stored evidence files no row names (from before
evidence was committed with its rows, or a transaction whose clean-up could not
reach the database). Run at server start and then on a schedule.

Only files older than the grace period are touched, so an in-flight request's
staged files are never removed; a stored file is deleted under the same lock as
a request moving the same content in, and only when no row names it, checked
inside that lock (staging.remove_unnamed)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from vision.dispatch.context import ServiceContext
from vision.dispatch.staging import remove_unnamed

log = logging.getLogger(__name__)
# Candidates checked per writing transaction: short lock holds, few advisory locks at once.
BATCH = 100


@dataclass(frozen=True)
class Collected:
    """What one collection removed."""

    stale_uploads: int
    orphans: int


def collect_evidence(ctx: ServiceContext, grace_s: float, now: float | None = None) -> Collected:
    """Removes staged uploads and unnamed stored files last modified more than `grace_s` ago."""
    cutoff = (time.time() if now is None else now) - grace_s
    stale = 0
    for path, mtime in list(ctx.store.staged_files()):
        if mtime < cutoff:
            path.unlink(missing_ok=True)
            stale += 1
    candidates = [sha for sha, mtime in ctx.store.stored_files() if mtime < cutoff]
    orphans = 0
    for i in range(0, len(candidates), BATCH):
        orphans += remove_unnamed(ctx, candidates[i : i + BATCH])
    if stale or orphans:
        log.info("evidence collected: %d stale upload(s), %d orphan file(s)", stale, orphans)
    return Collected(stale, orphans)


class Periodic:
    """Calls `job` now (in the caller's thread, so a server starts clean) and then every
    `interval_s` in a daemon thread until `stop()`; 0 runs it once. A failing run is
    logged, never fatal: the next run tries again."""

    def __init__(self, job: Callable[[], object], interval_s: float, name: str = "dispatch-collector") -> None:
        self.job = job
        self.interval_s = interval_s
        self.name = name
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> Periodic:
        self._run_once()
        if self.interval_s > 0:
            self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._run_once()

    def _run_once(self) -> None:
        try:
            self.job()
        except Exception:
            log.exception("%s: run failed", self.name)

"""Tells the dispatch center, every `heartbeat_s`, how the box stands (vision.core.fleet).

A thread of its own beside the case sender: a backlog of cases after an outage must not
delay the sign of life, and a center that is down loses nothing but heartbeats nobody
needs any more (only the latest one matters, so none is queued). Every `frame_every_s`
(and with the first one) the heartbeat carries each camera's latest picture, small.
Failures are logged once per outage, not once per beat.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping

import httpx

from vision.core.fleet import FRAME_PART_PREFIX, Heartbeat
from vision.edge.delivery.periodic import Periodic

log = logging.getLogger(__name__)

__all__ = ["HeartbeatSender", "Snapshot"]

# (with_frames) -> the heartbeat, and the JPEG of each camera's latest picture when asked for
Snapshot = Callable[[bool], tuple[Heartbeat, Mapping[str, bytes]]]


class HeartbeatSender:
    def __init__(
        self,
        url: str,
        headers: Mapping[str, str],
        snapshot: Snapshot,
        *,
        interval_s: float,
        frame_every_s: float,
        timeout_s: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.endpoint = url.rstrip("/") + "/api/v1/heartbeats"
        self.snapshot = snapshot
        self.interval_s = interval_s
        self.frame_every_s = frame_every_s
        self.sent = 0
        self.failures = 0
        self._frames_at: float | None = None  # monotonic time the pictures last reached the center
        self._failing = False
        self._client = httpx.Client(headers=dict(headers), timeout=httpx.Timeout(timeout_s), transport=transport)
        self._thread = Periodic("heartbeat", interval_s, self.beat, log)

    def beat(self) -> bool:
        """Send one heartbeat now; True when the center took it."""
        now = time.monotonic()
        with_frames = self.frame_every_s > 0 and (
            self._frames_at is None or now - self._frames_at >= self.frame_every_s
        )
        heartbeat, frames = self.snapshot(with_frames)
        parts: list[tuple[str, tuple[str | None, bytes, str]]] = [
            ("heartbeat", (None, heartbeat.model_dump_json().encode("utf-8"), "application/json"))
        ]
        for camera_id, jpeg in frames.items():
            parts.append((FRAME_PART_PREFIX + camera_id, (f"{camera_id}.jpg", jpeg, "image/jpeg")))
        try:
            resp = self._client.post(self.endpoint, files=parts)
        except httpx.TransportError as exc:
            return self._failed(f"{type(exc).__name__}: {exc}")
        if resp.status_code != 200:
            return self._failed(f"HTTP {resp.status_code}: {resp.text[:200]}")
        if self._failing:
            log.info("heartbeat: the dispatch center answers again")
        self._failing = False
        self.sent += 1
        if with_frames and frames:
            self._frames_at = now
        return True

    def _failed(self, error: str) -> bool:
        self.failures += 1
        if not self._failing:
            log.warning("heartbeat not delivered (%s); trying again every %g s", error, self.interval_s)
        self._failing = True
        return False

    def start(self) -> HeartbeatSender:
        self._thread.start()  # a broken snapshot is logged; it must not end the box's sign of life
        return self

    def stop(self, timeout: float = 15.0) -> None:
        self._thread.stop(timeout)
        self._client.close()

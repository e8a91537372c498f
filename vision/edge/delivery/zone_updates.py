"""Asks the dispatch center, every `zone_updates.check_every_s`, for the zones published for this
box's cameras (`GET /api/v1/zones/assigned`, vision.dispatch.zone_versions) and hands the
answer to the daemon (`offer`: vision.edge.daemon.zone_rollout checks, keeps and swaps them in).
An answer that cannot be read is counted and logged once per outage; the zones running stay."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

import httpx
from pydantic import TypeAdapter, ValidationError

from vision.core.fleet import CameraZones
from vision.edge.delivery.periodic import Periodic

log = logging.getLogger(__name__)

__all__ = ["ZoneUpdater"]

_ANSWER = TypeAdapter(list[CameraZones])


class ZoneUpdater:
    def __init__(
        self,
        url: str,
        headers: Mapping[str, str],
        offer: Callable[[list[CameraZones]], object],
        *,
        interval_s: float,
        timeout_s: float = 30.0,
    ) -> None:
        self.url = url.rstrip("/")
        self.offer = offer
        self.checks = 0  # answers read
        self.errors = 0  # checks that could not reach the center or read its answer
        self._failing = False
        self._client = httpx.Client(headers=dict(headers), timeout=httpx.Timeout(timeout_s))
        self._thread = Periodic("zone-updates", interval_s, self.check, log)

    def check(self) -> list[CameraZones]:
        """Asks the center once and offers its answer; returns what it offered ([] on failure)."""
        try:
            resp = self._client.get(f"{self.url}/api/v1/zones/assigned")
            resp.raise_for_status()
            published = _ANSWER.validate_json(resp.content)
        except (httpx.HTTPError, ValidationError) as exc:
            self.errors += 1
            if not self._failing:
                log.warning("zone updates: cannot read the center's zones (%s); the running zones stay", exc)
            self._failing = True
            return []
        self._failing = False
        self.checks += 1
        if published:
            self.offer(published)
        return published

    def start(self) -> ZoneUpdater:
        self._thread.start()
        return self

    def stop(self, timeout: float = 15.0) -> None:
        self._thread.stop(timeout)
        self._client.close()

"""Zones published at the dispatch center, taken by a running daemon like a model version.

The zone updater (delivery/zone_updates.py) hands over the latest zone version of each camera
(`offer`, on its own thread). A version the camera does not run yet is put in place of the
camera's zones in the site the daemon runs, and that site is checked as `streetvision config
check` checks a site file (the pydantic SiteConfig with its cross-checks: every zone a rule
names exists on its cameras with the rule's kind; then the checks that read files). Refused,
it is logged, kept with its reason for the heartbeat, and not tried again; the running zones
stay. Accepted, every accepted version is written to the override file (JSON, atomically:
`zone_updates.path`, default zone-versions.json beside the outbox's files), and the new site
waits for the loop (`take`), which swaps the changed cameras' rules at its next batch while
the camera readers keep streaming (pipeline.py `replace_zones`).

At start-up the override file is read over the site file the same way, camera by camera: a
saved version the site file no longer allows (a rule renamed its zone meanwhile) is logged and
left out, and that camera runs its site file's zones.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from pydantic import TypeAdapter, ValidationError

from vision.core.cases import REASON_MAX
from vision.core.fleet import CameraZones
from vision.edge.config import ConfigError, SiteConfig, parse_site
from vision.edge.config_check import check_site_files

log = logging.getLogger("vision.edge.daemon")

__all__ = ["OVERRIDE_FILE", "ZoneRefusal", "ZoneRollout", "override_path", "with_zones"]

OVERRIDE_FILE = "zone-versions.json"
_VERSIONS = TypeAdapter(list[CameraZones])


@dataclass(frozen=True)
class ZoneRefusal:
    version: int
    reason: str


def override_path(site: SiteConfig, outbox_dir: Path | str | None = None) -> Path:
    """Where the accepted zone versions of this site are kept on the box: `zone_updates.path`,
    else beside the outbox's files (`outbox_dir` when the daemon was given another outbox)."""
    if site.zone_updates is not None and site.zone_updates.path:
        return Path(site.zone_updates.path)
    return Path(outbox_dir or site.outbox.path) / OVERRIDE_FILE


def with_zones(site: SiteConfig, published: CameraZones) -> SiteConfig:
    """`site` with the camera's zones replaced by the published ones, checked as `config check`
    checks a site file; ConfigError (every problem) when the box would refuse that site."""
    data = site.model_dump(mode="json")
    cameras = [c for c in data["cameras"] if c["id"] == published.camera_id]
    if not cameras:
        raise ConfigError("zones from the center", [("cameras", f"no camera '{published.camera_id}' on this box")])
    cameras[0]["zones"] = [z.model_dump(mode="json") for z in published.zones]
    source = f"zone version {published.version} of camera {published.camera_id}"
    candidate = parse_site(data, source)
    problems = check_site_files(candidate)
    if problems:
        raise ConfigError(source, problems)
    return candidate


def _reason(err: ConfigError) -> str:
    text = "; ".join(f"{loc}: {msg}" for loc, msg in err.errors)
    return text if len(text) <= REASON_MAX else text[: REASON_MAX - 1] + "…"


class ZoneRollout:
    """The zone versions a daemon runs: read at start-up, offered by the updater, taken by the loop."""

    def __init__(self, site_file: SiteConfig, path: Path) -> None:
        """`site_file`: the site as its file says; the site to run is `self.site`, with the saved
        versions that still pass the checks."""
        self.path = path
        self.applied: dict[str, CameraZones] = {}  # camera id -> the version accepted (and saved)
        # camera id -> the version the loop runs: behind `applied` until the loop takes the new site,
        # so a heartbeat never says a version runs while it still shows the old zones
        self.running: dict[str, CameraZones] = {}
        self.refused: dict[str, ZoneRefusal] = {}  # camera id -> the latest version it refused
        self.errors = 0  # answers that could not be read, override files that could not be written
        self._lock = threading.Lock()
        self._pending: SiteConfig | None = None
        self._pending_versions: dict[str, CameraZones] = {}
        self.site, accepted = self._apply(site_file, self._load(), at_start=True)
        self.applied.update(accepted)
        self.running.update(accepted)
        if accepted:
            log.info(
                "zones from %s: %s",
                path,
                ", ".join(f"camera {c} version {v.version}" for c, v in sorted(accepted.items())),
            )

    # ------------------------------------------------------------ the updater's thread
    def offer(self, published: Iterable[CameraZones]) -> list[str]:
        """The latest version of each camera, from the center; returns the cameras whose new
        zones were accepted (the loop swaps them in at its next batch)."""
        with self._lock:
            current = self._pending or self.site
            known = {c.id for c in current.cameras}
            new = [
                p
                for p in published
                if p.camera_id in known
                and (p.camera_id not in self.applied or self.applied[p.camera_id].version != p.version)
                and (p.camera_id not in self.refused or self.refused[p.camera_id].version != p.version)
            ]
            if not new:
                return []
            site, accepted = self._apply(current, new, at_start=False)
            if not accepted:
                return []
            try:
                self._save({**self.applied, **accepted})
            except OSError as exc:  # tried again at the next check: nothing is taken that a restart would lose
                self.errors += 1
                log.error("zones: cannot write %s (%s); the running zones stay", self.path, exc)
                return []
            self.applied.update(accepted)
            self._pending, self._pending_versions = site, dict(self.applied)
        for camera_id, v in sorted(accepted.items()):
            log.info("camera %s: zone version %d accepted; swapped in at the next batch", camera_id, v.version)
        return sorted(accepted)

    def _apply(
        self, site: SiteConfig, versions: Iterable[CameraZones], *, at_start: bool
    ) -> tuple[SiteConfig, dict[str, CameraZones]]:
        """Each camera's version in turn over `site`: (the site with those that pass, them)."""
        accepted: dict[str, CameraZones] = {}
        for v in versions:
            try:
                site = with_zones(site, v)
            except ConfigError as err:
                reason = _reason(err)
                self.refused[v.camera_id] = ZoneRefusal(v.version, reason)
                log.error(
                    "camera %s: zone version %d REFUSED%s: %s -- %s",
                    v.camera_id,
                    v.version,
                    f" (saved in {self.path})" if at_start else "",
                    reason,
                    "the site file's zones run" if at_start else "the running zones stay",
                )
                continue
            accepted[v.camera_id] = v
            self.refused.pop(v.camera_id, None)
        return site, accepted

    # ------------------------------------------------------------ the loop
    def take(self) -> SiteConfig | None:
        """The site with newly accepted zones, once (on the loop, between two batches)."""
        with self._lock:
            site, self._pending = self._pending, None
            if site is not None:
                self.site, self.running = site, self._pending_versions
            return site

    def state(self, camera_id: str) -> tuple[int | None, ZoneRefusal | None]:
        """(the version the camera runs, the latest one it refused) for the heartbeat."""
        with self._lock:
            running = self.running.get(camera_id)
            return (running.version if running else None), self.refused.get(camera_id)

    # ------------------------------------------------------------ the file
    def _load(self) -> list[CameraZones]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        except OSError as exc:
            log.error("zones: cannot read %s (%s); the site file's zones run", self.path, exc)
            return []
        try:
            return _VERSIONS.validate_json(text)
        except ValidationError as exc:
            log.error("zones: %s is not a list of zone versions (%s); the site file's zones run", self.path, exc)
            return []

    def _save(self, versions: dict[str, CameraZones]) -> None:
        """Every accepted version, written to a temporary file, fsynced and renamed into place."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        body = json.dumps([v.model_dump(mode="json") for _, v in sorted(versions.items())], ensure_ascii=False)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(body)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)

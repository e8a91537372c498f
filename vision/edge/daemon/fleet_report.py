"""The heartbeat of a running site (vision.core.fleet): what the center's fleet page shows.

Built from the same parts as `/healthz` (health.py), for the center instead of a local
supervisor: each camera's link, fps and decode errors, the outbox's disk and queue, the
models with their sha256, the hash of the site config and the software version; with
each camera's latest picture, shrunk, when the sender asks for it.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from functools import cache
from typing import Any, Literal

import cv2
import numpy as np
import yaml

from vision.core.fleet import (
    FRAME_MAX_BYTES,
    MAX_ZONE_POINTS,
    MAX_ZONES_PER_CAMERA,
    CameraHeartbeat,
    Heartbeat,
    ModelInUse,
    ZoneOutline,
)
from vision.core.model_registry import models_dir
from vision.edge.config import SiteConfig
from vision.edge.daemon.health import RunningSite
from vision.edge.daemon.zone_rollout import ZoneRefusal

log = logging.getLogger("vision.edge.daemon")

__all__ = ["FRAME_WIDTH", "config_sha256", "heartbeat_of", "frame_jpeg"]

ZoneState = Callable[[str], tuple[int | None, ZoneRefusal | None]]

FRAME_WIDTH = 640  # the picture sent to the center: enough to draw zones on, ~50 kB


@cache
def software_version() -> str:
    """The installed package's version (what pip installed on the box)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("streetvision")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown"


def config_sha256(site: SiteConfig) -> str:
    """Of the site config as the daemon parsed it (formatting and comments do not count)."""
    return hashlib.sha256(site.model_dump_json().encode("utf-8")).hexdigest()


@cache
def _model_sha256(name: str, version: str) -> str | None:
    """The sha256 its card gives (detector and classifier cards alike); None for a model the
    caller supplied (tests, the suite) that has no card under models/, or another version's card."""
    try:
        card = yaml.safe_load((models_dir() / name / "card.yaml").read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return None
    if not isinstance(card, dict) or str(card.get("version")) != version:
        return None
    sha = card.get("sha256")
    return sha if isinstance(sha, str) and len(sha) == 64 else None


def frame_jpeg(image: np.ndarray, width: int = FRAME_WIDTH) -> bytes | None:
    """A camera picture as a small JPEG; None when it cannot be made that small."""
    h, w = image.shape[:2]
    if w > width:
        image = cv2.resize(image, (width, max(1, round(h * width / w))), interpolation=cv2.INTER_AREA)
    for quality in (75, 50):
        ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
        if ok and buf.nbytes <= FRAME_MAX_BYTES:
            return buf.tobytes()
    return None


def heartbeat_of(
    site: RunningSite,
    site_config: SiteConfig,
    started_at: datetime,
    config_hash: str,
    latest: Mapping[str, np.ndarray],
    with_frames: bool,
    zone_state: ZoneState | None = None,
) -> tuple[Heartbeat, dict[str, bytes]]:
    """`zone_state`: camera id -> (the center's zone version it runs, the latest one it refused)."""
    cameras = []
    for cam in site.cameras:
        zones = [  # what the center can draw; a site file beyond its limits is not the heartbeat's business
            ZoneOutline(name=z.name, kind=z.kind, points=[(x, y) for x, y in z.polygon])
            for z in cam.zones[:MAX_ZONES_PER_CAMERA]
            if len(z.polygon) <= MAX_ZONE_POINTS
        ]
        version, refusal = zone_state(cam.id) if zone_state is not None else (None, None)
        zone_fields: dict[str, Any] = {
            "zone_version": version,
            "zone_refused_version": refusal.version if refusal else None,
            "zone_refused": refusal.reason if refusal else None,
        }
        reader = site.readers.get(cam.id)
        if reader is None:
            cameras.append(
                CameraHeartbeat(
                    camera_id=cam.id,
                    state="starting",
                    fps=0,
                    decode_errors=0,
                    reconnects=0,
                    zones=zones,
                    **zone_fields,
                )
            )
            continue
        st = reader.status()
        state = "online" if st.online else ("starting" if st.state == "starting" else "offline")
        cameras.append(
            CameraHeartbeat(
                camera_id=cam.id,
                state=state,
                fps=min(st.fps, 1000.0),
                decode_errors=min(st.decode_errors, 2**31 - 1),
                reconnects=min(st.reconnects, 2**31 - 1),
                last_frame_at=st.last_frame_at,
                last_error=(st.last_error or "")[:256] or None,
                zones=zones,
                **zone_fields,
            )
        )
    counts = {} if site.outbox.closed else site.outbox.counts()
    free: int | None = None
    level: Literal["ok", "low", "full", "unknown"] = "unknown"
    try:
        disk = site.outbox.disk()
        free, level = disk.free_bytes, disk.level
    except OSError:
        pass  # the outbox directory itself is gone: the center sees "unknown"
    models = [
        ModelInUse(name=r.name, version=r.version, sha256=_model_sha256(r.name, r.version)) for r in site.models.routes
    ]
    if site.verifier is not None:
        for clf in site.verifier.heads():
            models.append(ModelInUse(name=clf.name, version=clf.version, sha256=_model_sha256(clf.name, clf.version)))
    heartbeat = Heartbeat(
        site_id=site_config.site_id,
        sent_at=datetime.now(UTC),
        started_at=started_at,
        software_version=software_version(),
        config_sha256=config_hash,
        disk_free_bytes=free,
        disk_level=level,
        queue_depth=counts.get("queued", 0),
        failed=counts.get("failed", 0),
        models=models,
        cameras=cameras,
    )
    frames: dict[str, bytes] = {}
    if with_frames:
        for camera_id, image in list(latest.items()):
            jpeg = frame_jpeg(image)
            if jpeg is not None:
                frames[camera_id] = jpeg
    return heartbeat, frames

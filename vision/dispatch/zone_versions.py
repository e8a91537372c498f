"""Zones published to the boxes: a camera's zones, drawn and checked in the zone editor
(zone_drafts.py), stored as the camera's next version (1, 2, ...) with who published it and
when. Rows are never changed: they are the history. A box asks for the latest version of each
of its cameras (`GET /api/v1/zones/assigned`) and puts it in place of its site file's zones if
its own checks accept the site that makes (vision.edge.daemon.zone_rollout); its heartbeat then
says which version each camera runs, or which one it refused and why (fleet.py keeps that).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from vision.core.zone_shapes import ZoneConfig
from vision.dispatch import models as m
from vision.dispatch.context import ServiceContext
from vision.dispatch.errors import Conflict, NotFound

__all__ = ["ZoneVersionInfo", "ZoneVersions"]


@dataclass(frozen=True)
class ZoneVersionInfo:
    site_id: str
    camera_id: str
    version: int
    zones: list[dict[str, Any]]  # ZoneConfig as JSON: name, kind, polygon
    published_at: datetime
    published_by: str


def _info(row: m.ZoneVersion) -> ZoneVersionInfo:
    return ZoneVersionInfo(row.site_id, row.camera_id, row.version, list(row.zones), row.created_at, row.created_by)


class ZoneVersions:
    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx

    def publish(self, by: str, site_id: str, camera_id: str, zones: list[ZoneConfig]) -> ZoneVersionInfo:
        """`zones` (checked already: ZoneConfig is the box's own zone model) as the camera's next
        version. NotFound for a camera no heartbeat told of; Conflict when another version of the
        camera was published at the same moment."""
        with self.ctx.write() as s:
            known = s.scalar(
                select(m.EdgeCamera.id).where(m.EdgeCamera.site_id == site_id, m.EdgeCamera.camera_id == camera_id)
            )
            if known is None:
                raise NotFound(f"no camera {camera_id} on box {site_id}")
            latest = s.scalar(
                select(func.max(m.ZoneVersion.version)).where(
                    m.ZoneVersion.site_id == site_id, m.ZoneVersion.camera_id == camera_id
                )
            )
            row = m.ZoneVersion(
                site_id=site_id,
                camera_id=camera_id,
                version=(latest or 0) + 1,
                zones=[z.model_dump(mode="json") for z in zones],
                created_at=self.ctx.clock(),
                created_by=by,
            )
            s.add(row)
            try:
                s.flush()
            except IntegrityError:
                raise Conflict(f"camera {camera_id}: another zone version was published meanwhile") from None
            info = _info(row)
            s.commit()
        return info

    def latest(self, site_id: str) -> list[ZoneVersionInfo]:
        """The latest version of each camera of a box that has one, by camera id."""
        newest = (
            select(m.ZoneVersion.camera_id, func.max(m.ZoneVersion.version).label("version"))
            .where(m.ZoneVersion.site_id == site_id)
            .group_by(m.ZoneVersion.camera_id)
            .subquery()
        )
        with self.ctx.read() as s:
            rows = s.scalars(
                select(m.ZoneVersion)
                .join(
                    newest,
                    (m.ZoneVersion.camera_id == newest.c.camera_id) & (m.ZoneVersion.version == newest.c.version),
                )
                .where(m.ZoneVersion.site_id == site_id)
                .order_by(m.ZoneVersion.camera_id)
            )
            return [_info(r) for r in rows]

    def history(self, site_id: str, camera_id: str) -> list[ZoneVersionInfo]:
        """Every version of a camera, newest first."""
        with self.ctx.read() as s:
            rows = s.scalars(
                select(m.ZoneVersion)
                .where(m.ZoneVersion.site_id == site_id, m.ZoneVersion.camera_id == camera_id)
                .order_by(m.ZoneVersion.version.desc())
            )
            return [_info(r) for r in rows]

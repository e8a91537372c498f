"""Fleet health: the latest heartbeat of every edge box and camera, and maintenance alerts.

A heartbeat (vision.core.fleet) replaces what the center knew of its box and cameras. A
camera not online starts an outage (the statistics leave that time out); reported offline
for `fleet.camera_offline_after_s` it becomes an alert. A box silent for
`fleet.box_silent_after_s` becomes one alert for the box, and each of its cameras an
outage from its last heartbeat. An alert is a case of its own type (`device_offline`),
dispatched at once to the maintenance department with a working-hour deadline, and closed
by the system when the box or camera is back, whatever state a person left it in.

`check()` finds the silent ones: the server runs it every `fleet.check_every_s` in each
worker. Rows are locked before an alert opens, so several workers or center nodes on one
PostgreSQL open each alert once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from vision.core.fleet import FRAME_MAX_BYTES, FRAME_PART_PREFIX, Heartbeat, HeartbeatAck
from vision.dispatch import models as m
from vision.dispatch.accounts import ClientPrincipal
from vision.dispatch.context import ServiceContext
from vision.dispatch.deadlines import add_working_hours
from vision.dispatch.errors import InvalidInput, NotPermitted
from vision.dispatch.i18n import N_
from vision.dispatch.notify import CaseEvent
from vision.dispatch.staging import EvidenceBatch
from vision.dispatch.transitions import audit
from vision.dispatch.uploads import Upload, sniff_image
from vision.dispatch.workflow import FINAL, Action, Status

log = logging.getLogger(__name__)

__all__ = ["ALERT_VIOLATION", "Fleet", "FleetCheck", "FleetBox", "FleetCamera", "ALERT_NAMES"]

ALERT_VIOLATION = "device_offline"  # the case type of a maintenance alert
ALERT_ACTOR = "fleet"
# the stored event name (Chinese, as the taxonomy's names are) and its catalogue msgid
ALERT_NAMES = {"box": ("边缘设备离线", N_("Edge box offline")), "camera": ("监控设备离线", N_("Camera offline"))}


@dataclass(frozen=True)
class FleetCheck:
    """The alerts one check opened."""

    boxes_silent: int
    cameras_offline: int


@dataclass(frozen=True)
class FleetCamera:
    site_id: str
    camera_id: str
    state: str
    fps: float
    decode_errors: int
    reconnects: int
    last_error: str | None
    reported_at: datetime
    last_frame_at: datetime | None
    offline_since: datetime | None
    frame_at: datetime | None
    alert_case_id: int | None
    zones: list[dict[str, Any]]
    zone_version: int | None = None  # the center's zone version its box runs (None: the site file's)
    zone_refused_version: int | None = None
    zone_refused: str | None = None  # why its box refused that version

    @property
    def watching(self) -> bool:
        return self.offline_since is None


@dataclass(frozen=True)
class FleetBox:
    site_id: str
    first_seen_at: datetime
    last_seen_at: datetime
    started_at: datetime
    software_version: str
    config_sha256: str
    disk_free_bytes: int | None
    disk_level: str
    queue_depth: int
    failed: int
    models: list[dict[str, object]]
    silent: bool
    alert_case_id: int | None
    cameras: list[FleetCamera]


class Fleet:
    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx
        # No box is called silent until this process has listened for `box_silent_after_s`:
        # after the center itself was down, every box's last heartbeat is old, and a storm of
        # alerts closing seconds later would bury the real ones.
        self.listening_since = ctx.clock()

    # ------------------------------------------------------------ heartbeats
    def record(self, client: ClientPrincipal, heartbeat: Heartbeat, frames: dict[str, Upload]) -> HeartbeatAck:
        """Keep `heartbeat` as what is known of its box, with the pictures sent along (parts
        `frame:<camera_id>`); opens outages, closes the alerts of what is back."""
        if client.site_id and client.site_id != heartbeat.site_id:
            raise NotPermitted(f"device '{client.name}' may only report for site '{client.site_id}'")
        cameras = {c.camera_id: c for c in heartbeat.cameras}
        if len(cameras) != len(heartbeat.cameras):
            raise InvalidInput("heartbeat.cameras: a camera id is listed twice")
        with EvidenceBatch(self.ctx) as batch:
            pictures: dict[str, str] = {}
            for part, up in frames.items():
                camera_id = part.removeprefix(FRAME_PART_PREFIX)
                if not part.startswith(FRAME_PART_PREFIX) or camera_id not in cameras:
                    raise InvalidInput(f"{part}: not a picture of a camera the heartbeat lists")
                if sniff_image(up.head()) != "image/jpeg":
                    raise InvalidInput(f"{part}: not a JPEG")
                pictures[camera_id] = batch.stage(up.stream, FRAME_MAX_BYTES).sha256
            for attempt in (1, 2):
                try:
                    notices = self._record(client, heartbeat, pictures, batch)
                    break
                except IntegrityError:  # the box's first heartbeat, posted twice at once
                    if attempt == 2:
                        raise
        for notice in notices:
            self.ctx.notifier.publish(notice)
        return HeartbeatAck(
            site_id=heartbeat.site_id, received_at=self.ctx.clock(), cameras=len(cameras), frames=len(pictures)
        )

    def _record(
        self, client: ClientPrincipal, hb: Heartbeat, pictures: dict[str, str], batch: EvidenceBatch
    ) -> list[CaseEvent]:
        now = self.ctx.clock()
        notices: list[CaseEvent] = []
        with self.ctx.write() as s:
            box = s.scalar(select(m.EdgeBox).where(m.EdgeBox.site_id == hb.site_id).with_for_update())
            if box is None:
                box = m.EdgeBox(site_id=hb.site_id, first_seen_at=now)
                s.add(box)
            box.client_id = client.id
            box.last_seen_at = now  # the center's clock: a box's own clock may be off
            box.started_at = hb.started_at
            box.software_version = hb.software_version
            box.config_sha256 = hb.config_sha256
            box.disk_free_bytes = hb.disk_free_bytes
            box.disk_level = hb.disk_level
            box.queue_depth = hb.queue_depth
            box.failed = hb.failed
            box.models = [mi.model_dump() for mi in hb.models]
            if box.silent:
                box.silent = False
                notices += self._close_alert(s, box.alert_case_id, now, "box back online")
                box.alert_case_id = None
            known = {
                c.camera_id: c
                for c in s.scalars(
                    select(m.EdgeCamera)
                    .where(m.EdgeCamera.site_id == hb.site_id)
                    .order_by(m.EdgeCamera.id)
                    .with_for_update()
                )
            }
            for cam in hb.cameras:
                row = known.pop(cam.camera_id, None)
                if row is None:
                    row = m.EdgeCamera(site_id=hb.site_id, camera_id=cam.camera_id)
                    s.add(row)
                row.state = cam.state
                row.fps = cam.fps
                row.decode_errors = cam.decode_errors
                row.reconnects = cam.reconnects
                row.last_error = cam.last_error
                row.reported_at = now
                row.last_frame_at = cam.last_frame_at
                row.zones = [z.model_dump(mode="json") for z in cam.zones]
                row.zone_version = cam.zone_version
                row.zone_refused_version, row.zone_refused = cam.zone_refused_version, cam.zone_refused
                if cam.camera_id in pictures:
                    row.frame_sha256, row.frame_at = pictures[cam.camera_id], now
                if cam.state == "online":
                    if row.offline_since is not None:
                        _end_outages(s, hb.site_id, cam.camera_id, now)
                        row.offline_since = None
                    notices += self._close_alert(s, row.alert_case_id, now, "camera back online")
                    row.alert_case_id = None
                elif row.offline_since is None or _outage_cause(s, hb.site_id, cam.camera_id) == "box":
                    # newly not watching, or the box is back and this camera not yet: it gets the
                    # whole camera_offline_after_s to connect before an alert of its own
                    _end_outages(s, hb.site_id, cam.camera_id, now)
                    if row.alert_case_id is None:
                        row.offline_since = now
                    s.add(m.CameraOutage(site_id=hb.site_id, camera_id=cam.camera_id, started_at=now, cause="camera"))
            for gone in known.values():  # taken out of the box's site config
                _end_outages(s, hb.site_id, gone.camera_id, now)
                notices += self._close_alert(s, gone.alert_case_id, now, "camera removed from the box's site config")
                s.delete(gone)
            s.flush()
            batch.commit(s)
        return notices

    # ------------------------------------------------------------ silence
    def check(self, now: datetime | None = None) -> FleetCheck:
        """Opens an alert for each box silent past `box_silent_after_s` and each camera offline
        past `camera_offline_after_s`; the server calls it on a schedule."""
        now = now or self.ctx.clock()
        cfg = self.ctx.config.fleet
        notices: list[CaseEvent] = []
        with self.ctx.write() as s:  # boxes gone silent
            silent_before = now - timedelta(seconds=cfg.box_silent_after_s)
            boxes = (
                s.scalars(
                    select(m.EdgeBox)
                    .where(m.EdgeBox.silent.is_(False), m.EdgeBox.last_seen_at < silent_before)
                    .order_by(m.EdgeBox.id)
                    .with_for_update()
                ).all()
                if silent_before >= self.listening_since  # else: not listened long enough to judge
                else []
            )
            for box in boxes:
                box.silent = True
                for cam in s.scalars(
                    select(m.EdgeCamera)
                    .where(m.EdgeCamera.site_id == box.site_id)
                    .order_by(m.EdgeCamera.id)
                    .with_for_update()
                ):
                    if cam.offline_since is None:  # not watching since the box's last word
                        cam.offline_since = box.last_seen_at
                        s.add(
                            m.CameraOutage(
                                site_id=box.site_id, camera_id=cam.camera_id, started_at=box.last_seen_at, cause="box"
                            )
                        )
                case, notice = self._open_alert(s, box.site_id, None, box.last_seen_at, now)
                box.alert_case_id = case.id
                notices.append(notice)
            s.commit()
        boxes_opened = len(notices)
        with self.ctx.write() as s:  # cameras offline too long on boxes that still talk
            offline_before = now - timedelta(seconds=cfg.camera_offline_after_s)
            cams = s.scalars(
                select(m.EdgeCamera)
                .join(m.EdgeBox, m.EdgeBox.site_id == m.EdgeCamera.site_id)
                .where(
                    m.EdgeBox.silent.is_(False),
                    m.EdgeCamera.alert_case_id.is_(None),
                    m.EdgeCamera.offline_since < offline_before,
                )
                .order_by(m.EdgeCamera.id)
                .with_for_update(of=m.EdgeCamera)
            ).all()
            for cam in cams:
                assert cam.offline_since is not None  # the query's condition
                case, notice = self._open_alert(s, cam.site_id, cam.camera_id, cam.offline_since, now)
                cam.alert_case_id = case.id
                notices.append(notice)
            s.commit()
        for notice in notices:
            self.ctx.notifier.publish(notice)
        if notices:
            log.warning("fleet: %d maintenance alert(s) opened", len(notices))
        return FleetCheck(boxes_silent=boxes_opened, cameras_offline=len(notices) - boxes_opened)

    def _open_alert(
        self, s: Session, site_id: str, camera_id: str | None, since: datetime, now: datetime
    ) -> tuple[m.Case, CaseEvent]:
        cfg = self.ctx.config
        kind = "camera" if camera_id else "box"
        where = (m.Case.site_id == site_id) & (m.Case.source == "edge")
        if camera_id:
            where &= m.Case.camera_id == camera_id
        # where the camera is: its latest case says (a box alert: any camera of the box)
        placed = s.execute(
            select(m.Case.lat, m.Case.lon, m.Case.crs, m.Case.grid_code, m.Case.address)
            .where(where, m.Case.lat.is_not(None))
            .order_by(m.Case.id.desc())
            .limit(1)
        ).first()
        dept = cfg.maintenance_department
        hours = cfg.fleet.alert_deadline_working_hours
        deadline = add_working_hours(now, hours, cfg.working_time)
        who = f"camera {camera_id} of box {site_id}" if camera_id else f"edge box {site_id}"
        case = m.Case(
            source="fleet",
            status=Status.DISPATCHED.value,
            violation=ALERT_VIOLATION,
            event_name=ALERT_NAMES[kind][0],
            site_id=site_id,
            camera_id=camera_id,
            crs=placed.crs if placed else "WGS84",
            lat=placed.lat if placed else None,
            lon=placed.lon if placed else None,
            grid_code=placed.grid_code if placed else None,
            address=placed.address if placed else None,
            description=f"{who}: no picture since {since.isoformat(timespec='seconds')}",
            object_count=0,
            classes=[],
            first_detected_at=since,
            last_detected_at=now,
            occurrence_count=1,
            department=dept,
            deadline_working_hours=hours,
            deadline_at=deadline,
            created_at=now,
            updated_at=now,
        )
        s.add(case)
        s.flush()
        details = {"department": dept, "deadline_at": deadline.isoformat(), "since": since.isoformat()}
        s.add(audit(case.id, Action.DISPATCH, None, Status.DISPATCHED, ALERT_ACTOR, "system", now, who, details))
        return case, CaseEvent(
            "new", case.id, case.status, case.violation, camera_id, actor=ALERT_ACTOR, department=dept
        )

    def _close_alert(self, s: Session, case_id: int | None, now: datetime, reason: str) -> list[CaseEvent]:
        """Closes an open alert (the system's 结案, from whatever state a person left it in)."""
        if case_id is None:
            return []
        case = s.get(m.Case, case_id, with_for_update=True)
        if case is None or Status(case.status) in FINAL:
            return []
        source = Status(case.status)
        case.status = Status.CLOSED.value
        case.closed_at = case.updated_at = now
        s.add(audit(case.id, Action.CLOSE, source, Status.CLOSED, ALERT_ACTOR, "system", now, reason))
        return [
            CaseEvent(
                "state",
                case.id,
                case.status,
                case.violation,
                case.camera_id,
                action=Action.CLOSE.value,
                from_status=source.value,
                actor=ALERT_ACTOR,
                department=case.department,
            )
        ]

    # ------------------------------------------------------------ reading
    def boxes(self, site_id: str | None = None) -> list[FleetBox]:
        """Every box with its cameras, by site id; or only the box of `site_id`."""
        cameras, boxes = select(m.EdgeCamera), select(m.EdgeBox)
        if site_id is not None:
            cameras, boxes = cameras.where(m.EdgeCamera.site_id == site_id), boxes.where(m.EdgeBox.site_id == site_id)
        with self.ctx.read() as s:
            cams: dict[str, list[FleetCamera]] = {}
            for c in s.scalars(cameras.order_by(m.EdgeCamera.site_id, m.EdgeCamera.camera_id)):
                cams.setdefault(c.site_id, []).append(
                    FleetCamera(
                        c.site_id,
                        c.camera_id,
                        c.state,
                        c.fps,
                        c.decode_errors,
                        c.reconnects,
                        c.last_error,
                        c.reported_at,
                        c.last_frame_at,
                        c.offline_since,
                        c.frame_at if c.frame_sha256 else None,
                        c.alert_case_id,
                        list(c.zones or []),
                        c.zone_version,
                        c.zone_refused_version,
                        c.zone_refused,
                    )
                )
            return [
                FleetBox(
                    b.site_id,
                    b.first_seen_at,
                    b.last_seen_at,
                    b.started_at,
                    b.software_version,
                    b.config_sha256,
                    b.disk_free_bytes,
                    b.disk_level,
                    b.queue_depth,
                    b.failed,
                    list(b.models),
                    b.silent,
                    b.alert_case_id,
                    cams.get(b.site_id, []),
                )
                for b in s.scalars(boxes.order_by(m.EdgeBox.site_id))
            ]

    def frame_sha256(self, site_id: str, camera_id: str) -> str | None:
        with self.ctx.read() as s:
            return s.scalar(
                select(m.EdgeCamera.frame_sha256).where(
                    m.EdgeCamera.site_id == site_id, m.EdgeCamera.camera_id == camera_id
                )
            )

    def offline_hours(self, start: datetime, end: datetime) -> dict[tuple[str, str], float]:
        """Hours each camera was not watching within [start, end] ((site, camera) -> hours);
        an outage still going counts up to `end`."""
        out: dict[tuple[str, str], float] = {}
        with self.ctx.read() as s:
            rows = s.scalars(
                select(m.CameraOutage).where(
                    m.CameraOutage.started_at < end,
                    (m.CameraOutage.ended_at.is_(None)) | (m.CameraOutage.ended_at > start),
                )
            )
            for o in rows:
                lo, hi = max(o.started_at, start), min(o.ended_at or end, end)
                if hi > lo:
                    key = (o.site_id, o.camera_id)
                    out[key] = out.get(key, 0.0) + (hi - lo).total_seconds() / 3600
        return out


def _end_outages(s: Session, site_id: str, camera_id: str, now: datetime) -> None:
    for o in s.scalars(
        select(m.CameraOutage).where(
            m.CameraOutage.site_id == site_id, m.CameraOutage.camera_id == camera_id, m.CameraOutage.ended_at.is_(None)
        )
    ):
        o.ended_at = max(now, o.started_at)


def _outage_cause(s: Session, site_id: str, camera_id: str) -> str | None:
    return s.scalar(
        select(m.CameraOutage.cause)
        .where(
            m.CameraOutage.site_id == site_id, m.CameraOutage.camera_id == camera_id, m.CameraOutage.ended_at.is_(None)
        )
        .order_by(m.CameraOutage.id.desc())
        .limit(1)
    )

"""API shapes. Separate from the tables so secrets (password and token hashes)
can never reach a response."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from vision.core.cases import ID_MAX, LifecycleKind, Text
from vision.core.fleet import ZoneOutline
from vision.core.plates import PlateColour
from vision.dispatch.workflow import Action, Role, Status

# Every request model below takes text as `Text` (no NUL characters, which PostgreSQL
# cannot store) within the length of the column it fills, and no NaN or Infinity:
# the database never sees a value it would refuse.
_IN = ConfigDict(extra="forbid", allow_inf_nan=False)

# The closed vocabularies the tables hold as strings.
CaseSource = Literal[
    "edge", "open311", "fleet"
]  # an edge box's report, a citizen's Open311 request, a maintenance alert
ClientKind = Literal["device", "open311"]  # machine credentials: an edge box or an Open311 client
TokenKind = Literal["api", "session"]  # operator credentials: API bearer token or UI session cookie
# from the edge box's report, the photo taken after handling, a camera event's snapshot (自动核查),
# or the field inspector's photo of the verified site
EvidenceStage = Literal["report", "after", "camera", "verify"]
# who made an audited change; "camera": the camera's own verify or reopen (自动核查)
ActorKind = Literal["operator", "device", "open311", "system", "camera"]
CameraState = Literal["present", "cleared"]  # what the camera last saw of a case's violation
# What a camera event did to its case: verified it, suggested verifying it, marked it gone by
# itself (自行消失, before dispatch), reopened it; cleared while dispatched, waiting for the
# department's handling; recorded only (policy off, or nothing to do); older than the state known.
LifecycleOutcome = Literal["verified", "suggested", "cleared_itself", "reopened", "pending", "recorded", "stale"]


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class EvidencePublic(_Out):
    id: int
    occurrence_id: int | None
    stage: EvidenceStage = Field(
        description="'report' (from the edge box), 'after' (handling photo), 'camera' (a camera event's snapshot) or "
        "'verify' (the inspector's photo)."
    )
    name: str
    kind: str
    content_type: str
    sha256: str
    size_bytes: int
    url: str


class OccurrencePublic(_Out):
    id: int
    idempotency_key: str
    detected_at: datetime
    onset_at: datetime | None
    bbox: list[float] | None
    confidence: float | None
    dwell_s: float | None
    received_at: datetime


class TransitionPublic(_Out):
    id: int
    action: str
    from_status: str | None
    to_status: str
    actor: str
    actor_kind: ActorKind
    at: datetime
    reason: str | None
    details: dict[str, Any]


class CameraEventPublic(BaseModel):
    """One lifecycle event of the camera (cleared / resumed / grew) with its snapshot: the camera's proof."""

    id: int
    idempotency_key: str
    kind: LifecycleKind
    observed_at: datetime
    object_count: int | None = Field(default=None, description="grew: the objects the camera counts now.")
    received_at: datetime
    outcome: LifecycleOutcome
    evidence: list[EvidencePublic]


class CaseSummary(_Out):
    id: int
    source: CaseSource
    status: Status
    violation: str
    rule: str | None
    event_code: str | None
    event_name: str
    site_id: str | None
    camera_id: str | None
    grid_code: str | None
    zone: str | None
    crs: str
    lat: float | None
    lon: float | None
    address: str | None
    bbox: list[float] | None
    confidence: float | None
    object_count: int
    model_name: str | None
    model_version: str | None
    plate_text: str | None = Field(description="The vehicle's plate (vehicle cases: muddy trucks), e.g. 苏E12345.")
    plate_colour: PlateColour | None
    plate_confidence: float | None
    plate_rows: Literal[1, 2] | None
    first_detected_at: datetime
    last_detected_at: datetime
    occurrence_count: int
    department: str | None
    deadline_at: datetime | None
    overdue: bool
    reject_reason: str | None
    created_at: datetime
    updated_at: datetime
    camera_state: CameraState | None = Field(default=None, description="What the camera last saw (自动核查).")
    camera_state_at: datetime | None = None
    cleared_itself_at: datetime | None = Field(
        default=None, description="Set when the violation cleared before dispatch (自行消失)."
    )
    camera_verified_at: datetime | None = Field(default=None, description="Set when the camera verified the case.")
    camera_suggests_verify: bool = Field(
        default=False, description="The camera saw a handled case's violation cleared: a person may verify."
    )
    parked_from: Status | None = Field(default=None, description="挂账: the state a parked case returns to.")
    parked_at: datetime | None = None
    parked_until: date | None = Field(default=None, description="挂账: the date handling is expected by.")
    park_reason: str | None = None
    urge_count: int = Field(default=0, description="督办: how often a supervisor urged the case.")
    urged_at: datetime | None = None
    urge_note: str | None = None


class CaseDetail(CaseSummary):
    description: str | None
    classes: list[str]
    taxonomy_edition: str | None
    deadline_working_hours: float
    reviewed_at: datetime | None
    handled_at: datetime | None
    closed_at: datetime | None
    occurrences: list[OccurrencePublic]
    evidence: list[EvidencePublic]
    transitions: list[TransitionPublic]
    camera_events: list[CameraEventPublic] = Field(default_factory=list, description="自动核查: the camera's events.")
    available_actions: list[Action] = Field(default_factory=list, description="For the calling operator.")


class CaseRecord(CaseSummary):
    """A case's own columns without its timeline: what Open311 and the statistics read."""

    description: str | None
    media_url: str | None
    status_notes: str | None
    reviewed_at: datetime | None
    handled_at: datetime | None
    closed_at: datetime | None


class CaseList(BaseModel):
    total: int
    items: list[CaseSummary]


class IntakeResult(BaseModel):
    case_id: int
    occurrence_id: int
    created: bool = Field(description="True for a new case; False for a replay or a merged occurrence.")
    merged: bool = Field(description="True when the report joined an open case as another occurrence.")
    status: Status


class LifecycleResult(BaseModel):
    event_id: int
    case_id: int
    idempotency_key: str
    outcome: LifecycleOutcome


@dataclass(frozen=True)
class CameraCounts:
    """自动核查 in the statistics: cases the camera verified, that cleared by themselves
    before dispatch, and that the camera reopened."""

    verified: int = 0
    cleared_itself: int = 0
    reopened: int = 0


class TransitionRequest(BaseModel):
    model_config = _IN
    action: Action
    reason: Text | None = Field(default=None, max_length=500)
    department: Text | None = Field(default=None, max_length=32, description="For dispatch; default from assignment.")
    extend_hours: float | None = Field(default=None, gt=0, le=2000, description="For extend: working hours added.")
    parked_until: date | None = Field(default=None, description="For park (挂账): the date handling is expected by.")


class LoginRequest(BaseModel):
    model_config = _IN
    username: Text = Field(min_length=1, max_length=64)
    password: Text = Field(min_length=1, max_length=256)


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_at: datetime
    role: Role


class OperatorCreate(BaseModel):
    model_config = _IN
    username: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    password: Text = Field(min_length=8, max_length=256)
    role: Role
    display_name: Text | None = Field(default=None, max_length=128)
    department: Text | None = Field(
        default=None, max_length=32, description="For role 'department': the configured department it handles for."
    )


class OperatorPublic(_Out):
    id: int
    username: str
    display_name: str | None
    role: Role
    active: bool
    department: str | None = None


class ClientCreate(BaseModel):
    model_config = _IN
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    kind: ClientKind = "device"
    site_id: Text | None = Field(default=None, max_length=ID_MAX)


class ClientCreated(BaseModel):
    id: int
    name: str
    kind: ClientKind
    token: str = Field(description="Shown once; only its hash is stored.")


class DepartmentPublic(BaseModel):
    id: str
    name: str
    name_en: str | None


class ErrorResponse(BaseModel):
    detail: str


class FleetCameraOut(BaseModel):
    camera_id: str
    state: str = Field(description="What its box last said: online | offline | starting.")
    watching: bool = Field(description="False while it is offline or its box is silent.")
    fps: float
    decode_errors: int
    reconnects: int
    last_error: str | None
    last_frame_at: datetime | None
    offline_since: datetime | None
    frame_at: datetime | None = Field(description="When its latest picture arrived (GET .../frame.jpg).")
    alert_case_id: int | None
    zones: list[ZoneOutline] = Field(description="Its zones as the box's site config has them (0-1 coordinates).")
    zone_version: int | None = Field(
        default=None, description="The zone version published at the center that its box runs; null: the site file's."
    )
    zone_refused_version: int | None = Field(default=None, description="A published zone version its box refused.")
    zone_refused: str | None = Field(default=None, description="Why its box refused that version.")


class FleetBoxOut(BaseModel):
    site_id: str
    online: bool = Field(description="A heartbeat arrived within fleet.box_silent_after_s.")
    last_seen_at: datetime
    started_at: datetime
    software_version: str
    config_sha256: str
    disk_free_bytes: int | None
    disk_level: str
    queue_depth: int
    failed: int
    models: list[dict[str, Any]]
    alert_case_id: int | None
    cameras: list[FleetCameraOut]


class FleetList(BaseModel):
    boxes: list[FleetBoxOut]
    cameras_total: int
    cameras_watching: int

    @classmethod
    def of(cls, boxes: list[Any], now: datetime, silent_after_s: float) -> FleetList:
        """From vision.dispatch.fleet.FleetBox rows."""
        out = [
            FleetBoxOut(
                site_id=b.site_id,
                online=not b.silent and (now - b.last_seen_at).total_seconds() <= silent_after_s,
                last_seen_at=b.last_seen_at,
                started_at=b.started_at,
                software_version=b.software_version,
                config_sha256=b.config_sha256,
                disk_free_bytes=b.disk_free_bytes,
                disk_level=b.disk_level,
                queue_depth=b.queue_depth,
                failed=b.failed,
                models=b.models,
                alert_case_id=b.alert_case_id,
                cameras=[
                    FleetCameraOut(
                        camera_id=c.camera_id,
                        state=c.state,
                        watching=c.watching,
                        fps=c.fps,
                        decode_errors=c.decode_errors,
                        reconnects=c.reconnects,
                        last_error=c.last_error,
                        last_frame_at=c.last_frame_at,
                        offline_since=c.offline_since,
                        frame_at=c.frame_at,
                        alert_case_id=c.alert_case_id,
                        zones=[ZoneOutline.model_validate(z) for z in c.zones],
                        zone_version=c.zone_version,
                        zone_refused_version=c.zone_refused_version,
                        zone_refused=c.zone_refused,
                    )
                    for c in b.cameras
                ],
            )
            for b in boxes
        ]
        cams = [c for b in out for c in b.cameras]
        return cls(boxes=out, cameras_total=len(cams), cameras_watching=sum(c.watching for c in cams))

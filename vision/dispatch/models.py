"""Database tables (SQLAlchemy 2). Schema changes go through an Alembic
revision in vision/dispatch/migrations/versions; a test checks they agree.
The columns a case report fills are sized by the limits in vision.core.cases,
which the report schema enforces, so a report that validates also fits."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from vision.core.cases import (
    ADDRESS_MAX,
    EVENT_CODE_MAX,
    EVENT_NAME_MAX,
    GRID_CODE_LEN,
    ID_MAX,
    MODEL_NAME_MAX,
    MODEL_VERSION_MAX,
    REASON_MAX,
    TAXONOMY_EDITION_MAX,
)
from vision.core.plates import PLATE_TEXT_MAX


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend (SQLite keeps no zone: store naive UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class Operator(Base):
    __tablename__ = "operators"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str | None] = mapped_column(String(128))
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    # a department account's department (Role.DEPARTMENT): it sees and handles that one's cases only
    department: Mapped[str | None] = mapped_column(String(32))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ApiToken(Base):
    """Operator credential: bearer token for the API or session cookie for the UI.
    Only the SHA-256 of the random token is stored."""

    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    operator_id: Mapped[int] = mapped_column(ForeignKey("operators.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # api | session
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    operator: Mapped[Operator] = relationship()


class Client(Base):
    """A machine credential: an edge box (kind 'device') or an Open311 client ('open311')."""

    __tablename__ = "clients"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    site_id: Mapped[str | None] = mapped_column(String(64))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Case(Base):
    __tablename__ = "cases"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source: Mapped[str] = mapped_column(String(16))  # edge | open311
    client_id: Mapped[int | None] = mapped_column(ForeignKey("clients.id"))
    status: Mapped[str] = mapped_column(String(16), index=True)
    violation: Mapped[str] = mapped_column(String(32), index=True)
    rule: Mapped[str | None] = mapped_column(String(ID_MAX))
    event_code: Mapped[str | None] = mapped_column(String(EVENT_CODE_MAX))
    event_name: Mapped[str] = mapped_column(String(EVENT_NAME_MAX))
    taxonomy_edition: Mapped[str | None] = mapped_column(String(TAXONOMY_EDITION_MAX))
    site_id: Mapped[str | None] = mapped_column(String(ID_MAX))
    camera_id: Mapped[str | None] = mapped_column(String(ID_MAX))
    grid_code: Mapped[str | None] = mapped_column(String(GRID_CODE_LEN))
    zone: Mapped[str | None] = mapped_column(String(ID_MAX))
    crs: Mapped[str] = mapped_column(String(16))
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    address: Mapped[str | None] = mapped_column(String(ADDRESS_MAX))
    description: Mapped[str | None] = mapped_column(Text)
    media_url: Mapped[str | None] = mapped_column(String(1024))
    bbox: Mapped[list[float] | None] = mapped_column(JSON)
    confidence: Mapped[float | None] = mapped_column(Float)
    object_count: Mapped[int] = mapped_column(Integer, default=1)
    classes: Mapped[list[str]] = mapped_column(JSON, default=list)
    model_name: Mapped[str | None] = mapped_column(String(MODEL_NAME_MAX))
    model_version: Mapped[str | None] = mapped_column(String(MODEL_VERSION_MAX))
    # the vehicle's plate (vision.core.cases.PlateReading): the most confident reading of its occurrences
    plate_text: Mapped[str | None] = mapped_column(String(PLATE_TEXT_MAX), index=True)
    plate_colour: Mapped[str | None] = mapped_column(String(8))
    plate_confidence: Mapped[float | None] = mapped_column(Float)
    plate_rows: Mapped[int | None] = mapped_column(Integer)
    first_detected_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_detected_at: Mapped[datetime] = mapped_column(UTCDateTime)
    occurrence_count: Mapped[int] = mapped_column(Integer, default=1)
    department: Mapped[str | None] = mapped_column(String(32))
    deadline_working_hours: Mapped[float] = mapped_column(Float)
    deadline_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reject_reason: Mapped[str | None] = mapped_column(String(500))
    status_notes: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    handled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # 自动核查: what the camera last saw of the violation (present | cleared, when it saw it), and
    # what that did to the case: gone before dispatch (自行消失), verified by the camera, or a
    # verification the camera suggests and a person confirms
    camera_state: Mapped[str | None] = mapped_column(String(16))
    camera_state_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cleared_itself_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    camera_verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    camera_suggests_verify: Mapped[bool] = mapped_column(default=False, server_default=false())
    # 挂账: parked from which state, when, why, until when it is expected to be handled, and the
    # working hours its deadline had left (given back when it is un-parked)
    parked_from: Mapped[str | None] = mapped_column(String(16))
    parked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    parked_until: Mapped[date | None] = mapped_column(Date)
    park_reason: Mapped[str | None] = mapped_column(String(500))
    parked_hours_left: Mapped[float | None] = mapped_column(Float)
    # 督办: how often a supervisor urged the case, the latest time and note
    urge_count: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    urged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    urge_note: Mapped[str | None] = mapped_column(String(500))

    occurrences: Mapped[list[Occurrence]] = relationship(
        back_populates="case", order_by="Occurrence.id", cascade="all, delete-orphan"
    )
    evidence: Mapped[list[Evidence]] = relationship(order_by="Evidence.id", cascade="all, delete-orphan")
    transitions: Mapped[list[Transition]] = relationship(order_by="Transition.id", cascade="all, delete-orphan")
    camera_events: Mapped[list[CameraEvent]] = relationship(
        order_by="CameraEvent.id", cascade="all, delete-orphan", overlaps="evidence"
    )

    __table_args__ = (Index("ix_cases_merge", "camera_id", "violation", "status"),)


class Occurrence(Base):
    """One report from an edge box; a case has one or more."""

    __tablename__ = "occurrences"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    idempotency_key: Mapped[str] = mapped_column(String(36), unique=True)
    client_id: Mapped[int | None] = mapped_column(ForeignKey("clients.id"))
    detected_at: Mapped[datetime] = mapped_column(UTCDateTime)
    onset_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    bbox: Mapped[list[float] | None] = mapped_column(JSON)
    confidence: Mapped[float | None] = mapped_column(Float)
    dwell_s: Mapped[float | None] = mapped_column(Float)
    report: Mapped[dict[str, Any]] = mapped_column(JSON)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    case: Mapped[Case] = relationship(back_populates="occurrences")


class Evidence(Base):
    """A stored file. `sha256` is also its storage key: paths never come from clients."""

    __tablename__ = "evidence"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    occurrence_id: Mapped[int | None] = mapped_column(ForeignKey("occurrences.id", ondelete="CASCADE"))
    stage: Mapped[str] = mapped_column(String(16))  # report | after | camera (a camera event's proof)
    event_id: Mapped[int | None] = mapped_column(ForeignKey("case_events.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    content_type: Mapped[str] = mapped_column(String(32))
    sha256: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CameraEvent(Base):
    """What the camera saw of a case's violation after reporting it (vision.core.cases.CaseLifecycle):
    cleared, resumed or grew, with the snapshot of the place; once per idempotency key."""

    __tablename__ = "case_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    idempotency_key: Mapped[str] = mapped_column(String(36), unique=True)
    client_id: Mapped[int | None] = mapped_column(ForeignKey("clients.id"))
    kind: Mapped[str] = mapped_column(String(16))  # cleared | resumed | grew
    observed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    object_count: Mapped[int | None] = mapped_column(Integer)  # grew: the objects the camera counts now
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    outcome: Mapped[str] = mapped_column(String(16))  # what it did to the case (schemas.LifecycleOutcome)
    evidence: Mapped[list[Evidence]] = relationship(order_by="Evidence.id", overlaps="evidence")


class Transition(Base):
    """Audit record: who moved the case, when, why."""

    __tablename__ = "transitions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    action: Mapped[str] = mapped_column(String(16))
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(64))
    actor_kind: Mapped[str] = mapped_column(String(16))  # operator | device | open311 | system
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    reason: Mapped[str | None] = mapped_column(String(500))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class EdgeBox(Base):
    """The latest heartbeat of one edge box (vision.core.fleet.Heartbeat), by its site id;
    `alert_case_id` is the open maintenance alert of a box gone silent."""

    __tablename__ = "edge_boxes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site_id: Mapped[str] = mapped_column(String(ID_MAX), unique=True)
    client_id: Mapped[int | None] = mapped_column(ForeignKey("clients.id"))
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    software_version: Mapped[str] = mapped_column(String(32))
    config_sha256: Mapped[str] = mapped_column(String(64))
    disk_free_bytes: Mapped[int | None] = mapped_column(BigInteger)
    disk_level: Mapped[str] = mapped_column(String(8))
    queue_depth: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    models: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    silent: Mapped[bool] = mapped_column(default=False, server_default=false())
    alert_case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"))


class EdgeCamera(Base):
    """One camera of a box as its latest heartbeat told; `offline_since` while it is not online
    (or its box is silent), `alert_case_id` its open maintenance alert."""

    __tablename__ = "edge_cameras"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site_id: Mapped[str] = mapped_column(String(ID_MAX))
    camera_id: Mapped[str] = mapped_column(String(ID_MAX))
    state: Mapped[str] = mapped_column(String(16))  # online | offline | starting (vision.core.fleet.CameraLink)
    fps: Mapped[float] = mapped_column(Float, default=0.0)
    decode_errors: Mapped[int] = mapped_column(Integer, default=0)
    reconnects: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(String(256))
    reported_at: Mapped[datetime] = mapped_column(UTCDateTime)  # the heartbeat that told this
    last_frame_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    offline_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    frame_sha256: Mapped[str | None] = mapped_column(String(64))  # its latest picture, in the evidence store
    frame_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    alert_case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"))
    # its zones as the box's site config has them (vision.core.fleet.ZoneOutline), drawn on the picture
    zones: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    # the center's zone version it runs (null: its site file's), and the latest one it refused and why
    zone_version: Mapped[int | None] = mapped_column(Integer)
    zone_refused_version: Mapped[int | None] = mapped_column(Integer)
    zone_refused: Mapped[str | None] = mapped_column(String(REASON_MAX))

    __table_args__ = (UniqueConstraint("site_id", "camera_id", name="uq_edge_cameras_site_camera"),)


class CameraOutage(Base):
    """A time a camera was not watching (offline, or its box silent): the statistics leave it out
    instead of counting it as time without violations."""

    __tablename__ = "camera_outages"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site_id: Mapped[str] = mapped_column(String(ID_MAX))
    camera_id: Mapped[str] = mapped_column(String(ID_MAX))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cause: Mapped[str] = mapped_column(String(16))  # camera (the box said offline) | box (the box fell silent)

    __table_args__ = (Index("ix_camera_outages_camera", "site_id", "camera_id", "ended_at"),)


class ModelVersion(Base):
    """A model version uploaded for roll-out: its card and model file, both in the evidence store
    by content (the card names the file and its sha256), and the card's signature if it has one."""

    __tablename__ = "model_versions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(MODEL_NAME_MAX))
    version: Mapped[str] = mapped_column(String(MODEL_VERSION_MAX))
    file_name: Mapped[str] = mapped_column(String(128))
    sha256: Mapped[str] = mapped_column(String(64))  # of the model file
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    card_sha256: Mapped[str] = mapped_column(String(64))
    signature: Mapped[str | None] = mapped_column(String(128))  # base64 Ed25519 of the card's bytes
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    uploaded_by: Mapped[str] = mapped_column(String(64))

    __table_args__ = (UniqueConstraint("name", "version", name="uq_model_versions_name_version"),)


class ModelRollout(Base):
    """One decision of which version of a model the boxes run: every box, or only the `canary`
    sites (the others keep the version rolled out before). The latest row of a name holds."""

    __tablename__ = "model_rollouts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(MODEL_NAME_MAX), index=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"))
    canary: Mapped[list[str] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[str] = mapped_column(String(64))
    note: Mapped[str | None] = mapped_column(String(500))


class ZoneVersion(Base):
    """A camera's zones as an administrator published them in the zone editor: the latest version
    of a camera is what its box is told to run (vision.dispatch.zone_versions). Rows are never
    changed or deleted: they are the history of who drew which zones when."""

    __tablename__ = "zone_versions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site_id: Mapped[str] = mapped_column(String(ID_MAX))
    camera_id: Mapped[str] = mapped_column(String(ID_MAX))
    version: Mapped[int] = mapped_column(Integer)  # 1, 2, ... per camera
    zones: Mapped[list[dict[str, Any]]] = mapped_column(JSON)  # vision.core.zone_shapes.ZoneConfig, as dicts
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[str] = mapped_column(String(64))

    __table_args__ = (UniqueConstraint("site_id", "camera_id", "version", name="uq_zone_versions_site_camera_version"),)

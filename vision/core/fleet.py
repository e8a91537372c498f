"""The heartbeat an edge box sends to the dispatch center: one schema both sides use.

Transport: `POST /api/v1/heartbeats` as multipart/form-data, part `heartbeat` (this model
as JSON) and, now and then, one small JPEG per camera named `frame:<camera_id>` (the
camera's latest picture: the fleet page shows it and zones are drawn on it), with the
box's device token. A heartbeat is a snapshot, not a record: only the latest one
matters, so it is not queued through an outage like a case; the next one replaces it.
The center answers 200 with `HeartbeatAck`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Final, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from vision.core.cases import ID_MAX, MODEL_NAME_MAX, MODEL_VERSION_MAX, REASON_MAX, Text, in_timestamp_range
from vision.core.zone_shapes import RelPoint, ZoneConfig

HEARTBEAT_SCHEMA_VERSION: Final = 1
MAX_CAMERAS_PER_BOX: Final = 256
FRAME_PART_PREFIX: Final = "frame:"  # + camera id: the camera's latest picture
FRAME_MAX_BYTES: Final = 512 << 10

Timestamp = Annotated[datetime, AfterValidator(in_timestamp_range)]
CameraLink = Literal["online", "offline", "starting"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


MAX_ZONES_PER_CAMERA: Final = 32
MAX_ZONE_POINTS: Final = 64


class ZoneOutline(_Strict):
    """A zone of the camera as the box's site config has it (0-1 image coordinates, x right,
    y down; a site exit may be a line of two points), so the center can draw it on the
    camera's picture."""

    name: Text = Field(min_length=1, max_length=64)
    kind: Text = Field(min_length=1, max_length=32)
    points: list[RelPoint] = Field(min_length=2, max_length=MAX_ZONE_POINTS)


class CameraHeartbeat(_Strict):
    """How one camera's stream stands on the box right now."""

    camera_id: Text = Field(min_length=1, max_length=ID_MAX)
    state: CameraLink = Field(description="online: frames arrive; starting: not opened yet; offline: retrying.")
    fps: float = Field(ge=0, le=1000, description="Frames/s the reader offered over the last seconds.")
    decode_errors: int = Field(ge=0, le=2**31 - 1)
    reconnects: int = Field(ge=0, le=2**31 - 1)
    last_frame_at: Timestamp | None = None
    last_error: Text | None = Field(default=None, max_length=REASON_MAX)
    zones: list[ZoneOutline] = Field(default_factory=list, max_length=MAX_ZONES_PER_CAMERA)
    zone_version: int | None = Field(
        default=None, ge=1, description="The center's zone version the camera runs; null: the site file's zones."
    )
    zone_refused: Text | None = Field(
        default=None,
        max_length=REASON_MAX,
        description="Why the box refused the latest zone version the center published (it kept the zones it ran).",
    )
    zone_refused_version: int | None = Field(default=None, ge=1, description="The zone version it refused.")


class ModelInUse(_Strict):
    name: Text = Field(min_length=1, max_length=MODEL_NAME_MAX)
    version: Text = Field(max_length=MODEL_VERSION_MAX)
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")


class Heartbeat(_Strict):
    schema_version: Literal[1] = HEARTBEAT_SCHEMA_VERSION
    site_id: Text = Field(min_length=1, max_length=ID_MAX, description="The box (its site config's site_id).")
    sent_at: Timestamp
    started_at: Timestamp = Field(description="When the daemon started (a restart shows as a new value).")
    software_version: Text = Field(max_length=32)
    config_sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="Of the site config the daemon runs.")
    disk_free_bytes: int | None = Field(default=None, ge=0)
    disk_level: Literal["ok", "low", "full", "unknown"] = "unknown"
    queue_depth: int = Field(ge=0, le=2**31 - 1, description="Cases and events waiting to be delivered.")
    failed: int = Field(default=0, ge=0, le=2**31 - 1, description="Cases the center refused for good.")
    models: list[ModelInUse] = Field(default_factory=list, max_length=16)
    cameras: list[CameraHeartbeat] = Field(max_length=MAX_CAMERAS_PER_BOX)


class HeartbeatAck(BaseModel):
    site_id: str
    received_at: datetime
    cameras: int
    frames: int = Field(description="Camera pictures stored from this heartbeat.")


class CameraZones(_Strict):
    """A camera's zones as published at the center (`GET /api/v1/zones/assigned`, the latest
    version of each camera of the asking box): the box puts them in place of the site file's
    zones of that camera, if its own checks accept the site that makes."""

    camera_id: Text = Field(min_length=1, max_length=ID_MAX)
    version: int = Field(ge=1, le=2**31 - 1, description="Counts up per camera from 1.")
    zones: list[ZoneConfig] = Field(max_length=MAX_ZONES_PER_CAMERA)
    published_at: Timestamp
    published_by: Text = Field(max_length=64)

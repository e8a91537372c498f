"""The case an edge box sends to the dispatch center: one schema both sides use.

Transport: `POST /api/v1/cases` as multipart/form-data with one part `case`
(this model as JSON) and one file part per evidence item, the part name being
the evidence `name`, with `Authorization: Bearer <device token>`. The
dispatch center answers 201 for a new case and 200 for a replay of a known
idempotency key (or a report merged into an open case as another occurrence),
with JSON `{"case_id", "occurrence_id", "created", "merged", "status"}`
(`vision.dispatch.schemas.IntakeResult`). The idempotency key makes a resend
return the case that already exists instead of creating a second one.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator

SCHEMA_VERSION: Final = 1

ViolationType = Literal["street_vending", "non_motor_parking", "exposed_garbage", "muddy_truck"]


class Location(BaseModel):
    """Where the camera stands; the coordinate system is named because Chinese
    map data is often GCJ-02, a few hundred metres off WGS84."""

    model_config = ConfigDict(extra="forbid")

    crs: Literal["WGS84", "GCJ-02", "BD-09", "CGCS2000"] = Field(description="Coordinate reference system of lat/lon.")
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    address: str | None = Field(default=None, description="Human-readable street address.")


EvidenceKind = Literal["snapshot", "annotated", "clip", "vehicle_crop", "plate_crop"]


class EvidenceItem(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$", description="Multipart part name and file name.")
    kind: EvidenceKind
    content_type: Literal["image/jpeg", "image/png", "video/mp4"]
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size_bytes: int = Field(ge=0)

    @field_validator("name")
    @classmethod
    def _not_dots_only(cls, name: str) -> str:
        if set(name) == {"."}:
            raise ValueError("an evidence name cannot be only dots")
        return name


class ConfidenceSample(BaseModel):
    model_config = ConfigDict(extra="forbid")
    t: datetime
    score: float = Field(ge=0, le=1)


class Verification(BaseModel):
    """The crop verifier's second look that let this case open."""

    model_config = ConfigDict(extra="forbid")
    accepted: bool
    label: str = Field(max_length=64, description="What the classifier named the best crop.")
    score: float = Field(ge=0, le=1, description="Probability of the violation's labels on that crop.")
    reason: str = Field(default="", max_length=256)
    model_name: str = Field(max_length=128)
    model_version: str = Field(max_length=64)


class CaseReport(BaseModel):
    """A suspected violation (疑似案件) as reported by a camera."""

    model_config = ConfigDict(extra="forbid")

    schema_version: Literal[1] = SCHEMA_VERSION
    idempotency_key: UUID
    site_id: str = Field(min_length=1, max_length=64)
    camera_id: str = Field(min_length=1, max_length=64)
    violation: ViolationType
    rule: str = Field(min_length=1, max_length=64, description="Rule name from the site config.")
    event_code: str | None = Field(default=None, max_length=16)
    event_name: str = Field(max_length=64)
    taxonomy_edition: str = Field(max_length=32)
    location: Location
    grid_code: str = Field(pattern=r"^\d{15}$")
    zone: str | None = Field(default=None, max_length=64)
    bbox: tuple[float, float, float, float] = Field(
        description="Violation box x1, y1, x2, y2 in relative 0-1 image coordinates."
    )
    object_count: int = Field(default=1, ge=1, description="E.g. bikes in a cluster.")
    classes: list[str] = Field(default_factory=list, description="Model classes seen in the violation.")
    confidence: float = Field(ge=0, le=1)
    confidence_history: list[ConfidenceSample] = Field(default_factory=list, max_length=1000)
    onset_at: datetime = Field(description="When the object was first seen in the zone (UTC).")
    detected_at: datetime = Field(description="When the rule fired (UTC).")
    dwell_s: float = Field(ge=0)
    model_name: str = Field(max_length=128)
    model_version: str = Field(max_length=64)
    verification: Verification | None = Field(default=None, description="Set when the edge box verified the crop.")
    evidence: list[EvidenceItem] = Field(default_factory=list, max_length=10)

    @field_validator("onset_at", "detected_at")
    @classmethod
    def _aware_utc(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("timestamps must carry a time zone (UTC ISO 8601)")
        return value.astimezone(UTC)

    @field_validator("bbox")
    @classmethod
    def _relative_box(cls, box: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
        x1, y1, x2, y2 = box
        if not (0 <= x1 < x2 <= 1 and 0 <= y1 < y2 <= 1):
            raise ValueError("bbox must be x1 < x2, y1 < y2, all within 0-1")
        return box

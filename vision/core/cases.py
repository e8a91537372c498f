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
from typing import Annotated, Final, Literal
from uuid import UUID

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from vision.core.plates import PLATE_TEXT_MAX, PlateColour, normalise_plate, plate_format

SCHEMA_VERSION: Final = 1

# The limits of what a case may hold, in one place: this schema enforces them, the
# dispatch center sizes its columns by them (vision.dispatch.models) and the edge's
# `config check` refuses a site config whose cameras would break them. A report over
# a limit is refused with a 422 instead of failing in the database as a 500.
ID_MAX: Final = 64  # site_id, camera_id, rule and zone names
ADDRESS_MAX: Final = 255
EVENT_CODE_MAX: Final = 16
EVENT_NAME_MAX: Final = 64
TAXONOMY_EDITION_MAX: Final = 32
GRID_CODE_LEN: Final = 15
MODEL_NAME_MAX: Final = 128
MODEL_VERSION_MAX: Final = 64
CLASS_NAME_MAX: Final = 128
LABEL_MAX: Final = 64
REASON_MAX: Final = 256
INT32_MAX: Final = 2**31 - 1  # the largest value of an INTEGER column (PostgreSQL int4)
# Timestamps the center can store and do date arithmetic on (an occurrence window,
# a 90-day search span) without leaving Python's datetime range.
TIMESTAMP_MIN: Final = datetime(1970, 1, 1, tzinfo=UTC)
TIMESTAMP_MAX: Final = datetime(9000, 1, 1, tzinfo=UTC)


def refuse_nul(value: str) -> str:
    """Text with a NUL character is refused: PostgreSQL cannot store it."""
    if "\x00" in value:
        raise ValueError("text must not contain NUL characters")
    return value


def in_timestamp_range(value: datetime) -> datetime:
    """An aware datetime between TIMESTAMP_MIN and TIMESTAMP_MAX, as UTC."""
    if value.tzinfo is None:
        raise ValueError("timestamps must carry a time zone (UTC ISO 8601)")
    try:
        utc = value.astimezone(UTC)
    except OverflowError:
        utc = None
    if utc is None or not TIMESTAMP_MIN <= utc < TIMESTAMP_MAX:
        raise ValueError(f"timestamps must lie in {TIMESTAMP_MIN.year}-{TIMESTAMP_MAX.year - 1}")
    return utc


def check_relative_box(box: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    """A box in relative 0-1 image coordinates, x1 < x2 and y1 < y2."""
    x1, y1, x2, y2 = box
    if not (0 <= x1 < x2 <= 1 and 0 <= y1 < y2 <= 1):
        raise ValueError("bbox must be x1 < x2, y1 < y2, all within 0-1")
    return box


# Text without NUL characters; give its length limits with Field.
Text = Annotated[str, AfterValidator(refuse_nul)]
# The same as a pattern, for query and form parameters (and their OpenAPI schema).
NO_NUL_PATTERN: Final = r"^[^\x00]*$"

ViolationType = Literal["street_vending", "non_motor_parking", "exposed_garbage", "muddy_truck"]


class Location(BaseModel):
    """Where the camera stands; the coordinate system is named because Chinese
    map data is often GCJ-02, a few hundred metres off WGS84."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    crs: Literal["WGS84", "GCJ-02", "BD-09", "CGCS2000"] = Field(description="Coordinate reference system of lat/lon.")
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    address: Text | None = Field(default=None, max_length=ADDRESS_MAX, description="Human-readable street address.")


EvidenceKind = Literal["snapshot", "annotated", "clip", "vehicle_crop", "plate_crop"]


class EvidenceItem(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$", description="Multipart part name and file name.")
    kind: EvidenceKind
    content_type: Literal["image/jpeg", "image/png", "video/mp4"]
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size_bytes: int = Field(ge=0, le=INT32_MAX)

    @field_validator("name")
    @classmethod
    def _not_dots_only(cls, name: str) -> str:
        if set(name) == {"."}:
            raise ValueError("an evidence name cannot be only dots")
        return name


class ConfidenceSample(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    t: datetime
    score: float = Field(ge=0, le=1)


class Verification(BaseModel):
    """The crop verifier's second look that let this case open."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    accepted: bool
    label: Text = Field(max_length=LABEL_MAX, description="What the classifier named the best crop.")
    score: float = Field(ge=0, le=1, description="Probability of the violation's labels on that crop.")
    reason: Text = Field(default="", max_length=REASON_MAX)
    model_name: Text = Field(max_length=MODEL_NAME_MAX)
    model_version: Text = Field(max_length=MODEL_VERSION_MAX)


class PlateReading(BaseModel):
    """The plate the edge box read on a vehicle: the most confident reading over its track."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    text: str = Field(max_length=PLATE_TEXT_MAX, description="Plate text without separator, e.g. 苏E12345.")
    confidence: float = Field(
        ge=0, le=1, description="The reader's confidence in the whole text (its least sure symbol)."
    )
    colour: PlateColour = Field(
        description="Background colour: blue, yellow (lorries), green (new energy), white, black."
    )
    rows: Literal[1, 2] = Field(default=1, description="2 for the double-row plate lorries carry at the rear.")
    frames: int = Field(default=1, ge=1, le=INT32_MAX, description="Frames of the track that gave this text.")

    @field_validator("text")
    @classmethod
    def _a_plate(cls, text: str) -> str:
        text = normalise_plate(text)
        if plate_format(text) is None:
            raise ValueError("text is not a Chinese plate (province, letter, 5 or 6 symbols)")
        return text


class CaseReport(BaseModel):
    """A suspected violation (疑似案件) as reported by a camera."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    schema_version: Literal[1] = SCHEMA_VERSION
    idempotency_key: UUID
    site_id: Text = Field(min_length=1, max_length=ID_MAX)
    camera_id: Text = Field(min_length=1, max_length=ID_MAX)
    violation: ViolationType
    rule: Text = Field(min_length=1, max_length=ID_MAX, description="Rule name from the site config.")
    event_code: Text | None = Field(default=None, max_length=EVENT_CODE_MAX)
    event_name: Text = Field(max_length=EVENT_NAME_MAX)
    taxonomy_edition: Text = Field(max_length=TAXONOMY_EDITION_MAX)
    location: Location
    grid_code: str = Field(pattern=rf"^\d{{{GRID_CODE_LEN}}}$")
    zone: Text | None = Field(default=None, max_length=ID_MAX)
    bbox: tuple[float, float, float, float] = Field(
        description="Violation box x1, y1, x2, y2 in relative 0-1 image coordinates."
    )
    object_count: int = Field(default=1, ge=1, le=INT32_MAX, description="E.g. bikes in a cluster.")
    classes: list[Annotated[Text, Field(max_length=CLASS_NAME_MAX)]] = Field(
        default_factory=list, max_length=1000, description="Model classes seen in the violation."
    )
    confidence: float = Field(ge=0, le=1)
    confidence_history: list[ConfidenceSample] = Field(default_factory=list, max_length=1000)
    onset_at: datetime = Field(description="When the object was first seen in the zone (UTC).")
    detected_at: datetime = Field(description="When the rule fired (UTC).")
    dwell_s: float = Field(ge=0)
    model_name: Text = Field(max_length=MODEL_NAME_MAX)
    model_version: Text = Field(max_length=MODEL_VERSION_MAX)
    verification: Verification | None = Field(default=None, description="Set when the edge box verified the crop.")
    plate: PlateReading | None = Field(
        default=None, description="The vehicle's plate, when one was read (muddy trucks)."
    )
    evidence: list[EvidenceItem] = Field(default_factory=list, max_length=10)

    @field_validator("onset_at", "detected_at")
    @classmethod
    def _aware_utc(cls, value: datetime) -> datetime:
        return in_timestamp_range(value)

    @field_validator("bbox")
    @classmethod
    def _relative_box(cls, box: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
        return check_relative_box(box)


LifecycleKind = Literal["cleared", "resumed", "grew"]


class CaseLifecycle(BaseModel):
    """What the camera saw of a violation after its case was posted (自动核查's input).

    `cleared`: the violation has been absent for the rule's `clear_after_s`; its
    snapshot shows the empty place. `resumed`: it came back (within the rule's
    cooldown) after being cleared. `grew`: more objects joined it (a third bike
    parked beside the pair) while its case is open; one case per place, so the
    center hears the new count and sees them marked instead of getting a second
    case. Sent through the same outbox as cases, after
    the case itself, with its own idempotency key so a resend is a replay.
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    schema_version: Literal[1] = SCHEMA_VERSION
    idempotency_key: UUID = Field(description="This event's key; a resend with it is answered as a replay.")
    case_key: UUID = Field(description="The idempotency key of the CaseReport this event follows.")
    site_id: Text = Field(min_length=1, max_length=ID_MAX)
    camera_id: Text = Field(min_length=1, max_length=ID_MAX)
    kind: LifecycleKind
    observed_at: datetime = Field(description="When the camera saw the change (UTC).")
    object_count: int | None = Field(
        default=None, ge=1, le=INT32_MAX, description="grew: the objects the violation holds now; else unset."
    )
    bbox: tuple[float, float, float, float] | None = Field(
        default=None, description="grew: the box of the objects that joined, relative x1, y1, x2, y2; else unset."
    )
    evidence: list[EvidenceItem] = Field(
        default_factory=list, max_length=2, description="The snapshot of the place at that moment."
    )

    @field_validator("observed_at")
    @classmethod
    def _aware_utc(cls, value: datetime) -> datetime:
        return in_timestamp_range(value)

    @field_validator("bbox")
    @classmethod
    def _relative_box(cls, box: tuple[float, float, float, float] | None) -> tuple[float, float, float, float] | None:
        return None if box is None else check_relative_box(box)

    @model_validator(mode="after")
    def _count_with_growth(self) -> CaseLifecycle:
        if (self.kind == "grew") != (self.object_count is not None):
            raise ValueError("object_count is set on a 'grew' event and on no other")
        return self

"""Typed messages between tracking, rules and case building.

`Observation` is what the rules see of one processed frame; `Violation` is what
a rule reports, in pixels and stream seconds, with UTC wall times alongside
for the case. Nothing here knows about HTTP, files or drawing.
"""

from __future__ import annotations

import uuid
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Literal, Protocol, TypedDict

import numpy as np
import supervision as sv

from vision.core.cases import PlateReading, ViolationType
from vision.edge.config import RuleConfigBase, ZoneConfig
from vision.edge.zones import ZoneGeometry


@dataclass(frozen=True)
class Observation:
    """One processed frame of one camera, after detection and tracking."""

    camera_id: str
    t_s: float  # stream seconds: durations are measured on these
    captured_at: datetime  # UTC wall time of the frame, stamped on cases
    width: int
    height: int
    detections: sv.Detections  # pixel xyxy, confidence, class_id, tracker_id, data["class_name"]
    image: np.ndarray | None = None  # BGR, only read to cut crops (muddy truck)
    index: int = 0

    def class_names(self) -> np.ndarray:
        names = self.detections.data.get("class_name")
        if names is None:
            return np.empty(0, dtype=object)
        return np.asarray(names, dtype=object)

    def tracker_ids(self) -> np.ndarray:
        if self.detections.tracker_id is None:
            return np.full(len(self.detections), -1, dtype=int)
        return np.asarray(self.detections.tracker_id, dtype=int)


@dataclass(frozen=True)
class ConfidenceSample:
    t_s: float
    at: datetime
    score: float


class VerificationRecord(TypedDict):
    """The verifier's verdict on a violation, as the case carries it (`vision.core.cases.Verification`)."""

    accepted: bool
    label: str
    score: float
    reason: str
    model_name: str
    model_version: str


@dataclass(frozen=True)
class VehicleView:
    """One of a vehicle's best views: a crop with a margin around the vehicle, and its box in that crop."""

    image: np.ndarray
    box: tuple[float, float, float, float]  # the vehicle, in the crop's pixels


@dataclass
class Violation:
    """One violation = one case. `id` becomes the case's idempotency key."""

    rule: str
    violation_type: ViolationType
    camera_id: str
    zone: str | None
    box_px: tuple[float, float, float, float]  # union of the objects' boxes
    frame_size: tuple[int, int]  # width, height the boxes refer to
    classes: list[str]
    object_count: int
    confidence: float
    confidence_history: list[ConfidenceSample]
    onset_t_s: float
    onset_at: datetime
    detected_t_s: float
    detected_at: datetime
    object_boxes_px: list[tuple[float, float, float, float]] = field(default_factory=list)
    crops: dict[str, np.ndarray] = field(default_factory=dict)  # evidence kind -> BGR image
    track_ids: list[int] = field(default_factory=list)
    verification: VerificationRecord | None = (
        None  # the verifier's verdict (vision.edge.verify.Verdict.as_dict) when one ran
    )
    # a vehicle's best views: the verifier judges it on all of them, not on one look
    views: list[VehicleView] = field(default_factory=list)
    plate_views: list[np.ndarray] = field(default_factory=list)  # the same views, to read its plate from
    plate: PlateReading | None = None  # set by the case writer when a plate was read
    id: uuid.UUID = field(default_factory=uuid.uuid4)

    @property
    def dwell_s(self) -> float:
        return max(0.0, self.detected_t_s - self.onset_t_s)

    @property
    def bbox_rel(self) -> tuple[float, float, float, float]:
        return relative_box(self.box_px, self.frame_size)


def relative_box(
    box_px: tuple[float, float, float, float], frame_size: tuple[int, int]
) -> tuple[float, float, float, float]:
    """A pixel box as a valid relative one (clipped to the frame; never empty)."""
    w, h = frame_size
    x1, y1, x2, y2 = box_px
    x1, x2 = min(max(x1 / w, 0.0), 1.0), min(max(x2 / w, 0.0), 1.0)
    y1, y2 = min(max(y1 / h, 0.0), 1.0), min(max(y2 / h, 0.0), 1.0)
    # a degenerate box (clipped at an edge) still has to be a valid relative box
    if x2 <= x1:
        x1, x2 = (x1 - 1e-4, x1) if x1 > 0 else (0.0, 1e-4)
    if y2 <= y1:
        y1, y2 = (y1 - 1e-4, y1) if y1 > 0 else (0.0, 1e-4)
    return (x1, y1, x2, y2)


@dataclass(frozen=True)
class RuleEvent:
    """`opened`: a new case. `resumed`: re-seen within cooldown, same case.
    `cleared`: the object has been absent for clear_after_s. `grew`: objects joined the open
    violation and it holds more than ever before (`object_count` now; `joined_px`, their boxes)."""

    kind: Literal["opened", "resumed", "cleared", "grew"]
    violation: Violation
    object_count: int | None = None  # grew only
    joined_px: tuple[tuple[float, float, float, float], ...] = ()  # grew only: pixels, xyxy

    @property
    def joined_rel(self) -> tuple[float, float, float, float] | None:
        """The box of the objects that joined, relative to the frame (grew only)."""
        return union_rel(self.joined_px, self.violation.frame_size)


class Rule(Protocol):
    """What the camera's rule set calls: one update per processed frame."""

    name: str

    def update(self, obs: Observation, geometry: ZoneGeometry) -> list[RuleEvent]: ...

    def reset(self) -> None: ...

    def state_size(self) -> int:
        """Entries held in memory: tests check that it returns to zero."""

    def boxes_now(self, violation_id: uuid.UUID) -> list[tuple[float, float, float, float]] | None:
        """Where the objects of this open violation are now (pixels), or None when the rule cannot say."""


class RuleEngine(ABC):
    """Base of the rule engines. A concrete engine names its config class in the class
    statement (`class X(RuleEngine, config=XRuleConfig)`) and is registered under that
    config's `type`, so adding a rule is its config class plus one engine module
    (the way roboflow/trackers registers trackers); `vision.edge.rules` finds the module.
    An engine is a `Rule`: it is built from its config, the camera id and the camera's zones."""

    registry: ClassVar[dict[str, type[RuleEngine]]] = {}
    config_type: ClassVar[type[RuleConfigBase]]
    violation_type: ClassVar[ViolationType]

    def __init__(self, config: RuleConfigBase, camera_id: str, zones: list[ZoneConfig]) -> None:
        self.config = config
        self.name = config.rule_name
        self.camera_id = camera_id
        # the zones this rule watches: those it names, else every zone of its kind on the camera
        self.zone_names = list(config.zones) if config.zones else [z.name for z in zones if z.kind == config.zone_kind]

    @abstractmethod
    def update(self, obs: Observation, geometry: ZoneGeometry) -> list[RuleEvent]: ...

    @abstractmethod
    def reset(self) -> None: ...

    @abstractmethod
    def state_size(self) -> int:
        """Entries held in memory: tests check that it returns to zero."""

    def boxes_now(self, violation_id: uuid.UUID) -> list[tuple[float, float, float, float]] | None:
        """Where the objects of this open violation are now; None: this rule does not follow them."""
        return None

    def __init_subclass__(cls, *, config: type[RuleConfigBase] | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if config is None:
            return  # an abstract engine (StationaryRule)
        rule_type = config.model_fields["type"].default
        if rule_type in RuleEngine.registry:
            raise TypeError(
                f"two engines for rule type {rule_type!r}: {RuleEngine.registry[rule_type].__name__}, {cls.__name__}"
            )
        cls.config_type = config
        RuleEngine.registry[rule_type] = cls


def box_tuple(box: np.ndarray) -> tuple[float, float, float, float]:
    """One xyxy box as plain floats (what a `Violation` carries)."""
    x1, y1, x2, y2 = (float(v) for v in np.asarray(box, dtype=np.float64).reshape(4))
    return x1, y1, x2, y2


def union_rel(
    boxes_px: Sequence[tuple[float, float, float, float]], frame_size: tuple[int, int]
) -> tuple[float, float, float, float] | None:
    """The box around pixel boxes, relative to the frame (None when there are none)."""
    if not boxes_px:
        return None
    return relative_box(union_box(np.asarray(boxes_px, dtype=np.float64)), frame_size)


def union_box(boxes: np.ndarray) -> tuple[float, float, float, float]:
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return (
        float(boxes[:, 0].min()),
        float(boxes[:, 1].min()),
        float(boxes[:, 2].max()),
        float(boxes[:, 3].max()),
    )

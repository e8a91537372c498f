"""Typed messages between tracking, rules and case building.

`Observation` is what the rules see of one processed frame; `Violation` is what
a rule reports, in pixels and stream seconds, with UTC wall times alongside
for the case. Nothing here knows about HTTP, files or drawing.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol

import numpy as np
import supervision as sv

from vision.edge.config import ViolationType


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
    verification: dict | None = None  # the verifier's verdict (vision.edge.verify.Verdict.as_dict) when one ran
    id: uuid.UUID = field(default_factory=uuid.uuid4)

    @property
    def dwell_s(self) -> float:
        return max(0.0, self.detected_t_s - self.onset_t_s)

    @property
    def bbox_rel(self) -> tuple[float, float, float, float]:
        w, h = self.frame_size
        x1, y1, x2, y2 = self.box_px
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
    `cleared`: the object has been absent for clear_after_s."""

    kind: Literal["opened", "resumed", "cleared"]
    violation: Violation


class Rule(Protocol):
    name: str

    def update(self, obs: Observation, geometry) -> list[RuleEvent]: ...

    def reset(self) -> None: ...

    def state_size(self) -> int:
        """Entries held in memory: tests check that it returns to zero."""


def union_box(boxes: np.ndarray) -> tuple[float, float, float, float]:
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return (
        float(boxes[:, 0].min()),
        float(boxes[:, 1].min()),
        float(boxes[:, 2].max()),
        float(boxes[:, 3].max()),
    )

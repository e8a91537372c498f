"""Label real frames with the COCO base model: the classes it already knows
(person, bicycle, motorcycle, car, truck) become labels of the city model, so
synthetic frames teach the new classes without unteaching the old ones."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np

from vision.training.data.layout import CITY_CLASSES, Box

if TYPE_CHECKING:
    import supervision as sv

BASE_CLASSES = ("person", "bicycle", "motorcycle", "car", "truck")
# COCO names that mean one of ours (a bus is a large vehicle the rules treat as a truck)
COCO_TO_CITY = {
    "person": "person",
    "bicycle": "bicycle",
    "motorcycle": "motorcycle",
    "car": "car",
    "truck": "truck",
    "bus": "truck",
}


class BaseDetector(Protocol):
    """What pseudo-labelling needs of a detector (the edge's `Detector` is one; data sets
    may not import the edge)."""

    def detect(self, image: np.ndarray) -> sv.Detections: ...


@dataclass
class FrameBox:
    name: str
    xyxy: tuple[float, float, float, float]
    confidence: float


def detect_base(detector: BaseDetector, frame: np.ndarray, min_confidence: float) -> list[FrameBox]:
    dets = detector.detect(frame)
    out = []
    assert dets.confidence is not None, "detectors always fill confidence (vision.edge.detection)"
    for xyxy, conf, name in zip(dets.xyxy, dets.confidence, dets.data["class_name"], strict=True):
        city = COCO_TO_CITY.get(str(name))
        if city and float(conf) >= min_confidence:
            x1, y1, x2, y2 = (float(v) for v in xyxy)
            out.append(FrameBox(city, (x1, y1, x2, y2), float(conf)))
    return out


def to_boxes(found: list[FrameBox], width: int, height: int, names: list[str] = CITY_CLASSES) -> list[Box]:
    boxes = []
    for fb in found:
        if fb.name not in names:
            continue
        x1, y1, x2, y2 = fb.xyxy
        x1, x2 = max(0.0, x1), min(float(width), x2)
        y1, y2 = max(0.0, y1), min(float(height), y2)
        if x2 - x1 >= 2 and y2 - y1 >= 2:
            boxes.append(Box.from_xyxy(names.index(fb.name), x1, y1, x2, y2, width, height))
    return boxes

"""The class-agnostic path for stationary rules: static regions, named by the crop classifier.

Why: a stall or a heap of garbage of a style no detector was trained on is
still, to a fixed camera, something new that stays. `StaticObjectFinder`
finds such regions in the watched zones without knowing what they are; this
module crops each new one once (and again every `reclassify_s`), has the crop
classifier name it, and hands the regions named as a violation class to the
rules as ordinary detections. Regions a detector already boxed with confidence
are left to that detector, so nothing is counted twice. A faint box (below
what the tracker starts a track from) does not account for a region: a
detector that scores a bag left behind a bin at 0.3 as a fire hydrant or as
garbage drawn around bin and bag both has not found the bag, and the verifier
calls that box a bin (the Leuven bag, models/crop-verifier/STUDY.md, step 13).
Such a faint box of the class the region is named is then dropped for the
region's (`supersede`): two boxes of one object in one look would have the
tracker keep either from look to look, and the verifier judge the worse.
The verifier checks every case these detections open, like any other.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import supervision as sv

from vision.core.geometry import box_ios
from vision.edge.config import StaticObjectFinderConfig
from vision.edge.detection.base import CropNamer, confidences, named_detections, select_detections
from vision.edge.detection.static_objects import StaticObjectFinder

__all__ = ["StaticCandidates", "watch_mask_for"]

# What a classifier label becomes as a detection class for the stationary rules.
NAMED_CLASSES = ("vendor_stall", "garbage", "bicycle", "motorcycle")
# Detections of these classes move through the scene: their pixels are not learned as background.
MOVERS = ("person", "car", "truck", "bus", "bicycle", "motorcycle", "muddy_truck")


@dataclass
class _Named:
    label: str
    score: float
    at_t: float


class StaticCandidates:
    """One camera's static regions as named detections."""

    def __init__(
        self,
        settings: StaticObjectFinderConfig,
        classifier: CropNamer,
        wanted: set[str],
        *,
        min_score: float = 0.5,
        reclassify_s: float = 30.0,
        max_overlap: float = 0.3,
        cover_min_confidence: float = 0.4,
    ) -> None:
        self.finder = StaticObjectFinder(settings)
        self.classifier = classifier
        self.wanted = set(wanted) & set(NAMED_CLASSES)
        self.min_score = min_score
        self.reclassify_s = reclassify_s
        self.max_overlap = max_overlap
        self.cover_min_confidence = cover_min_confidence
        self.names: dict[int, _Named] = {}  # region id -> what the classifier called it
        self.regions = 0  # regions seen in the last update (for /healthz and tests)

    def update(
        self, image: np.ndarray, t_s: float, detections: sv.Detections, watch_mask: np.ndarray | None
    ) -> sv.Detections:
        names = np.asarray(detections.data.get("class_name", []), dtype=object)
        movers = np.asarray(detections.xyxy)[np.isin(names, MOVERS)] if len(names) else np.empty((0, 4))
        regions = self.finder.update(image, t_s, ignore_xyxy=movers, watch_mask=watch_mask)
        self.regions = len(regions)
        live = {r.id for r in regions}
        for rid in [rid for rid in self.names if rid not in live]:
            del self.names[rid]
        boxes = np.asarray([r.xyxy for r in regions], dtype=np.float64).reshape(-1, 4)
        sure = np.asarray(detections.xyxy, dtype=np.float64).reshape(-1, 4)[
            confidences(detections) >= self.cover_min_confidence
        ]
        if len(boxes) and len(sure):
            covered = box_ios(boxes, sure).max(axis=1) > self.max_overlap
        else:
            covered = np.zeros(len(boxes), dtype=bool)
        todo = [i for i, r in enumerate(regions) if not covered[i] and self._stale(r.id, t_s)]
        if todo:
            for i, verdict in zip(todo, self.classifier.classify(image, boxes[todo]), strict=True):
                self.names[regions[i].id] = _Named(verdict.label, verdict.score, t_s)
        keep = [i for i, r in enumerate(regions) if not covered[i] and self._emits(r.id)]
        named = [self.names[regions[i].id] for i in keep]
        return named_detections(boxes[keep], [n.label for n in named], [n.score for n in named])

    def supersede(self, detections: sv.Detections, named: sv.Detections) -> sv.Detections:
        """`detections` less the faint boxes (under `cover_min_confidence`) of a class a named region
        overlapping them has: the region stands for that object."""
        if len(named) == 0 or len(detections) == 0:
            return detections
        names = np.asarray(detections.data.get("class_name", []), dtype=object)
        region_names = np.asarray(named.data["class_name"], dtype=object)
        overlap = box_ios(np.asarray(detections.xyxy, dtype=np.float64), np.asarray(named.xyxy, dtype=np.float64))
        same = names[:, None] == region_names[None, :]
        drop = (confidences(detections) < self.cover_min_confidence) & ((overlap > self.max_overlap) & same).any(axis=1)
        return select_detections(detections, ~drop) if drop.any() else detections

    def _stale(self, rid: int, t_s: float) -> bool:
        named = self.names.get(rid)
        return named is None or t_s - named.at_t >= self.reclassify_s

    def _emits(self, rid: int) -> bool:
        named = self.names.get(rid)
        return named is not None and named.label in self.wanted and named.score >= self.min_score

    def state_size(self) -> int:
        return len(self.names) + self.finder.state_size()

    def reset(self) -> None:
        self.names.clear()
        self.finder.reset()


def watch_mask_for(zone_masks: np.ndarray, rise: float = 0.25) -> np.ndarray:
    """Where static objects standing in the zones can show: the zones plus `rise` of the frame height above
    them (a rule tests the foot point, but a stall's body rises above its zone)."""
    if len(zone_masks) == 0:
        return np.zeros(zone_masks.shape[1:], dtype=bool)
    mask = np.asarray(zone_masks.any(axis=0)).astype(np.uint8)
    h = mask.shape[0]
    k = max(1, int(rise * h))
    kernel = np.zeros((2 * k + 1, 1), np.uint8)
    kernel[k:, 0] = 1  # grows upwards only: a pixel is set when a zone pixel lies below it within k
    return cv2.dilate(mask, kernel, anchor=(0, k)).astype(bool)

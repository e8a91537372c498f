"""Objects the COCO detector boxes but no rule consumes, named by the crop classifier.

Why: on streets the city model never saw, the pretrained COCO detector still
boxes a stall (as an umbrella, a bench, a table), a sack of garbage (as a
suitcase, a handbag) and a truck at the site exit, because it learned
"objecthood" from real photos. What it lacks is our names. So the boxes of
classes no rule consumes, standing in a stationary rule's zones, and the
vehicles near a site exit are cropped and named by the verifier's classifier
(trained on our classes, with bins, people, cars and clean trucks as
negatives); a name that is a violation class becomes one more detection for
the rules. People are never named (a person is not garbage), and the
verifier still checks every case these detections open. Vehicles are named by
the truck rule's own head when the verifier has one (`models_by_violation`):
whether a truck is muddy is that head's question at every look, not only at the
verdict.

Why weak boxes of our own classes too: a detector head trained on composites scores a
real stall or bag it does see at 0.25-0.40, under the rule's threshold, flickering
across it from look to look. A box of a class a stationary rule consumes that scores
under that rule's threshold (`weak_below`) is named as well, and when the classifier
agrees on the same class it becomes one more detection at the classifier's score. A
weak box the classifier calls something else stays weak. The daemon asks this for
the vending rule's classes only (vision/edge/daemon/pipeline.py says why).

Cost: a crop costs one backbone run (15-30 ms on one core), so a name is reused while the
same box stays (an overlap of `reuse_iou`, for `reuse_s` stream seconds) and
at most `max_per_frame` crops are named per frame (the largest first). And a box
for the stationary rules is named only once it has stayed (`stay_looks` looks at
the same place): what moves is no stall or dumped bag, and on a busy pavement
COCO boxes walkers' legs, bags and shadows as skis, sports balls, birds and dogs,
new boxes at every look. On the benchmark's pedestrian plaza that was 2.4 crops a
look and a third of the daemon loop's time, where detection took half
(`benchmarks/cameras_per_box.py`, docs/PERFORMANCE.md); with the rule, 1.15 crops a
look. Vehicles near an exit are named at first sight: they move. And one that has
stood at one place for `vehicle_stand_s` is named no more, old name or new: a car
parked by the gate is no truck driving out, yet at 40-50 px the truck head can call
it muddy at every look, and a passing truck's track that takes up its box took
its mud votes along (the clean Colosseum truck's false case, docs/PERFORMANCE.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import supervision as sv

from vision.core.geometry import box_iou
from vision.edge.detection.base import CropNamer, boxes_touching, empty_detections, named_detections

__all__ = ["ProposalNamer", "KNOWN_CLASSES", "VEHICLE_CLASSES"]

# Classes the rules consume as they are: never re-named as something else.
KNOWN_CLASSES = frozenset(
    {"person", "bicycle", "motorcycle", "car", "truck", "bus", "vendor_stall", "garbage", "muddy_truck"}
)
VEHICLE_CLASSES = frozenset({"car", "truck", "bus"})  # near a site exit: is it a muddy truck?
STATIONARY_NAMES = frozenset({"vendor_stall", "garbage", "bicycle", "motorcycle"})


@dataclass(eq=False)  # one sighting is one object: compared by identity, never by its array
class _Sighting:
    box: np.ndarray  # xyxy, pixels
    t_s: float  # the last look it was seen at
    looks: int


@dataclass(eq=False)
class _Standing:
    box: np.ndarray  # xyxy, pixels, where it was when it came to stand here
    since_t: float  # the first look it was seen at this place
    t_s: float  # the last look it was seen at


@dataclass
class _Named:
    box: np.ndarray  # xyxy, pixels
    t_s: float
    label: str
    score: float


class ProposalNamer:
    """One camera's proposals, named; `update` returns only the extra detections."""

    def __init__(
        self,
        classifier: CropNamer,
        stationary_wanted: set[str],
        *,
        name_vehicles: bool,
        min_score: float = 0.5,
        reuse_iou: float = 0.7,
        reuse_s: float = 10.0,
        max_per_frame: int = 8,
        weak_below: dict[str, float] | None = None,
        vehicle_classifier: CropNamer | None = None,
        stay_looks: int = 1,
        vehicle_stand_s: float | None = None,
    ) -> None:
        self.classifier = classifier
        # vehicles near an exit ask the truck rule's question (muddy or not): its own head where it has one
        self.vehicle_classifier = vehicle_classifier or classifier
        self.wanted = set(stationary_wanted) & STATIONARY_NAMES
        self.name_vehicles = name_vehicles
        self.min_score = min_score
        self.reuse_iou = reuse_iou
        self.reuse_s = reuse_s
        self.max_per_frame = max_per_frame
        # wanted class -> the strictest threshold of a rule consuming it: boxes under it get a second opinion
        self.weak_below = {c: t for c, t in (weak_below or {}).items() if c in self.wanted}
        self.stay_looks = stay_looks
        self.vehicle_stand_s = vehicle_stand_s
        self._standing: list[_Standing] = []  # vehicles near an exit, where they have stood since when
        self._named: list[_Named] = []
        self._sightings: list[_Sighting] = []  # stationary boxes seen, not yet named
        self.crops = 0  # crops classified so far (for benchmarks and tests)

    def update(
        self,
        image: np.ndarray,
        t_s: float,
        detections: sv.Detections,
        stationary_mask: np.ndarray | None,
        vehicle_mask: np.ndarray | None,
    ) -> sv.Detections:
        self._named = [n for n in self._named if 0 <= t_s - n.t_s < self.reuse_s]
        self._sightings = [v for v in self._sightings if 0 <= t_s - v.t_s < self.reuse_s]
        self._standing = [v for v in self._standing if 0 <= t_s - v.t_s < self.reuse_s]
        if len(detections) == 0:
            return empty_detections()
        names = np.asarray(detections.data.get("class_name", []), dtype=object)
        xyxy = np.asarray(detections.xyxy, dtype=np.float64)
        other = ~np.isin(names, list(KNOWN_CLASSES))
        candidates = np.zeros(len(names), dtype=bool)
        weak = self._weak(names, detections.confidence)
        if self.wanted and stationary_mask is not None:
            candidates |= (other | weak) & _foot_in(xyxy, stationary_mask)
        is_vehicle = np.isin(names, list(VEHICLE_CLASSES))
        if self.name_vehicles and vehicle_mask is not None:
            near = is_vehicle & boxes_touching(xyxy, vehicle_mask)
            candidates |= near & ~self._parked(xyxy, near, t_s)
        idx = np.flatnonzero(candidates)
        if len(idx) == 0:
            return empty_detections()
        # the largest first; weak boxes last, so a second opinion never costs a truck at the exit its look
        idx = idx[np.lexsort((-_area(xyxy[idx]), weak[idx]))][: self.max_per_frame]
        labels: list[tuple[int, str, float]] = []
        todo: list[int] = []
        for box_i in idx:
            hit = self._reuse(xyxy[box_i])
            if hit is not None:
                labels.append((int(box_i), hit.label, hit.score))
            elif is_vehicle[box_i] or self._stayed(xyxy[box_i], t_s):
                todo.append(int(box_i))
        for classifier, group in (
            (self.classifier, [i for i in todo if not is_vehicle[i]]),
            (self.vehicle_classifier, [i for i in todo if is_vehicle[i]]),
        ):
            if not group:
                continue
            verdicts = classifier.classify(image, xyxy[group])
            self.crops += len(group)
            for i, v in zip(group, verdicts, strict=True):
                self._named.append(_Named(xyxy[i].copy(), t_s, v.label, float(v.score)))
                labels.append((i, v.label, float(v.score)))
        keep = []
        for i, label, score in labels:
            if score < self.min_score:
                continue
            if names[i] in VEHICLE_CLASSES:
                if label == "muddy_truck":
                    keep.append((i, label, score))
            elif weak[i]:
                if label == names[i]:  # a second opinion lifts a weak box only when it agrees
                    keep.append((i, label, score))
            elif label in self.wanted:
                keep.append((i, label, score))
        return named_detections(xyxy[[i for i, _, _ in keep]], [lab for _, lab, _ in keep], [s for _, _, s in keep])

    def _weak(self, names: np.ndarray, confidence: np.ndarray | None) -> np.ndarray:
        """Boxes of a wanted class scoring under the threshold of a rule that consumes it."""
        weak = np.zeros(len(names), dtype=bool)
        if not self.weak_below or confidence is None:
            return weak
        conf = np.asarray(confidence)
        for cls, threshold in self.weak_below.items():
            weak |= (names == cls) & (conf < threshold)
        return weak

    def _stayed(self, box: np.ndarray, t_s: float) -> bool:
        """Has this box been at this place for `stay_looks` looks (this one included)? Records the sighting."""
        if self.stay_looks <= 1:
            return True
        seen = _same_place(box, [v for v in self._sightings if v.t_s < t_s], self.reuse_iou)
        if seen is None:
            self._sightings.append(_Sighting(box.copy(), t_s, 1))
            return False
        seen.box, seen.t_s, seen.looks = box.copy(), t_s, seen.looks + 1
        if seen.looks < self.stay_looks:
            return False
        self._sightings.remove(seen)  # named now: its name is reused from here on
        return True

    def _parked(self, xyxy: np.ndarray, near: np.ndarray, t_s: float) -> np.ndarray:
        """Vehicles near an exit that have stood at one place for `vehicle_stand_s` (records where each stands)."""
        parked = np.zeros(len(xyxy), dtype=bool)
        if self.vehicle_stand_s is None:
            return parked
        for i in np.flatnonzero(near):
            here = _same_place(xyxy[i], [v for v in self._standing if v.t_s < t_s], self.reuse_iou)
            if here is None:
                self._standing.append(_Standing(xyxy[i].copy(), t_s, t_s))
                continue
            here.t_s = t_s
            parked[i] = t_s - here.since_t >= self.vehicle_stand_s
        return parked

    def _reuse(self, box: np.ndarray) -> _Named | None:
        return _same_place(box, self._named, self.reuse_iou)

    def state_size(self) -> int:
        return len(self._named) + len(self._sightings) + len(self._standing)

    def reset(self) -> None:
        self._named.clear()
        self._sightings.clear()
        self._standing.clear()


_Placed = TypeVar("_Placed", _Named, _Sighting, _Standing)


def _same_place(box: np.ndarray, items: list[_Placed], min_iou: float) -> _Placed | None:
    """The item whose box overlaps `box` most, if by `min_iou` or more."""
    if not items:
        return None
    iou = box_iou(box[None], np.stack([item.box for item in items]))[0]
    best = int(np.argmax(iou))
    return items[best] if iou[best] >= min_iou else None


def _area(xyxy: np.ndarray) -> np.ndarray:
    area: np.ndarray = (xyxy[:, 2] - xyxy[:, 0]).clip(0) * (xyxy[:, 3] - xyxy[:, 1]).clip(0)
    return area


def _foot_in(xyxy: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The box's bottom centre (where the rules test zones) lies in the mask."""
    h, w = mask.shape
    xs = np.clip(((xyxy[:, 0] + xyxy[:, 2]) / 2).astype(int), 0, w - 1)
    ys = np.clip(xyxy[:, 3].astype(int), 0, h - 1)
    inside: np.ndarray = mask[ys, xs]
    return inside

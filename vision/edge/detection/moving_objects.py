"""Class-agnostic finder of things that move near a site exit, and their names.

Why: a truck at the far end of a camera's view, or one drawn in a style the
detector never saw, gets no box from any detector, yet to a fixed camera it
is plainly something moving across the exit. The crop classifier, run on a
tight crop of that moving region, names it far more reliably than the
detector boxes it (on the held-out streets it named moving-blob crops of
trucks `muddy_truck` or `truck` where neither detector gave a box). So this
finds moving regions around the site exits without knowing what they are,
and hands the classifier's vehicle names to the truck rule as ordinary
detections; the tracker, the exit-line test, the k-of-n mud vote and the
verifier then treat them like any detector's box.

Why a running background and not the difference of two looks: looks are
0.2-1 s apart, so a difference of two shows a vehicle twice (where it was and
where it is) and a slow one not at all. A per-pixel running mean over
`background_tau_s` of stream time remembers the empty road; pixels that are
currently foreground learn `FOREGROUND_SLOWDOWN` times slower, so a passing
truck is not learned into the road but a parked one is absorbed in minutes.
Global lighting drift (clouds, auto-exposure, dusk) is removed by matching
each channel's median difference before thresholding, and the threshold
adapts to the frame's noise (rain, dusk grain).

Cost: whole-array OpenCV at `work_width` (~320 px): about a millisecond a
look; the classifier runs only on regions touching the exit neighbourhood
that no detector box already covers, at most `max_per_look` per look.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
import supervision as sv

from vision.core.geometry import box_iou
from vision.edge.detection.base import CropNamer, boxes_touching, confidences, empty_detections, named_detections

__all__ = ["MovingObjectFinder", "MovingVehicles", "VEHICLE_NAMES"]

# What a moving region may become: the truck rule's vehicle and mud classes, nothing else (a
# moving person or car is left alone; a parked car never moves).
VEHICLE_NAMES = ("truck", "muddy_truck")
# Detections that already account for a moving vehicle: a region they overlap is theirs. Not
# "motorcycle": COCO boxes a three-wheeled cargo carrier (the 三轮 that carries muck too) as one, so
# a motorcycle box moving across an exit still gets the truck question (a real motorcycle is named
# motorcycle by the classifier and dropped).
VEHICLE_DETECTIONS = ("car", "truck", "bus", "muddy_truck")
FOREGROUND_SLOWDOWN = 20.0  # foreground pixels learn this much slower than the rest
NOISE_K = 4.0  # a pixel differs when it is this many robust sigmas from the background
_K3 = np.ones((3, 3), np.uint8)


@dataclass(frozen=True)
class MovingRegion:
    xyxy: tuple[float, float, float, float]  # full-frame pixels
    area_frac: float  # of the frame


class MovingObjectFinder:
    """One camera's moving regions, in full-frame pixels."""

    def __init__(
        self,
        *,
        work_width: int = 320,
        background_tau_s: float = 8.0,
        warmup_s: float = 1.0,
        diff_min: float = 22.0,
        min_area: float = 0.0006,
        max_area: float = 0.2,
        max_regions: int = 16,
    ) -> None:
        self.work_width = work_width
        self.background_tau_s = background_tau_s
        self.warmup_s = warmup_s
        self.diff_min = diff_min
        self.min_area = min_area
        self.max_area = max_area
        self.max_regions = max_regions
        self._bg: np.ndarray | None = None  # float32 BGR at work size
        self._started_t: float | None = None
        self._last_t: float | None = None
        self._size: tuple[int, int] | None = None

    def reset(self) -> None:
        self._bg = self._started_t = self._last_t = self._size = None

    def update(self, image: np.ndarray, t_s: float, mask: np.ndarray | None = None) -> list[MovingRegion]:
        """Learn this look and return the regions moving in it (touching `mask`, a full-frame bool array)."""
        h, w = image.shape[:2]
        ww = min(self.work_width, w)
        wh = max(1, round(h * ww / w))
        small = np.asarray(
            cv2.GaussianBlur(cv2.resize(image, (ww, wh), interpolation=cv2.INTER_AREA), (3, 3), 0), dtype=np.float32
        )
        restarted = self._last_t is not None and t_s < self._last_t  # a looping file, a restarted camera
        if self._bg is None or self._size != (w, h) or restarted:
            self._bg, self._started_t, self._last_t, self._size = small, t_s, t_s, (w, h)
            return []
        assert self._started_t is not None and self._last_t is not None
        dt = max(0.0, t_s - self._last_t)
        self._last_t = t_s
        diff = small - self._bg
        diff -= np.median(diff.reshape(-1, 3), axis=0)  # global lighting drift is not motion
        dist = np.abs(diff).max(axis=2)
        sigma = 1.4826 * float(np.median(dist))
        fg = (dist > max(self.diff_min, NOISE_K * sigma)).astype(np.uint8)
        alpha = 1.0 - math.exp(-dt / self.background_tau_s)
        rate = np.where(fg.astype(bool), alpha / FOREGROUND_SLOWDOWN, alpha).astype(np.float32)[..., None]
        self._bg += rate * (small - self._bg)
        if t_s - self._started_t < self.warmup_s:
            return []
        fg = cv2.morphologyEx(fg, cv2.MORPH_OPEN, _K3)
        fg = cv2.dilate(fg, _K3, iterations=2)  # join a vehicle's parts (windows, wheels) into one region
        n, _, stats, _ = cv2.connectedComponentsWithStats(fg, connectivity=8)
        sx, sy = w / ww, h / wh
        regions: list[MovingRegion] = []
        for x, y, bw, bh, _area in stats[1:n]:
            frac = float(bw * bh) / float(ww * wh)
            if not self.min_area <= frac <= self.max_area:
                continue
            box = (x * sx, y * sy, (x + bw) * sx, (y + bh) * sy)
            if mask is not None and not boxes_touching(np.asarray([box]), mask)[0]:
                continue
            regions.append(MovingRegion(box, frac))
        regions.sort(key=lambda r: -r.area_frac)
        return regions[: self.max_regions]

    def state_size(self) -> int:
        return 0 if self._bg is None else 1


class MovingVehicles:
    """Moving regions near the exits no detector boxed, named by the crop classifier: the vehicle names
    become detections for the truck rule."""

    def __init__(
        self,
        finder: MovingObjectFinder,
        classifier: CropNamer,
        *,
        min_score: float = 0.5,
        max_per_look: int = 4,
        covered_iou: float = 0.5,
        covered_min_confidence: float = 0.4,
    ) -> None:
        self.finder = finder
        self.classifier = classifier
        self.min_score = min_score
        self.max_per_look = max_per_look
        self.covered_iou = covered_iou
        self.covered_min_confidence = covered_min_confidence
        self.crops = 0  # crops classified so far (benchmarks, tests)
        self.named: dict[str, int] = {}  # classifier label -> regions so named (debugging, tests)

    def update(
        self, image: np.ndarray, t_s: float, detections: sv.Detections, vehicle_mask: np.ndarray | None
    ) -> sv.Detections:
        regions = self.finder.update(image, t_s, vehicle_mask)
        if not regions:
            return empty_detections()
        boxes = np.asarray([r.xyxy for r in regions], dtype=np.float64).reshape(-1, 4)
        names = np.asarray(detections.data.get("class_name", []), dtype=object)
        conf = confidences(detections)
        # a faint box (below what the tracker starts a track from) does not account for the moving vehicle
        sure = np.isin(names, VEHICLE_DETECTIONS) & (conf >= self.covered_min_confidence)
        vehicles = np.asarray(detections.xyxy, dtype=np.float64).reshape(-1, 4)[sure]
        if len(vehicles):
            boxes = boxes[box_iou(boxes, vehicles).max(axis=1) < self.covered_iou]
        boxes = boxes[: self.max_per_look]
        if len(boxes) == 0:
            return empty_detections()
        verdicts = self.classifier.classify(image, boxes)
        self.crops += len(boxes)
        for v in verdicts:
            self.named[v.label] = self.named.get(v.label, 0) + 1
        keep = [i for i, v in enumerate(verdicts) if v.label in VEHICLE_NAMES and v.score >= self.min_score]
        return named_detections(boxes[keep], [verdicts[i].label for i in keep], [verdicts[i].score for i in keep])

    def state_size(self) -> int:
        return self.finder.state_size()

    def reset(self) -> None:
        self.finder.reset()

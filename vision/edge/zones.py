"""Zones in pixels: membership of every box in every zone with one array lookup.

Zones are configured in relative 0-1 coordinates. For each frame size they are
rasterised once into masks, so a frame costs one fancy-index for all anchors x
all zones instead of a Python loop of point-in-polygon tests. `site_exit`
zones given as two points are lines: `LineCrossing` reports which tracks
crossed them since their previous position.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from vision.core.geometry import orientation
from vision.edge.config import Anchor, ZoneConfig

__all__ = ["anchor_points", "ZoneGeometry", "ZoneSet", "LineCrossing"]


def anchor_points(xyxy: np.ndarray, anchor: Anchor = "bottom_center") -> np.ndarray:
    """(N, 2) pixel points of the boxes that are tested against zones."""
    xyxy = np.asarray(xyxy, dtype=np.float32).reshape(-1, 4)
    x = (xyxy[:, 0] + xyxy[:, 2]) / 2
    y: np.ndarray
    if anchor == "bottom_center":
        y = xyxy[:, 3]
    elif anchor == "top_center":
        y = xyxy[:, 1]
    elif anchor == "center":
        y = (xyxy[:, 1] + xyxy[:, 3]) / 2
    else:
        raise ValueError(f"unknown anchor '{anchor}'")
    return np.stack([x, y], axis=1)


class ZoneGeometry:
    """The zones of one camera at one frame size (pixels)."""

    def __init__(self, zones: list[ZoneConfig], width: int, height: int):
        self.width, self.height = int(width), int(height)
        self.zones = list(zones)
        self.names = [z.name for z in self.zones]
        self.kinds = [z.kind for z in self.zones]
        scale = np.array([self.width, self.height], dtype=np.float64)
        self.points_px = [np.asarray(z.polygon, dtype=np.float64) * scale for z in self.zones]
        self.is_line = np.array([z.is_line for z in self.zones], dtype=bool)
        self.masks = np.zeros((len(self.zones), self.height, self.width), dtype=bool)
        for i, (zone, pts) in enumerate(zip(self.zones, self.points_px, strict=True)):
            if zone.is_line:
                continue
            canvas = np.zeros((self.height, self.width), dtype=np.uint8)
            cv2.fillPoly(canvas, [np.round(pts).astype(np.int32)], 1)
            self.masks[i] = canvas.astype(bool)

    def index(self, name: str) -> int:
        return self.names.index(name)

    def contains(self, points: np.ndarray) -> np.ndarray:
        """(N, Z) bool: point n lies in polygon zone z (always False for line zones)."""
        points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        if len(points) == 0 or len(self.zones) == 0:
            return np.zeros((len(points), len(self.zones)), dtype=bool)
        xs = np.clip(np.floor(points[:, 0]), 0, self.width - 1).astype(np.intp)
        ys = np.clip(np.floor(points[:, 1]), 0, self.height - 1).astype(np.intp)
        inside_frame = (
            (points[:, 0] >= 0) & (points[:, 0] <= self.width) & (points[:, 1] >= 0) & (points[:, 1] <= self.height)
        )
        return self.masks[:, ys, xs].T & inside_frame[:, None]

    def line(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        pts = self.points_px[i]
        return pts[0], pts[1]


class ZoneSet:
    """A camera's zones; builds (and caches) the pixel geometry per frame size."""

    def __init__(self, zones: list[ZoneConfig]):
        self.zones = list(zones)
        self._cache: dict[tuple[int, int], ZoneGeometry] = {}

    def at(self, width: int, height: int) -> ZoneGeometry:
        key = (int(width), int(height))
        geo = self._cache.get(key)
        if geo is None:
            if len(self._cache) >= 4:  # a camera that changes resolution now and then: keep it bounded
                self._cache.clear()
            geo = self._cache[key] = ZoneGeometry(self.zones, *key)
        return geo


@dataclass
class _LastPoint:
    point: np.ndarray
    t_s: float
    side: int  # last non-zero side of the line (0 until the track is seen off the line)


@dataclass
class LineCrossing:
    """Which tracks crossed a line since their previous sighting.

    A track crosses when it is seen on the other side than the last side it was
    seen on (positions exactly on the line keep the old side, so stopping on the
    line and going on counts once), and its step passes within the line's ends.
    With `appearing_on_line`, a track whose first sighting is on the line and which
    then leaves it clearly on one side crossed too: a tracker confirms a new track
    only after a few sightings, so a vehicle driving fast through a line near the
    edge of the picture is first seen on it, never before it.
    Keeps one point per track id; ids unseen for `forget_after_s` of stream time
    are deleted so a 24/7 camera does not accumulate state."""

    a: np.ndarray
    b: np.ndarray
    forget_after_s: float = 10.0
    appearing_on_line: bool = False
    _last: dict[int, _LastPoint] = field(default_factory=dict)

    def update(
        self, tracker_ids: np.ndarray, points: np.ndarray, t_s: float, margins: np.ndarray | None = None
    ) -> np.ndarray:
        """(N,) bool: track n crossed the line between its last point and this one.

        `margins` (pixels, per point): a point closer to the line than its margin counts as on the line,
        so a parked vehicle whose box jitters about the line never crosses it."""
        tracker_ids = np.asarray(tracker_ids).reshape(-1)
        points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        crossed = np.zeros(len(tracker_ids), dtype=bool)
        a = np.asarray(self.a, dtype=np.float64)
        b = np.asarray(self.b, dtype=np.float64)
        orient = orientation(a, b, points) if len(points) else np.empty(0)
        sides = np.sign(orient).astype(int)
        if margins is not None and len(points):
            distance = np.abs(orient) / max(float(np.hypot(*(b - a))), 1e-9)
            sides[distance < np.asarray(margins, dtype=np.float64).reshape(-1)] = 0
        for n, tid in enumerate(tracker_ids):
            tid = int(tid)
            if tid < 0:
                continue
            side = int(sides[n])
            last = self._last.get(tid)
            if last is not None and last.side != 0 and side != 0 and side != last.side:
                p, q = last.point, points[n]
                d3 = orientation(p, q, a)
                d4 = orientation(p, q, b)
                crossed[n] = bool(d3 * d4 <= 0)
            elif last is not None and last.side == 0 and side != 0 and self.appearing_on_line:
                # seen only on the line so far, now clearly off it: it came through (within the line's ends)
                p = last.point
                t = float(np.dot(p - a, b - a) / max(float(np.dot(b - a, b - a)), 1e-9))
                crossed[n] = 0.0 <= t <= 1.0
            keep_side = side if side != 0 else (last.side if last is not None else 0)
            self._last[tid] = _LastPoint(points[n].copy(), float(t_s), keep_side)
        self.prune(t_s)
        return crossed

    def prune(self, t_s: float) -> None:
        stale = [tid for tid, last in self._last.items() if t_s - last.t_s > self.forget_after_s]
        for tid in stale:
            del self._last[tid]

    def __len__(self) -> int:
        return len(self._last)

    def reset(self) -> None:
        self._last.clear()

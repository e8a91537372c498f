"""Several detectors on one site, each serving the classes it is good at, at its own rate.

Why: the city model was trained from scratch on composites and misses real
bicycles, while the pretrained COCO model was trained on real photos. So the
site config says which model serves which classes (`detector.models`), and
the rules see one merged `sv.Detections` per frame. Stationary classes (stalls,
garbage, parked bikes) need a look every few seconds, not every frame: a model
with `every_s` runs only that often per camera, and its last detections are
held for the frames in between, so rules see a steady object instead of one
that blinks in and out (which would break their presence fractions).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import supervision as sv

from vision.edge.detection.base import classwise_nms, confidences, empty_detections, select_detections

__all__ = ["ModelRoute", "RoutedDetections", "merge_detections"]


class _Pool(Protocol):
    def detect_batch(self, images: list[np.ndarray]) -> list[sv.Detections]: ...

    def close(self) -> None: ...


class _Frame(Protocol):
    """What routing reads of a frame (`vision.edge.streams.Frame`, frozen: read-only here)."""

    @property
    def camera_id(self) -> str: ...

    @property
    def t_s(self) -> float: ...

    @property
    def image(self) -> np.ndarray: ...


@dataclass
class ModelRoute:
    """One detector of the site: what it serves and how often it looks."""

    detector: object  # vision.edge.detection.Detector
    pool: _Pool
    classes: frozenset[str] | None  # None: every class of the model
    every_s: float = 0.0  # 0: every frame due for detection
    min_confidence: float = 0.0  # kept in addition to the detector's own threshold
    zoom_every_s: float | None = None  # also detect on tiles over the zones this often (None: never)
    zones: dict[str, list[list[tuple[float, float]]]] = field(
        default_factory=dict
    )  # camera id -> its zones' relative polygons
    _last: dict[str, tuple[float, sv.Detections]] = field(default_factory=dict)
    _tiles: dict[tuple[str, int, int], list[tuple[int, int, int, int]]] = field(default_factory=dict)
    _zoomed: dict[str, tuple[float, sv.Detections]] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return str(getattr(self.detector, "name", "model"))

    @property
    def version(self) -> str:
        return str(getattr(self.detector, "version", ""))

    def serves(self, class_name: str) -> bool:
        names = getattr(self.detector, "class_names", None) or []
        if self.classes is not None:
            return class_name in self.classes
        return class_name in names

    def due(self, frame: _Frame) -> bool:
        last = self._last.get(frame.camera_id)
        if self.every_s <= 0 or last is None:
            return True
        # a stream that jumped back (a looping file, a restarted camera) looks again at once
        return frame.t_s - last[0] >= self.every_s - 1e-6 or frame.t_s < last[0]

    def keep(self, dets: sv.Detections) -> sv.Detections:
        if len(dets) == 0:
            return dets
        mask = np.ones(len(dets), dtype=bool)
        if self.classes is not None:
            mask &= np.isin(np.asarray(dets.data["class_name"], dtype=object), list(self.classes))
        if self.min_confidence > 0 and dets.confidence is not None:
            mask &= dets.confidence >= self.min_confidence
        return dets if mask.all() else select_detections(dets, mask)

    def held(self, frame: _Frame) -> sv.Detections:
        last = self._last.get(frame.camera_id)
        return last[1] if last is not None else empty_detections()

    def remember(self, frame: _Frame, dets: sv.Detections) -> None:
        self._last[frame.camera_id] = (frame.t_s, dets)

    def forget(self, camera_id: str) -> None:
        self._last.pop(camera_id, None)
        self._zoomed.pop(camera_id, None)

    def tiles(self, frame: _Frame) -> list[tuple[int, int, int, int]]:
        """The zoom tiles of this frame's camera when a zoomed look is due, else []."""
        if self.zoom_every_s is None or not self.zones.get(frame.camera_id):
            return []
        last = self._zoomed.get(frame.camera_id)
        if last is not None and 0 <= frame.t_s - last[0] < self.zoom_every_s - 1e-6:
            return []
        h, w = frame.image.shape[:2]
        key = (frame.camera_id, w, h)
        if key not in self._tiles:
            from vision.edge.detection.zoom import zoom_tiles

            in_w, in_h = int(getattr(self.detector, "in_w", 320)), int(getattr(self.detector, "in_h", 320))
            self._tiles[key] = zoom_tiles(self.zones[frame.camera_id], w, h, in_w, in_h)
        return self._tiles[key]

    def zoomed(self, frame: _Frame, fresh: sv.Detections | None) -> sv.Detections:
        """Tile detections of this look; between zoomed looks the held ones of objects that stay put."""
        if fresh is not None:
            names = np.asarray(fresh.data.get("class_name", []), dtype=object)
            stay = select_detections(fresh, ~np.isin(names, list(MOVERS))) if len(fresh) else fresh
            self._zoomed[frame.camera_id] = (frame.t_s, stay)
            return fresh
        last = self._zoomed.get(frame.camera_id)
        return last[1] if last is not None else empty_detections()


class RoutedDetections:
    """The frames of one pass through every route; one merged `sv.Detections` per frame."""

    def __init__(self, routes: Sequence[ModelRoute]):
        if not routes:
            raise ValueError("a site needs at least one detector")
        self.routes = list(routes)

    def detect(self, frames: Sequence[_Frame]) -> list[sv.Detections]:
        per_route: list[list[sv.Detections]] = []
        for route in self.routes:
            due = [i for i, f in enumerate(frames) if route.due(f)]
            tiles = {i: route.tiles(frames[i]) for i in due}
            images = [frames[i].image for i in due]
            for i in due:
                images += [frames[i].image[y1:y2, x1:x2] for x1, y1, x2, y2 in tiles[i]]
            fresh = route.pool.detect_batch(images) if images else []
            if len(fresh) != len(images):
                raise RuntimeError(f"detector {route.name} returned {len(fresh)} results for {len(images)} images")
            on_tiles = iter(fresh[len(due) :])
            results = [route.held(f) for f in frames]
            for i, dets in zip(due, fresh[: len(due)], strict=True):
                if route.zoom_every_s is not None:
                    parts = [_shifted(next(on_tiles), tile) for tile in tiles[i]]
                    dets = merge_detections([dets, route.zoomed(frames[i], merge_detections(parts) if parts else None)])
                kept = route.keep(dets)
                route.remember(frames[i], kept)
                results[i] = kept
            per_route.append(results)
        if len(self.routes) == 1:
            return per_route[0]
        return [merge_detections([r[i] for r in per_route]) for i in range(len(frames))]

    def provenance(self, classes: Sequence[str]) -> tuple[str, str]:
        """Model name and version to stamp on a case made of these classes."""
        used = [r for r in self.routes if any(r.serves(c) for c in classes)] or self.routes[:1]
        return "+".join(r.name for r in used), "+".join(r.version for r in used)

    def close(self) -> None:
        for route in self.routes:
            route.pool.close()


# Objects that move through the scene: a zoomed look's boxes of them are not held until the next one.
MOVERS = ("person", "car", "truck", "bus", "muddy_truck")
ENSEMBLE_IOU = 0.5  # boxes of one class from two models overlapping this much are one object


def merge_detections(parts: Sequence[sv.Detections]) -> sv.Detections:
    """One container from several models: class ids re-numbered over the union of class names; a class
    that several models serve keeps one box per object (the most confident, class-wise NMS)."""
    parts = [p for p in parts if len(p)]
    if not parts:
        return empty_detections()
    if len(parts) == 1:
        return parts[0]
    names = np.concatenate([np.asarray(p.data["class_name"], dtype=object) for p in parts])
    vocabulary = sorted(set(names.tolist()))
    index = {n: i for i, n in enumerate(vocabulary)}
    xyxy = np.concatenate([p.xyxy for p in parts]).astype(np.float32, copy=False)
    conf = np.concatenate([confidences(p) for p in parts]).astype(np.float32, copy=False)
    class_id = np.asarray([index[n] for n in names], dtype=int)
    keep = np.sort(classwise_nms(xyxy, conf, class_id, ENSEMBLE_IOU))
    return sv.Detections(
        xyxy=xyxy[keep], confidence=conf[keep], class_id=class_id[keep], data={"class_name": names[keep]}
    )


def _shifted(dets: sv.Detections, tile: tuple[int, int, int, int]) -> sv.Detections:
    """Detections of a tile in the full frame's pixels."""
    if len(dets):
        dets.xyxy = dets.xyxy + np.asarray([tile[0], tile[1], tile[0], tile[1]], dtype=dets.xyxy.dtype)
    return dets

"""Drawing for people: boxes with class, score and track id; zones. Never used by rules."""

from __future__ import annotations

import cv2
import numpy as np
import supervision as sv

from vision.edge.config import ZoneConfig

ZONE_COLOURS = {  # BGR
    "no_vending": (0, 140, 255),
    "no_parking": (255, 120, 0),
    "bike_bay": (0, 200, 0),
    "garbage_watch": (180, 0, 180),
    "site_exit": (0, 0, 230),
}


class FrameAnnotator:
    def __init__(self) -> None:
        self._boxes = sv.BoxAnnotator(thickness=2)
        self._labels = sv.LabelAnnotator(text_scale=0.4, text_thickness=1, text_padding=3)

    def draw_zones(self, image: np.ndarray, zones: list[ZoneConfig]) -> np.ndarray:
        h, w = image.shape[:2]
        overlay = image.copy()
        for zone in zones:
            pts = np.round(np.asarray(zone.polygon, dtype=np.float32) * [w, h]).astype(np.int32)
            colour = ZONE_COLOURS.get(zone.kind, (200, 200, 200))
            if zone.is_line:
                cv2.line(image, tuple(pts[0]), tuple(pts[1]), colour, 3)
            else:
                cv2.fillPoly(overlay, [pts], colour)
                cv2.polylines(image, [pts], True, colour, 2)
            cv2.putText(
                image, zone.name, tuple(pts[0] + [4, 14]), cv2.FONT_HERSHEY_SIMPLEX, 0.45, colour, 1, cv2.LINE_AA
            )
        cv2.addWeighted(overlay, 0.18, image, 0.82, 0, dst=image)
        return image

    def draw_detections(self, image: np.ndarray, detections: sv.Detections) -> np.ndarray:
        if len(detections) == 0:
            return image
        n = len(detections)
        names = detections.data.get("class_name")
        if names is None:
            names = [str(c) for c in detections.class_id] if detections.class_id is not None else [""] * n
        scores = [f" {c:.2f}" for c in detections.confidence] if detections.confidence is not None else [""] * n
        ids = (
            [f"#{t} " if t >= 0 else "" for t in detections.tracker_id]
            if detections.tracker_id is not None
            else [""] * n
        )
        labels = [f"{track}{name}{score}" for name, score, track in zip(names, scores, ids, strict=True)]
        self._boxes.annotate(image, detections)
        self._labels.annotate(image, detections, labels=labels)
        return image

    def annotate(
        self, image: np.ndarray, detections: sv.Detections, zones: list[ZoneConfig] | None = None
    ) -> np.ndarray:
        out = image.copy()
        if zones:
            self.draw_zones(out, zones)
        return self.draw_detections(out, detections)

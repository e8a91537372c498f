"""Detectors: one interface, several backends, one output type.

Every backend returns `supervision.Detections` with pixel `xyxy` (float32),
`confidence`, `class_id` and `data["class_name"]`, so zones, rules and
drawing never see a model library's own types.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import supervision as sv

from vision.edge.detection.base import DetectorError, empty_detections, make_detections

__all__ = ["Detector", "DetectorError", "open_detector", "make_detections", "empty_detections"]


@runtime_checkable
class Detector(Protocol):
    name: str
    version: str
    class_names: list[str]

    def detect(self, image: np.ndarray) -> sv.Detections:
        """Detections in one BGR frame, in that frame's pixel coordinates."""

    def detect_batch(self, images: list[np.ndarray]) -> list[sv.Detections]:
        """Detections for several frames (e.g. from several cameras) in one call where the model allows."""


def open_detector(model: str | Path, *, min_confidence: float = 0.3, threads: int = 0) -> Detector:
    """A detector from a registry name (models/<name>/card.yaml) or a model file.

    `.onnx` files exported by ultralytics run on onnxruntime without torch;
    `.pt` files need the `train` extra (ultralytics + torch).
    """
    from vision.core.model_registry import ModelNotFound, load_card, verify_card

    path = Path(model)
    if path.suffix == ".pt":
        from vision.edge.detection.ultralytics_backend import UltralyticsDetector

        return UltralyticsDetector(path, min_confidence=min_confidence)
    if path.suffix == ".onnx":
        if not path.is_file():
            raise DetectorError(f"model file not found: {path}")
        from vision.edge.detection.yolo_onnx import YoloOnnxDetector

        return YoloOnnxDetector(path, min_confidence=min_confidence, threads=threads)
    try:
        card = load_card(model)
    except ModelNotFound as exc:
        raise DetectorError(str(exc)) from None
    verify_card(card)
    if card.backend == "nanodet-onnx":
        from vision.edge.detection.nanodet import NanoDetDetector

        return NanoDetDetector(card, min_confidence=min_confidence, threads=threads)
    if card.backend == "yolo-onnx":
        from vision.edge.detection.yolo_onnx import YoloOnnxDetector

        return YoloOnnxDetector(card.path, card=card, min_confidence=min_confidence, threads=threads)
    from vision.edge.detection.ultralytics_backend import UltralyticsDetector

    return UltralyticsDetector(card.path, card=card, min_confidence=min_confidence)

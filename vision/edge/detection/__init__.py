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

from vision.edge.detection.base import RUNTIMES, DetectorError, Runtime, empty_detections, make_detections

__all__ = ["Detector", "DetectorError", "RUNTIMES", "Runtime", "open_detector", "make_detections", "empty_detections"]


@runtime_checkable
class Detector(Protocol):
    name: str
    version: str
    class_names: list[str]

    def detect(self, image: np.ndarray) -> sv.Detections:
        """Detections in one BGR frame, in that frame's pixel coordinates."""

    def detect_batch(self, images: list[np.ndarray]) -> list[sv.Detections]:
        """Detections for several frames (e.g. from several cameras) in one call where the model allows."""


def open_detector(
    model: str | Path,
    *,
    min_confidence: float = 0.3,
    threads: int = 0,
    runtime: Runtime = "onnxruntime",
    workers: int = 0,
) -> Detector:
    """A detector from a registry name (models/<name>/card.yaml) or a model file.

    `.onnx` files exported by ultralytics run on onnxruntime without torch;
    `.pt` files need the `train` extra (ultralytics + torch). `runtime` runs ONNX
    models on ONNX Runtime or OpenVINO (`detector.runtime`); `workers`: how many
    threads will call the detector at once (OpenVINO prepares a stream for each).
    """
    from vision.core.model_registry import ModelNotFound, load_card, verify_card

    if runtime not in RUNTIMES:
        raise DetectorError(f"unknown detector runtime {runtime!r}: one of {', '.join(RUNTIMES)}")
    path = Path(model)
    if path.suffix == ".pt":
        _torch_only(path, runtime)
        from vision.edge.detection.ultralytics_backend import UltralyticsDetector

        return UltralyticsDetector(path, min_confidence=min_confidence)
    if path.suffix == ".onnx":
        if not path.is_file():
            raise DetectorError(f"model file not found: {path}")
        from vision.edge.detection.yolo_onnx import YoloOnnxDetector

        return YoloOnnxDetector(path, min_confidence=min_confidence, threads=threads, runtime=runtime, workers=workers)
    try:
        card = load_card(model)
    except ModelNotFound as exc:
        raise DetectorError(str(exc)) from None
    verify_card(card)
    if card.backend == "nanodet-onnx":
        from vision.edge.detection.nanodet import NanoDetDetector

        return NanoDetDetector(card, min_confidence=min_confidence, threads=threads, runtime=runtime, workers=workers)
    if card.backend == "yolo-onnx":
        from vision.edge.detection.yolo_onnx import YoloOnnxDetector

        return YoloOnnxDetector(
            card.path, card=card, min_confidence=min_confidence, threads=threads, runtime=runtime, workers=workers
        )
    _torch_only(card.path, runtime)
    from vision.edge.detection.ultralytics_backend import UltralyticsDetector

    return UltralyticsDetector(card.path, card=card, min_confidence=min_confidence)


def _torch_only(path: Path, runtime: Runtime) -> None:
    """A torch checkpoint runs on torch alone: asking for another runtime is an error, not silently ignored."""
    if runtime != "onnxruntime":
        raise DetectorError(
            f"{path} is a torch model (ultralytics backend); detector runtime {runtime!r} runs ONNX models only: "
            "export it (streetvision export) or set detector.runtime: onnxruntime"
        )

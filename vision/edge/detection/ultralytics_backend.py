"""Models as engineers train them (`.pt`), run through ultralytics.

Needs the `train` extra (torch). The edge runs the exported ONNX through
`yolo_onnx` instead; this backend exists to check a checkpoint before export.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import supervision as sv

from vision.core.model_registry import ModelCard
from vision.edge.detection.base import DetectorError, empty_detections, make_detections

if TYPE_CHECKING:
    import torch


class UltralyticsDetector:
    def __init__(self, path: str | Path, *, card: ModelCard | None = None, min_confidence: float = 0.3):
        self.path = Path(path)
        if not self.path.is_file():
            raise DetectorError(f"model file not found: {self.path}")
        try:
            from vision.edge.detection.ultralytics_env import prepare_offline

            prepare_offline()
            from ultralytics import YOLO  # type: ignore[attr-defined]  # exported lazily through the package's __getattr__
        except ImportError as exc:
            raise DetectorError(
                f"{self.path}: .pt models need the training extra (pip install -e '.[train]'): {exc}"
            ) from None
        self.model = YOLO(str(self.path), task="detect")
        names = self.model.names
        self.class_names = [names[i] for i in sorted(names)]
        self.name = card.name if card else self.path.stem
        self.version = card.version if card else "unversioned"
        self.imgsz = card.input.width if card else int(self.model.overrides.get("imgsz", 640) or 640)
        self.min_confidence = min_confidence

    def detect(self, image: np.ndarray) -> sv.Detections:
        return self.detect_batch([image])[0]

    def detect_batch(self, images: list[np.ndarray]) -> list[sv.Detections]:
        from ultralytics.engine.results import Results

        results = self.model.predict(images, conf=self.min_confidence, imgsz=self.imgsz, verbose=False)
        out = []
        for res in results:
            assert isinstance(res, Results)  # predict without stream=True gives one Results per image
            boxes = res.boxes
            if boxes is None or len(boxes) == 0:
                out.append(empty_detections())
                continue
            out.append(
                make_detections(
                    _numpy(boxes.xyxy),
                    _numpy(boxes.conf),
                    _numpy(boxes.cls).astype(int),
                    self.class_names,
                )
            )
        return out


def _numpy(values: torch.Tensor | np.ndarray) -> np.ndarray:
    """A field of ultralytics' boxes as a numpy array (the boxes hold tensors, on the GPU when it ran there)."""
    return values if isinstance(values, np.ndarray) else values.cpu().numpy()

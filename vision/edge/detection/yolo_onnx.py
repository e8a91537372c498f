"""Ultralytics-exported YOLO detectors on ONNX Runtime (or OpenVINO), without torch.

The export stores `names` and `imgsz` in the ONNX metadata and gives one
output (batch, 4 + classes, anchors): centre x, centre y, width, height in
letterboxed input pixels, then per-class scores with the sigmoid applied.
"""

from __future__ import annotations

import ast
from pathlib import Path

import cv2
import numpy as np
import supervision as sv

from vision.core.model_registry import ModelCard
from vision.edge.detection.base import (
    DetectorError,
    Runtime,
    classwise_nms,
    detector_session,
    empty_detections,
    make_detections,
)

PAD_VALUE = 114


def letterbox(image: np.ndarray, width: int, height: int) -> tuple[np.ndarray, float, tuple[int, int]]:
    """Resize keeping aspect ratio, pad to (height, width); returns image, scale, (pad_x, pad_y)."""
    h, w = image.shape[:2]
    scale = min(width / w, height / h)
    new_w, new_h = round(w * scale), round(h * scale)
    pad_x, pad_y = (width - new_w) // 2, (height - new_h) // 2
    canvas = np.full((height, width, 3), PAD_VALUE, dtype=np.uint8)
    resized = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR) if (new_w, new_h) != (w, h) else image
    canvas[pad_y : pad_y + new_h, pad_x : pad_x + new_w] = resized
    return canvas, scale, (pad_x, pad_y)


class YoloOnnxDetector:
    thread_safe = True  # no per-call state on the object; both runtimes' sessions allow concurrent runs

    def __init__(
        self,
        path: str | Path,
        *,
        card: ModelCard | None = None,
        min_confidence: float = 0.3,
        nms_iou: float = 0.5,
        threads: int = 0,
        runtime: Runtime = "onnxruntime",
        workers: int = 0,
    ):
        self.path = Path(path)
        self.runtime = runtime
        self.session = detector_session(self.path, threads, runtime, workers)
        meta = self.session.get_modelmeta().custom_metadata_map
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        if card is not None:
            self.class_names = list(card.classes)
            self.in_w, self.in_h = card.input.width, card.input.height
            self.name, self.version = card.name, card.version
        else:
            if "names" not in meta:
                raise DetectorError(f"{self.path}: no 'names' in ONNX metadata; is it an ultralytics export?")
            names = ast.literal_eval(meta["names"])
            self.class_names = [names[i] for i in sorted(names)]
            imgsz = ast.literal_eval(meta.get("imgsz", "[640, 640]"))
            self.in_h, self.in_w = int(imgsz[0]), int(imgsz[1])
            self.name, self.version = self.path.stem, meta.get("version", "unversioned")
        out_shape = self.session.get_outputs()[0].shape
        if isinstance(out_shape[1], int) and out_shape[1] != 4 + len(self.class_names):
            raise DetectorError(
                f"{self.path}: output has {out_shape[1]} rows, expected 4 + {len(self.class_names)} classes"
            )
        self.batchable = not isinstance(inp.shape[0], int)
        self.min_confidence = min_confidence
        self.nms_iou = nms_iou

    def preprocess(self, image: np.ndarray) -> tuple[np.ndarray, float, tuple[int, int]]:
        boxed, scale, pad = letterbox(image, self.in_w, self.in_h)
        blob = cv2.cvtColor(boxed, cv2.COLOR_BGR2RGB).astype(np.float32) * (1.0 / 255.0)
        return blob.transpose(2, 0, 1)[np.newaxis], scale, pad

    def postprocess(
        self, output: np.ndarray, scale: float, pad: tuple[int, int], frame_w: int, frame_h: int
    ) -> sv.Detections:
        preds = output.T  # (anchors, 4 + classes)
        scores = preds[:, 4:]
        class_id = scores.argmax(axis=1)
        best = scores[np.arange(len(scores)), class_id]
        cand = np.flatnonzero(best >= self.min_confidence)
        if len(cand) == 0:
            return empty_detections()
        cxcywh = preds[cand, :4]
        xyxy = np.empty_like(cxcywh)
        xyxy[:, :2] = cxcywh[:, :2] - cxcywh[:, 2:] / 2
        xyxy[:, 2:] = cxcywh[:, :2] + cxcywh[:, 2:] / 2
        xyxy -= np.array([pad[0], pad[1], pad[0], pad[1]], dtype=np.float32)
        xyxy /= scale
        np.clip(xyxy, 0, [frame_w, frame_h, frame_w, frame_h], out=xyxy)
        keep = classwise_nms(xyxy, best[cand], class_id[cand], self.nms_iou)
        return make_detections(xyxy[keep], best[cand][keep], class_id[cand][keep], self.class_names)

    def detect(self, image: np.ndarray) -> sv.Detections:
        blob, scale, pad = self.preprocess(image)
        (output,) = self.session.run(None, {self.input_name: blob})[:1]
        h, w = image.shape[:2]
        return self.postprocess(output[0], scale, pad, w, h)

    def detect_batch(self, images: list[np.ndarray]) -> list[sv.Detections]:
        if not self.batchable or len(images) <= 1:
            return [self.detect(img) for img in images]
        prepared = [self.preprocess(img) for img in images]
        blob = np.concatenate([p[0] for p in prepared])
        output = self.session.run(None, {self.input_name: blob})[0]
        return [
            self.postprocess(output[i], scale, pad, img.shape[1], img.shape[0])
            for i, ((_, scale, pad), img) in enumerate(zip(prepared, images, strict=True))
        ]

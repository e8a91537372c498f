"""NanoDet (COCO-80, 416x416) on ONNX Runtime: the pretrained base model.

Facts of this export (shared/data/README.md): BGR input, plain resize,
per-channel mean/std; per stride (32, 16, 8) a [1, N, 80] score map with the
sigmoid applied and a [1, N, 44] box map = 4 sides x 11 distribution bins
(GFL). Decoding is done only for cells above the score threshold, so the cost
stays flat however busy the scene.
"""

from __future__ import annotations

import cv2
import numpy as np
import supervision as sv

from vision.core.model_registry import ModelCard
from vision.edge.detection.base import classwise_nms, empty_detections, make_detections, ort_session

STRIDES = (8, 16, 32)
REG_BINS = 11


class NanoDetDetector:
    thread_safe = True  # read-only anchors and constants; ORT sessions allow concurrent runs

    def __init__(self, card: ModelCard, *, min_confidence: float = 0.3, nms_iou: float = 0.6, threads: int = 0):
        self.card = card
        self.name = card.name
        self.version = card.version
        self.class_names = list(card.classes)
        self.min_confidence = min_confidence
        self.nms_iou = nms_iou
        self.session = ort_session(card.path, threads)
        self.input_name = self.session.get_inputs()[0].name
        self.in_w, self.in_h = card.input.width, card.input.height
        std = np.asarray(card.input.std, dtype=np.float32)
        self._scale = (1.0 / std).reshape(1, 1, 3)
        self._shift = (-np.asarray(card.input.mean, dtype=np.float32) / std).reshape(1, 1, 3)
        self._score_outputs, self._box_outputs, self._centers, self._strides = self._anchor_layout()

    def _anchor_layout(self) -> tuple[list[str], list[str], np.ndarray, np.ndarray]:
        """Order the six outputs by stride and precompute every cell's centre."""
        by_cells: dict[tuple[int, int], str] = {}
        for out in self.session.get_outputs():
            n_cells, width = out.shape[1], out.shape[2]
            by_cells[(n_cells, width)] = out.name
        score_names: list[str] = []
        box_names: list[str] = []
        centers: list[np.ndarray] = []
        strides: list[np.ndarray] = []
        for stride in STRIDES:
            cols, rows = self.in_w // stride, self.in_h // stride
            n = cols * rows
            score_names.append(by_cells[(n, len(self.class_names))])
            box_names.append(by_cells[(n, 4 * REG_BINS)])
            ys, xs = np.mgrid[0:rows, 0:cols]
            centers.append(np.stack([(xs.ravel() + 0.5) * stride, (ys.ravel() + 0.5) * stride], axis=1))
            strides.append(np.full(n, stride, dtype=np.float32))
        return (
            score_names,
            box_names,
            np.concatenate(centers).astype(np.float32),
            np.concatenate(strides),
        )

    def preprocess(self, image: np.ndarray) -> np.ndarray:
        resized = cv2.resize(image, (self.in_w, self.in_h), interpolation=cv2.INTER_LINEAR)
        blob = np.asarray(cv2.dnn.blobFromImage(resized), dtype=np.float32)  # float32 NCHW in one C pass
        blob *= self._scale.reshape(1, 3, 1, 1)
        blob += self._shift.reshape(1, 3, 1, 1)
        return blob

    def run(self, blob: np.ndarray) -> list[np.ndarray]:
        outputs: list[np.ndarray] = self.session.run(self._score_outputs + self._box_outputs, {self.input_name: blob})
        return outputs

    def postprocess(self, outputs: list[np.ndarray], frame_w: int, frame_h: int) -> sv.Detections:
        n_levels = len(STRIDES)
        scores = np.concatenate([o[0] for o in outputs[:n_levels]])  # (cells, classes)
        class_id = scores.argmax(axis=1)
        best = scores[np.arange(len(scores)), class_id]
        cand = np.flatnonzero(best >= self.min_confidence)
        if len(cand) == 0:
            return empty_detections()
        reg = np.concatenate([o[0] for o in outputs[n_levels:]])[cand].reshape(-1, 4, REG_BINS)
        reg = np.exp(reg - reg.max(axis=2, keepdims=True))
        reg /= reg.sum(axis=2, keepdims=True)
        dist = (reg @ np.arange(REG_BINS, dtype=np.float32)) * self._strides[cand, None]  # (k, 4): l, t, r, b
        ctr = self._centers[cand]
        xyxy = np.concatenate([ctr - dist[:, :2], ctr + dist[:, 2:]], axis=1)
        xyxy *= np.array([frame_w / self.in_w, frame_h / self.in_h] * 2, dtype=np.float32)
        np.clip(xyxy, 0, [frame_w, frame_h, frame_w, frame_h], out=xyxy)
        keep = classwise_nms(xyxy, best[cand], class_id[cand], self.nms_iou)
        return make_detections(xyxy[keep], best[cand][keep], class_id[cand][keep], self.class_names)

    def detect(self, image: np.ndarray) -> sv.Detections:
        h, w = image.shape[:2]
        return self.postprocess(self.run(self.preprocess(image)), w, h)

    def detect_batch(self, images: list[np.ndarray]) -> list[sv.Detections]:
        # The export has a fixed batch of 1.
        return [self.detect(img) for img in images]

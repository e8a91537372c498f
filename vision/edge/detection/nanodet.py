"""NanoDet (COCO-80, 416x416) on ONNX Runtime or OpenVINO: the pretrained base model.

Facts of this export (shared/data/README.md): BGR input, plain resize,
per-channel mean/std; per stride (32, 16, 8) a [1, N, 80] score map with the
sigmoid applied and a [1, N, 44] box map = 4 sides x 11 distribution bins
(GFL). Decoding is done only for cells above the score threshold, so the cost
stays flat however busy the scene. A card with `heads` names the outputs of
each head (a second head grafted on the same network adds classes for the
cost of its small convolutions, not of a second model).
"""

from __future__ import annotations

from dataclasses import dataclass

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

STRIDES = (8, 16, 32)
REG_BINS = 11


@dataclass(frozen=True)
class _Head:
    """One class head: its classes' offset in the detector's class list and its outputs by stride."""

    first_class: int
    n_classes: int
    scores: list[str]
    boxes: list[str]


class NanoDetDetector:
    """NanoDet with one class head (COCO) or several on the same network (COCO + the
    city head of `vision.training.city_head`): one forward pass serves every head."""

    thread_safe = True  # read-only anchors and constants; both runtimes' sessions allow concurrent runs

    def __init__(
        self,
        card: ModelCard,
        *,
        min_confidence: float = 0.3,
        nms_iou: float = 0.6,
        threads: int = 0,
        runtime: Runtime = "onnxruntime",
        workers: int = 0,
    ):
        self.card = card
        self.name = card.name
        self.version = card.version
        self.class_names = list(card.classes)
        self.min_confidence = min_confidence
        self.nms_iou = nms_iou
        self.runtime = runtime
        self.session = detector_session(card.path, threads, runtime, workers)
        self.input_name = self.session.get_inputs()[0].name
        self.in_w, self.in_h = card.input.width, card.input.height
        std = np.asarray(card.input.std, dtype=np.float32)
        self._scale = (1.0 / std).reshape(1, 1, 3)
        self._shift = (-np.asarray(card.input.mean, dtype=np.float32) / std).reshape(1, 1, 3)
        # a class that two heads serve (bicycle from COCO and from the city head) is one class for NMS
        first = {n: i for i, n in reversed(list(enumerate(self.class_names)))}
        self._nms_class = np.asarray([first[n] for n in self.class_names], dtype=int)
        self._heads = self._head_layout()
        self._outputs = [o for h in self._heads for o in h.scores + h.boxes]
        self._centers, self._strides = self._anchor_layout()

    def _head_layout(self) -> list[_Head]:
        outputs = {o.name: o.shape for o in self.session.get_outputs()}
        if self.card.heads:
            heads, first = [], 0
            for spec in self.card.heads:
                missing = [n for n in spec.scores + spec.boxes if n not in outputs]
                if missing or len(spec.scores) != len(STRIDES):
                    raise DetectorError(
                        f"model {self.name}: card heads name outputs {missing or spec.scores} "
                        f"the ONNX file does not have one per stride {STRIDES}"
                    )
                heads.append(_Head(first, len(spec.classes), list(spec.scores), list(spec.boxes)))
                first += len(spec.classes)
            return heads
        # one head, outputs told apart by shape: (cells, classes) scores and (cells, 44) boxes per stride
        by_cells = {(shape[1], shape[2]): name for name, shape in outputs.items()}
        scores, boxes = [], []
        for stride in STRIDES:
            n = (self.in_w // stride) * (self.in_h // stride)
            scores.append(by_cells[(n, len(self.class_names))])
            boxes.append(by_cells[(n, 4 * REG_BINS)])
        return [_Head(0, len(self.class_names), scores, boxes)]

    def _anchor_layout(self) -> tuple[np.ndarray, np.ndarray]:
        """Every cell's centre and stride, strides in order (the outputs' cell order)."""
        centers: list[np.ndarray] = []
        strides: list[np.ndarray] = []
        for stride in STRIDES:
            cols, rows = self.in_w // stride, self.in_h // stride
            ys, xs = np.mgrid[0:rows, 0:cols]
            centers.append(np.stack([(xs.ravel() + 0.5) * stride, (ys.ravel() + 0.5) * stride], axis=1))
            strides.append(np.full(cols * rows, stride, dtype=np.float32))
        return np.concatenate(centers).astype(np.float32), np.concatenate(strides)

    def preprocess(self, image: np.ndarray) -> np.ndarray:
        resized = cv2.resize(image, (self.in_w, self.in_h), interpolation=cv2.INTER_LINEAR)
        blob = np.asarray(cv2.dnn.blobFromImage(resized), dtype=np.float32)  # float32 NCHW in one C pass
        blob *= self._scale.reshape(1, 3, 1, 1)
        blob += self._shift.reshape(1, 3, 1, 1)
        return blob

    def run(self, blob: np.ndarray) -> list[np.ndarray]:
        outputs: list[np.ndarray] = self.session.run(self._outputs, {self.input_name: blob})
        return outputs

    def _decode_head(
        self, head: _Head, scores_out: list[np.ndarray], boxes_out: list[np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        scores = np.concatenate([o[0] for o in scores_out])  # (cells, classes)
        class_id = scores.argmax(axis=1)
        best = scores[np.arange(len(scores)), class_id]
        cand = np.flatnonzero(best >= self.min_confidence)
        if len(cand) == 0:
            return np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, int)
        reg = np.concatenate([o[0] for o in boxes_out])[cand].reshape(-1, 4, REG_BINS)
        reg = np.exp(reg - reg.max(axis=2, keepdims=True))
        reg /= reg.sum(axis=2, keepdims=True)
        dist = (reg @ np.arange(REG_BINS, dtype=np.float32)) * self._strides[cand, None]  # (k, 4): l, t, r, b
        ctr = self._centers[cand]
        xyxy = np.concatenate([ctr - dist[:, :2], ctr + dist[:, 2:]], axis=1)
        return xyxy, best[cand], class_id[cand] + head.first_class

    def postprocess(self, outputs: list[np.ndarray], frame_w: int, frame_h: int) -> sv.Detections:
        parts, at = [], 0
        for head in self._heads:
            n = len(head.scores)
            parts.append(self._decode_head(head, outputs[at : at + n], outputs[at + n : at + 2 * n]))
            at += 2 * n
        xyxy = np.concatenate([p[0] for p in parts])
        if len(xyxy) == 0:
            return empty_detections()
        score = np.concatenate([p[1] for p in parts])
        class_id = np.concatenate([p[2] for p in parts])
        xyxy *= np.array([frame_w / self.in_w, frame_h / self.in_h] * 2, dtype=np.float32)
        np.clip(xyxy, 0, [frame_w, frame_h, frame_w, frame_h], out=xyxy)
        nms_class = self._nms_class[class_id]
        keep = classwise_nms(xyxy, score, nms_class, self.nms_iou)
        return make_detections(xyxy[keep], score[keep], nms_class[keep], self.class_names)

    def detect(self, image: np.ndarray) -> sv.Detections:
        h, w = image.shape[:2]
        return self.postprocess(self.run(self.preprocess(image)), w, h)

    def detect_batch(self, images: list[np.ndarray]) -> list[sv.Detections]:
        # The export has a fixed batch of 1.
        return [self.detect(img) for img in images]

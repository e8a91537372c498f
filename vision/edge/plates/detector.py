"""Where the plate is on a vehicle: a box and its four corners (clpr-plate-detector).

The model is RetinaFace-shaped: per prior a box offset, a plate score and four
corner offsets. Priors depend only on the input size, so they are built once per
size and kept. The corners matter more than the box: a plate seen at an angle
is rectified from them before it is read.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from vision.core.model_registry import ModelCard, load_card, verify_card
from vision.edge.detection.base import ort_session

DEFAULT_PLATE_DETECTOR = "clpr-plate-detector"
_STEPS = (8, 16, 32)
_MIN_SIZES = ((24, 48), (96, 192), (384, 768))
_VARIANCE = (0.1, 0.2)
_NMS_IOU = 0.4


@dataclass(frozen=True)
class PlateDetection:
    box: np.ndarray  # x1, y1, x2, y2 in the image's pixels
    corners: np.ndarray  # (4, 2) top-left, top-right, bottom-right, bottom-left, image pixels
    score: float


@lru_cache(maxsize=16)
def _priors(height: int, width: int) -> np.ndarray:
    """(N, 4) prior centres and sizes relative to the input, in the model's output order."""
    out = []
    for step, sizes in zip(_STEPS, _MIN_SIZES, strict=True):
        fh, fw = -(-height // step), -(-width // step)
        ys, xs = np.meshgrid(np.arange(fh), np.arange(fw), indexing="ij")
        cx = ((xs + 0.5) * step / width).reshape(-1, 1)
        cy = ((ys + 0.5) * step / height).reshape(-1, 1)
        per_size = [np.hstack([cx, cy, np.full_like(cx, s / width), np.full_like(cy, s / height)]) for s in sizes]
        out.append(np.stack(per_size, axis=1).reshape(-1, 4))  # cell-major, then size: the model's order
    return np.concatenate(out).astype(np.float32)


def order_corners(points: np.ndarray) -> np.ndarray:
    """Four points as top-left, top-right, bottom-right, bottom-left (whatever order they came in)."""
    pts = np.asarray(points, dtype=np.float32).reshape(4, 2)
    s, d = pts.sum(axis=1), pts[:, 1] - pts[:, 0]
    ordered = np.stack([pts[np.argmin(s)], pts[np.argmin(d)], pts[np.argmax(s)], pts[np.argmax(d)]])
    if len({tuple(p) for p in ordered.tolist()}) < 4:  # degenerate (a sliver): fall back to the box
        x1, y1 = pts.min(axis=0)
        x2, y2 = pts.max(axis=0)
        ordered = np.asarray([[x1, y1], [x2, y1], [x2, y2], [x1, y2]], dtype=np.float32)
    return ordered


class PlateDetector:
    """Plates in one image, most confident first."""

    def __init__(
        self, card: ModelCard | str = DEFAULT_PLATE_DETECTOR, *, threads: int = 1, min_score: float = 0.5
    ) -> None:
        self.card = load_card(card) if isinstance(card, str) else card
        verify_card(self.card)
        self.session = ort_session(self.card.path, threads)
        self.input_name = self.session.get_inputs()[0].name
        self.max_side = max(self.card.input.width, self.card.input.height)
        self.min_score = min_score
        self._mean = np.asarray(self.card.input.mean, dtype=np.float32)

    def input_scale(self, height: int, width: int) -> float:
        """Small crops are enlarged (the smallest prior is 24 px), large ones shrunk, to at most max_side."""
        return min(self.max_side / max(height, width), 4.0)

    def detect(self, image: np.ndarray) -> list[PlateDetection]:
        h, w = image.shape[:2]
        if h < 8 or w < 8:
            return []
        scale = self.input_scale(h, w)
        ih, iw = max(16, round(h * scale)), max(16, round(w * scale))
        resized = cv2.resize(image, (iw, ih), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        blob = (resized.astype(np.float32) - self._mean).transpose(2, 0, 1)[None]
        loc, conf, landms = self.session.run(None, {self.input_name: np.ascontiguousarray(blob)})
        scores = conf[0, :, 1]
        keep = np.flatnonzero(scores >= self.min_score)
        if keep.size == 0:
            return []
        priors = _priors(ih, iw)[keep]
        loc, landms, scores = loc[0, keep], landms[0, keep], scores[keep]
        centres = priors[:, :2] + loc[:, :2] * _VARIANCE[0] * priors[:, 2:]
        sizes = priors[:, 2:] * np.exp(loc[:, 2:] * _VARIANCE[1])
        boxes = np.hstack([centres - sizes / 2, centres + sizes / 2]) * np.asarray([iw, ih, iw, ih]) / scale
        corners = (
            (priors[:, None, :2] + landms.reshape(-1, 4, 2) * _VARIANCE[0] * priors[:, None, 2:])
            * np.asarray([iw, ih])
            / scale
        )
        chosen = cv2.dnn.NMSBoxes(
            [[float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])] for b in boxes],
            [float(s) for s in scores],
            self.min_score,
            _NMS_IOU,
        )
        found = [
            PlateDetection(
                box=np.clip(boxes[i], 0, [w, h, w, h]).astype(np.float32),
                corners=order_corners(np.clip(corners[i], 0, [w - 1, h - 1])),
                score=float(scores[i]),
            )
            for i in np.asarray(chosen, dtype=int).reshape(-1)
        ]
        return sorted(found, key=lambda d: -d.score)

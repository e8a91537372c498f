"""Crops in, pretrained image features out (EfficientNet-Lite0 on ONNX Runtime, no torch).

Training (`streetvision train classifier`) and the edge prepare crops with the
same `prepare_crops`, so the head sees the same kind of input in both places:
the box widened by some context, letterboxed on grey (a bicycle keeps its
shape), and lifted when dark, since dusk crops are otherwise near-black for
a network trained on daylight photos.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import numpy.typing as npt

from vision.core.model_registry import ModelCard, load_card, verify_card
from vision.edge.detection.base import ort_session

DEFAULT_BACKBONE = "effnet-lite0-imagenet"
_DARK_LUMA = 90.0  # mean luma (0-255) under which a crop is brightened


def crop_box(image: np.ndarray, xyxy: np.ndarray | Sequence[float], context: float = 0.15) -> np.ndarray:
    """The box widened by `context` of its size on each side, clipped to the frame (never empty)."""
    h, w = image.shape[:2]
    x1, y1, x2, y2 = (float(v) for v in xyxy)
    bw, bh = max(x2 - x1, 2.0), max(y2 - y1, 2.0)
    x1, x2 = x1 - context * bw, x2 + context * bw
    y1, y2 = y1 - context * bh, y2 + context * bh
    ix1, iy1 = int(np.clip(np.floor(x1), 0, w - 1)), int(np.clip(np.floor(y1), 0, h - 1))
    ix2, iy2 = int(np.clip(np.ceil(x2), ix1 + 1, w)), int(np.clip(np.ceil(y2), iy1 + 1, h))
    return image[iy1:iy2, ix1:ix2]


def lift_if_dark(crop: np.ndarray) -> np.ndarray:
    """Contrast-limited equalisation of the luma of a dark crop; daylight crops pass unchanged."""
    lab = cv2.cvtColor(crop, cv2.COLOR_BGR2LAB)
    if float(lab[..., 0].mean()) >= _DARK_LUMA:
        return crop
    clahe = cv2.createCLAHE(clipLimit=3.0, tileGridSize=(4, 4))
    lab[..., 0] = clahe.apply(lab[..., 0])
    return cv2.cvtColor(lab, cv2.COLOR_LAB2BGR)


def letterbox(crop: np.ndarray, size: int) -> np.ndarray:
    h, w = crop.shape[:2]
    scale = size / max(h, w)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    resized = cv2.resize(crop, (nw, nh), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    out = np.full((size, size, 3), 114, dtype=np.uint8)
    y0, x0 = (size - nh) // 2, (size - nw) // 2
    out[y0 : y0 + nh, x0 : x0 + nw] = resized
    return out


class CropEmbedder:
    """Features (N, 1280) and ImageNet probabilities (N, 1000) for boxes of one frame."""

    thread_safe = True

    def __init__(self, card: ModelCard | str = DEFAULT_BACKBONE, *, threads: int = 1):
        self.card = load_card(card) if isinstance(card, str) else card
        verify_card(self.card)
        self.name, self.version = self.card.name, self.card.version
        self.size = self.card.input.width
        self.session = ort_session(self.card.path, threads)
        self._mean = np.asarray(self.card.input.mean, dtype=np.float32).reshape(1, 1, 3)
        self._std = np.asarray(self.card.input.std, dtype=np.float32).reshape(1, 1, 3)
        names = self.card.directory / "imagenet_classes.txt" if self.card.directory else None
        self.imagenet_classes = names.read_text(encoding="utf-8").splitlines() if names and names.is_file() else []

    def prepare(self, crops: list[np.ndarray]) -> np.ndarray:
        batch = np.empty((len(crops), 3, self.size, self.size), dtype=np.float32)
        for i, crop in enumerate(crops):
            rgb = letterbox(lift_if_dark(crop), self.size)[..., ::-1].astype(np.float32)
            batch[i] = ((rgb - self._mean) / self._std).transpose(2, 0, 1)
        return batch

    def embed_crops(self, crops: list[np.ndarray], batch_size: int = 16) -> tuple[np.ndarray, np.ndarray]:
        if not crops:
            return np.empty((0, 1280), np.float32), np.empty((0, 1000), np.float32)
        feats, probs = [], []
        for i in range(0, len(crops), batch_size):
            f, logits = self.session.run(None, {"images": self.prepare(crops[i : i + batch_size])})
            e = np.exp(logits - logits.max(axis=1, keepdims=True))
            feats.append(f)
            probs.append(e / e.sum(axis=1, keepdims=True))
        return np.concatenate(feats).astype(np.float32), np.concatenate(probs).astype(np.float32)

    def embed(
        self, image: np.ndarray, boxes_xyxy: npt.ArrayLike, context: float = 0.15
    ) -> tuple[np.ndarray, np.ndarray]:
        return self.embed_crops([crop_box(image, b, context) for b in np.asarray(boxes_xyxy).reshape(-1, 4)])

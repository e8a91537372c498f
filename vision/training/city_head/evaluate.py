"""How well a detector finds the head's classes on tiles of a data set: AP50, the
precision-recall curve, and recall at a working precision, per class.

Detection runs through the edge's own detector (`open_detector`), on the exported
model, so the numbers are those of the file that ships, and any other detector
(the COCO model alone, city-v1) is measured on the very same tiles beside it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from vision.core.geometry import box_iou
from vision.training.city_head.tiles import Tile

if TYPE_CHECKING:
    from vision.edge.detection import Detector

IOU = 0.5
WORKING_PRECISION = 0.9


@dataclass
class ClassResult:
    truths: int = 0
    scored: list[tuple[float, bool]] = field(default_factory=list)  # (score, true positive) per detection

    def curve(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Recall, precision and score threshold at each detection, best score first."""
        if not self.scored:
            return np.zeros(0), np.zeros(0), np.zeros(0)
        order = sorted(self.scored, key=lambda s: -s[0])
        tp = np.cumsum([s[1] for s in order])
        fp = np.cumsum([not s[1] for s in order])
        recall = tp / max(self.truths, 1)
        precision = tp / np.maximum(tp + fp, 1)
        return recall, precision, np.asarray([s[0] for s in order])

    @property
    def ap50(self) -> float:
        """101-point interpolated average precision (COCO's way)."""
        recall, precision, _ = self.curve()
        if self.truths == 0 or len(recall) == 0:
            return 0.0
        return float(
            np.mean([precision[recall >= r].max() if (recall >= r).any() else 0.0 for r in np.linspace(0, 1, 101)])
        )

    def recall_at(self, precision_floor: float = WORKING_PRECISION) -> tuple[float, float]:
        """The highest recall with precision >= the floor, and the score threshold that gives it."""
        recall, precision, scores = self.curve()
        ok = np.flatnonzero(precision >= precision_floor)
        if len(ok) == 0:
            return 0.0, 1.0
        best = ok[np.argmax(recall[ok])]
        return float(recall[best]), float(scores[best])

    def summary(self) -> dict[str, float]:
        r, thr = self.recall_at()
        return {
            "ap50": round(float(self.ap50), 4),
            "truths": int(self.truths),
            f"recall_at_p{int(WORKING_PRECISION * 100)}": round(float(r), 4),
            "threshold": round(float(thr), 3),
        }


def score_tile(
    results: dict[str, ClassResult],
    classes: Sequence[str],
    tile: Tile,
    xyxy: np.ndarray,
    confidence: np.ndarray,
    names: np.ndarray,
) -> None:
    """Match one tile's detections to its truth, class by class (greedy by score, IoU >= 0.5)."""
    for k, name in enumerate(classes):
        truth = np.asarray([(b.x1, b.y1, b.x2, b.y2) for b in tile.boxes if b.cls == k and not b.ignore]).reshape(-1, 4)
        ignored = np.asarray([(b.x1, b.y1, b.x2, b.y2) for b in tile.boxes if b.cls == k and b.ignore]).reshape(-1, 4)
        res = results.setdefault(name, ClassResult())
        res.truths += len(truth)
        mine = np.flatnonzero(names == name)
        used = np.zeros(len(truth), bool)
        for i in mine[np.argsort(-confidence[mine])]:
            if len(truth):
                ious = box_iou(xyxy[i : i + 1], truth)[0]
                j = int(np.argmax(ious))
                if ious[j] >= IOU and not used[j]:
                    used[j] = True
                    res.scored.append((float(confidence[i]), True))
                    continue
            if len(ignored) and box_iou(xyxy[i : i + 1], ignored).max() >= IOU:
                continue  # an object cut by the tile's edge: neither right nor wrong
            res.scored.append((float(confidence[i]), False))


def evaluate(detector: Detector, tiles: Sequence[Tile], classes: Sequence[str]) -> dict[str, ClassResult]:
    results: dict[str, ClassResult] = {c: ClassResult() for c in classes}
    for tile in tiles:
        dets = detector.detect(tile.image)
        names = np.asarray(dets.data.get("class_name", np.empty(0, dtype=object)))
        conf = dets.confidence if dets.confidence is not None else np.ones(len(dets), np.float32)
        score_tile(results, classes, tile, dets.xyxy, conf, names)
    return results


def plot_pr(curves: dict[str, dict[str, ClassResult]], path: Path, title: str) -> Path:
    """One panel per class, one line per detector: where a detector keeps its precision."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    classes = sorted({c for per in curves.values() for c in per})
    fig = Figure(figsize=(3.2 * len(classes), 3.2))
    FigureCanvasAgg(fig)
    for i, name in enumerate(classes):
        ax = fig.add_subplot(1, len(classes), i + 1)
        for detector, per in curves.items():
            if name not in per or per[name].truths == 0:
                continue
            recall, precision, _ = per[name].curve()
            ax.plot(recall, precision, label=f"{detector} AP50 {per[name].ap50:.2f}")
        ax.set_title(f"{name}", fontsize=9)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("recall")
        if i == 0:
            ax.set_ylabel("precision")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6, loc="lower left")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path

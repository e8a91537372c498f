"""The edge's plate recognizer on the drawn test set: is the plate found, read exactly, how close, at what CPU cost.

Per sample: found (the recognizer's plate overlaps the drawn one, box IoU >= 0.3), exact (its
normalised text is the plate's), character accuracy (1 - edit distance / plate length, at least
0; 0 when nothing was found), for double-row plates whether the lower row (the five symbols that
carry the serial) is right, the colour it named, and the CPU milliseconds of the `read` call
(process time: every thread the call used). Then the same figures per style, condition, width
bucket and style x bucket. `but_province`: all symbols after the province right (the province
symbol wrong, missing or right), since the reader's provinces are where it fails most.
"""

from __future__ import annotations

import statistics
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import cv2
import numpy as np

from vision.edge.plates import PlateRecognizer
from vision.training.plates.testset import PlateSample

FOUND_IOU: Final = 0.3
EXPECTED_COLOUR: Final = {"blue": "blue", "yellow": "yellow", "yellow_double": "yellow", "green": "green"}


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance (insertions, deletions, substitutions of one symbol each)."""
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def char_accuracy(read: str, truth: str) -> float:
    """1 - edit distance / the plate's length, floored at 0 (an empty read scores 0)."""
    return max(0.0, 1.0 - edit_distance(read, truth) / max(len(truth), 1))


def quad_box_iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of the axis-aligned boxes around two quadrilaterals."""
    (ax1, ay1), (ax2, ay2) = np.asarray(a).min(axis=0), np.asarray(a).max(axis=0)
    (bx1, by1), (bx2, by2) = np.asarray(b).min(axis=0), np.asarray(b).max(axis=0)
    iw, ih = max(0.0, min(ax2, bx2) - max(ax1, bx1)), max(0.0, min(ay2, by2) - max(ay1, by1))
    inter = iw * ih
    union = (ax2 - ax1) * (ay2 - ay1) + (bx2 - bx1) * (by2 - by1) - inter
    return float(inter / union) if union > 0 else 0.0


def score_sample(recognizer: PlateRecognizer, sample: PlateSample) -> dict[str, Any]:
    """One read of one sample, timed, and what it got right."""
    cpu0, wall0 = time.process_time(), time.perf_counter()
    result = recognizer.read(sample.image)
    cpu_ms, wall_ms = (time.process_time() - cpu0) * 1000, (time.perf_counter() - wall0) * 1000
    iou = quad_box_iou(result.corners, sample.corners) if result is not None else 0.0
    found = result is not None and iou >= FOUND_IOU
    read = result.text if found and result is not None else ""
    row: dict[str, Any] = sample.record()
    row.update(
        read=result.text if result is not None else None,
        found=found,
        iou=round(iou, 3),
        exact=found and read == sample.text,
        char_accuracy=round(char_accuracy(read, sample.text), 4),
        lower_row=found and len(read) >= 5 and read[-5:] == sample.text[-5:],
        but_province=found and len(read) >= len(sample.text) - 1 and read[-len(sample.text) + 1 :] == sample.text[1:],
        valid=bool(result.valid) if result is not None else False,
        confidence=round(result.confidence, 4) if result is not None else None,
        colour=result.colour if result is not None else None,
        colour_right=result is not None and result.colour == EXPECTED_COLOUR[sample.style],
        rows=result.rows if result is not None else None,
        cpu_ms=round(cpu_ms, 2),
        wall_ms=round(wall_ms, 2),
    )
    return row


def group_stats(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Rates and means over some samples."""
    n = len(rows)
    if n == 0:
        return {"n": 0}
    cpu = [float(r["cpu_ms"]) for r in rows]
    return {
        "n": n,
        "found": round(sum(r["found"] for r in rows) / n, 4),
        "exact": round(sum(r["exact"] for r in rows) / n, 4),
        "char_accuracy": round(statistics.fmean(r["char_accuracy"] for r in rows), 4),
        "lower_row": round(sum(r["lower_row"] for r in rows) / n, 4),
        "but_province": round(sum(r["but_province"] for r in rows) / n, 4),
        "valid": round(sum(r["valid"] for r in rows) / n, 4),
        "colour_right": round(sum(r["colour_right"] for r in rows) / n, 4),
        "cpu_ms_mean": round(statistics.fmean(cpu), 2),
        "cpu_ms_p50": round(statistics.median(cpu), 2),
        "cpu_ms_p90": round(float(np.percentile(cpu, 90)), 2),
    }


def _grouped(rows: list[dict[str, Any]], *keys: str) -> dict[str, dict[str, Any]]:
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        groups[" / ".join(str(r[k]) for k in keys)].append(r)
    return {name: group_stats(members) for name, members in sorted(groups.items())}


@dataclass
class PlateEvaluation:
    seed: int
    rows: list[dict[str, Any]]  # one per sample (`score_sample`)
    versions: dict[str, str]  # the recognizer's model cards
    wall_s: float
    date: str = field(default_factory=lambda: datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"))

    @property
    def summary(self) -> dict[str, Any]:
        return {
            "all": group_stats(self.rows),
            "by_style": _grouped(self.rows, "style"),
            "by_condition": _grouped(self.rows, "condition"),
            "by_bucket": _grouped(self.rows, "bucket"),
            "by_style_bucket": _grouped(self.rows, "style", "bucket"),
            "by_style_condition": _grouped(self.rows, "style", "condition"),
        }

    def as_dict(self) -> dict[str, Any]:
        """The report's JSON (samples apart: samples.jsonl)."""
        return {
            "seed": self.seed,
            "count": len(self.rows),
            "models": self.versions,
            "date": self.date,
            "wall_s": round(self.wall_s, 1),
            "found_iou": FOUND_IOU,
            **self.summary,
        }


def evaluate(
    recognizer: PlateRecognizer,
    samples: Iterable[PlateSample],
    *,
    seed: int,
    images_dir: Path | None = None,
    progress: Callable[[int], None] | None = None,
) -> PlateEvaluation:
    """Reads every sample once (after one untimed warm-up read); `images_dir` keeps each sample's picture."""
    t0 = time.perf_counter()
    rows: list[dict[str, Any]] = []
    if images_dir is not None:
        images_dir.mkdir(parents=True, exist_ok=True)
    warmed = False
    for sample in samples:
        if not warmed:  # the first ONNX Runtime calls allocate: not what a read costs
            recognizer.read(sample.image)
            warmed = True
        rows.append(score_sample(recognizer, sample))
        if images_dir is not None:
            cv2.imwrite(str(images_dir / f"{sample.index:05d}-{sample.style}-{sample.condition}.jpg"), sample.image)
        if progress is not None:
            progress(len(rows))
    return PlateEvaluation(seed, rows, recognizer.versions, time.perf_counter() - t0)

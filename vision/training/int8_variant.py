"""A static int8 variant of a NanoDet detector (`streetvision quantize`).

Why static, not the dynamic int8 `export` writes for YOLO: dynamic
quantisation leaves convolutions in float, and a detector is almost all
convolutions. With their weights and activations in int8 (calibrated ranges,
weights per channel) the shipped `coco-city` runs about 2.5x faster on a CPU
with VNNI. Only Conv layers are quantised: with Split, Sigmoid and Concat in
int8 as well, the heads' scores lose their small values and almost no box
survives (measured on coco-city: 1 of 395 boxes kept).

Calibration frames come from the training split only (the backgrounds'
MANIFEST.tsv `split: train` and the footage), each also dimmed to a dusk
level; every other frame is held back to measure how many of the float
model's boxes the int8 one still finds. The variant is a model of its own
(name, version, sha256): a case says which one found it, and a site chooses it
in `detector.models`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from vision.core.model_registry import ModelCard, sha256_file
from vision.training.data.synth.backgrounds import MANIFEST, backgrounds

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp"}
VIDEO_SUFFIXES = {".avi", ".mp4", ".mkv", ".mov"}
DUSK_GAIN = 0.45  # calibration also sees each frame this dark: activations at dusk have their own range
AGREEMENT_IOU = 0.5
AGREEMENT_SCORE = 0.3  # boxes at the daemon's usual detector threshold
AGREEMENT_SLACK = 0.75  # the other model's box counts down to this share of that score
LOW_AGREEMENT = 0.95


class QuantizeError(ValueError):
    pass


@dataclass(frozen=True)
class Agreement:
    """The float model's boxes (score >= `score`) that the int8 model finds too (same
    class, IoU >= 0.5, score >= 0.75 of it), and the int8 model's boxes the float one lacks."""

    kept: int
    of: int
    extra: int
    frames: int
    score: float = AGREEMENT_SCORE

    @property
    def share(self) -> float:
        return self.kept / self.of if self.of else 1.0

    def as_card(self) -> dict[str, Any]:
        return {
            "boxes_kept": self.kept,
            "boxes_fp32": self.of,
            "boxes_only_int8": self.extra,
            "share_kept": round(self.share, 4),
            "frames": self.frames,
            "min_score": self.score,
        }


def training_sources() -> list[Path]:
    """The stills and footage the manifest puts in the training split (never the held-out ones)."""
    train = [b.path for b in backgrounds("train") if b.path.is_file()]
    if not train:
        raise QuantizeError(f"no training-split background in {MANIFEST}: pass --calibration with images or videos")
    return train


def _files(source: Path) -> Iterator[Path]:
    if source.is_dir():
        for p in sorted(source.rglob("*")):
            if p.suffix.lower() in IMAGE_SUFFIXES | VIDEO_SUFFIXES:
                yield p
    elif source.is_file():
        yield source
    else:
        raise QuantizeError(f"calibration source {source} does not exist")


def _video_frames(path: Path, count: int) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    try:
        total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        step = max(1, total // count) if total > 0 else 25
        frames: list[np.ndarray] = []
        index = 0
        while len(frames) < count:
            ok, frame = cap.read()
            if not ok:
                break
            if index % step == step // 2:
                frames.append(frame)
            index += 1
        return frames
    finally:
        cap.release()


def load_frames(sources: list[Path], per_video: int) -> list[np.ndarray]:
    """BGR frames of every image and `per_video` spread frames of every video under `sources`."""
    frames: list[np.ndarray] = []
    for source in sources:
        for path in _files(source):
            if path.suffix.lower() in VIDEO_SUFFIXES:
                frames += _video_frames(path, per_video)
            else:
                image = cv2.imread(str(path), cv2.IMREAD_COLOR)
                if image is None:
                    raise QuantizeError(f"calibration image {path} could not be read")
                frames.append(image)
    if len(frames) < 4:
        raise QuantizeError(f"{len(frames)} calibration frame(s) in {', '.join(map(str, sources))}: need at least 4")
    return frames


def split_frames(frames: list[np.ndarray]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Even frames calibrate, odd ones check; each calibration frame also at dusk brightness."""
    calibrate = frames[0::2]
    dusk = [cv2.convertScaleAbs(f, alpha=DUSK_GAIN) for f in calibrate]
    return calibrate + dusk, frames[1::2]


def agreement(
    reference: Callable[[np.ndarray], Any], candidate: Callable[[np.ndarray], Any], frames: list[np.ndarray]
) -> Agreement:
    """Compare two detectors' `sv.Detections` frame by frame (see `Agreement`)."""
    import supervision as sv

    def boxes(d: sv.Detections, min_score: float) -> tuple[np.ndarray, np.ndarray]:
        score = np.asarray(d.confidence if d.confidence is not None else np.ones(len(d)))
        cls = np.asarray(d.class_id if d.class_id is not None else np.zeros(len(d), int))
        keep = score >= min_score
        return np.asarray(d.xyxy)[keep], cls[keep]

    def found(a: sv.Detections, b: sv.Detections) -> tuple[int, int]:
        a_box, a_cls = boxes(a, AGREEMENT_SCORE)
        b_box, b_cls = boxes(b, AGREEMENT_SCORE * AGREEMENT_SLACK)
        if len(a_box) == 0 or len(b_box) == 0:
            return 0, len(a_box)
        same = (sv.box_iou_batch(a_box, b_box) >= AGREEMENT_IOU) & (a_cls[:, None] == b_cls[None, :])
        return int(same.any(axis=1).sum()), len(a_box)

    kept = of = extra = 0
    for frame in frames:
        ref, cand = reference(frame), candidate(frame)
        k, n = found(ref, cand)
        kept, of = kept + k, of + n
        k, n = found(cand, ref)
        extra += n - k
    return Agreement(kept=kept, of=of, extra=extra, frames=len(frames))


def variant_card(
    source: ModelCard,
    model_file: Path,
    *,
    name: str,
    version: str,
    calibration: str,
    latency: dict[str, Any],
    agreement_: Agreement,
    notes: list[str],
) -> ModelCard:
    metrics: dict[str, Any] = {"agreement_with_fp32": agreement_.as_card()}
    if notes:
        metrics["notes"] = notes
    return ModelCard(
        name=name,
        version=version,
        backend=source.backend,
        file=model_file.name,
        sha256=sha256_file(model_file),
        classes=list(source.classes),
        heads=list(source.heads),
        input=source.input,
        source=f"{source.name} {source.version} ({source.sha256[:12]}), static int8 by `streetvision quantize` "
        f"(Conv layers, per-channel weights, QDQ), calibrated on {calibration}",
        licence=source.licence,
        description=f"{source.name} with its convolutions in int8. " + source.description,
        metrics=metrics,
        latency=latency,
        training={"quantized_from": f"{source.name} {source.version}", **source.training},
    )


def quality_notes(agreement_: Agreement, latency: dict[str, Any]) -> list[str]:
    """Warnings from the variant's own measurements, one sentence each."""
    notes: list[str] = []
    if agreement_.share < LOW_AGREEMENT:
        notes.append(
            f"the int8 variant keeps {agreement_.kept} of the float model's {agreement_.of} boxes "
            f"({agreement_.share:.0%}): check it on your footage before rolling it out"
        )
    f_ms = (latency.get("fp32") or {}).get("median_ms")
    i_ms = (latency.get("int8") or {}).get("median_ms")
    if f_ms is not None and i_ms is not None and float(i_ms) >= float(f_ms):
        notes.append(
            f"int8 is not faster than fp32 on this CPU ({float(i_ms):.1f} ms vs {float(f_ms):.1f} ms median): "
            "keep the float model here"
        )
    return notes

"""`streetvision train classifier`: the crop verifier's head, trained from review and synthetic crops.

Crops come from three places, each kept whole inside one split by its group:
- the dispatch center's labelled export (`streetvision dispatch export-labels`):
  an accepted case is a crop of its class, a rejected one a negative (named by
  its reason when the reason names one: bin, person, car, bus, truck; else background);
- synthetic crops: the data builder's sprites (procedural stalls, garbage, drawn
  and photo two-wheelers, photo bins and trucks, mud) pasted on patches of the
  training backgrounds, with dusk, blur, noise and JPEG augmentation;
- real people and vehicles the COCO detector finds on the training footage,
  and background patches with nothing on them.
Features come from the pretrained backbone (`vision.edge.verify.embedder`); the head
is scikit-learn's multinomial logistic regression, class-balanced, on CPU in
seconds. The card gets per-class precision and recall on the validation split
and a confusion-matrix plot.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NotRequired, TypedDict

import cv2
import numpy as np
import yaml

from vision.core.geometry import box_containment
from vision.edge.verify.classifier import LABELS, LinearHead
from vision.edge.verify.embedder import DEFAULT_BACKBONE, CropEmbedder, crop_box
from vision.training.data.synth.backgrounds import backgrounds

if TYPE_CHECKING:
    from vision.edge.detection import Detector
    from vision.training.data.synth.sprites import Sprite

log = logging.getLogger(__name__)
NEGATIVE_WORDS = {
    "bin": "bin",
    "垃圾桶": "bin",
    "person": "person",
    "pedestrian": "person",
    "行人": "person",
    "car": "car",
    "轿车": "car",
    "bus": "bus",
    "公交": "bus",
    "truck": "truck",
    "货车": "truck",
}
VIOLATION_LABEL = {
    "street_vending": "vendor_stall",
    "non_motor_parking": "bicycle",
    "exposed_garbage": "garbage",
    "muddy_truck": "muddy_truck",
}


@dataclass
class Crop:
    image: np.ndarray  # BGR, already widened by the context margin
    label: str
    group: str  # crops of one group stay in one split (one scene, one case)
    source: str  # synthetic | review | footage


class ClassMetrics(TypedDict):
    precision: float
    recall: float
    support: int  # crops of the class in the truth


class ValidationMetrics(TypedDict):
    accuracy: float
    crops: int
    per_class: dict[str, ClassMetrics]


class HeldoutMetrics(TypedDict):
    """Synthetic crops on the held-out backgrounds: a generalisation check."""

    accuracy: float
    crops: int
    backgrounds: list[str]  # file names
    per_class: dict[str, ClassMetrics]


class ClassifierMetrics(TypedDict):
    """The card's `metrics`."""

    validation: ValidationMetrics
    heldout_backgrounds: NotRequired[HeldoutMetrics]  # when there are held-out backgrounds
    heldout_far: NotRequired[HeldoutMetrics]  # the same, every object shrunk to a far camera's 10-40 px
    heldout_beside: NotRequired[HeldoutMetrics]  # the same, every pavement object with a neighbour beside it


# --- crops from review ---------------------------------------------------------------------------
def crops_from_export(export_dir: Path, context: float = 0.15) -> list[Crop]:
    """Crops of a `dispatch export-labels` folder: accepted = the case's class, rejected = a negative."""
    manifest = Path(export_dir) / "manifest.jsonl"
    if not manifest.is_file():
        raise FileNotFoundError(
            f"{export_dir}: no manifest.jsonl (make one with `streetvision dispatch export-labels`)"
        )
    crops = []
    for line in manifest.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        rec = json.loads(line)
        image = cv2.imread(str(Path(export_dir) / rec["image"]))
        if image is None or not rec.get("bbox_xyxy"):
            continue
        h, w = image.shape[:2]
        x1, y1, x2, y2 = rec["bbox_xyxy"]
        box = (x1 * w, y1 * h, x2 * w, y2 * h)
        if rec["outcome"] == "accepted":
            label = rec.get("class") or VIOLATION_LABEL.get(rec.get("violation", ""), "")
            if rec.get("violation") == "non_motor_parking" and label not in ("bicycle", "motorcycle"):
                label = "bicycle"
            if rec.get("violation") == "street_vending":
                label = "vendor_stall"
        else:
            reason = (rec.get("reason") or "").lower()
            label = next((lab for word, lab in NEGATIVE_WORDS.items() if word in reason), "background")
        if label not in LABELS:
            continue
        crops.append(
            Crop(crop_box(image, box, context), label, f"review:{rec.get('camera_id')}:{rec['case_id']}", "review")
        )
    return crops


# --- synthetic crops ------------------------------------------------------------------------------
def training_backgrounds() -> list[Path]:
    """Backgrounds the data builder may use: the `train` split of datasets/backgrounds (the bundled footage is one)."""
    return [b.path for b in backgrounds("train") if b.path.is_file()]


def heldout_backgrounds() -> list[Path]:
    """The `heldout` split of datasets/backgrounds: never trained on, only measured on."""
    return [b.path for b in backgrounds("heldout") if b.path.is_file()]


def background_frames(paths: list[Path], per_video: int, rng: np.random.Generator) -> list[tuple[str, np.ndarray]]:
    frames: list[tuple[str, np.ndarray]] = []
    for path in paths:
        if path.suffix.lower() in (".jpg", ".jpeg", ".png", ".webp"):
            img = cv2.imread(str(path))
            if img is not None:
                frames.append((path.stem, img))
            continue
        cap = cv2.VideoCapture(str(path))
        n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) or 1
        for idx in sorted(rng.choice(n, size=min(per_video, n), replace=False)):
            cap.set(cv2.CAP_PROP_POS_FRAMES, int(idx))
            ok, img = cap.read()
            if ok:
                frames.append((f"{path.stem}@{int(idx) // 100}", img))
        cap.release()
    return frames


# Real photo cut-outs of street objects that are none of the violations: "an object, but not that".
OTHER_OBJECTS = {
    "c_tux_uk_post_box.png": 1.1,
    "c_tux_usps_mailbox.png": 1.2,
    "c_tux_gas_cylinder.png": 0.9,
    "d_tux_toolbox.png": 0.4,
    "c_tux_traffic_cone.png": 0.7,
    "d_tux_pink_tricycle.png": 0.6,
}
EXTRA_CLEAN_TRUCKS = ["c_tux_firetruck.png"]
MAX_DRAWS = 50  # of a truck cut-out until one of the wanted label (clean or muddy) comes


def _cutout(name: str, height_m: float, rng: np.random.Generator) -> Sprite | None:
    from vision.training.data.synth import sprites

    if not (sprites.ASSETS / name).is_file():
        return None
    rgba = sprites._scale_to_height(sprites.load_rgba(name), int(height_m * rng.uniform(0.9, 1.1) * sprites.PX_PER_M))
    return sprites.Sprite(rgba, None, name.removesuffix(".png"))


def _sprite(label: str, rng: np.random.Generator) -> Sprite:
    from vision.training.data.synth import bikes, sprites

    if label == "background":  # a non-violation object (the plain-ground background crops come separately)
        names = [n for n in OTHER_OBJECTS if (sprites.ASSETS / n).is_file()]
        name = names[int(rng.integers(len(names)))]
        other = _cutout(name, OTHER_OBJECTS[name], rng)
        assert other is not None  # `names` holds only cut-outs whose file exists
        return other
    if label == "truck" and rng.random() < 0.25:
        extra = _cutout(EXTRA_CLEAN_TRUCKS[0], 3.0, rng)
        if extra is not None:
            return extra

    if label == "vendor_stall":
        return sprites.vendor_stall(rng)
    if label == "garbage":
        return sprites.garbage(rng)
    if label == "bicycle":
        return bikes.bicycle(rng)
    if label == "motorcycle":
        return (bikes.motorcycle(rng) if rng.random() < 0.4 else None) or bikes.ebike(rng)
    if label in ("truck", "muddy_truck"):
        # some cut-outs are always muddy (the site dumper): a draw for a clean truck can come back
        # muddy, and a muddy crop labelled "truck" teaches the head that mud is no sign of mud
        for _ in range(MAX_DRAWS):
            truck = sprites.truck(rng, muddy=label == "muddy_truck")
            if truck.label == label:
                return truck
        raise RuntimeError(f"no {label} cut-out in {MAX_DRAWS} draws")
    if label == "bin":
        return sprites.distractor(rng)
    raise ValueError(label)


# Far objects: cameras see stalls, bags and bikes 10-40 px tall, and the embedder enlarges such a crop
# to its input size. A head trained only on crops of 50-450 px names those blurry enlargements with
# whatever class looked most like a blur (in the held-out suite: tiny bikes called muddy_truck
# 0.85-0.96). So this fraction of every label's crops, negatives included, is shrunk to a far
# object's size first, and blur alone says nothing about the class.
FAR_FRACTION = 0.35
FAR_OBJECT_PX = (10.0, 40.0)  # object height, before the context margin
# Trucks are shrunk no further than this: under ~25 px a truck's mud is a pixel or two, so crops that
# small cannot teach muddy from clean (models/crop-verifier/STUDY.md, step 11).
FAR_TRUCK_MIN_PX = 25.0
TRUCK_LABELS = frozenset({"truck", "muddy_truck"})


def _far(crop: np.ndarray, rng: np.random.Generator, fraction: float, context: float, label: str = "") -> np.ndarray:
    """With probability `fraction`, the crop as a far camera would give it (its object 10-40 px tall,
    a truck 25-40 px)."""
    if fraction <= 0 or rng.random() >= fraction:
        return crop
    object_h = crop.shape[0] / (1 + 2 * context)
    low = FAR_TRUCK_MIN_PX if label in TRUCK_LABELS else FAR_OBJECT_PX[0]
    scale = rng.uniform(low, FAR_OBJECT_PX[1]) / max(object_h, 1.0)
    if scale >= 1:
        return crop
    w, h = max(2, round(crop.shape[1] * scale)), max(2, round(crop.shape[0] * scale))
    return cv2.resize(crop, (w, h), interpolation=cv2.INTER_AREA)


def _augment(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    out: np.ndarray = img.astype(np.float32)
    if rng.random() < 0.3:  # dusk: darker, bluer, noisier
        out = 255.0 * (out / 255.0) ** rng.uniform(1.4, 2.4) * rng.uniform(0.5, 0.9)
        out[..., 0] *= rng.uniform(1.0, 1.15)
        out += rng.normal(0, rng.uniform(3, 8), out.shape)
    else:
        out = out * rng.uniform(0.75, 1.25) + rng.uniform(-20, 20)
    out = np.clip(out, 0, 255).astype(np.uint8)
    if rng.random() < 0.3:
        out = cv2.GaussianBlur(out, (0, 0), rng.uniform(0.6, 1.6))
    if rng.random() < 0.5:
        ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(40, 90))])
        decoded = cv2.imdecode(buf, cv2.IMREAD_COLOR) if ok else None
        out = decoded if decoded is not None else out
    return out


# Neighbours: on a pavement a stall, a bag or a bike rarely stands alone, and a detector's box around
# a bag left beside a bin takes in part of the bin. A head trained only on lone objects names such a
# crop by its most salient object (the bin). With `neighbour_fraction`, that share of the pavement
# objects' crops has a second object standing beside it, partly inside the crop (and, half the time,
# inside the box too); the label stays the first object's. Garbage is never the neighbour: loose
# garbage in view means exposed garbage, so a head trained this way reads "bags beside a bin" as
# garbage, and a bin with only a stall or a bike beside it as a bin.
NEIGHBOUR_LABELS = ("bin", "vendor_stall", "bicycle", "motorcycle", "background")
WITH_NEIGHBOURS = frozenset({"vendor_stall", "garbage", "bicycle", "motorcycle", "bin", "background"})


def _paste_rgba(canvas: np.ndarray, rgba: np.ndarray, x: int, y: int, rng: np.random.Generator) -> None:
    """Alpha-over a sprite at (x, y), clipped to the frame, its colours matched to the patch under it."""
    from vision.training.data.synth.compose import match_colour

    fh, fw = canvas.shape[:2]
    h, w = rgba.shape[:2]
    x0, y0, x1, y1 = max(0, x), max(0, y), min(fw, x + w), min(fh, y + h)
    if x0 >= x1 or y0 >= y1:
        return
    part = rgba[y0 - y : y1 - y, x0 - x : x1 - x]
    patch = canvas[y0:y1, x0:x1]
    alpha = part[..., 3:4].astype(np.float32) / 255.0
    rgb = match_colour(np.ascontiguousarray(part[..., :3]), np.ascontiguousarray(part[..., 3]), patch, rng)
    canvas[y0:y1, x0:x1] = (rgb * alpha + patch * (1 - alpha)).astype(np.uint8)


def _add_neighbour(canvas: np.ndarray, box: np.ndarray, scale: float, rng: np.random.Generator) -> np.ndarray:
    """Stand a neighbour beside the object at `box` (x0, y0, x1, y1), its foot on the same ground line,
    overlapping it by up to a third of its width; returns the box, grown towards it half the time."""
    label = NEIGHBOUR_LABELS[int(rng.integers(len(NEIGHBOUR_LABELS)))]
    rgba = _sprite(label, rng).rgba
    s = scale * rng.uniform(0.85, 1.15)  # the same metres per pixel, give or take depth
    w, h = max(4, int(rgba.shape[1] * s)), max(4, int(rgba.shape[0] * s))
    rgba = cv2.resize(rgba, (w, h), interpolation=cv2.INTER_AREA)
    bw, bh = box[2] - box[0], box[3] - box[1]
    overlap = rng.uniform(-0.1, 0.35) * min(w, bw)  # < 0: a small gap
    right = rng.random() < 0.5
    x = int(box[2] - overlap) if right else int(box[0] + overlap - w)
    y = int(box[3] + rng.uniform(-0.15, 0.1) * bh) - h
    _paste_rgba(canvas, rgba, x, y, rng)
    out = box.copy()
    if rng.random() < 0.5:  # a detector box that took in part of the neighbour
        grow = rng.uniform(0.1, 0.5) * w
        if right:
            out[2] = min(out[2] + grow, x + w)
        else:
            out[0] = max(out[0] - grow, x)
    return out


def synthetic_crop(
    label: str,
    frame: np.ndarray,
    rng: np.random.Generator,
    context: float,
    far_fraction: float = 0.0,
    neighbour_fraction: float = 0.0,
) -> np.ndarray:
    """A sprite pasted at a random size on a random patch of a real background frame (with a neighbour
    beside it, for `neighbour_fraction` of the pavement objects)."""
    sp = _sprite(label, rng)
    rgba = sp.rgba
    fh, fw = frame.shape[:2]
    target_h = int(rng.uniform(0.08, 0.45) * fh)
    scale = target_h / rgba.shape[0]
    w = max(4, int(rgba.shape[1] * scale))
    if w > fw * 0.9:
        scale *= fw * 0.9 / w
        w = int(rgba.shape[1] * scale)
    h = max(4, int(rgba.shape[0] * scale))
    rgba = cv2.resize(rgba, (w, h), interpolation=cv2.INTER_AREA)
    x = int(rng.integers(0, max(1, fw - w)))
    y = int(rng.integers(0, max(1, fh - h)))
    canvas = frame.copy()
    # drawn only when asked, so a head trained without neighbours comes out byte for byte as before
    neighbour = neighbour_fraction > 0 and label in WITH_NEIGHBOURS and rng.random() < neighbour_fraction
    in_front = neighbour and rng.random() < 0.3  # the neighbour hides part of the object
    placed = np.array([x, y, x + w, y + h], dtype=np.float64)
    grown = placed
    if neighbour and not in_front:
        grown = _add_neighbour(canvas, placed, scale, rng)
    _paste_rgba(canvas, rgba, x, y, rng)
    if in_front:
        grown = _add_neighbour(canvas, placed, scale, rng)
    jitter = rng.uniform(-0.06, 0.06, 4) * np.array([w, h, w, h])
    box = grown + jitter
    return _augment(_far(crop_box(canvas, box, context), rng, far_fraction, context, label), rng)


def real_detections(
    frames: list[tuple[str, np.ndarray]],
    detector: Detector,
    labels: tuple[str, ...] = ("person", "car", "truck", "bus"),
    min_conf: float = 0.5,
) -> list[tuple[int, str, np.ndarray]]:
    """(frame index, label, box) of what the COCO detector finds on real footage (real people and vehicles)."""
    out = []
    for i, (_, img) in enumerate(frames):
        dets = detector.detect(img)
        assert dets.confidence is not None, "detectors always fill confidence (vision.edge.detection)"
        for box, name, conf in zip(dets.xyxy, dets.data["class_name"], dets.confidence, strict=True):
            if name in labels and conf >= min_conf and (box[3] - box[1]) >= 24:
                out.append((i, str(name), box))
    return out


def background_crop(
    frame: np.ndarray, avoid: list[np.ndarray], rng: np.random.Generator, far_fraction: float = 0.0
) -> np.ndarray | None:
    fh, fw = frame.shape[:2]
    for _ in range(20):
        h = int(rng.uniform(0.08, 0.4) * fh)
        w = int(h * rng.uniform(0.6, 1.8))
        x, y = int(rng.integers(0, max(1, fw - w))), int(rng.integers(0, max(1, fh - h)))
        box = np.array([x, y, x + w, y + h], dtype=np.float64)
        if all(box_containment(box, a)[0, 0] < 0.1 for a in avoid):
            return _augment(_far(frame[y : y + h, x : x + w], rng, far_fraction, 0.0), rng)
    return None


def synthetic_crops(
    per_label: int,
    seed: int,
    context: float = 0.15,
    backgrounds: list[Path] | None = None,
    progress: Callable[[str], object] | None = None,
    real: bool = True,
    far_fraction: float = FAR_FRACTION,
    neighbour_fraction: float = 0.0,
) -> list[Crop]:
    from vision.edge.detection import open_detector

    rng = np.random.default_rng(seed)
    frames = background_frames(backgrounds or training_backgrounds(), per_video=24, rng=rng)
    if not frames:
        raise RuntimeError("no training background could be read")
    crops: list[Crop] = []
    for label in ("vendor_stall", "garbage", "bicycle", "motorcycle", "truck", "muddy_truck", "bin", "background"):
        n = per_label // 2 if label == "background" else per_label  # the other half: bare ground, below
        for k in range(n):
            fi = int(rng.integers(len(frames)))
            crops.append(
                Crop(
                    synthetic_crop(label, frames[fi][1], rng, context, far_fraction, neighbour_fraction),
                    label,
                    f"synth:{frames[fi][0]}:{k % 8}",
                    "synthetic",
                )
            )
        if progress:
            progress(f"synthetic {label}: {per_label}")
    found = real_detections(frames, open_detector("coco-nanodet", min_confidence=0.5)) if real else []
    by_label: dict[str, list[tuple[int, np.ndarray]]] = {}
    for fi, name, box in found:
        by_label.setdefault(name, []).append((fi, box))
    for name, items in by_label.items():
        take = rng.permutation(len(items))[:per_label]
        for j in take:
            fi, box = items[int(j)]
            crops.append(
                Crop(
                    _augment(_far(crop_box(frames[fi][1], box, context), rng, far_fraction, context, name), rng),
                    name,
                    f"footage:{frames[fi][0]}",
                    "footage",
                )
            )
    avoid = {i: [b for fi, _, b in found if fi == i] for i in range(len(frames))}
    for _ in range(per_label - per_label // 2):
        fi = int(rng.integers(len(frames)))
        c = background_crop(frames[fi][1], avoid.get(fi, []), rng, far_fraction)
        if c is not None:
            crops.append(Crop(c, "background", f"bg:{frames[fi][0]}", "footage"))
    if progress:
        progress("real crops: " + ", ".join(f"{n} {min(len(v), per_label)}" for n, v in sorted(by_label.items())))
    return crops


# --- training -------------------------------------------------------------------------------------
def split_groups(crops: list[Crop], val_fraction: float, seed: int) -> np.ndarray:
    """True for validation crops; whole groups go to one side."""
    groups = sorted({c.group for c in crops})
    rng = np.random.default_rng(seed)
    val_groups = {g for g in groups if rng.random() < val_fraction}
    return np.array([c.group in val_groups for c in crops])


def fit_head(features: np.ndarray, labels: list[str], c: float = 0.5) -> LinearHead:
    from sklearn.linear_model import LogisticRegression

    f = features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-9)
    mean, scale = f.mean(axis=0), f.std(axis=0) + 1e-6
    names = [lab for lab in LABELS if lab in set(labels)]
    y = np.array([names.index(lab) for lab in labels])
    model = LogisticRegression(C=c, max_iter=3000, class_weight="balanced")
    model.fit((f - mean) / scale, y)
    return LinearHead(
        names,
        model.coef_.astype(np.float32),
        model.intercept_.astype(np.float32),
        mean.astype(np.float32),
        scale.astype(np.float32),
    )


def per_class_metrics(truth: list[str], pred: list[str], labels: list[str]) -> dict[str, ClassMetrics]:
    out: dict[str, ClassMetrics] = {}
    for lab in labels:
        tp = sum(t == lab and p == lab for t, p in zip(truth, pred, strict=True))
        fp = sum(t != lab and p == lab for t, p in zip(truth, pred, strict=True))
        fn = sum(t == lab and p != lab for t, p in zip(truth, pred, strict=True))
        out[lab] = {
            "precision": round(tp / (tp + fp), 3) if tp + fp else 0.0,
            "recall": round(tp / (tp + fn), 3) if tp + fn else 0.0,
            "support": tp + fn,
        }
    return out


def confusion_plot(truth: list[str], pred: list[str], labels: list[str], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    m = np.zeros((len(labels), len(labels)), dtype=int)
    for t, p in zip(truth, pred, strict=True):
        if t in labels and p in labels:
            m[labels.index(t), labels.index(p)] += 1
    fig, ax = plt.subplots(figsize=(7, 6), dpi=110)
    ax.imshow(m / np.maximum(m.sum(axis=1, keepdims=True), 1), cmap="Blues", vmin=0, vmax=1)
    for i in range(len(labels)):
        for j in range(len(labels)):
            if m[i, j]:
                ax.text(j, i, str(m[i, j]), ha="center", va="center", fontsize=7)
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _progress_bar(done: int, total: int, started: float) -> None:
    width = 30
    k = int(width * done / max(total, 1))
    rate = done / max(time.monotonic() - started, 1e-6)
    sys.stderr.write(f"\r  features [{'#' * k}{'.' * (width - k)}] {done}/{total} crops, {rate:.0f}/s ")
    if done >= total:
        sys.stderr.write("\n")
    sys.stderr.flush()


def embed_all(embedder: CropEmbedder, crops: list[Crop], progress: bool = True) -> np.ndarray:
    started = time.monotonic()
    feats = []
    for i in range(0, len(crops), 32):
        f, _ = embedder.embed_crops([c.image for c in crops[i : i + 32]])
        feats.append(f)
        if progress:
            _progress_bar(min(i + 32, len(crops)), len(crops), started)
    return np.concatenate(feats) if feats else np.empty((0, 1280), np.float32)


@dataclass
class TrainResult:
    out_dir: Path
    labels: list[str]
    metrics: ClassifierMetrics
    counts: dict[str, int]


def train_classifier(
    crops: list[Crop],
    out_dir: Path,
    *,
    name: str,
    version: str,
    backbone: str = DEFAULT_BACKBONE,
    val_fraction: float = 0.25,
    seed: int = 0,
    context: float = 0.15,
    progress: bool = True,
    sources: dict[str, Any] | None = None,
    measure_heldout: bool = True,
) -> TrainResult:
    from vision.core.model_registry import sha256_file

    counts = Counter(c.label for c in crops)
    if len(counts) < 2:
        raise ValueError(f"need crops of at least two labels, got {dict(counts)}")
    embedder = CropEmbedder(backbone, threads=0)
    feats = embed_all(embedder, crops, progress)
    labels = [c.label for c in crops]
    val = split_groups(crops, val_fraction, seed)
    if val.all() or not val.any():
        val = np.arange(len(crops)) % 4 == 0
    head = fit_head(feats[~val], [labels[i] for i in np.flatnonzero(~val)])
    pred_idx = head.probabilities(feats[val]).argmax(axis=1)
    truth = [labels[i] for i in np.flatnonzero(val)]
    pred = [head.labels[k] for k in pred_idx]
    metrics = per_class_metrics(truth, pred, head.labels)
    accuracy = float(np.mean([t == p for t, p in zip(truth, pred, strict=True)])) if truth else 0.0
    # the shipped head is refitted on every crop, once the split has measured it
    final = fit_head(feats, labels)
    out_dir.mkdir(parents=True, exist_ok=True)
    heldout: HeldoutMetrics | None = None
    far: HeldoutMetrics | None = None
    beside: HeldoutMetrics | None = None
    bgs = heldout_backgrounds() if measure_heldout else []
    if bgs:
        # the same kinds of objects on backgrounds training never saw (a generalisation check, not a tuning set)
        heldout = _heldout_metrics(
            final, embedder, bgs, seed, context, 0.0, out_dir / "confusion-heldout.png", name, version
        )
        far = _heldout_metrics(
            final, embedder, bgs, seed, context, 1.0, out_dir / "confusion-heldout-far.png", name, version
        )
        beside = _heldout_metrics(
            final, embedder, bgs, seed, context, 0.0, out_dir / "confusion-heldout-beside.png", name, version, 1.0
        )
    card_metrics: ClassifierMetrics = {
        "validation": {"accuracy": round(accuracy, 4), "crops": len(truth), "per_class": metrics}
    }
    if heldout is not None:
        card_metrics["heldout_backgrounds"] = heldout
    if far is not None:
        card_metrics["heldout_far"] = far
    if beside is not None:
        card_metrics["heldout_beside"] = beside
    final.save(out_dir / "head.npz")
    confusion_plot(
        truth,
        pred,
        head.labels,
        out_dir / "confusion.png",
        f"{name} {version}: validation crops ({len(truth)}), accuracy {accuracy:.3f}",
    )
    card = {
        "name": name,
        "version": version,
        "kind": "crop-classifier",
        "file": "head.npz",
        "sha256": sha256_file(out_dir / "head.npz"),
        "labels": final.labels,
        "backbone": embedder.card.name,
        "backbone_sha256": embedder.card.sha256,
        "context": context,
        "description": "Linear head over EfficientNet-Lite0 ImageNet features; names candidate crops for the verifier.",
        "metrics": card_metrics,
        "training": {
            "crops": dict(sorted(counts.items())),
            "val_fraction": val_fraction,
            "seed": seed,
            "sources": sources or {},
            "plot": "confusion.png",
        },
    }
    (out_dir / "card.yaml").write_text(yaml.safe_dump(card, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return TrainResult(out_dir, final.labels, card_metrics, dict(counts))


def _heldout_metrics(
    head: LinearHead,
    embedder: CropEmbedder,
    bgs: list[Path],
    seed: int,
    context: float,
    far_fraction: float,
    plot: Path,
    name: str,
    version: str,
    neighbour_fraction: float = 0.0,
) -> HeldoutMetrics:
    """The same kinds of objects on backgrounds training never saw (a generalisation check, not a tuning set)."""
    test = synthetic_crops(
        24,
        seed + 1000,
        context,
        backgrounds=bgs,
        real=False,
        far_fraction=far_fraction,
        neighbour_fraction=neighbour_fraction,
    )
    tf, _ = embedder.embed_crops([c.image for c in test])
    tpred = [head.labels[k] for k in head.probabilities(tf).argmax(axis=1)]
    ttruth = [c.label for c in test]
    metrics: HeldoutMetrics = {
        "accuracy": round(float(np.mean([a == b for a, b in zip(ttruth, tpred, strict=True)])), 4),
        "crops": len(test),
        "backgrounds": [p.name for p in bgs],
        "per_class": per_class_metrics(ttruth, tpred, head.labels),
    }
    what = (
        "far objects (10-40 px)"
        if far_fraction >= 1
        else "objects with a neighbour"
        if neighbour_fraction >= 1
        else "synthetic crops"
    )
    confusion_plot(
        ttruth,
        tpred,
        head.labels,
        plot,
        f"{name} {version}: {what} on held-out backgrounds ({len(test)}), accuracy {metrics['accuracy']:.3f}",
    )
    return metrics


# --- command --------------------------------------------------------------------------------------
def main(args: argparse.Namespace) -> int:
    name = getattr(args, "name", None) or "crop-verifier"
    if name == "city":  # the detector's default run name
        name = "crop-verifier"
    from vision.core.model_registry import models_dir

    out = Path(args.out) if getattr(args, "out", None) else models_dir() / name
    version = getattr(args, "version", None) or f"1.0.{int(time.time())}"
    seed = int(getattr(args, "seed", 0) or 0)
    crops: list[Crop] = []
    for d in getattr(args, "export", []) or []:
        try:
            got = crops_from_export(Path(d))
        except FileNotFoundError as exc:
            print(f"train classifier: {exc}", file=sys.stderr)
            return 2
        print(f"review crops from {d}: {len(got)} ({dict(Counter(c.label for c in got))})", file=sys.stderr)
        crops += got
    n_synth = int(getattr(args, "synthetic", 120))
    if n_synth > 0:
        far_fraction = float(getattr(args, "far_fraction", FAR_FRACTION))
        if not 0 <= far_fraction <= 1:
            print(f"train classifier: --far-fraction must be in 0..1, got {far_fraction:g}", file=sys.stderr)
            return 2
        neighbour_fraction = float(getattr(args, "neighbour_fraction", 0.0))
        if not 0 <= neighbour_fraction <= 1:
            print(
                f"train classifier: --neighbour-fraction must be in 0..1, got {neighbour_fraction:g}", file=sys.stderr
            )
            return 2
        crops += synthetic_crops(
            n_synth,
            seed,
            progress=lambda m: print(m, file=sys.stderr),
            far_fraction=far_fraction,
            neighbour_fraction=neighbour_fraction,
        )
    if not crops:
        print("train classifier: no crops (give --export DIR or --synthetic N)", file=sys.stderr)
        return 2
    t0 = time.monotonic()
    try:
        result = train_classifier(
            crops,
            out,
            name=name,
            version=version,
            seed=seed,
            val_fraction=float(getattr(args, "val_fraction", 0.25)),
            backbone=getattr(args, "backbone", DEFAULT_BACKBONE),
            sources={
                "exports": [str(d) for d in getattr(args, "export", []) or []],
                "synthetic_per_label": n_synth,
                "far_fraction": float(getattr(args, "far_fraction", FAR_FRACTION)),
                "neighbour_fraction": float(getattr(args, "neighbour_fraction", 0.0)),
            },
        )
    except ValueError as exc:
        print(f"train classifier: {exc}", file=sys.stderr)
        return 2
    val = result.metrics["validation"]
    print(
        f"{name} {version}: {sum(result.counts.values())} crops, validation accuracy {val['accuracy']:.3f} "
        f"on {val['crops']} crops, {time.monotonic() - t0:.0f} s -> {out}"
    )
    for lab, m in val["per_class"].items():
        print(f"  {lab:13s} precision {m['precision']:.2f} recall {m['recall']:.2f} ({m['support']})")
    for what, held in (
        ("held-out backgrounds", result.metrics.get("heldout_backgrounds")),
        ("far objects on them", result.metrics.get("heldout_far")),
        ("objects with a neighbour on them", result.metrics.get("heldout_beside")),
    ):
        if not held:
            continue
        print(f"{what} ({', '.join(held['backgrounds'])}): accuracy {held['accuracy']:.3f} on {held['crops']} crops")
        for lab, m in held["per_class"].items():
            print(f"  {lab:13s} precision {m['precision']:.2f} recall {m['recall']:.2f} ({m['support']})")
    return 0

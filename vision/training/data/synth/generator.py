"""Build a synthetic data set: real frames + base-model labels for the COCO
classes + composited stalls, garbage, clean and muddy trucks (some driving
along a path over consecutive frames), unlabelled bins and cones as hard
negatives, and mud painted on the real parked van. One seed makes the set
reproducible; it is written into data.yaml and every meta.jsonl record."""

from __future__ import annotations

import platform
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np

from vision.core.geometry import box_containment
from vision.training.data.layout import CITY_CLASSES, PURPOSES, Box, Dataset, DatasetError
from vision.training.data.pseudo_label import BaseDetector, FrameBox, to_boxes
from vision.training.data.split import split_dataset
from vision.training.data.synth import backgrounds, bikes, sprites
from vision.training.data.synth.compose import Placed, composite
from vision.training.data.synth.scene import Frame, Perspective, SceneSource
from vision.training.data.synth.sprites import Sprite

COVERED = 0.6  # a base-model box this much covered by a composited object loses its label

XYXY = tuple[float, float, float, float]  # a box in frame pixels
Label = tuple[str, XYXY]  # class name and box, before they become YOLO boxes


@dataclass
class SynthConfig:
    out: Path
    sources: list[Path]
    images: int = 200
    seed: int = 0
    split: dict[str, float] = field(default_factory=lambda: {"train": 0.7, "val": 0.15, "test": 0.15})
    min_confidence: float = 0.35
    truck_sequences: float = 0.25  # share of images that belong to a truck driving along a path
    negatives: float = 0.1  # share of images with only distractors (no new-class object)
    van_mud: float = 0.15  # chance to paint mud on a real parked truck/van in the frame
    max_objects: int = 3
    two_wheelers: float = 0.0  # chance per image of a row of parked bikes/e-bikes (0 keeps older sets identical)
    clip_seconds: float = 10.0
    quality: int = 90
    assets: str = "original"  # sprites.POOLS: original (older sets stay identical), training, heldout
    purpose: str = "training"  # or "evaluation": held-out backgrounds allowed, one `test` split, never trained on


def _float_box(box: tuple[int, int, int, int]) -> XYXY:
    x1, y1, x2, y2 = box
    return float(x1), float(y1), float(x2), float(y2)


def _place_one(
    rng: np.random.Generator,
    frame: Frame,
    canvas: np.ndarray,
    sprite: Sprite,
    persp: Perspective,
    taken: list[XYXY],
    foot: tuple[float, float] | None = None,
    tries: int = 12,
) -> Placed | None:
    H, W = canvas.shape[:2]
    for _ in range(tries if foot is None else 1):
        f = foot or (rng.uniform(0.03, 0.97) * W, rng.uniform(max(persp.y_min, H * 0.15), H * 0.99))
        scale = persp.px_per_m(f[1]) / sprites.PX_PER_M
        h, w = sprite.rgba.shape[0] * scale, sprite.rgba.shape[1] * scale
        cand = (f[0] - w / 2, f[1] - h, f[0] + w / 2, f[1])
        if foot is None and (
            w < 8
            or h < 8
            or any(box_containment(t, cand)[0, 0] > 0.15 or box_containment(cand, t)[0, 0] > 0.15 for t in taken)
        ):
            continue
        placed = composite(frame, canvas, sprite, f, persp, rng)
        taken.append(cand)
        return placed
    return None


def _place_bike_row(
    rng: np.random.Generator, frame: Frame, canvas: np.ndarray, persp: Perspective, taken: list[XYXY]
) -> list[Placed]:
    """Bikes parked side by side: the first where there is room, the rest next to it."""
    row = bikes.bike_row(rng)
    first = _place_one(rng, frame, canvas, row[0], persp, taken)
    if first is None:
        return []
    placed = [first]
    gap = bikes.ROW_GAP_M * persp.px_per_m(first.foot[1]) * rng.choice([-1, 1])
    for k, sprite in enumerate(row[1:], start=1):
        foot = (first.foot[0] + k * gap, first.foot[1] + rng.uniform(-2, 2))
        p = _place_one(rng, frame, canvas, sprite, persp, taken, foot=foot)
        if p:
            placed.append(p)
    return placed


def _mud_on_real_trucks(rng: np.random.Generator, canvas: np.ndarray, labels: list[Label]) -> list[Label]:
    """Paint mud on the lower body of trucks the base model found (the parked van)."""
    out: list[Label] = []
    for name, box in labels:
        if name == "truck":
            x1, y1, x2, y2 = (int(round(v)) for v in box)
            h = y2 - y1
            top = y1 + int(h * 0.45)
            region = canvas[top:y2, x1:x2]
            if region.size:
                alpha = np.full(region.shape[:2], 255, np.uint8)
                rgb, _ = sprites.apply_mud(rng, region, alpha, strength=rng.uniform(0.6, 0.9))
                canvas[top:y2, x1:x2] = rgb
                out.append(("muddy_truck", box))
                continue
        out.append((name, box))
    return out


def generate(cfg: SynthConfig, detector: BaseDetector, progress: bool = True) -> Dataset:
    from tqdm import tqdm

    if cfg.images < 1:
        raise DatasetError("synth: --images must be >= 1")
    if cfg.purpose not in PURPOSES:
        raise DatasetError(f"synth: purpose must be training or evaluation, not {cfg.purpose!r}")
    if cfg.assets not in sprites.POOLS:
        raise DatasetError(f"synth: assets must be one of {', '.join(sprites.POOLS)}, not {cfg.assets!r}")
    if cfg.purpose == "training" and cfg.assets == "heldout":
        raise DatasetError("synth: the held-out cut-outs are for evaluation sets only (--evaluation)")
    pool = sprites.POOLS[cfg.assets]
    held = backgrounds.heldout_in(cfg.sources) if cfg.purpose == "training" else []
    if held:
        raise DatasetError(
            f"synth: {held[0]} is a held-out background (datasets/backgrounds/MANIFEST.tsv): "
            "it is for the held-out scenario suite only, never for training"
        )
    out = Path(cfg.out)
    if out.exists() and any(out.iterdir()):
        raise DatasetError(f"synth: output folder {out} exists and is not empty")
    rng = np.random.default_rng(cfg.seed)
    ds = Dataset.create(out, CITY_CLASSES, tuple(cfg.split))
    ds.purpose = cfg.purpose
    scenes = [
        SceneSource(p, detector, cfg.min_confidence, cfg.clip_seconds, cache_dir=out / "cache") for p in cfg.sources
    ]
    persps = [s.perspective() for s in scenes]
    names = ds.names
    bar = tqdm(total=cfg.images, desc="synth", unit="img", disable=not progress)
    made = 0
    while made < cfg.images:
        si = int(rng.integers(len(scenes)))
        scene, persp = scenes[si], persps[si]
        sequence = scene.is_video and rng.random() < cfg.truck_sequences and cfg.images - made >= 3
        if sequence:
            steps = min(int(rng.integers(3, 7)), cfg.images - made)
            stride = int(rng.integers(2, 5))
            start = int(rng.integers(0, max(1, scene.length - steps * stride)))
            indices = [start + k * stride for k in range(steps)]
        else:
            indices = [int(rng.integers(0, scene.length))]
        frames = scene.frames(indices)
        if not frames:
            continue
        H, W = frames[0].image.shape[:2]
        truck_sprite = sprites.truck(rng, assets=pool) if sequence else None
        if sequence:  # a path across the ground, e.g. leaving a site exit
            y_a, y_b = rng.uniform(max(persp.y_min, H * 0.2), H * 0.95, 2)
            x_a, x_b = (-0.1 * W, 1.1 * W) if rng.random() < 0.5 else (1.1 * W, -0.1 * W)
        for k, frame in enumerate(frames):
            canvas = frame.image.copy()
            base: list[Label] = [(fb.name, fb.xyxy) for fb in frame.found]
            if rng.random() < cfg.van_mud:
                base = _mud_on_real_trucks(rng, canvas, base)
            taken = [b for n, b in base if n != "person"]
            distractors = [sprites.distractor(rng, pool) for _ in range(int(rng.integers(0, 3)))]
            if truck_sprite is not None:  # the frames of a sequence
                t = k / max(1, len(frames) - 1)
                foot = (x_a + (x_b - x_a) * t, y_a + (y_b - y_a) * t)
                p = _place_one(rng, frame, canvas, truck_sprite, persp, taken, foot=foot)
                objects = [p] if p else []
            else:
                n_obj = 0 if rng.random() < cfg.negatives else int(rng.integers(1, cfg.max_objects + 1))
                kinds = rng.choice(["vendor_stall", "garbage", "truck"], size=n_obj, p=[0.38, 0.38, 0.24])
                objects = []
                for kind in list(kinds):
                    p = _place_one(rng, frame, canvas, sprites.BUILDERS[str(kind)](rng, assets=pool), persp, taken)
                    if p:
                        objects.append(p)
            if not sequence and cfg.two_wheelers and rng.random() < cfg.two_wheelers:
                objects += _place_bike_row(rng, frame, canvas, persp, taken)
            for d in distractors:
                _place_one(rng, frame, canvas, d, persp, taken)
            # the objects left visible enough to be labelled, with their visible box
            placed = [(p, p.box) for p in objects if p.box is not None and p.visible_fraction >= 0.15]
            # base labels survive unless a composited object now hides them
            labels: list[Label] = []
            for name, box in base:
                if not any(box_containment(box, p.full_box)[0, 0] > COVERED and p.foot[1] > box[3] for p in objects):
                    labels.append((name, box))
            labels += [(p.sprite.label, _float_box(box)) for p, box in placed if p.sprite.label]
            boxes: list[Box] = to_boxes([FrameBox(n, b, 1.0) for n, b in labels], W, H, names)
            name = f"{cfg.seed}_{made:05d}.jpg"
            meta = {
                "source": scene.group(indices[0]) if sequence else frame.source,
                "frame": frame.index,
                "seed": cfg.seed,
                "generator": "streetvision data synth",
                "objects": [
                    {
                        "class": p.sprite.label,
                        "kind": p.sprite.kind,
                        "box": list(box),
                        "visible": round(p.visible_fraction, 3),
                    }
                    for p, box in placed
                ],
                "sequence": indices if sequence else None,
            }
            ds.write(next(iter(cfg.split)), name, canvas, boxes, meta, quality=cfg.quality)
            made += 1
            bar.update(1)
            if made >= cfg.images:
                break
    bar.close()
    for s in scenes:
        s.save_cache()
    report = split_dataset(ds, cfg.split, cfg.seed)
    ds.save_yaml(
        {
            "synth": {
                "seed": cfg.seed,
                "images": cfg.images,
                "sources": [str(p) for p in cfg.sources],
                "split_images": report.images,
                "perspective": [asdict(p) for p in persps],
                "config": {k: v for k, v in asdict(cfg).items() if k not in ("out", "sources")},
                "python": platform.python_version(),
                "opencv": cv2.__version__,
            }
        }
    )
    return ds

"""The plate test set: drawn plates on truck pictures, each sample with the conditions it was made under.

Sample `i` of seed `s` is made from its own generator (`default_rng([s, i])`), so a set of 40 is the
first 40 of a set of 400, and the same on every machine. Styles and conditions cycle through the
samples (style fastest), so every style meets every condition equally often; the plate's width is
drawn log-uniformly between 40 and 200 px (the width a camera measures, mean of top and bottom edge).

A sample is what the edge box would hand the recognizer: a truck crop. A truck cut-out
(datasets/assets/objects: drawn and photographed lorries, dumpers, cement mixers) over a piece of
a real street picture (datasets/backgrounds), the plate low on the truck's body, about a fifth of
the crop's width (a lorry's rear is ~2.5 m wide, its plate 0.44 m).

Conditions (`CONDITIONS`), one per sample on top of a mild baseline (small angle, JPEG 90):
- clean:       the baseline only;
- angle:       yaw 20-45 deg, pitch 10-30 deg, roll up to 10 deg (a camera high and to the side);
- blur:        out of focus (sigma 0.8-2 px) and at times a motion streak;
- mud:         mud and dust on the plate (amount 0.3-1) and on the truck;
- dusk:        light 0.2-0.5: dark, blue, noisy;
- jpeg:        quality 15-40;
- muddy_lorry: all of them, milder: what a site exit camera sees of a lorry leaving at dusk.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Final

import cv2
import numpy as np

from vision.training.data.synth.backgrounds import backgrounds
from vision.training.data.synth.plates import (
    PLATE_STYLES,
    PlateStyle,
    degrade,
    paste_plate,
    plate_aspect,
    plate_corners,
    random_plate_text,
    render_plate,
)
from vision.training.data.synth.sprites import apply_mud, load_rgba

CONDITIONS: Final = ("clean", "angle", "blur", "mud", "dusk", "jpeg", "muddy_lorry")
WIDTH_RANGE: Final = (40.0, 200.0)
WIDTH_BUCKETS: Final = ((40, 60), (60, 90), (90, 130), (130, 200))  # px; the last one includes 200
TRUCKS: Final = (  # cut-outs that look like lorries (side views: the picture around the plate, not its place)
    "c_tux_site_dumper.png",
    "c_tux_cementmixer.png",
    "a_c_tux_garbagetruck.png",
    "c_tux_firetruck.png",
    "c_tux_pickup_truck.png",
    "h_tux_dump_truck_drawn.png",
    "h_tux_cement_mixer_drawn.png",
)
_PLATE_SHARE = (0.15, 0.28)  # plate width over crop width


def width_bucket(width_px: float) -> str:
    """The bucket ("40-60", ...) of a plate width; narrower than 40 counts as the first, wider than 200 as the last."""
    for lo, hi in WIDTH_BUCKETS[:-1]:
        if width_px < hi:
            return f"{lo}-{hi}"
    lo, hi = WIDTH_BUCKETS[-1]
    return f"{lo}-{hi}"


@dataclass(frozen=True)
class PlateSample:
    index: int
    image: np.ndarray  # BGR: the truck crop with its plate
    text: str  # what the plate says (no dot)
    style: PlateStyle
    corners: np.ndarray  # (4, 2) tl, tr, br, bl of the plate in the image
    condition: str
    params: dict[str, Any] = field(default_factory=dict)  # every drawn parameter: width, angles, mud, ...

    @property
    def width_px(self) -> float:
        return float(self.params["width_px"])

    def record(self) -> dict[str, Any]:
        """What the report keeps of the sample (everything but the pixels)."""
        return {
            "index": self.index,
            "text": self.text,
            "style": self.style,
            "condition": self.condition,
            "bucket": width_bucket(self.width_px),
            "corners": np.round(self.corners, 1).tolist(),
            "image_size": [int(self.image.shape[1]), int(self.image.shape[0])],
            **self.params,
        }


def _params(rng: np.random.Generator, condition: str) -> dict[str, Any]:
    """The drawn conditions: a mild baseline, then what `condition` changes."""
    p: dict[str, Any] = {
        "yaw_deg": rng.uniform(-10, 10),
        "pitch_deg": rng.uniform(-5, 15),
        "roll_deg": rng.uniform(-3, 3),
        "mud": 0.0,
        "blur_px": 0.0,
        "motion_px": 0.0,
        "light": 1.0,
        "jpeg_quality": 90,
    }
    side = float(rng.choice([-1.0, 1.0]))
    if condition == "angle":
        p.update(yaw_deg=side * rng.uniform(20, 45), pitch_deg=rng.uniform(10, 30), roll_deg=rng.uniform(-10, 10))
    elif condition == "blur":
        p.update(blur_px=rng.uniform(0.8, 2.0), motion_px=float(rng.choice([0.0, rng.uniform(3, 8)])))
    elif condition == "mud":
        p.update(mud=rng.uniform(0.3, 1.0))
    elif condition == "dusk":
        p.update(light=rng.uniform(0.2, 0.5))
    elif condition == "jpeg":
        p.update(jpeg_quality=int(rng.integers(15, 41)))
    elif condition == "muddy_lorry":
        p.update(
            yaw_deg=side * rng.uniform(5, 30),
            pitch_deg=rng.uniform(5, 25),
            mud=rng.uniform(0.3, 0.8),
            blur_px=rng.uniform(0.5, 1.2),
            light=rng.uniform(0.4, 1.0),
            jpeg_quality=int(rng.integers(40, 76)),
        )
    elif condition != "clean":
        raise ValueError(f"unknown condition {condition!r}; one of {', '.join(CONDITIONS)}")
    return {k: round(v, 3) if isinstance(v, float) else v for k, v in p.items()}


@cache
def _background_images() -> tuple[tuple[str, np.ndarray], ...]:
    found = []
    for bg in backgrounds():
        if bg.kind != "still":
            continue
        img = cv2.imread(str(bg.path), cv2.IMREAD_COLOR)
        if img is not None:
            found.append((bg.name, img))
    if not found:
        raise FileNotFoundError("no still backgrounds could be read (datasets/backgrounds/MANIFEST.tsv)")
    return tuple(found)


def _backdrop(rng: np.random.Generator, w: int, h: int) -> tuple[str, np.ndarray]:
    """A piece of a real street picture, scaled to w x h."""
    name, img = _background_images()[int(rng.integers(len(_background_images())))]
    ih, iw = img.shape[:2]
    cw = int(rng.uniform(0.3, 0.8) * iw)
    ch = min(ih, max(8, round(cw * h / w)))
    cw = min(iw, round(ch * w / h))
    x, y = int(rng.integers(0, iw - cw + 1)), int(rng.integers(0, ih - ch + 1))
    return name, cv2.resize(img[y : y + ch, x : x + cw], (w, h), interpolation=cv2.INTER_AREA)


def make_sample(seed: int, index: int, *, frame: int | None = None) -> PlateSample:
    """Sample `index` of the set of `seed` (see the module's docstring). With `frame`, one frame of the
    track of that sample's truck (`make_track`): the same plate and truck, the plate 10 % wider per
    frame (the lorry coming closer), angles, mud, blur and light drawn anew."""
    rng = np.random.default_rng([seed, index])
    style = PLATE_STYLES[index % len(PLATE_STYLES)]
    condition = CONDITIONS[(index // len(PLATE_STYLES)) % len(CONDITIONS)]
    text = random_plate_text(rng, style)
    lo, hi = WIDTH_RANGE
    width_px = float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
    truck_name = TRUCKS[int(rng.integers(len(TRUCKS)))]
    if frame is not None:
        rng = np.random.default_rng([seed, index, frame])
        width_px *= 1.1**frame
    params = _params(rng, condition)
    crop_w = max(64, round(width_px / rng.uniform(*_PLATE_SHARE)))
    truck = load_rgba(truck_name)
    th, tw = truck.shape[:2]
    crop_h = max(48, round(crop_w * min(max(th / tw, 0.55), 1.0)))  # a truck crop is about as high as wide
    bg_name, canvas = _backdrop(rng, crop_w, crop_h)
    # the truck fills most of the crop, bottom-aligned (where the detector's box ends)
    fit = min(crop_w * rng.uniform(0.85, 1.0) / tw, crop_h * rng.uniform(0.8, 0.95) / th)
    sw, sh = max(8, round(tw * fit)), max(8, round(th * fit))
    sprite = cv2.resize(truck, (sw, sh), interpolation=cv2.INTER_AREA if fit < 1 else cv2.INTER_LINEAR)
    rgb, alpha = sprite[..., :3].copy(), sprite[..., 3]
    if params["mud"] > 0:
        rgb, _ = apply_mud(rng, rgb, alpha, strength=float(params["mud"]))
    x0, y0 = (crop_w - sw) // 2, crop_h - sh - int(rng.integers(0, max(1, crop_h // 20)))
    a = alpha.astype(np.float32)[..., None] / 255.0
    region = canvas[y0 : y0 + sh, x0 : x0 + sw].astype(np.float32)
    canvas[y0 : y0 + sh, x0 : x0 + sw] = (region * (1 - a) + rgb.astype(np.float32) * a).astype(np.uint8)
    # the plate: low on the body, left or right of the middle, inside the crop whatever the angle
    plate = render_plate(text, style)
    if params["mud"] > 0:
        plate = degrade(rng, plate, mud=float(params["mud"]))
    aspect = plate_aspect(style)
    cx = crop_w / 2 + rng.uniform(-0.25, 0.25) * crop_w
    cy = y0 + sh * rng.uniform(0.6, 0.8)
    corners = plate_corners(
        (cx, cy),
        width_px,
        aspect,
        yaw_deg=params["yaw_deg"],
        pitch_deg=params["pitch_deg"],
        roll_deg=params["roll_deg"],
    )
    margin = np.asarray([4.0, 4.0], dtype=np.float32)
    low, high = corners.min(axis=0), corners.max(axis=0)
    shift = np.maximum(margin - low, 0) - np.maximum(high - (np.asarray([crop_w, crop_h]) - margin), 0)
    corners = (corners + shift).astype(np.float32)
    image = paste_plate(canvas, plate, corners)
    image = degrade(
        rng,
        image,
        blur_px=float(params["blur_px"]),
        motion_px=float(params["motion_px"]),
        light=float(params["light"]),
        jpeg_quality=int(params["jpeg_quality"]),
    )
    params.update(width_px=round(width_px, 1), truck=truck_name.rsplit(".", 1)[0], background=bg_name)
    if frame is not None:
        params["frame"] = frame
    return PlateSample(index, image, text, style, corners, condition, params)


def make_track(seed: int, index: int, frames: int = 3) -> list[PlateSample]:
    """The crops a track of sample `index`'s truck gives the recognizer: one plate, `frames` looks."""
    return [make_sample(seed, index, frame=k) for k in range(frames)]


def plate_test_set(count: int, seed: int = 0) -> Iterator[PlateSample]:
    """The first `count` samples of the set of `seed`, one at a time (a large set never sits in memory)."""
    for index in range(count):
        yield make_sample(seed, index)

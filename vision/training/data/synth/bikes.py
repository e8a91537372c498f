"""Parked two-wheelers to composite: bicycles, shared bikes, e-bikes, a real motorcycle.

No cut-out photo of a bicycle exists in any package we can use, so bicycles
and e-bikes are drawn (side views squashed for oblique angles, spoked wheels
left see-through, drawn at 2x and downsampled for soft edges). The motorcycle
is a real photo (scikit-image's stereo pair, BSD) cut out with its disparity
map: the bike stands nearer the camera than the garage behind it.
Sizes are real (wheel 0.5-0.7 m) at PX_PER_M so the compositor's perspective
scaling puts them at the right size for where they stand.
"""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from vision.training.data.synth.sprites import ASSETS, PX_PER_M, Sprite

SS = 2  # supersampling factor while drawing
Point = tuple[float, float]  # in sprite pixels, before supersampling
Colour = tuple[int, int, int]  # BGR
FRAME_COLOURS: list[Colour] = [  # BGR
    (40, 40, 40),
    (200, 200, 200),
    (30, 30, 160),
    (150, 80, 20),
    (20, 120, 20),
    (0, 200, 255),
    (0, 140, 255),
    (200, 140, 40),
    (90, 90, 90),
    (230, 230, 230),
]
SHARED_BIKE_COLOURS: list[Colour] = [
    (0, 210, 255),
    (0, 120, 255),
    (210, 150, 30),
    (60, 200, 60),
]  # yellow, orange, blue, green


def _pt(x: float, y: float) -> tuple[int, int]:
    return int(round(x * SS)), int(round(y * SS))


def _line(img: np.ndarray, a: Point, b: Point, colour: Colour, width: float) -> None:
    cv2.line(img, _pt(*a), _pt(*b), (*colour, 255), max(1, int(round(width * SS))), cv2.LINE_AA)


def _wheel(
    img: np.ndarray,
    centre: Point,
    radius: float,
    rng: np.random.Generator,
    tyre: float = 0.09,
    spokes: bool = True,
    disc: bool = False,
) -> None:
    cx, cy = centre
    tyre_px = max(2, int(round(radius * tyre * SS)))
    cv2.circle(img, _pt(cx, cy), int(radius * SS - tyre_px / 2), (25, 25, 25, 255), tyre_px, cv2.LINE_AA)
    rim = (170, 170, 170) if rng.random() < 0.7 else (40, 40, 40)
    cv2.circle(img, _pt(cx, cy), int(radius * SS - tyre_px * 1.1), (*rim, 255), max(1, SS), cv2.LINE_AA)
    if disc:
        cv2.circle(img, _pt(cx, cy), int(radius * SS - tyre_px * 1.2), (*rim, 255), -1, cv2.LINE_AA)
    elif spokes:
        n = int(rng.choice([12, 16, 18]))
        for k in range(n):
            a = 2 * math.pi * k / n
            _line(
                img,
                (cx, cy),
                (cx + math.cos(a) * radius * 0.86, cy + math.sin(a) * radius * 0.86),
                (185, 185, 185),
                0.6,
            )
    cv2.circle(img, _pt(cx, cy), max(2, int(radius * 0.09 * SS)), (90, 90, 90, 255), -1, cv2.LINE_AA)


def _finish(canvas: np.ndarray, squash: float) -> np.ndarray:
    h, w = canvas.shape[:2]
    out = cv2.resize(canvas, (max(2, int(w * squash / SS)), max(2, h // SS)), interpolation=cv2.INTER_AREA)
    ys, xs = np.nonzero(out[:, :, 3] > 8)
    return out[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]


def bicycle(rng: np.random.Generator, shared: bool | None = None) -> Sprite:
    """A diamond-frame or step-through bicycle, optionally a shared bike with a basket."""
    shared = bool(rng.random() < 0.4) if shared is None else shared
    r = rng.uniform(0.30, 0.35) * PX_PER_M  # wheel radius
    base = 1.05 * PX_PER_M * rng.uniform(0.95, 1.08)  # wheelbase
    pad = r * 0.3
    W, H = int((2 * r + base + 2 * pad) * SS), int((2 * r + 1.2 * PX_PER_M) * SS)
    img = np.zeros((H, W, 4), np.uint8)
    ground = H / SS - pad * 0.2
    rear = (pad + r, ground - r)
    front = (pad + r + base, ground - r)
    colour = (
        SHARED_BIKE_COLOURS[rng.integers(len(SHARED_BIKE_COLOURS))]
        if shared
        else FRAME_COLOURS[rng.integers(len(FRAME_COLOURS))]
    )
    tube = rng.uniform(0.035, 0.05) * PX_PER_M * (1.4 if shared else 1.0)
    bb = (rear[0] + base * 0.42, rear[1] + r * 0.12)
    seat = (rear[0] + base * 0.30, rear[1] - r * 1.55)
    head = (front[0] - base * 0.12, front[1] - r * 1.55)
    _wheel(img, rear, r, rng, tyre=0.12 if shared else 0.08, disc=shared and rng.random() < 0.5)
    _wheel(img, front, r, rng, tyre=0.12 if shared else 0.08, disc=shared and rng.random() < 0.3)
    step_through = shared or rng.random() < 0.35
    _line(img, rear, bb, colour, tube)  # chain stay
    _line(img, rear, (seat[0] + 3, seat[1] + r * 0.25), colour, tube * 0.8)  # seat stay
    _line(img, bb, seat, colour, tube)  # seat tube
    if step_through:
        _line(img, bb, (head[0], head[1] + r * 0.55), colour, tube * 1.2)  # low down tube
    else:
        _line(img, bb, (head[0], head[1] + r * 0.25), colour, tube)  # down tube
        _line(img, (seat[0], seat[1] + r * 0.15), head, colour, tube)  # top tube
    _line(img, head, front, colour, tube * 0.9)  # fork
    # handlebar, saddle, crank
    bar = (head[0] - r * 0.15, head[1] - r * 0.35)
    _line(img, head, bar, (60, 60, 60), tube * 0.8)
    _line(img, bar, (bar[0] - r * 0.35, bar[1] + r * 0.05), (30, 30, 30), tube)
    saddle_c = (seat[0] - r * 0.05, seat[1] - r * 0.18)
    _line(img, seat, saddle_c, (120, 120, 120), tube * 0.6)
    cv2.ellipse(
        img, _pt(*saddle_c), (int(r * 0.32 * SS), int(r * 0.08 * SS)), 0, 0, 360, (20, 20, 20, 255), -1, cv2.LINE_AA
    )
    ang = rng.uniform(0, 2 * math.pi)
    crank = (bb[0] + math.cos(ang) * r * 0.4, bb[1] + math.sin(ang) * r * 0.4)
    _line(img, bb, crank, (60, 60, 60), tube * 0.6)
    cv2.circle(img, _pt(*bb), int(r * 0.16 * SS), (70, 70, 70, 255), -1, cv2.LINE_AA)
    if shared:  # front basket and mudguards, the look of a dock-less shared bike
        bx, by = front[0] - r * 0.2, head[1] - r * 0.05
        cv2.rectangle(
            img,
            _pt(bx - r * 0.25, by - r * 0.45),
            _pt(bx + r * 0.45, by + r * 0.05),
            (*colour, 255),
            max(1, int(tube * 0.5 * SS)),
        )
        for k in range(1, 4):
            y = by - r * 0.45 + k * r * 0.125
            _line(img, (bx - r * 0.25, y), (bx + r * 0.45, y), colour, tube * 0.25)
        cv2.ellipse(
            img,
            _pt(*rear),
            (int(r * 1.05 * SS), int(r * 1.05 * SS)),
            0,
            200,
            320,
            (*colour, 255),
            max(1, int(tube * 0.6 * SS)),
            cv2.LINE_AA,
        )
    squash = rng.uniform(0.45, 1.0)
    if rng.random() < 0.5:
        img = img[:, ::-1]
    return Sprite(
        _finish(np.ascontiguousarray(img), squash),
        "bicycle",
        "shared_bike" if shared else "bicycle",
        info={"squash": squash},
    )


def ebike(rng: np.random.Generator) -> Sprite:
    """A scooter-style e-bike (电动车), the most common mis-parked two-wheeler in Chinese streets."""
    r = rng.uniform(0.22, 0.27) * PX_PER_M
    base = 1.15 * PX_PER_M * rng.uniform(0.95, 1.05)
    pad = r * 0.3
    W, H = int((2 * r + base + 2 * pad) * SS), int((2 * r + 1.25 * PX_PER_M) * SS)
    img = np.zeros((H, W, 4), np.uint8)
    ground = H / SS - pad * 0.2
    rear = (pad + r, ground - r)
    front = (pad + r + base, ground - r)
    body = FRAME_COLOURS[rng.integers(len(FRAME_COLOURS))]
    _wheel(img, rear, r, rng, tyre=0.25, disc=True)
    _wheel(img, front, r, rng, tyre=0.25, disc=True)
    # body panel over the rear wheel, floorboard, front shield, seat, handlebar
    deck_y = rear[1] - r * 0.2
    rear_body = np.array(
        [
            _pt(rear[0] - r * 1.1, rear[1] - r * 0.9),
            _pt(rear[0] + r * 0.9, rear[1] - r * 1.5),
            _pt(rear[0] + r * 1.6, rear[1] - r * 1.4),
            _pt(rear[0] + r * 1.7, deck_y),
            _pt(rear[0] - r * 0.2, deck_y),
        ],
        np.int32,
    )
    cv2.fillPoly(img, [rear_body], (*body, 255), cv2.LINE_AA)
    cv2.rectangle(
        img,
        _pt(rear[0] + r * 1.5, deck_y - r * 0.25),
        _pt(front[0] - r * 1.0, deck_y + r * 0.05),
        (40, 40, 40, 255),
        -1,
    )
    shield = np.array(
        [
            _pt(front[0] - r * 1.1, deck_y),
            _pt(front[0] - r * 0.8, front[1] - r * 2.9),
            _pt(front[0] - r * 0.35, front[1] - r * 2.9),
            _pt(front[0] - r * 0.2, front[1] - r * 0.9),
        ],
        np.int32,
    )
    cv2.fillPoly(img, [shield], (*body, 255), cv2.LINE_AA)
    _line(img, (front[0] - r * 0.5, front[1] - r * 2.6), front, (60, 60, 60), r * 0.12)  # fork
    cv2.ellipse(
        img,
        _pt(rear[0] + r * 0.5, rear[1] - r * 1.6),
        (int(r * 1.0 * SS), int(r * 0.22 * SS)),
        -5,
        0,
        360,
        (25, 25, 25, 255),
        -1,
        cv2.LINE_AA,
    )
    bar_y = front[1] - r * 3.3
    _line(img, (front[0] - r * 0.75, front[1] - r * 2.85), (front[0] - r * 0.9, bar_y), (50, 50, 50), r * 0.1)
    _line(img, (front[0] - r * 1.3, bar_y), (front[0] - r * 0.5, bar_y - r * 0.1), (30, 30, 30), r * 0.1)
    cv2.circle(
        img, _pt(front[0] - r * 0.55, front[1] - r * 2.5), int(r * 0.18 * SS), (200, 230, 240, 255), -1, cv2.LINE_AA
    )
    squash = rng.uniform(0.45, 1.0)
    if rng.random() < 0.5:
        img = img[:, ::-1]
    return Sprite(_finish(np.ascontiguousarray(img), squash), "motorcycle", "ebike", info={"squash": squash})


MOTORCYCLE_ASSET = "e_skimage_motorcycle.png"


@lru_cache(maxsize=1)
def _motorcycle_cutout(assets: str = str(ASSETS)) -> np.ndarray | None:
    path = Path(assets) / MOTORCYCLE_ASSET
    im = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    return im


def motorcycle(rng: np.random.Generator) -> Sprite | None:
    """The real motorcycle photo, 2.1 m long, mirrored at random; None if the asset is absent."""
    rgba = _motorcycle_cutout()
    if rgba is None:
        return None
    length_px = 2.1 * PX_PER_M * rng.uniform(0.9, 1.1)
    f = length_px / rgba.shape[1]
    squash = rng.uniform(0.55, 1.0)
    out = cv2.resize(
        rgba, (max(2, int(rgba.shape[1] * f * squash)), max(2, int(rgba.shape[0] * f))), interpolation=cv2.INTER_AREA
    )
    if rng.random() < 0.5:
        out = np.ascontiguousarray(out[:, ::-1])
    return Sprite(out, "motorcycle", "motorcycle", info={"squash": squash})


def two_wheeler(rng: np.random.Generator) -> Sprite:
    """One parked two-wheeler of a random kind, weighted as seen on Chinese footpaths."""
    roll = rng.random()
    if roll < 0.45:
        return bicycle(rng)
    if roll < 0.85:
        return ebike(rng)
    return motorcycle(rng) or ebike(rng)


def bike_row(rng: np.random.Generator) -> list[Sprite]:
    """One to four two-wheelers parked side by side, as they are left on footpaths."""
    return [two_wheeler(rng) for _ in range(int(rng.choice([1, 1, 2, 3, 4])))]


ROW_GAP_M = 0.6  # distance between neighbouring parked bikes, metres

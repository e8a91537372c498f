"""Training tiles: the pieces of a labelled frame the head learns from.

Why tiles: in a whole 16:9 frame squeezed into the 416-px input, a bag of
garbage 20 m away is a few pixels. The daemon looks at a frame whole and, over
its zones, in zoom tiles (`vision/edge/detection/zoom.py`), so objects reach the
model at every size from a few pixels to most of the input. Tiles cut around the
labelled objects at random sizes (14 to ~220 input pixels, but never magnified more
than the daemon's zoom does: a bag 5 pixels tall stays small), wider than tall by a
random aspect (a squeezed 16:9 frame, a zoom tile), sometimes mirrored, and
given a random light (dark, bright, low contrast, colour cast, sensor noise,
blur) that is not the scenario suite's dusk and rain: the suite measures those
conditions, so training on its own renderer would flatter the figures.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from vision.training.city_head.targets import LabelledBox

Labelled = tuple[str, float, float, float, float]  # class name and xyxy in frame pixels
MIN_VISIBLE = 0.5  # a box cut by the tile keeps its label if this much of it is inside
MAX_ZOOM = 4.0  # a tile is magnified at most this much (the daemon's zoom tiles: 2-4x); more is only blur


@dataclass
class Tile:
    image: np.ndarray  # size x size BGR, what the model is given
    boxes: list[LabelledBox]  # in tile pixels, class index in the head's classes


def _cut(
    image: np.ndarray, labels: list[Labelled], classes: list[str], x: float, y: float, w: float, h: float, size: int
) -> Tile:
    H, W = image.shape[:2]
    x0, y0 = int(np.clip(x, 0, max(0, W - w))), int(np.clip(y, 0, max(0, H - h)))
    x1, y1 = min(W, x0 + int(w)), min(H, y0 + int(h))
    crop = image[y0:y1, x0:x1]
    fx, fy = size / max(1, crop.shape[1]), size / max(1, crop.shape[0])
    tile = cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA if fx < 1 else cv2.INTER_LINEAR)
    boxes = []
    for name, bx1, by1, bx2, by2 in labels:
        if name not in classes:
            continue
        ax1, ay1, ax2, ay2 = max(bx1, x0), max(by1, y0), min(bx2, x1), min(by2, y1)
        if ax2 <= ax1 or ay2 <= ay1:
            continue
        area = max(1e-6, (bx2 - bx1) * (by2 - by1))
        visible = (ax2 - ax1) * (ay2 - ay1) / area
        boxes.append(
            LabelledBox(
                classes.index(name),
                (ax1 - x0) * fx,
                (ay1 - y0) * fy,
                (ax2 - x0) * fx,
                (ay2 - y0) * fy,
                ignore=visible < MIN_VISIBLE,
            )
        )
    return Tile(tile, boxes)


def sample_tiles(
    image: np.ndarray,
    labels: list[Labelled],
    classes: list[str],
    rng: np.random.Generator,
    n: int,
    size: int,
    object_share: float = 0.75,
    sizes: tuple[float, float] = (14.0, 220.0),
) -> list[Tile]:
    """`n` tiles of one frame: most centred near a labelled object of `classes` (or a
    truck, the muddy truck's hard negative), the rest anywhere (background)."""
    H, W = image.shape[:2]
    anchors = [lab for lab in labels if lab[0] in classes or lab[0] == "truck"]
    tiles = []
    for _ in range(n):
        aspect = float(rng.uniform(1.0, 1.8))  # tile width / height before squeezing into the square input
        if anchors and rng.random() < object_share:
            _name, x1, y1, x2, y2 = anchors[int(rng.integers(len(anchors)))]
            target = float(np.exp(rng.uniform(np.log(sizes[0]), np.log(sizes[1]))))  # object size in the input
            obj = max(x2 - x1, y2 - y1, 1.0)
            h = float(np.clip(obj * size / target, size / MAX_ZOOM, min(H, W / aspect)))
            w = h * aspect
            cx = (x1 + x2) / 2 + rng.uniform(-0.35, 0.35) * w
            cy = (y1 + y2) / 2 + rng.uniform(-0.35, 0.35) * h
        else:
            h = float(rng.uniform(0.3, 1.0)) * min(H, W / aspect)
            w = h * aspect
            cx, cy = rng.uniform(0, W), rng.uniform(0, H)
        tile = _cut(image, labels, classes, cx - w / 2, cy - h / 2, w, h, size)
        if rng.random() < 0.5:
            tile = mirrored(tile, size)
        tile.image = relight(tile.image, rng)
        tiles.append(tile)
    return tiles


def mirrored(tile: Tile, size: int) -> Tile:
    boxes = [LabelledBox(b.cls, size - b.x2, b.y1, size - b.x1, b.y2, ignore=b.ignore) for b in tile.boxes]
    return Tile(np.ascontiguousarray(tile.image[:, ::-1]), boxes)


def relight(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random light and camera: half the tiles untouched, the rest darker or brighter
    (gamma), flatter, tinted, noisier or softer."""
    if rng.random() < 0.5:
        return image
    img = image.astype(np.float32) / 255.0
    img = img ** float(rng.uniform(0.7, 2.4))  # > 1 darkens, as at dusk
    contrast = float(rng.uniform(0.6, 1.1))
    img = (img - img.mean()) * contrast + img.mean()
    img *= rng.uniform(0.85, 1.15, size=3).astype(np.float32)  # colour cast, per BGR channel
    img = img * 255.0
    if rng.random() < 0.5:
        img += rng.normal(0.0, rng.uniform(2.0, 9.0), img.shape).astype(np.float32)
    out: np.ndarray = np.clip(img, 0, 255).astype(np.uint8)
    if rng.random() < 0.3:
        out = cv2.GaussianBlur(out, (0, 0), float(rng.uniform(0.6, 1.4)))
    return out

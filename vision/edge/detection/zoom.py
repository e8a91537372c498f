"""Where to look closer: tiles over a camera's zones, at the detector's own input size.

Why: a 320-pixel detector sees a 1080p frame shrunk six times, so a bicycle
or a bag 60 pixels tall at the far end of a zone is 10 pixels to it, below
what it can find. The zones are where the rules look, and they are usually a
band of the picture; cutting that band into a few tiles of the model's aspect
and detecting on each (SAHI's slicing, limited to the zones) shows the model
those objects two to four times larger. The full frame is still detected too,
for objects bigger than a tile.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = ["zoom_tiles"]

RISE = 0.5  # objects standing in a zone rise above it: grow the band upwards by this much of its height
MARGIN = 0.03  # of the frame, around the band
OVERLAP = 0.2  # neighbouring tiles share this fraction, so an object on a seam is whole in one of them
MIN_GAIN = 1.5  # a tile must magnify at least this much over the full frame, or it is not worth a run


def zoom_tiles(
    zones_rel: Sequence[Sequence[Sequence[float]]],
    width: int,
    height: int,
    model_w: int,
    model_h: int,
    *,
    max_tiles: int = 4,
) -> list[tuple[int, int, int, int]]:
    """Pixel xyxy tiles over the zones' bounding band; [] when tiles would not magnify enough."""
    pts = [np.asarray(z, dtype=np.float64).reshape(-1, 2) for z in zones_rel if len(z)]
    if not pts or width <= 0 or height <= 0:
        return []
    allp = np.concatenate(pts) * [width, height]
    x1, y1 = allp.min(axis=0)
    x2, y2 = allp.max(axis=0)
    band_h = max(y2 - y1, 0.05 * height)
    y1 -= RISE * band_h
    pad_x, pad_y = MARGIN * width, MARGIN * height
    x1, y1 = max(0.0, x1 - pad_x), max(0.0, y1 - pad_y)
    x2, y2 = min(float(width), x2 + pad_x), min(float(height), y2 + pad_y)
    bw, bh = x2 - x1, y2 - y1
    aspect = model_w / model_h
    full_scale = min(model_w / width, model_h / height)  # how the full frame is seen (stretch: the smaller axis)
    # n tiles side by side, each of the model's aspect and the band's height (or taller, to cover the band)
    n = max(1, math.ceil((bw / (bh * aspect) - OVERLAP) / (1 - OVERLAP)))
    n = min(n, max_tiles)
    tile_w = max(bw / (n - (n - 1) * OVERLAP), bh * aspect)
    tile_h = tile_w / aspect
    tile_w, tile_h = min(tile_w, float(width)), min(tile_h, float(height))
    if min(model_w / tile_w, model_h / tile_h) < MIN_GAIN * full_scale:
        return []
    cy = (y1 + y2) / 2
    top = float(np.clip(cy - tile_h / 2, 0, height - tile_h))
    step = (bw - tile_w) / (n - 1) if n > 1 else 0.0
    tiles = []
    for i in range(n):
        left = float(np.clip(x1 + i * step if n > 1 else (x1 + x2 - tile_w) / 2, 0, width - tile_w))
        tiles.append((int(left), int(top), int(math.ceil(left + tile_w)), int(math.ceil(top + tile_h))))
    return tiles

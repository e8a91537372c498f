"""Which grid cells should fire for which box: the training targets of the head.

Each labelled box belongs to one stride by its size (as NanoDet's own assignment
roughly does): small boxes to stride 8, middle to 16, large to 32. At that stride
the cells whose centres lie in the box's central half are positives and learn the
box; the rest of the box is ignored, and so is the box at the neighbouring
strides, so a cell that half sees an object is never taught that it is
background. Every other cell is a negative for every class.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

IGNORE = -1.0
SIZE_EDGES = (40.0, 100.0)  # sqrt(area) in input pixels: below 40 → stride 8, below 100 → 16, else 32


@dataclass(frozen=True)
class LabelledBox:
    """A box in tile (model input) pixels and its class index in the head's classes."""

    cls: int
    x1: float
    y1: float
    x2: float
    y2: float
    ignore: bool = False  # mostly cut off by the tile's edge: neither taught as object nor as background

    @property
    def size(self) -> float:
        return math.sqrt(max(self.x2 - self.x1, 0.0) * max(self.y2 - self.y1, 0.0))


@dataclass
class LevelTargets:
    """Per cell: class targets (1, 0 or IGNORE per class), the box positives learn, and which are positive."""

    classes: np.ndarray  # (cells, K) float32
    boxes: np.ndarray  # (cells, 4) float32, xyxy in input pixels, valid where positive
    positive: np.ndarray  # (cells,) bool


def cell_centres(side: int, stride: int) -> np.ndarray:
    """(side*side, 2) cell centres in input pixels, row-major like the head's outputs."""
    ys, xs = np.mgrid[0:side, 0:side]
    return np.stack([(xs.ravel() + 0.5) * stride, (ys.ravel() + 0.5) * stride], axis=1).astype(np.float32)


def level_for(size: float, n_levels: int = 3) -> int:
    for i, edge in enumerate(SIZE_EDGES[: n_levels - 1]):
        if size < edge:
            return i
    return n_levels - 1


def assign(boxes: list[LabelledBox], grids: list[tuple[int, int]], n_classes: int) -> list[LevelTargets]:
    """Targets for one tile; `grids` is (side, stride) per level, finest first."""
    out = []
    centres = []
    for side, stride in grids:
        n = side * side
        out.append(LevelTargets(np.zeros((n, n_classes), np.float32), np.zeros((n, 4), np.float32), np.zeros(n, bool)))
        centres.append(cell_centres(side, stride))
    # large boxes first, so a small box in front of a large one keeps the cells it shares
    for box in sorted(boxes, key=lambda b: -b.size):
        if box.size <= 0:
            continue
        home = level_for(box.size, len(grids))
        if box.ignore:
            for c, t in zip(centres, out, strict=True):
                inside = (c[:, 0] > box.x1) & (c[:, 0] < box.x2) & (c[:, 1] > box.y1) & (c[:, 1] < box.y2)
                col = t.classes[:, box.cls]
                col[inside & (col != 1)] = IGNORE
            continue
        w, h = box.x2 - box.x1, box.y2 - box.y1
        cx, cy = (box.x1 + box.x2) / 2, (box.y1 + box.y2) / 2
        for lv, ((_side, stride), c, t) in enumerate(zip(grids, centres, out, strict=True)):
            inside = (c[:, 0] > box.x1) & (c[:, 0] < box.x2) & (c[:, 1] > box.y1) & (c[:, 1] < box.y2)
            col = t.classes[:, box.cls]
            if lv != home:
                if abs(lv - home) == 1:
                    col[inside & (col != 1)] = IGNORE
                continue
            core = inside & (np.abs(c[:, 0] - cx) < max(w / 4, stride)) & (np.abs(c[:, 1] - cy) < max(h / 4, stride))
            if not core.any():  # a box smaller than a cell: the cell nearest its centre
                core = np.zeros(len(c), bool)
                core[int(np.argmin(((c - (cx, cy)) ** 2).sum(axis=1)))] = True
            col[inside & ~core & (col != 1)] = IGNORE
            col[core] = 1.0
            t.boxes[core] = (box.x1, box.y1, box.x2, box.y2)
            t.positive[core] = True
    return out

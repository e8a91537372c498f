"""Box and segment geometry shared by the edge, training and the dispatch center.

IoU and intersection-over-smaller are supervision's (`box_iou_batch`); it is
imported on first use, because importing supervision costs about a second and
the dispatch center and the outbox CLI should not pay it at start-up.
Containment (how much of one box lies inside another) has no supervision
equivalent and is computed here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import numpy.typing as npt

BoxLike = np.ndarray | Sequence[float] | Sequence[Sequence[float]]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


def _boxes(b: BoxLike) -> FloatArray:
    return np.asarray(b, dtype=np.float64).reshape(-1, 4)


def _supervision_overlap(a: BoxLike, b: BoxLike, metric: Literal["iou", "ios"]) -> FloatArray:
    from supervision.detection.utils.iou_and_nms import OverlapMetric, box_iou_batch

    a_boxes, b_boxes = _boxes(a), _boxes(b)
    if not len(a_boxes) or not len(b_boxes):
        return np.zeros((len(a_boxes), len(b_boxes)))
    overlap: FloatArray = box_iou_batch(a_boxes, b_boxes, overlap_metric=OverlapMetric(metric.upper())).astype(
        np.float64
    )
    return overlap


def box_iou(a: BoxLike, b: BoxLike) -> FloatArray:
    """(len(a), len(b)) intersection over union; 0 where a box has no area."""
    return _supervision_overlap(a, b, "iou")


def box_ios(a: BoxLike, b: BoxLike) -> FloatArray:
    """(len(a), len(b)) intersection over the smaller box's area: a part inside a whole scores 1."""
    return _supervision_overlap(a, b, "ios")


def box_containment(inner: BoxLike, outer: BoxLike) -> FloatArray:
    """(len(inner), len(outer)): fraction of each inner box's area inside each outer box."""
    inner_boxes, outer_boxes = _boxes(inner), _boxes(outer)
    x1 = np.maximum(inner_boxes[:, None, 0], outer_boxes[None, :, 0])
    y1 = np.maximum(inner_boxes[:, None, 1], outer_boxes[None, :, 1])
    x2 = np.minimum(inner_boxes[:, None, 2], outer_boxes[None, :, 2])
    y2 = np.minimum(inner_boxes[:, None, 3], outer_boxes[None, :, 3])
    inter = (x2 - x1).clip(0) * (y2 - y1).clip(0)
    area = (inner_boxes[:, 2] - inner_boxes[:, 0]).clip(0) * (inner_boxes[:, 3] - inner_boxes[:, 1]).clip(0)
    return np.where(area[:, None] > 0, inter / np.maximum(area[:, None], 1e-9), 0.0)


def box_gap(a: BoxLike, b: BoxLike) -> FloatArray:
    """(len(a), len(b)) gap between boxes, divided by the smaller box's height; 0 where they touch or overlap.

    Scale-free, so "the parasol sits on the table" reads the same for a stall 40 px or 400 px tall."""
    a_boxes, b_boxes = _boxes(a)[:, None, :], _boxes(b)[None, :, :]
    gap_x = np.maximum(0.0, np.maximum(a_boxes[..., 0], b_boxes[..., 0]) - np.minimum(a_boxes[..., 2], b_boxes[..., 2]))
    gap_y = np.maximum(0.0, np.maximum(a_boxes[..., 1], b_boxes[..., 1]) - np.minimum(a_boxes[..., 3], b_boxes[..., 3]))
    height = np.minimum(a_boxes[..., 3] - a_boxes[..., 1], b_boxes[..., 3] - b_boxes[..., 1])
    gap: FloatArray = np.maximum(gap_x, gap_y) / np.maximum(height, 1e-9)
    return gap


def _orient(a: FloatArray, b: FloatArray, c: FloatArray) -> FloatArray:
    """Sign of the turn a->b->c, broadcast over arrays of points (..., 2)."""
    return (b[..., 0] - a[..., 0]) * (c[..., 1] - a[..., 1]) - (b[..., 1] - a[..., 1]) * (c[..., 0] - a[..., 0])


def segments_intersect(p: npt.ArrayLike, q: npt.ArrayLike, a: npt.ArrayLike, b: npt.ArrayLike) -> BoolArray:
    """(N,) bool: segment p[n]->q[n] properly crosses segment a->b (touching does not count)."""
    starts = np.asarray(p, dtype=np.float64).reshape(-1, 2)
    ends = np.asarray(q, dtype=np.float64).reshape(-1, 2)
    line_a = np.asarray(a, dtype=np.float64)
    line_b = np.asarray(b, dtype=np.float64)
    d1, d2 = _orient(line_a, line_b, starts), _orient(line_a, line_b, ends)
    d3 = _orient(starts, ends, np.broadcast_to(line_a, starts.shape))
    d4 = _orient(starts, ends, np.broadcast_to(line_b, starts.shape))
    crosses: BoolArray = (d1 * d2 < 0) & (d3 * d4 < 0)
    return crosses


def orientation(a: npt.ArrayLike, b: npt.ArrayLike, c: npt.ArrayLike) -> FloatArray:
    """Which side of the line a->b the points c lie on (> 0 left, < 0 right, 0 on it)."""
    return _orient(np.asarray(a, np.float64), np.asarray(b, np.float64), np.asarray(c, np.float64))

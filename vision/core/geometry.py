"""Box and segment geometry shared by the edge, training and the dispatch center.

IoU and intersection-over-smaller are supervision's (`box_iou_batch`); it is
imported on first use, because importing supervision costs about a second and
the dispatch center and the outbox CLI should not pay it at start-up.
Containment (how much of one box lies inside another) has no supervision
equivalent and is computed here.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

BoxLike = np.ndarray | Sequence[float] | Sequence[Sequence[float]]


def _boxes(b: BoxLike) -> np.ndarray:
    return np.asarray(b, dtype=np.float64).reshape(-1, 4)


def _supervision_overlap(a: BoxLike, b: BoxLike, metric: str) -> np.ndarray:
    from supervision.detection.utils.iou_and_nms import OverlapMetric, box_iou_batch

    a, b = _boxes(a), _boxes(b)
    if not len(a) or not len(b):
        return np.zeros((len(a), len(b)))
    return box_iou_batch(a, b, overlap_metric=OverlapMetric(metric.upper())).astype(np.float64)


def box_iou(a: BoxLike, b: BoxLike) -> np.ndarray:
    """(len(a), len(b)) intersection over union; 0 where a box has no area."""
    return _supervision_overlap(a, b, "iou")


def box_ios(a: BoxLike, b: BoxLike) -> np.ndarray:
    """(len(a), len(b)) intersection over the smaller box's area: a part inside a whole scores 1."""
    return _supervision_overlap(a, b, "ios")


def box_containment(inner: BoxLike, outer: BoxLike) -> np.ndarray:
    """(len(inner), len(outer)): fraction of each inner box's area inside each outer box."""
    inner, outer = _boxes(inner), _boxes(outer)
    x1 = np.maximum(inner[:, None, 0], outer[None, :, 0])
    y1 = np.maximum(inner[:, None, 1], outer[None, :, 1])
    x2 = np.minimum(inner[:, None, 2], outer[None, :, 2])
    y2 = np.minimum(inner[:, None, 3], outer[None, :, 3])
    inter = (x2 - x1).clip(0) * (y2 - y1).clip(0)
    area = (inner[:, 2] - inner[:, 0]).clip(0) * (inner[:, 3] - inner[:, 1]).clip(0)
    return np.where(area[:, None] > 0, inter / np.maximum(area[:, None], 1e-9), 0.0)


def _orient(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Sign of the turn a->b->c, broadcast over arrays of points (..., 2)."""
    return (b[..., 0] - a[..., 0]) * (c[..., 1] - a[..., 1]) - (b[..., 1] - a[..., 1]) * (c[..., 0] - a[..., 0])


def segments_intersect(p: np.ndarray, q: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N,) bool: segment p[n]->q[n] properly crosses segment a->b (touching does not count)."""
    p = np.asarray(p, dtype=np.float64).reshape(-1, 2)
    q = np.asarray(q, dtype=np.float64).reshape(-1, 2)
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    d1, d2 = _orient(a, b, p), _orient(a, b, q)
    d3 = _orient(p, q, np.broadcast_to(a, p.shape))
    d4 = _orient(p, q, np.broadcast_to(b, p.shape))
    return (d1 * d2 < 0) & (d3 * d4 < 0)


def orientation(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Which side of the line a->b the points c lie on (> 0 left, < 0 right, 0 on it)."""
    return _orient(np.asarray(a, np.float64), np.asarray(b, np.float64), np.asarray(c, np.float64))

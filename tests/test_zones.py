"""Zones: anchors, vectorised membership, line crossing, bounded per-track state."""

from __future__ import annotations

import numpy as np
import pytest

from vision.core.geometry import segments_intersect
from vision.edge.config import ZoneConfig
from vision.edge.zones import LineCrossing, ZoneGeometry, ZoneSet, anchor_points

SQUARE = ZoneConfig(name="sq", kind="no_vending", polygon=[(0.1, 0.1), (0.5, 0.1), (0.5, 0.5), (0.1, 0.5)])
TRI = ZoneConfig(name="tri", kind="no_parking", polygon=[(0.5, 0.5), (0.9, 0.9), (0.5, 0.9)])
LINE = ZoneConfig(name="gate", kind="site_exit", polygon=[(0.0, 0.6), (1.0, 0.6)])


@pytest.mark.parametrize(
    "anchor, expected",
    [("bottom_center", (20.0, 40.0)), ("center", (20.0, 25.0)), ("top_center", (20.0, 10.0))],
)
def test_anchor_points(anchor, expected):
    pts = anchor_points(np.array([[10, 10, 30, 40]]), anchor)
    assert tuple(pts[0]) == expected


def test_anchor_points_empty():
    assert anchor_points(np.empty((0, 4)), "bottom_center").shape == (0, 2)


@pytest.mark.parametrize(
    "point, in_sq, in_tri",
    [
        ((300, 300), True, False),
        ((50, 50), False, False),
        ((600, 800), False, True),
        ((850, 600), False, False),  # outside the triangle's slanted edge
        ((1000, 1000), False, False),  # the very corner of the frame
        ((-5, 300), False, False),  # outside the frame
    ],
)
def test_membership_table(point, in_sq, in_tri):
    geo = ZoneGeometry([SQUARE, TRI, LINE], 1000, 1000)
    inside = geo.contains(np.array([point], dtype=float))
    assert inside.shape == (1, 3)
    assert bool(inside[0, 0]) is in_sq
    assert bool(inside[0, 1]) is in_tri
    assert not inside[0, 2], "a line zone contains nothing"


def test_membership_many_boxes_one_call():
    geo = ZoneGeometry([SQUARE], 640, 480)
    rng = np.random.default_rng(0)
    pts = rng.uniform([0, 0], [640, 480], size=(5000, 2))
    inside = geo.contains(pts)[:, 0]
    rel = pts / [640, 480]
    exact = (rel[:, 0] > 0.1) & (rel[:, 0] < 0.5) & (rel[:, 1] > 0.1) & (rel[:, 1] < 0.5)
    # rasterised edges may differ by a pixel
    near_edge = (np.abs(rel[:, 0] - 0.1) * 640 < 2) | (np.abs(rel[:, 0] - 0.5) * 640 < 2)
    near_edge |= (np.abs(rel[:, 1] - 0.1) * 480 < 2) | (np.abs(rel[:, 1] - 0.5) * 480 < 2)
    assert np.array_equal(inside[~near_edge], exact[~near_edge])


def test_zone_set_caches_per_size():
    zs = ZoneSet([SQUARE])
    a = zs.at(640, 480)
    assert zs.at(640, 480) is a
    b = zs.at(1920, 1080)
    assert b is not a and b.masks.shape == (1, 1080, 1920)


def test_segments_intersect():
    p = np.array([[5, 0], [5, 0], [20, 0]], dtype=float)
    q = np.array([[5, 10], [5, 4], [20, 10]], dtype=float)
    out = segments_intersect(p, q, np.array([0.0, 5.0]), np.array([10.0, 5.0]))
    assert out.tolist() == [True, False, False]


def test_line_crossing_per_track_and_pruned():
    geo = ZoneGeometry([LINE], 1000, 1000)
    a, b = geo.line(0)
    lc = LineCrossing(a, b, forget_after_s=5)
    assert lc.update(np.array([1, 2]), np.array([[100, 500], [300, 700]]), 0.0).tolist() == [False, False]
    # track 1 crosses downwards, track 2 moves along below the line, track 3 is new
    out = lc.update(np.array([1, 2, 3]), np.array([[110, 650], [320, 710], [500, 700]]), 1.0)
    assert out.tolist() == [True, False, False]
    # unconfirmed detections (-1) are never tracked
    assert lc.update(np.array([-1]), np.array([[0, 0]]), 2.0).tolist() == [False]
    assert len(lc) == 3
    lc.update(np.array([], dtype=int), np.empty((0, 2)), 100.0)
    assert len(lc) == 0, "ids unseen for forget_after_s are deleted"


def test_line_crossing_through_a_point_on_the_line_counts_once():
    lc = LineCrossing(np.array([0.0, 500.0]), np.array([1000.0, 500.0]))
    out = [lc.update(np.array([1]), np.array([[450.0, y]]), t)[0] for t, y in enumerate([400, 450, 500, 500, 550, 600])]
    assert out == [False, False, False, False, True, False]
    # back up across: another crossing; passing beyond the line's end does not count
    assert lc.update(np.array([1]), np.array([[450.0, 400.0]]), 7)[0]
    assert not lc.update(np.array([2]), np.array([[1500.0, 400.0]]), 8)[0]
    assert not lc.update(np.array([2]), np.array([[1500.0, 600.0]]), 9)[0]


def test_a_track_first_seen_on_the_line_crosses_when_it_leaves_it_only_if_asked() -> None:
    """A fast vehicle the tracker confirms only when it is already on the line crosses once it
    leaves the line (with `appearing_on_line`); one that stays within the margin never does."""
    line = (np.array([0.0, 500.0]), np.array([1000.0, 500.0]))
    margins = np.array([20.0])
    ys = [505.0, 490.0, 560.0, 640.0]  # first seen within the margin, then clearly below the line
    asked = LineCrossing(*line, appearing_on_line=True)
    out = [asked.update(np.array([1]), np.array([[450.0, y]]), t, margins)[0] for t, y in enumerate(ys)]
    assert out == [False, False, True, False]
    default = LineCrossing(*line)
    assert not any(default.update(np.array([1]), np.array([[450.0, y]]), t, margins)[0] for t, y in enumerate(ys))
    # a parked vehicle jittering within the margin never crosses; one first seen off the line
    # that comes back to it and leaves on the same side neither
    for y_seq in ([505.0, 495.0, 510.0, 490.0], [560.0, 505.0, 560.0]):
        lc = LineCrossing(*line, appearing_on_line=True)
        assert not any(lc.update(np.array([1]), np.array([[450.0, y]]), t, margins)[0] for t, y in enumerate(y_seq))
    # beyond the line's ends it is no crossing
    lc = LineCrossing(*line, appearing_on_line=True)
    assert not any(lc.update(np.array([1]), np.array([[1500.0, y]]), t, margins)[0] for t, y in enumerate(ys))

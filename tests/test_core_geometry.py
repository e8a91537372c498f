"""The one IoU, containment, segment test and backoff every side uses (vision.core)."""

from __future__ import annotations

import random

import numpy as np
import pytest

from vision.core.backoff import Backoff, backoff_delay
from vision.core.geometry import box_containment, box_gap, box_ios, box_iou, segments_intersect


@pytest.mark.parametrize(
    ("a", "b", "iou"),
    [
        ((0, 0, 0.5, 0.5), (0.4, 0.4, 1, 1), 0.01 / (0.25 + 0.36 - 0.01)),
        ((0, 0, 0.5, 0.5), (0.5, 0.5, 1, 1), 0.0),  # touching is not overlapping
        ((0, 0, 0.2, 0.2), (0.8, 0.8, 1, 1), 0.0),
        ((0, 0, 1, 1), (0.1, 0.1, 0.2, 0.2), 0.01),
        ((0, 0, 10, 10), (0, 0, 10, 10), 1.0),
        ((3, 3, 3, 3), (0, 0, 10, 10), 0.0),  # no area
    ],
)
def test_box_iou(a, b, iou):
    assert box_iou(a, b)[0, 0] == pytest.approx(iou, abs=1e-6)
    assert box_iou(b, a)[0, 0] == pytest.approx(iou, abs=1e-6)


def test_matrices_have_one_row_per_box_and_accept_empty_sets():
    a = np.array([[0, 0, 10, 10], [20, 20, 30, 30]], float)
    b = np.array([[5, 5, 15, 15], [0, 0, 10, 10], [100, 100, 110, 110]], float)
    assert box_iou(a, b).shape == box_ios(a, b).shape == box_containment(a, b).shape == (2, 3)
    assert box_iou(a, np.empty((0, 4))).shape == (2, 0)
    assert box_iou(np.empty((0, 4)), b).shape == (0, 3)


def test_containment_is_directional_and_ios_the_larger_of_both():
    part, whole = (2, 2, 4, 4), (0, 0, 10, 10)
    assert box_containment(part, whole)[0, 0] == pytest.approx(1.0)
    assert box_containment(whole, part)[0, 0] == pytest.approx(0.04)
    assert box_ios(part, whole)[0, 0] == pytest.approx(1.0)
    half_out = (8, 0, 12, 10)
    assert box_containment(half_out, whole)[0, 0] == pytest.approx(0.5)
    assert box_containment((3, 3, 3, 3), whole)[0, 0] == 0.0


def test_segments_cross_only_when_they_really_cross():
    line_a, line_b = np.array([0.0, 5.0]), np.array([10.0, 5.0])
    p = np.array([[5, 0], [5, 0], [5, 5], [20, 0]], float)
    q = np.array([[5, 10], [5, 4], [5, 10], [20, 10]], float)
    assert segments_intersect(p, q, line_a, line_b).tolist() == [True, False, False, False]


def test_backoff_doubles_up_to_the_cap_with_half_of_it_random():
    rng = random.Random(1)
    for attempt, ceiling in [(1, 1.0), (2, 2.0), (3, 4.0), (6, 30.0), (40, 30.0), (10_000, 30.0)]:
        for _ in range(20):
            assert ceiling / 2 <= backoff_delay(attempt, 1.0, 30.0, rng) <= ceiling
    backoff = Backoff(1.0, 8.0, random.Random(2))
    delays = [backoff.next_delay() for _ in range(6)]
    assert backoff.attempt == 6 and 4.0 <= delays[-1] <= 8.0 and delays[0] <= 1.0
    backoff.reset()
    assert backoff.next_delay() <= 1.0


def test_box_gap_is_the_gap_in_heights_of_the_smaller_box():
    table = [400, 400, 520, 500]  # 100 px tall
    parasol = [390, 290, 530, 395]  # 105 px tall, 5 px above the table
    beside = [540, 420, 580, 500]  # 80 px tall, 20 px to the right
    inside = [420, 420, 450, 450]
    gap = box_gap([table], [parasol, beside, inside, table])
    assert gap[0].tolist() == pytest.approx([0.05, 0.25, 0.0, 0.0])
    # scale-free: the same scene at a tenth of the size gives the same gaps
    small = box_gap(np.asarray([table]) / 10, np.asarray([parasol, beside]) / 10)
    assert small[0].tolist() == pytest.approx([0.05, 0.25])
    assert box_gap([table], np.zeros((0, 4))).shape == (1, 0)

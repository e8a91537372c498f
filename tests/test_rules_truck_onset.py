"""A muddy truck's case starts where and when the truck reached the exit, not when it was judged muddy:
the onset (stream time, wall time, exit) is one value set once, so a case never has half an onset."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.support_edge import T0, Script
from tests.test_rules_truck import drive, truck_rules


def test_a_truck_judged_muddy_after_crossing_keeps_its_crossing_as_onset():
    s = Script(truck_rules())
    drive(s, muddy_frames={5, 6, 8})  # crosses the line at frame 7 with 2 muddy frames; the 3rd comes at frame 8
    ((t, v),) = s.kinds("opened")
    assert t == pytest.approx(8 * 0.2)
    assert v.zone == "gate"
    assert v.onset_t_s == pytest.approx(7 * 0.2) and v.onset_at == T0 + timedelta(seconds=7 * 0.2)
    assert v.detected_t_s == pytest.approx(8 * 0.2) and v.detected_at == T0 + timedelta(seconds=8 * 0.2)
    assert v.dwell_s == pytest.approx(0.2)


def test_a_muddy_truck_that_never_reaches_the_exit_has_no_onset_and_no_case():
    rules = truck_rules()
    s = Script(rules)
    drive(s, muddy_frames={0, 1, 2, 3, 4}, frames=5)  # muddy all along, still above the line at y=500
    assert s.kinds("opened") == []
    (rule,) = rules.rules
    assert all(truck.onset is None for truck in rule.trucks.values())

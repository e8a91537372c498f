"""Cases against a scenario's ground truth: which case is which scripted violation.

A case matches a truth event of its violation type when it came while the
object was on screen (or within `grace_s` after it left: evidence is finished
after the clip) and, for objects that stand still, when its box overlaps the
object's box. The first case of an event is a hit; a second one is a
duplicate and counts as a false case, like a case no event explains.

A stationary violation that no case explains may still be found by an update:
the rules make one case per place, so a bike parked beside a pair whose case
is open raises that case's count (a `grew` event, with the joined object's box)
instead of opening a second case. Such an update matching a missed event the
same way a case would finds it; one that matches no scripted violation is a
stray update (reported, not a case: it changes a count, it sends no one out).

The renderer draws far objects first, so a scripted object set down behind a
nearer one that stands there all the while (a bag dropped behind a stall's
table) is on no pixel of the video. Such a violation is hidden: not expected of
any system, and listed apart so a script that hides its own objects shows.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from vision.scenarios.render import GroundTruth, TruthEvent

MOVING_KINDS = frozenset({"muddy_truck", "clean_truck", "moving_bike"})
BOX_MARGIN = 0.03  # relative; a cluster box or a slightly shifted detection still counts as the same object


@dataclass(frozen=True)
class SeenCase:
    """One case as the scorer needs it; times are scenario seconds."""

    violation: str
    rule: str
    onset_s: float  # when the rule says the object arrived
    detected_s: float  # when the rule fired
    case_s: float  # when the case was complete (queued in the outbox / arrived at dispatch)
    bbox: tuple[float, float, float, float]  # relative x1, y1, x2, y2
    dwell_s: float = 0.0  # the rule's configured dwell


@dataclass
class Outcome:
    case: SeenCase
    event: int | None  # index into truth.events; None = false case
    duplicate: bool = False
    truth_onset_s: float | None = None

    @property
    def hit(self) -> bool:
        return self.event is not None and not self.duplicate

    @property
    def latency_s(self) -> float | None:
        """Truth onset -> case complete, scenario seconds (hits only)."""
        return None if not self.hit or self.truth_onset_s is None else self.case.case_s - self.truth_onset_s


@dataclass
class ScenarioScore:
    scenario: str
    duration_s: float
    violation_free: bool
    outcomes: list[Outcome] = field(default_factory=list)
    expected: dict[int, str] = field(default_factory=dict)  # truth event index -> violation type
    missed: list[int] = field(default_factory=list)
    by_update: dict[int, SeenCase] = field(default_factory=dict)  # truth event index -> the update that found it
    hidden: dict[int, int] = field(default_factory=dict)  # violation behind a nearer object -> that object's index
    stray_updates: list[SeenCase] = field(default_factory=list)  # updates no scripted violation explains


def truth_onset(event: TruthEvent) -> float:
    """The moment a correct system could first know: when the object became visible."""
    return event.visible_s if event.visible_s is not None else event.onset_s


def _overlaps(a: tuple[float, ...], b: list[float], margin: float = BOX_MARGIN) -> bool:
    return a[0] <= b[2] + margin and b[0] - margin <= a[2] and a[1] <= b[3] + margin and b[1] - margin <= a[3]


MOVING_GRACE_S = 2.0  # a moving vehicle's case may open this long after it was last visible (sampling, k of n)


def truth_end(event: TruthEvent) -> float:
    """The last moment the object is on screen; infinity when it stays to the end of the video."""
    return float("inf") if event.end_s is None or event.last_visible_s is None else event.last_visible_s


def _matches(case: SeenCase, event: TruthEvent, grace_s: float) -> bool:
    if event.violation != case.violation or event.visible_s is None:
        return False
    start = truth_onset(event)
    end = truth_end(event)
    if event.kind in MOVING_KINDS:
        # a vehicle's case opens while it is in view: one opened seconds after it left is another vehicle's
        # (a clean truck that followed it), not a late hit
        return start - 1.0 <= case.detected_s <= end + min(grace_s, MOVING_GRACE_S)
    if not (start - 1.0 <= case.detected_s <= end + grace_s):
        return False
    return any(_overlaps(case.bbox, box) for box in event.boxes_rel)


HIDDEN_COVER = 0.9  # of an object's box inside a nearer object's box: nothing of it shows
_GRID = 200  # cells per side of the raster the covered share is measured on


def _covered_share(boxes: list[list[float]], cover: list[list[float]]) -> float:
    """The share of the area of `boxes` (relative) that lies inside the union of `cover`."""

    def mask(rects: list[list[float]]) -> np.ndarray:
        m = np.zeros((_GRID, _GRID), dtype=bool)
        for x1, y1, x2, y2 in rects:
            c1, r1 = int(np.floor(x1 * _GRID)), int(np.floor(y1 * _GRID))
            c2, r2 = int(np.ceil(x2 * _GRID)), int(np.ceil(y2 * _GRID))
            m[max(r1, 0) : max(r2, r1 + 1), max(c1, 0) : max(c2, c1 + 1)] = True
        return m

    own = mask(boxes)
    return float((own & mask(cover)).sum() / max(own.sum(), 1))


def hidden_events(truth: GroundTruth) -> dict[int, int]:
    """Standing violations a nearer standing object (lower on screen) covers for as long as they are
    there: their box at least HIDDEN_COVER inside its box, from before they appear until after they go.
    Returns {hidden event: the object in front}."""
    standing = [
        i for i, e in enumerate(truth.events) if e.kind not in MOVING_KINDS and e.visible_s is not None and e.boxes_rel
    ]
    hidden: dict[int, int] = {}
    for i in standing:
        e = truth.events[i]
        if not e.violation:
            continue
        bottom = max(b[3] for b in e.boxes_rel)
        for j in standing:
            o = truth.events[j]
            assert o.visible_s is not None and e.visible_s is not None  # standing events are visible
            in_front = max(b[3] for b in o.boxes_rel) > bottom
            all_along = o.visible_s <= e.visible_s and truth_end(o) >= truth_end(e)
            if j != i and in_front and all_along and _covered_share(e.boxes_rel, o.boxes_rel) >= HIDDEN_COVER:
                hidden[i] = j
                break
    return hidden


def score(
    truth: GroundTruth, cases: list[SeenCase], grace_s: float = 10.0, updates: list[SeenCase] | None = None
) -> ScenarioScore:
    """Matches cases (in time order) to truth events; every case is a hit, a duplicate or false. Then
    `updates` (a case's `grew` events: the joined objects' box, `detected_s` when seen) find missed
    stationary events, or are stray when they match no event at all."""
    hidden = hidden_events(truth)
    expected = {
        i: e.violation
        for i, e in enumerate(truth.events)
        if e.violation and e.visible_s is not None and i not in hidden
    }
    result = ScenarioScore(
        truth.scenario, truth.duration_s, violation_free=not expected and not hidden, expected=expected, hidden=hidden
    )
    taken: set[int] = set()
    for case in sorted(cases, key=lambda c: c.detected_s):
        candidates = [i for i in expected if _matches(case, truth.events[i], grace_s)]
        fresh = [i for i in candidates if i not in taken]
        if fresh:
            i = fresh[0]
            taken.add(i)
            out = Outcome(case, i, truth_onset_s=truth_onset(truth.events[i]))
        elif candidates:
            out = Outcome(case, candidates[0], duplicate=True)
        else:
            out = Outcome(case, None)
        result.outcomes.append(out)
    for update in sorted(updates or [], key=lambda u: u.detected_s):
        matching = [
            i
            for i in expected
            if truth.events[i].kind not in MOVING_KINDS and _matches(update, truth.events[i], grace_s)
        ]
        fresh = [i for i in matching if i not in taken]
        if fresh:
            taken.add(fresh[0])
            result.by_update[fresh[0]] = update
        elif not matching:
            result.stray_updates.append(update)
    result.missed = [i for i in expected if i not in taken]
    return result

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
"""

from __future__ import annotations

from dataclasses import dataclass, field

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
    stray_updates: list[SeenCase] = field(default_factory=list)  # updates no scripted violation explains


def truth_onset(event: TruthEvent) -> float:
    """The moment a correct system could first know: when the object became visible."""
    return event.visible_s if event.visible_s is not None else event.onset_s


def _overlaps(a: tuple[float, ...], b: list[float], margin: float = BOX_MARGIN) -> bool:
    return a[0] <= b[2] + margin and b[0] - margin <= a[2] and a[1] <= b[3] + margin and b[1] - margin <= a[3]


MOVING_GRACE_S = 2.0  # a moving vehicle's case may open this long after it was last visible (sampling, k of n)


def _matches(case: SeenCase, event: TruthEvent, grace_s: float) -> bool:
    if event.violation != case.violation or event.visible_s is None:
        return False
    start = truth_onset(event)
    end = event.last_visible_s if event.last_visible_s is not None else float("inf")
    if event.end_s is None:
        end = float("inf")  # stays to the end of the video
    if event.kind in MOVING_KINDS:
        # a vehicle's case opens while it is in view: one opened seconds after it left is another vehicle's
        # (a clean truck that followed it), not a late hit
        return start - 1.0 <= case.detected_s <= end + min(grace_s, MOVING_GRACE_S)
    if not (start - 1.0 <= case.detected_s <= end + grace_s):
        return False
    return any(_overlaps(case.bbox, box) for box in event.boxes_rel)


def score(
    truth: GroundTruth, cases: list[SeenCase], grace_s: float = 10.0, updates: list[SeenCase] | None = None
) -> ScenarioScore:
    """Matches cases (in time order) to truth events; every case is a hit, a duplicate or false. Then
    `updates` (a case's `grew` events: the joined objects' box, `detected_s` when seen) find missed
    stationary events, or are stray when they match no event at all."""
    expected = {i: e.violation for i, e in enumerate(truth.events) if e.violation and e.visible_s is not None}
    result = ScenarioScore(truth.scenario, truth.duration_s, violation_free=not expected, expected=expected)
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

"""The verifier in the per-camera pipeline: a dropped candidate opens no case, says why in a counter,
is looked at again while its rule holds it, and opens its case when a later look confirms it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np

from tests.support_edge import detections, site_dict
from vision.edge.config import parse_site
from vision.edge.daemon import CameraPipeline
from vision.edge.verify.verifier import Verdict

T0 = datetime(2026, 12, 2, 8, 0, tzinfo=UTC)
ZONES = [{"name": "lawn", "kind": "garbage_watch", "polygon": [[0, 0], [1, 0], [1, 1], [0, 1]]}]
RULES = [{"type": "exposed_garbage", "name": "garbage", "dwell_s": 5, "clear_after_s": 10, "cooldown_s": 0}]


@dataclass
class Frame:
    camera_id: str
    index: int
    t_s: float
    captured_at: datetime
    image: np.ndarray


class ScriptedVerifier:
    """Answers from a list of verdicts (True = accept), then repeats the last one."""

    def __init__(self, answers: list[bool]):
        self.answers = list(answers)
        self.calls: list[float] = []
        self.boxes: list[list[tuple[float, float, float, float]]] = []  # the objects each look was at

    def check(self, violation, image, dets):
        self.calls.append(violation.detected_t_s)
        self.boxes.append(list(violation.object_boxes_px))
        ok = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        return Verdict(
            ok, "garbage" if ok else "bin", 0.9 if ok else 0.1, "confirmed" if ok else "classified as bin", "v", "1"
        )


def pipeline(verifier, *, verify: bool = True, recheck_s: float = 4.0) -> CameraPipeline:
    rules = [{**RULES[0], "verify": verify}]
    site = parse_site(site_dict(ZONES, rules, verifier={"recheck_s": recheck_s}))
    return CameraPipeline(site, site.cameras[0], verifier=verifier)


def run(pipe: CameraPipeline, seconds: float, present_until: float = 1e9) -> list[tuple[float, str, object]]:
    events = []
    img = np.zeros((100, 100, 3), np.uint8)
    for k in range(int(seconds * 2)):
        t = k * 0.5
        objs = [("garbage", (40, 40, 60, 60), 0.8, 7)] if t < present_until else []
        frame = Frame("cam1", k, t, T0 + timedelta(seconds=t), img)
        _, evs = pipe.process(frame, detections(objs))
        events += [(t, e.kind, e.violation) for e in evs]
    return events


def test_a_confirmed_candidate_opens_its_case_with_the_verdict():
    pipe = pipeline(ScriptedVerifier([True]))
    events = run(pipe, 10)
    opened = [(t, v) for t, k, v in events if k == "opened"]
    assert len(opened) == 1
    assert opened[0][1].verification["accepted"] is True and opened[0][1].verification["model_name"] == "v"


def test_a_dropped_candidate_opens_no_case_and_is_counted():
    pipe = pipeline(ScriptedVerifier([False]))
    events = run(pipe, 20)
    assert [k for _, k, _ in events] == []
    assert pipe.dropped["garbage"] >= 1
    assert len(pipe.unverified) == 1  # still held by its rule: looked at again later


def test_a_later_look_that_confirms_opens_the_case_then():
    verifier = ScriptedVerifier([False, False, True])
    pipe = pipeline(verifier, recheck_s=4.0)
    events = run(pipe, 30)
    opened = [(t, v) for t, k, v in events if k == "opened"]
    assert len(opened) == 1
    t_open, v = opened[0]
    assert t_open >= 5 + 2 * 4.0  # dwell, then two looks recheck_s apart
    assert v.detected_t_s == t_open and v.verification["accepted"] is True
    assert len(verifier.calls) == 3
    assert not pipe.unverified


def test_the_last_verdicts_say_what_each_look_decided_and_why():
    """What the health endpoint and the demo's summary show: each look, in order, with its reason."""
    pipe = pipeline(ScriptedVerifier([False, False, True]), recheck_s=4.0)
    events = run(pipe, 30)
    (case,) = [v for _, k, v in events if k == "opened"]
    recent = pipe.recent_verdicts
    assert [r["accepted"] for r in recent] == [False, False, True]
    assert {r["candidate"] for r in recent} == {str(case.id)}
    assert [r["reason"] for r in recent] == ["classified as bin", "classified as bin", "confirmed"]
    assert recent[0]["rule"] == "garbage" and recent[0]["tallest_px"] == 20.0
    assert [r["t_s"] for r in recent] == sorted(r["t_s"] for r in recent)


def test_a_dropped_candidate_that_leaves_is_forgotten_without_a_cleared_event():
    pipe = pipeline(ScriptedVerifier([False]))
    events = run(pipe, 40, present_until=8)
    assert [k for _, k, _ in events] == []  # neither opened nor cleared: it never was a case
    assert not pipe.unverified


def test_rules_with_verify_off_open_without_a_look():
    verifier = ScriptedVerifier([False])
    pipe = pipeline(verifier, verify=False)
    events = run(pipe, 10)
    assert [k for _, k, _ in events] == ["opened"] and verifier.calls == []


def test_a_verifier_that_fails_costs_the_verdict_not_the_case():
    class Broken:
        def check(self, *a):
            raise RuntimeError("onnx exploded")

    events = run(pipeline(Broken()), 10)
    assert [k for _, k, _ in events] == ["opened"]


def test_a_second_look_crops_where_the_object_is_now_not_where_it_was_first_seen():
    """The first look got a box cut short (a passer-by in front); the object is seen whole afterwards."""

    verifier = ScriptedVerifier([False, True])
    pipe = pipeline(verifier, recheck_s=4.0)
    img = np.zeros((100, 100, 3), np.uint8)
    opened = []
    for k in range(40):
        t = k * 0.5
        box = (40, 50, 60, 60) if t < 5.5 else (40, 40, 60, 60)  # half hidden until the first look, whole after
        frame = Frame("cam1", k, t, T0 + timedelta(seconds=t), img)
        _, evs = pipe.process(frame, detections([("garbage", box, 0.8, 7)]))
        opened += [e.violation for e in evs if e.kind == "opened"]
    first, second = verifier.boxes[0][0], verifier.boxes[1][0]
    assert first[1] >= 49  # the first look judged the cut-short box
    assert second[1] <= 42  # the second look the whole object, as the rule's memory sees it now
    (case,) = opened
    assert case.box_px[1] <= 42  # the case shows the object where it was when it was confirmed


def run_with_a_second_bag(pipe: CameraPipeline, seconds: float, second_from: float) -> list[tuple[float, object]]:
    """(t, RuleEvent) of a bag that stays and a second one dumped beside it at `second_from`."""
    events = []
    img = np.zeros((100, 100, 3), np.uint8)
    for k in range(int(seconds * 2)):
        t = k * 0.5
        objs = [("garbage", (40, 40, 60, 60), 0.8, 7)]
        if t >= second_from:
            objs.append(("garbage", (61, 40, 75, 60), 0.8, 8))
        _, evs = pipe.process(Frame("cam1", k, t, T0 + timedelta(seconds=t), img), detections(objs))
        events += [(t, e) for e in evs]
    return events


def test_objects_that_join_an_open_case_get_their_own_look_before_the_count_grows():
    """A second bag dumped beside the first raises the case's count; a thing the verifier rejects
    (a bin set down beside it) does not, and neither opens a second case."""
    judge = ScriptedVerifier([True, True])
    events = run_with_a_second_bag(pipeline(judge), 30, second_from=12)
    assert [e.kind for _, e in events] == ["opened", "grew"]
    t_grew, grew = events[1]
    assert grew.object_count == 2 and np.allclose(grew.joined_px, [(61, 40, 75, 60)])
    assert np.allclose(judge.boxes[1], [(61, 40, 75, 60)]), "the second look is at the joined object alone"
    assert t_grew >= 12 + 5, "after the joined object stayed the rule's dwell"

    judge = ScriptedVerifier([True, False])
    events = run_with_a_second_bag(pipeline(judge), 30, second_from=12)
    assert [e.kind for _, e in events] == ["opened"] and len(judge.boxes) == 2


def test_a_case_opened_at_a_later_look_counts_the_objects_that_joined_while_it_was_held():
    """The first bag is rejected at first (a bad crop); a second is dumped beside it; the look that
    confirms opens one case that counts both, and no grew event follows for what it already counts."""
    events = run_with_a_second_bag(pipeline(ScriptedVerifier([False, True]), recheck_s=8.0), 40, second_from=6)
    assert [e.kind for _, e in events] == ["opened"]
    t_open, opened = events[0]
    assert t_open >= 5 + 8 and opened.violation.object_count == 2 and len(opened.violation.object_boxes_px) == 2

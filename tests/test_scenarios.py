"""Scripted scenarios: script validation, rendered ground truth, scoring, the live stream and the quick suite."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from pydantic import ValidationError

from vision.edge.config import RULE_ZONE_KIND, load_site
from vision.scenarios.render import GroundTruth, TruthEvent, render
from vision.scenarios.scoring import SeenCase, hidden_events, score
from vision.scenarios.script import Scenario, ScriptedObject, load_scenario
from vision.scenarios.suite import load_suite

REPO = Path(__file__).resolve().parent.parent
SITE = REPO / "configs" / "site-demo.yaml"
ALL_SCENARIOS = sorted(
    {*load_suite("full").scenarios, *load_suite("quick").scenarios, REPO / "configs/scenarios/demo.yaml"}
)


# ------------------------------------------------------------------ scripts
@pytest.mark.parametrize(
    "obj, message",
    [
        ({"kind": "muddy_truck", "start_s": 1, "end_s": 5}, "needs path"),
        ({"kind": "moving_bike", "start_s": 1, "path": [[0, 0.5], [1, 0.5]]}, "needs path"),  # no end_s
        ({"kind": "garbage", "start_s": 1}, "needs at"),
        ({"kind": "garbage", "start_s": 5, "end_s": 5, "at": [0.5, 0.5]}, "end_s must be after start_s"),
        ({"kind": "garbage", "start_s": 0, "at": [1.2, 0.5]}, "less than or equal to 1"),
        ({"kind": "scooter", "start_s": 0, "at": [0.5, 0.5]}, "kind"),
        ({"kind": "garbage", "start_s": 0, "at": [0.5, 0.5], "colour": "red"}, "colour"),
        ({"kind": "bikes", "start_s": 0, "at": [0.5, 0.5], "count": 0}, "count"),
    ],
)
def test_bad_objects_are_refused_with_the_field_named(obj: dict, message: str) -> None:
    with pytest.raises(ValidationError) as err:
        ScriptedObject.model_validate(obj)
    assert message in str(err.value)


def test_scenario_needs_positive_duration() -> None:
    with pytest.raises(ValidationError, match="duration_s"):
        Scenario.model_validate({"name": "x", "duration_s": 0})


@pytest.mark.parametrize("path", ALL_SCENARIOS, ids=lambda p: p.stem)
def test_bundled_scenarios_put_violations_where_the_demo_site_watches(path: Path) -> None:
    """Every scripted violation stands in (or drives across) a zone its rule watches, so a miss is the model's."""
    from vision.edge.zones import ZoneGeometry

    scenario = load_scenario(path)
    site = load_site(SITE)
    cam = site.cameras[0]
    geometry = ZoneGeometry(cam.zones, 1000, 1000)
    rules = {r.type: r for r in site.rules if r.rule_name in cam.rules}
    assert scenario.background_path.is_file()
    for obj in scenario.objects:
        if obj.violation is None:
            continue
        rule = rules[obj.violation]
        zones = [z for z in cam.zones if z.name in (rule.zones or []) and z.kind == RULE_ZONE_KIND[rule.type]]
        assert zones, f"{path.name}: no zone for {obj.kind}"
        if obj.at is not None:
            inside = geometry.contains(np.array([[obj.at[0] * 1000, obj.at[1] * 1000]]))[0]
            assert any(inside[geometry.index(z.name)] for z in zones), (
                f"{path.name}: {obj.kind} at {obj.at} is in no {rule.type} zone"
            )
        else:
            (xa, _), (xb, _) = obj.path
            line_x = zones[0].polygon[0][0]
            assert min(xa, xb) < line_x < max(xa, xb), f"{path.name}: {obj.kind} never crosses {zones[0].name}"


# ------------------------------------------------------------------ rendering
def test_truth_boxes_cover_what_is_drawn(tmp_path: Path) -> None:
    """Render the same 2 s with and without objects: the pixels that change lie in the truth boxes."""
    objects = [
        {"kind": "garbage", "start_s": 0, "at": [0.47, 0.80], "seed": 3},
        {"kind": "vendor_stall", "start_s": 0, "at": [0.27, 0.47], "seed": 4},
        {"kind": "bikes", "start_s": 1, "at": [0.12, 0.40], "count": 2, "seed": 5},
    ]
    with_objects = Scenario(name="drawn", duration_s=2, fps=5, objects=objects)
    empty = Scenario(name="empty", duration_s=2, fps=5, objects=[])
    truth = render(with_objects, tmp_path, progress=False)
    render(empty, tmp_path, progress=False)
    assert truth.frames == 10 and truth.fps == 5 and (truth.width, truth.height) == (768, 576)
    assert [e.kind for e in truth.events] == ["garbage", "vendor_stall", "bikes"]
    assert [e.visible_s for e in truth.events] == [0.0, 0.0, 1.0]
    assert len(truth.events[2].boxes_rel) == 2

    def frames(name: str) -> list[np.ndarray]:
        cap = cv2.VideoCapture(str(tmp_path / f"{name}.mp4"))
        out = []
        while True:
            ok, img = cap.read()
            if not ok:
                return out
            out.append(img.astype(np.int16))

    drawn, plain = frames("drawn"), frames("empty")
    assert len(drawn) == len(plain) == 10
    w, h = truth.width, truth.height
    last = np.abs(drawn[-1] - plain[-1]).max(axis=2) > 40  # all three objects on screen
    inside = np.zeros_like(last)
    for event in truth.events:
        for x1, y1, x2, y2 in event.boxes_rel:
            box = (slice(max(0, int(y1 * h) - 6), int(y2 * h) + 6), slice(max(0, int(x1 * w) - 6), int(x2 * w) + 6))
            assert last[box].sum() > 50, f"{event.kind}: nothing drawn inside its truth box"
            inside[box] = True
    assert last[~inside].sum() <= 0.03 * last.sum(), "pixels changed outside every truth box"
    first = np.abs(drawn[0] - plain[0]).max(axis=2) > 40  # bikes not yet there
    for x1, y1, x2, y2 in truth.events[2].boxes_rel:
        assert first[int(y1 * h) : int(y2 * h), int(x1 * w) : int(x2 * w)].mean() < 0.05


def test_truth_round_trips(tmp_path: Path) -> None:
    truth = GroundTruth(
        "s",
        "s.mp4",
        5.0,
        10,
        2.0,
        768,
        576,
        [TruthEvent("garbage", "exposed_garbage", 1.0, None, 1, [[0.1, 0.2, 0.3, 0.4]], 1.2, 2.0)],
    )
    truth.save(tmp_path / "t.json")
    assert GroundTruth.load(tmp_path / "t.json") == truth


# ------------------------------------------------------------------ scoring
def _truth(*events: TruthEvent, duration: float = 60.0) -> GroundTruth:
    return GroundTruth("t", "t.mp4", 5.0, int(duration * 5), duration, 768, 576, list(events))


GARBAGE = TruthEvent("garbage", "exposed_garbage", 5.0, None, 1, [[0.40, 0.70, 0.50, 0.80]], 5.0, 59.8)
TRUCK = TruthEvent("muddy_truck", "muddy_truck", 10.0, 19.0, 1, [[0.97, 0.2, 1.0, 0.4]], 10.4, 18.8)
BIN = TruthEvent("bin", None, 0.0, None, 1, [[0.04, 0.56, 0.08, 0.64]], 0.0, 59.8)


def _case(violation: str, t: float, box=(0.42, 0.72, 0.48, 0.79), rule: str = "r") -> SeenCase:
    return SeenCase(violation, rule, t - 10, t, t + 1, box, 10.0)


@pytest.mark.parametrize(
    "cases, hits, duplicates, false, missed",
    [
        ([], 0, 0, 0, [0, 1]),
        ([_case("exposed_garbage", 16)], 1, 0, 0, [1]),
        ([_case("exposed_garbage", 16), _case("exposed_garbage", 40)], 1, 1, 0, [1]),
        ([_case("exposed_garbage", 16, box=(0.0, 0.0, 0.1, 0.1))], 0, 0, 1, [0, 1]),  # elsewhere
        ([_case("exposed_garbage", 3)], 0, 0, 1, [0, 1]),  # before it was dropped
        ([_case("street_vending", 16)], 0, 0, 1, [0, 1]),  # wrong type
        ([_case("muddy_truck", 15, box=(0.6, 0.3, 0.8, 0.6))], 1, 0, 0, [0]),  # moving: time only
        ([_case("muddy_truck", 40, box=(0.6, 0.3, 0.8, 0.6))], 0, 0, 1, [0, 1]),  # long gone
        ([_case("muddy_truck", 20, box=(0.6, 0.3, 0.8, 0.6))], 1, 0, 0, [0]),  # just after it left (k of n)
        # opened 8 s after the truck left: another vehicle (a clean truck behind it), not a late hit
        ([_case("muddy_truck", 27, box=(0.6, 0.3, 0.8, 0.6))], 0, 0, 1, [0, 1]),
    ],
)
def test_score_matches_cases_to_scripted_violations(cases, hits, duplicates, false, missed) -> None:
    result = score(_truth(GARBAGE, TRUCK, BIN), cases)
    assert sum(o.hit for o in result.outcomes) == hits
    assert sum(o.duplicate for o in result.outcomes) == duplicates
    assert sum(o.event is None for o in result.outcomes) == false
    assert result.missed == missed
    assert not result.violation_free
    for o in result.outcomes:
        if o.hit:
            assert o.latency_s == pytest.approx(o.case.case_s - o.truth_onset_s)


def test_an_update_of_an_open_case_finds_the_object_that_joined_it_and_a_stray_one_is_counted() -> None:
    """A third bike parked beside a pair raises the pair's case count (one case per place): found by
    that update. An update where nothing was scripted is stray; a case is never an update's to take."""
    from vision.scenarios.suite import ScenarioRun, rule_figures

    pair = TruthEvent("bikes", "non_motor_parking", 2.0, None, 1, [[0.40, 0.70, 0.50, 0.80]], 2.0, 59.8)
    third = TruthEvent("bikes", "non_motor_parking", 20.0, None, 1, [[0.51, 0.70, 0.55, 0.80]], 20.0, 59.8)
    truth = _truth(pair, third, TRUCK)
    case = _case("non_motor_parking", 14, rule="bikes")
    joined = SeenCase("non_motor_parking", "bikes", 31.0, 31.0, 31.0, (0.51, 0.70, 0.55, 0.80), 10.0)
    # before the third came, touching the pair (a bike of the pair seen twice): neither found nor stray
    early = SeenCase("non_motor_parking", "bikes", 12.0, 12.0, 12.0, (0.51, 0.70, 0.55, 0.80), 10.0)
    stray = SeenCase("non_motor_parking", "bikes", 40.0, 40.0, 40.0, (0.0, 0.0, 0.05, 0.05), 10.0)
    truck = SeenCase("muddy_truck", "muddy-trucks", 15.0, 15.0, 15.0, (0.6, 0.3, 0.8, 0.6), 0.0)  # moving: no updates

    result = score(truth, [case], updates=[joined, stray, early, truck])
    assert [o.event for o in result.outcomes] == [0] and result.missed == [2]
    assert result.by_update == {1: joined}
    assert result.stray_updates == [truck, stray], "in time order; a truck's case is never updated"
    assert score(truth, [case]).missed == [1, 2], "without the update the third bike is a miss"

    run = ScenarioRun("t", 60.0, False, 300, 300, 1, 1.0, True, truth=truth, updates=[joined, stray])
    run.score = score(truth, [case], updates=[joined, stray])
    bikes = next(f for f in rule_figures(load_site(SITE), [run]) if f.rule == "bikes")
    assert (bikes.found, bikes.expected, bikes.found_by_update, bikes.stray_updates) == (2, 2, 1, 1)
    assert (bikes.cases, bikes.hits, bikes.precision) == (1, 1, 1.0), "an update is no case"


def test_a_violation_behind_a_nearer_object_all_the_while_is_hidden_not_missed() -> None:
    """The renderer draws far objects first: a bag set down behind a stall's table is on no pixel."""
    stall = TruthEvent("vendor_stall", "street_vending", 2.0, None, 1, [[0.20, 0.60, 0.40, 0.95]], 2.0, 59.8)
    behind = TruthEvent("garbage", "exposed_garbage", 20.0, None, 1, [[0.26, 0.86, 0.33, 0.90]], 20.0, 59.8)
    in_front = TruthEvent("garbage", "exposed_garbage", 20.0, None, 1, [[0.26, 0.93, 0.33, 0.98]], 20.0, 59.8)
    half_out = TruthEvent("garbage", "exposed_garbage", 20.0, None, 1, [[0.35, 0.86, 0.45, 0.90]], 20.0, 59.8)
    before = TruthEvent("garbage", "exposed_garbage", 1.0, None, 1, [[0.26, 0.86, 0.33, 0.90]], 1.0, 59.8)
    truth = _truth(stall, behind, in_front, half_out, before)
    assert hidden_events(truth) == {1: 0}, "only the bag the stall covers from before it came"
    result = score(truth, [_case("street_vending", 17, box=(0.2, 0.6, 0.4, 0.95))])
    assert 1 not in result.expected and result.hidden == {1: 0}
    assert result.missed == [2, 3, 4], "the visible bags are still expected"
    assert not result.violation_free


def test_recall_by_height_puts_each_scripted_violation_in_its_size_bin() -> None:
    """A far bag missed and a near one found read as two bins, not as one recall of 0.5."""
    from vision.scenarios.suite import ScenarioRun, recall_by_height

    far_bag = TruthEvent("garbage", "exposed_garbage", 5.0, None, 1, [[0.10, 0.50, 0.12, 0.53]], 5.0, 59.8)  # 17 px
    truth = _truth(GARBAGE, far_bag, TRUCK)  # the near bag is 58 px, the truck 115 px
    run = ScenarioRun("t", 60.0, False, 300, 300, 1, 1.0, True, truth=truth)
    run.score = score(truth, [_case("exposed_garbage", 16)])
    bins = recall_by_height(load_site(SITE), [run])
    garbage = {b.label: (b.found, b.expected) for b in bins["garbage"]}
    assert garbage == {"< 20 px": (0, 1), "20-40 px": (0, 0), "40-80 px": (1, 1), ">= 80 px": (0, 0)}
    assert [b.recall for b in bins["garbage"]] == [0.0, None, 1.0, None]
    # a truck's first box is where it enters the picture: not its size, so moving objects are left out
    assert all(b.expected == 0 for b in bins["muddy-trucks"]) and all(b.expected == 0 for b in bins["vending"])


def test_a_suite_cut_to_the_scenarios_named_keeps_their_order_and_its_site() -> None:
    from vision.scenarios.suite import only_scenarios

    spec = load_suite("heldout")
    cut = only_scenarios(spec, ["leuven-rain", "clean"])
    assert [p.stem for p in cut.scenarios] == [
        "leuven-rain",
        "leuven-clean",
        "colosseum-clean",
        "avignon-clean",
        "brandenburg-clean",
    ]
    assert cut.site == spec.site and only_scenarios(spec, []) == spec


def test_a_swapped_model_keeps_every_other_setting_of_its_route() -> None:
    from vision.scenarios.model_choice import swap_models

    site = load_site(REPO / "configs" / "site-city.yaml")
    before = site.model_dump(mode="json")["detector"]["models"]
    after = swap_models(site.model_dump(mode="json"), {"coco-city": "coco-city-int8"})["detector"]["models"]
    assert [r["model"] for r in after] == ["coco-city-int8"]
    assert [{**r, "model": None} for r in after] == [{**r, "model": None} for r in before]  # zoom, classes, rate kept


def test_bench_scenarios_runs_a_swapped_model_and_says_so(tmp_path: Path) -> None:
    out = tmp_path / "report"
    argv = ["bench", "scenarios", "--quick", "--only", "quick-parking", "--out", str(out)]
    proc = subprocess.run(
        [sys.executable, "-m", "vision", *argv, "--swap-model", "coco-city=coco-city-int8"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    assert report["model"]["name"] == "coco-city-int8"
    assert {r["rule"]: r["recall"] for r in report["rules"]}["bikes"] == 1.0  # the parked bike, seen by int8


def test_bench_scenarios_names_the_scenarios_when_none_matches() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "vision", "bench", "scenarios", "--suite", "heldout", "--only", "nowhere"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "no scenario of suite 'heldout' matches nowhere" in proc.stderr and "leuven-day" in proc.stderr


def test_violation_free_truth() -> None:
    result = score(_truth(BIN), [_case("exposed_garbage", 16)])
    assert result.violation_free and result.expected == {} and result.outcomes[0].event is None


# ------------------------------------------------------------------ live stream
def test_looping_mjpeg_stream_is_a_camera_the_daemon_reads() -> None:
    from vision.edge.streams import open_source
    from vision.scenarios.live import LoopingMjpegServer

    jpegs = []
    for i in range(5):
        img = np.full((120, 160, 3), 40 * i, np.uint8)
        jpegs.append(cv2.imencode(".jpg", img)[1].tobytes())
    with LoopingMjpegServer(jpegs, fps=20) as cam:
        assert cam.started_at is None
        frames = []
        for frame in open_source(cam.url, camera_id="demo"):
            frames.append(frame)
            if len(frames) == 12:
                break
        assert cam.started_at is not None and cam.loop_s == pytest.approx(0.25)
        assert all(f.image.shape == (120, 160, 3) for f in frames)
        levels = {int(f.image.mean()) // 40 for f in frames}
        assert len(levels) >= 3, "the stream does not advance"
        assert (cam.stream_time_to_wall(1.0, loop=2) - cam.started_at).total_seconds() == pytest.approx(1.5)
        import httpx

        assert httpx.get(cam.url.replace("/video.mjpg", "/nope")).status_code == 404


# ------------------------------------------------------------------ the quick suite
@pytest.mark.slow
def test_quick_suite_runs_the_daemon_and_writes_the_report(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """The CI suite end to end with the COCO base model (it has no stall, garbage or mud class):
    structure, and what must hold whatever the model: no case on violation-free footage."""
    out = tmp_path / "report"
    t0 = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "vision", "bench", "scenarios", "--quick", "--out", str(out), "--model", "coco-nanodet"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=240,
    )
    wall = time.monotonic() - t0
    assert proc.returncode == 0, proc.stderr[-3000:]
    with capsys.disabled():  # the suite's numbers belong in the CI log
        print(f"\n--- scenario suite (quick, coco-nanodet), {wall:.0f} s ---\n{proc.stdout}")
    report = json.loads((out / "report.json").read_text())
    assert report["suite"] == "quick" and report["model"]["name"] == "coco-nanodet"
    assert {p.name for p in out.iterdir()} >= {
        "report.json",
        "report.md",
        "quality.png",
        "latency.png",
        "timeline.png",
        "height.png",
    }
    for png in out.glob("*.png"):
        assert cv2.imread(str(png)) is not None
    rules = {r["rule"]: r for r in report["rules"]}
    assert set(rules) == {"vending", "bikes", "garbage", "muddy-trucks"}
    for r in rules.values():
        assert {
            "precision",
            "recall",
            "false_per_camera_hour",
            "latency_p50_s",
            "latency_p95_s",
            "dwell_adjusted_p50_s",
            "cases",
            "expected",
        } <= set(r)
        assert r["false_per_camera_hour"] is not None  # there is violation-free footage
        assert r["expected"] >= 1
        by_height = report["recall_by_height"][r["rule"]]  # every standing violation in one size bin
        if r["rule"] != "muddy-trucks":
            assert sum(b["expected"] for b in by_height) == r["expected"]
            assert sum(b["found"] for b in by_height) == r["found"]
    scenarios = {s["scenario"]: s for s in report["scenarios"]}
    assert set(scenarios) == {"quick-parking", "quick-clean", "quick-all"}
    clean = scenarios["quick-clean"]
    assert clean["violation_free"] and clean["cases"] == [] and clean["processed"] > 0
    assert all(r["false_per_camera_hour"] == 0 for r in rules.values())
    for s in scenarios.values():
        assert s["cases_queued"] == len(s["cases"]), "every rule event became a queued case"
    # COCO has no stall, garbage or mud class: those rules fire only where the verifier's classifier
    # names one of COCO's boxes (a truck at the exit named muddy_truck), and then rightly
    for name in ("vending", "garbage", "muddy-trucks"):
        assert rules[name]["false_cases"] == 0 and rules[name]["cases"] == rules[name]["hits"], rules[name]
    md = (out / "report.md").read_text()
    assert "| bikes |" in md and "timeline.png" in md and "## By object height" in md


def test_render_cache_reuses_and_keys_on_the_script(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from vision.scenarios import cache

    calls = []

    def fake_render(scenario, out_dir, **_kw):
        calls.append(scenario.name)
        out_dir.mkdir(parents=True)
        (out_dir / f"{scenario.name}.mp4").write_bytes(b"x")
        GroundTruth(scenario.name, f"{scenario.name}.mp4", 5.0, 5, 1.0, 8, 8, []).save(
            out_dir / f"{scenario.name}.truth.json"
        )

    monkeypatch.setattr(cache, "render", fake_render)
    a = Scenario(name="a", duration_s=1)
    first = cache.rendered(a, root=tmp_path)
    again = cache.rendered(a, root=tmp_path)
    changed = cache.rendered(Scenario(name="a", duration_s=2), root=tmp_path)
    assert (first.cached, again.cached, changed.cached) == (False, True, False)
    assert first.video == again.video != changed.video and calls == ["a", "a"]
    assert not list(tmp_path.glob(".*tmp*"))
    assert not first.video.exists() and changed.video.exists(), "the outdated render is removed"

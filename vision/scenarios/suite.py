"""The scenario benchmark: scripted videos through the real daemon, scored per rule.

Each scenario is rendered (or reused from var/scenarios), the site's single
camera is pointed at the video, and `SiteRunner` runs offline (every sampled
frame, as fast as the CPU allows) with its outbox in a scratch directory: the
cases the daemon queues are the cases scored. Times are stream (scenario)
seconds, so the numbers do not depend on the machine's speed.
"""

from __future__ import annotations

import logging
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from vision.core.paths import REPO_ROOT
from vision.edge.config import SiteConfig, parse_site
from vision.scenarios.cache import rendered
from vision.scenarios.render import GroundTruth, TruthEvent
from vision.scenarios.scoring import MOVING_KINDS, ScenarioScore, SeenCase, score
from vision.scenarios.script import Scenario, load_scenario

if TYPE_CHECKING:
    from vision.edge.detection import Detector
    from vision.edge.rules import Observation, RuleEvent

log = logging.getLogger(__name__)

SUITE_FILE = REPO_ROOT / "configs" / "scenarios" / "suite.yaml"
DEFAULT_SITE = REPO_ROOT / "configs" / "site-demo.yaml"


@dataclass
class SuiteSpec:
    name: str
    site: Path
    scenarios: list[Path]


def load_suite(name: str, path: Path = SUITE_FILE) -> SuiteSpec:
    """`quick` (CI, under 2 minutes) or `full` from configs/scenarios/suite.yaml."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    suites = data.get("suites", {})
    if name not in suites:
        raise ValueError(f"suite '{name}' not in {path} (have: {', '.join(suites)})")
    base = path.parent
    spec = suites[name]
    return SuiteSpec(
        name, REPO_ROOT / spec.get("site", data.get("site", DEFAULT_SITE)), [base / s for s in spec["scenarios"]]
    )


def only_scenarios(spec: SuiteSpec, only: list[str]) -> SuiteSpec:
    """The suite cut to the scenarios whose file name contains one of `only` (all of them when empty)."""
    if not only:
        return spec
    kept = [p for p in spec.scenarios if any(text in p.name for text in only)]
    if not kept:
        names = ", ".join(p.stem for p in spec.scenarios)
        raise ValueError(f"no scenario of suite '{spec.name}' matches {' or '.join(only)} (it has: {names})")
    return replace(spec, scenarios=kept)


@dataclass
class ScenarioRun:
    scenario: str
    duration_s: float
    violation_free: bool
    frames: int
    processed: int
    cases_queued: int  # by the daemon's outbox (must equal len(cases))
    wall_s: float
    render_cached: bool
    cases: list[SeenCase] = field(default_factory=list)
    score: ScenarioScore | None = None
    truth: GroundTruth | None = None
    condition: str = "day"
    updates: list[SeenCase] = field(default_factory=list)  # grew events: objects that joined an open case

    @property
    def scored(self) -> ScenarioScore:
        """The score, which run_scenario sets once the run is over."""
        if self.score is None:
            raise ValueError(f"scenario run {self.scenario} has no score yet")
        return self.score

    @property
    def rendered_truth(self) -> GroundTruth:
        """The ground truth of the rendered video, which run_scenario sets once the run is over."""
        if self.truth is None:
            raise ValueError(f"scenario run {self.scenario} has no ground truth yet")
        return self.truth


def site_for(site: SiteConfig, video: Path, outbox: Path) -> SiteConfig:
    """The site with its one camera on `video`, no dispatch (cases stay in `outbox`) and no metrics server."""
    data = site.model_dump(mode="json")
    if len(data["cameras"]) != 1:
        raise ValueError("a scenario site needs exactly one camera")
    data["cameras"][0]["source"] = str(video)
    data["dispatch"] = None
    data["metrics"]["enabled"] = False
    data["outbox"]["path"] = str(outbox)
    return parse_site(data)


def run_scenario(
    scenario: Scenario, site: SiteConfig, detector: Detector | list[Detector], *, progress: bool = False
) -> ScenarioRun:
    from vision.edge.daemon import SiteRunner

    t0 = time.monotonic()
    r = rendered(scenario, progress=progress)
    cases: list[SeenCase] = []
    updates: list[SeenCase] = []  # the `grew` events of open cases: objects that joined them
    dwell = {rule.rule_name: rule.dwell_s for rule in site.rules}
    after = site.evidence.clip_after_s

    def on_observation(obs: Observation, events: list[RuleEvent]) -> None:
        for ev in events:
            joined = ev.joined_rel
            if ev.kind == "grew" and joined is not None:
                v = ev.violation
                updates.append(SeenCase(v.violation_type, v.rule, obs.t_s, obs.t_s, obs.t_s, joined))
            if ev.kind != "opened":
                continue
            v = ev.violation
            # the daemon queues a case once its clip's "after" part is buffered (see vision.edge.daemon.pipeline._AwaitedClip)
            case_s = max(v.detected_t_s, v.onset_t_s + after)
            cases.append(
                SeenCase(
                    v.violation_type, v.rule, v.onset_t_s, v.detected_t_s, case_s, v.bbox_rel, dwell.get(v.rule, 0.0)
                )
            )

    with tempfile.TemporaryDirectory(prefix="sv-bench-") as tmp:
        run_site = site_for(site, r.video, Path(tmp) / "outbox")
        runner = SiteRunner(run_site, detector=detector, live=False, on_observation=on_observation)
        summary = runner.run(threading.Event())
    result = ScenarioRun(
        scenario=scenario.name,
        duration_s=r.truth.duration_s,
        violation_free=not any(e.violation for e in r.truth.events),
        frames=summary.frames,
        processed=summary.processed,
        cases_queued=summary.cases,
        wall_s=round(time.monotonic() - t0, 2),
        render_cached=r.cached,
        cases=cases,
        updates=updates,
        condition=scenario.condition,
    )
    result.score = score(r.truth, cases, updates=updates)
    result.truth = r.truth
    return result


# --------------------------------------------------------------------------- per-rule figures
def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return round(values[0], 2)
    return round(statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1], 2)


@dataclass
class RuleFigures:
    rule: str
    violation: str
    dwell_s: float
    cases: int = 0
    hits: int = 0
    duplicates: int = 0
    false_cases: int = 0
    expected: int = 0
    found: int = 0
    found_by_update: int = 0  # of `found`: by a grew event of an open case, not a case of its own
    hidden: int = 0  # scripted violations no pixel shows (behind a nearer object): not in `expected`
    stray_updates: int = 0  # grew events no scripted violation explains
    false_on_clean: int = 0
    precision: float | None = None
    recall: float | None = None
    false_per_camera_hour: float | None = None
    latency_s: list[float] = field(default_factory=list)
    latency_p50_s: float | None = None
    latency_p95_s: float | None = None
    dwell_adjusted_p50_s: float | None = None
    dwell_adjusted_p95_s: float | None = None


def _rule_of(site: SiteConfig) -> dict[str, str]:
    """Violation type -> the name of the site's rule that covers it."""
    return {r.type: r.rule_name for r in site.rules}


def _scripted(site: SiteConfig, runs: list[ScenarioRun]) -> Iterator[tuple[str, ScenarioRun, int, bool]]:
    """(rule name, run, truth event index, found) for every scripted violation a rule of the site covers."""
    by_violation = _rule_of(site)
    for run in runs:
        for idx, violation in run.scored.expected.items():
            name = by_violation.get(violation)
            if name is not None:
                yield name, run, idx, idx not in run.scored.missed


def rule_figures(site: SiteConfig, runs: list[ScenarioRun]) -> list[RuleFigures]:
    figs = {r.rule_name: RuleFigures(r.rule_name, r.type, r.dwell_s) for r in site.rules}
    rule_of = _rule_of(site)
    clean_hours = sum(run.duration_s for run in runs if run.violation_free) / 3600.0
    for name, run, idx, found in _scripted(site, runs):
        figs[name].expected += 1
        figs[name].found += found
        figs[name].found_by_update += idx in run.scored.by_update
    for run in runs:
        sc = run.scored
        for idx in sc.hidden:
            rule = rule_of.get(run.rendered_truth.events[idx].violation or "")
            if rule is not None:
                figs[rule].hidden += 1
        for update in sc.stray_updates:
            f = figs.setdefault(update.rule, RuleFigures(update.rule, update.violation, update.dwell_s))
            f.stray_updates += 1
        for out in sc.outcomes:
            f = figs.setdefault(out.case.rule, RuleFigures(out.case.rule, out.case.violation, out.case.dwell_s))
            f.cases += 1
            if out.hit:
                f.hits += 1
                latency = out.latency_s
                assert latency is not None  # a hit has its truth onset (scoring.score)
                f.latency_s.append(round(latency, 2))
            elif out.duplicate:
                f.duplicates += 1
            else:
                f.false_cases += 1
            if run.violation_free:
                f.false_on_clean += 1
    for f in figs.values():
        f.precision = round(f.hits / f.cases, 3) if f.cases else None
        f.recall = round(f.found / f.expected, 3) if f.expected else None
        f.false_per_camera_hour = round(f.false_on_clean / clean_hours, 1) if clean_hours else None
        f.latency_s.sort()
        f.latency_p50_s, f.latency_p95_s = _pct(f.latency_s, 50), _pct(f.latency_s, 95)
        adjusted = [x - f.dwell_s for x in f.latency_s]
        f.dwell_adjusted_p50_s, f.dwell_adjusted_p95_s = _pct(adjusted, 50), _pct(adjusted, 95)
    return list(figs.values())


# Object heights (pixels of the rendered frame) the size table splits recall at: under 20 px a detector at
# 320 sees a few pixels of the object, 20-40 px is a far camera's, 80 px and up is near.
HEIGHT_EDGES_PX = (20, 40, 80)


@dataclass
class HeightBin:
    """Scripted violations of one rule whose object was `low_px` <= height < `high_px` when first seen."""

    low_px: int
    high_px: int | None  # None: no upper bound
    expected: int = 0
    found: int = 0

    @property
    def label(self) -> str:
        if self.high_px is None:
            return f">= {self.low_px} px"
        return f"< {self.high_px} px" if self.low_px == 0 else f"{self.low_px}-{self.high_px} px"

    @property
    def recall(self) -> float | None:
        return round(self.found / self.expected, 3) if self.expected else None


def event_height_px(event: TruthEvent, frame_height: int) -> float:
    """The tallest of the event's boxes in its first frame seen, in pixels (0 when it has none)."""
    return max(((b[3] - b[1]) * frame_height for b in event.boxes_rel), default=0.0)


def recall_by_height(site: SiteConfig, runs: list[ScenarioRun]) -> dict[str, list[HeightBin]]:
    """Per rule: how recall falls with the object's size on screen, so a miss can be read as a far object
    (a camera placement question) or a near one (a model question). Objects that stand still only: the
    truth keeps a vehicle's box when it enters the picture (cut by the edge, or far up the road), which
    says nothing of its size at the exit."""
    edges = (0, *HEIGHT_EDGES_PX, None)
    out = {r.rule_name: [HeightBin(lo, hi) for lo, hi in zip(edges[:-1], edges[1:], strict=True)] for r in site.rules}
    for name, run, idx, found in _scripted(site, runs):
        truth = run.rendered_truth
        if truth.events[idx].kind in MOVING_KINDS:
            continue
        h = event_height_px(truth.events[idx], truth.height)
        b = next(b for b in out[name] if b.high_px is None or h < b.high_px)
        b.expected += 1
        b.found += found
    return out


def _rounded(d: dict[str, Any]) -> dict[str, Any]:
    def r(v: object) -> object:
        if isinstance(v, float):
            return round(v, 3)
        if isinstance(v, (list, tuple)):
            return [r(x) for x in v]
        return v

    return {k: r(v) for k, v in d.items()}


@dataclass
class SuiteResult:
    suite: str
    site: str
    model_name: str
    model_version: str
    runs: list[ScenarioRun]
    rules: list[RuleFigures]
    wall_s: float
    by_condition: dict[str, list[RuleFigures]] = field(default_factory=dict)  # when the suite has several
    by_height: dict[str, list[HeightBin]] = field(default_factory=dict)  # rule -> recall per object height

    def as_dict(self) -> dict[str, Any]:
        def run_dict(run: ScenarioRun) -> dict[str, Any]:
            sc = run.scored
            return {
                "scenario": run.scenario,
                "duration_s": run.duration_s,
                "violation_free": run.violation_free,
                "frames": run.frames,
                "processed": run.processed,
                "cases_queued": run.cases_queued,
                "wall_s": run.wall_s,
                "render_cached": run.render_cached,
                "missed_events": sc.missed,
                "hidden_events": {str(i): front for i, front in sc.hidden.items()},
                "cases": [
                    {
                        **_rounded(asdict(o.case)),
                        "event": o.event,
                        "duplicate": o.duplicate,
                        "hit": o.hit,
                        "latency_s": None if o.latency_s is None else round(o.latency_s, 2),
                    }
                    for o in sc.outcomes
                ],
                "updates": [
                    {
                        **_rounded(asdict(u)),
                        "event": next((i for i, found in sc.by_update.items() if found is u), None),
                        "stray": any(u is x for x in sc.stray_updates),
                    }
                    for u in run.updates
                ],
            }

        return {
            "suite": self.suite,
            "site": self.site,
            "model": {"name": self.model_name, "version": self.model_version},
            "wall_s": self.wall_s,
            "camera_hours": round(sum(r.duration_s for r in self.runs) / 3600, 4),
            "violation_free_camera_hours": round(sum(r.duration_s for r in self.runs if r.violation_free) / 3600, 4),
            "rules": [asdict(f) for f in self.rules],
            "by_condition": {c: [asdict(f) for f in figs] for c, figs in self.by_condition.items()},
            "recall_by_height": {
                rule: [{"bin": b.label, **asdict(b), "recall": b.recall} for b in bins]
                for rule, bins in self.by_height.items()
            },
            "scenarios": [run_dict(r) for r in self.runs],
        }


def run_suite(
    spec: SuiteSpec,
    *,
    model: str | None = None,
    swaps: dict[str, str] | None = None,
    progress: Callable[[str], object] | None = None,
    render_progress: bool = False,
    verify: bool = True,
) -> SuiteResult:
    """Renders (or reuses) and runs every scenario of the suite on one shared detector. A scenario
    whose script names its own `site` is run and scored with that site's camera zones and rules
    (the held-out backgrounds each have theirs); the detector is the suite site's, with `swaps`
    ({site model: other model}) applied to its routes."""
    from vision.edge.config import load_site
    from vision.edge.daemon import open_site_detectors
    from vision.scenarios.model_choice import override_model, swap_models

    t0 = time.monotonic()
    sites: dict[Path, SiteConfig] = {}

    def site_at(path: Path) -> SiteConfig:
        path = Path(path).resolve()
        if path not in sites:
            site = load_site(path)
            if model:
                data = site.model_dump(mode="json")
                site = parse_site(override_model(data, model), path)
            if not verify and site.verifier is not None:
                data = site.model_dump(mode="json")
                data["verifier"] = None
                site = parse_site(data, path)
            sites[path] = site
        return sites[path]

    site = site_at(spec.site)
    if swaps:
        site = parse_site(swap_models(site.model_dump(mode="json"), swaps), Path(spec.site))
    detectors = open_site_detectors(site)
    runs = []
    for path in spec.scenarios:
        scenario = load_scenario(path)
        if progress:
            progress(f"scenario {scenario.name} ({scenario.duration_s:.0f} s)")
        own = site_at(REPO_ROOT / scenario.site) if scenario.site else site
        run = run_scenario(scenario, own, detectors, progress=render_progress)
        if progress:
            hits = sum(o.hit for o in run.scored.outcomes)
            progress(f"  {len(run.cases)} case(s), {hits} hit(s), {len(run.scored.missed)} missed, {run.wall_s:.1f} s")
        runs.append(run)
    conditions = sorted({r.condition for r in runs})
    by_condition = (
        {c: rule_figures(site, [r for r in runs if r.condition == c]) for c in conditions}
        if len(conditions) > 1
        else {}
    )
    return SuiteResult(
        spec.name,
        str(spec.site),
        "+".join(d.name for d in detectors),
        "+".join(d.version for d in detectors),
        runs,
        rule_figures(site, runs),
        round(time.monotonic() - t0, 1),
        by_condition,
        recall_by_height(site, runs),
    )

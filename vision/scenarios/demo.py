"""The one-command demo: scripted violations on the bundled footage, live, end to end.

    render (or reuse) configs/scenarios/demo.yaml
      -> LoopingMjpegServer: the video as a live http:// camera on 127.0.0.1
      -> embedded dispatch center (uvicorn thread, SQLite under var/demo/dispatch), admin + device token
      -> the daemon (SiteRunner, configs/site-demo.yaml) on the stream, sending to the dispatch center
      -> cases with evidence in the review UI; a summary (cases per type, latencies) when it stops

Every run starts from an empty dispatch center and outbox, so the summary
counts this run only and a case never merges into one from an earlier run.
Latency is measured against the scenario's ground truth on the stream's clock:
the wall-clock moment the object was first shown -> the moment the dispatch
center received the case (and minus the rule's dwell time, what the system
adds on top of the waiting the rule demands).
"""

from __future__ import annotations

import logging
import secrets
import shutil
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vision.core.paths import REPO_ROOT

if TYPE_CHECKING:  # imported where they are built (prepare): the demo module stays cheap to import
    from vision.dispatch.server import DispatchServer
    from vision.dispatch.service import DispatchService
    from vision.edge.config import SiteConfig
    from vision.edge.daemon import SiteRunner
    from vision.scenarios.live import LoopingMjpegServer
    from vision.scenarios.render import GroundTruth

log = logging.getLogger(__name__)

DEFAULT_SITE = REPO_ROOT / "configs" / "site-demo.yaml"
DEFAULT_SCENARIO = REPO_ROOT / "configs" / "scenarios" / "demo.yaml"
DEFAULT_DATA_DIR = REPO_ROOT / "var" / "demo"
ADMIN = "admin"


@dataclass
class DemoOptions:
    site: Path = DEFAULT_SITE
    scenario: Path = DEFAULT_SCENARIO
    data_dir: Path = DEFAULT_DATA_DIR
    model: str | None = None
    host: str = "127.0.0.1"
    port: int = 0  # dispatch center; 0 = a free port
    password: str | None = None
    duration_s: float | None = None
    render_progress: bool = True


@dataclass
class DemoCase:
    id: int
    violation: str
    rule: str | None
    evidence: list[str]
    received_at: datetime
    latency_s: float | None = None  # truth onset (first shown) -> received by the dispatch center
    dwell_adjusted_s: float | None = None
    matched: bool = False  # explained by a scripted violation


@dataclass
class DemoSummary:
    review_url: str
    stream_url: str
    model: str
    model_note: str | None
    duration_s: float
    stopped_by: str
    stream_started_at: datetime | None
    cases: list[DemoCase] = field(default_factory=list)
    frames_processed: int = 0
    outbox: dict[str, Any] = field(default_factory=dict)  # the daemon's outbox counts at the end
    # the verifier's candidates dropped per rule and its last looks: why a scripted violation opened no case
    verifier: dict[str, Any] = field(default_factory=dict)

    @staticmethod
    def _case_dict(c: DemoCase) -> dict[str, Any]:
        return {
            "id": c.id,
            "violation": c.violation,
            "rule": c.rule,
            "evidence": c.evidence,
            "received_at": c.received_at.isoformat(),
            "latency_s": c.latency_s,
            "dwell_adjusted_latency_s": c.dwell_adjusted_s,
            "matched": c.matched,
        }

    def as_dict(self) -> dict[str, Any]:
        by_type = Counter(c.violation for c in self.cases)
        lat: dict[str, list[float]] = {}
        adj: dict[str, list[float]] = {}
        for c in self.cases:
            if c.latency_s is not None:
                lat.setdefault(c.violation, []).append(c.latency_s)
                assert c.dwell_adjusted_s is not None  # cases() sets both latencies together
                adj.setdefault(c.violation, []).append(c.dwell_adjusted_s)

        def first(d: dict[str, list[float]]) -> dict[str, float]:
            return {k: round(v[0], 2) for k, v in sorted(d.items())}  # the type's first case (cases are in id order)

        everything = [x for v in lat.values() for x in v]
        everything_adj = [x for v in adj.values() for x in v]
        return {
            "cases_by_type": dict(sorted(by_type.items())),
            "cases_with_evidence": sum(bool(c.evidence) for c in self.cases),
            "unexpected_cases": sum(not c.matched for c in self.cases),
            "latency_s": first(lat),
            "dwell_adjusted_latency_s": first(adj),
            "latency_median_s": round(statistics.median(everything), 2) if everything else None,
            "dwell_adjusted_latency_median_s": round(statistics.median(everything_adj), 2) if everything_adj else None,
            "latency_note": "first shown on the stream -> received by the dispatch center; dwell-adjusted: minus the rule's dwell",
            "cases": [self._case_dict(c) for c in self.cases],
            "review_url": self.review_url,
            "stream_url": self.stream_url,
            "model": self.model,
            "model_note": self.model_note,
            "duration_s": round(self.duration_s, 1),
            "stopped_by": self.stopped_by,
            "stream_started_at": self.stream_started_at.isoformat() if self.stream_started_at else None,
            "frames_processed": self.frames_processed,
            "outbox": self.outbox,
            "verifier": self.verifier,
        }


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _xyxy(box: Sequence[float]) -> tuple[float, float, float, float]:
    """A case's relative box as the scorer takes it."""
    x1, y1, x2, y2 = box
    return x1, y1, x2, y2


def _fresh(directory: Path) -> None:
    """An empty directory (this run's dispatch database or outbox)."""
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True, exist_ok=True)


@dataclass(frozen=True)
class PreparedDemo:
    """The parts `Demo.prepare()` builds, all there."""

    truth: GroundTruth
    stream: LoopingMjpegServer
    service: DispatchService
    dispatch: DispatchServer
    site: SiteConfig
    runner: SiteRunner


class Demo:
    """The running demo's parts; `run(stop)` blocks until stop, --duration or an error."""

    def __init__(self, options: DemoOptions, say: Callable[[str], None] = print):
        self.options = options
        self.say = say
        self.password = options.password or secrets.token_urlsafe(9)
        # set by prepare(), one by one: close() stops whatever of them was started
        self.stream: LoopingMjpegServer | None = None
        self.dispatch: DispatchServer | None = None
        self.service: DispatchService | None = None
        self.runner: SiteRunner | None = None
        self.truth: GroundTruth | None = None
        self.site: SiteConfig | None = None
        self.model = ""
        self.model_note: str | None = None
        self._seen_cases: set[int] = set()
        self._seen_lock = threading.Lock()

    # --- setup --------------------------------------------------------------------------------------
    def prepare(self) -> None:
        """Render, start the stream and the dispatch center, build the daemon (loads the model)."""
        from vision.dispatch.app import create_app
        from vision.dispatch.server import DispatchServer
        from vision.dispatch.service import DispatchService
        from vision.dispatch.settings import Settings
        from vision.dispatch.workflow import Role
        from vision.edge.config import load_site, parse_site
        from vision.edge.daemon import SiteRunner
        from vision.scenarios.cache import rendered
        from vision.scenarios.live import LoopingMjpegServer, load_jpegs
        from vision.scenarios.model_choice import override_model, pick_model
        from vision.scenarios.script import load_scenario

        opts = self.options
        scenario = load_scenario(opts.scenario)
        site = load_site(opts.site)
        if opts.model or site.detector.models is None:
            self.model, self.model_note = pick_model(site.detector.routes[0].model, opts.model)
        else:
            self.model = " + ".join(r.model for r in site.detector.routes)
        if self.model_note:
            self.say(f"note: {self.model_note}")
        self.say(
            f"scene '{scenario.name}': {scenario.duration_s:g} s of {scenario.background} with {len(scenario.objects)} scripted objects"
        )
        r = rendered(scenario, progress=opts.render_progress)
        self.truth = r.truth
        self.say(
            f"  {'reusing' if r.cached else 'rendered'} {r.video.relative_to(REPO_ROOT) if r.video.is_relative_to(REPO_ROOT) else r.video}"
        )
        jpegs, fps = load_jpegs(r.video)
        self.stream = stream = LoopingMjpegServer(jpegs, fps, host=opts.host).start()

        data_dir = Path(opts.data_dir)
        _fresh(data_dir / "dispatch")
        _fresh(data_dir / "outbox")
        settings = Settings(data_dir=data_dir / "dispatch")
        self.service = service = DispatchService.from_settings(settings)
        service.create_operator(ADMIN, self.password, Role.ADMIN, "Demo administrator")
        _, token = service.create_client("demo-edge", "device", site.site_id)
        self.dispatch = dispatch = DispatchServer(
            app=create_app(service=service), host=opts.host, port=opts.port or None
        ).start()

        data = site.model_dump(mode="json")
        if len(data["cameras"]) != 1:
            raise ValueError(f"{opts.site}: the demo site needs exactly one camera")
        data["cameras"][0]["source"] = stream.url
        if opts.model or site.detector.models is None:
            override_model(data, self.model)
        data["dispatch"] = {**(data.get("dispatch") or {}), "url": dispatch.url, "token": token, "token_env": None}
        data["outbox"]["path"] = str(data_dir / "outbox")
        data["metrics"]["port"] = 0
        self.site = parse_site(data, opts.site)
        self.runner = SiteRunner(self.site, live=True, loop=False)

    def prepared(self) -> PreparedDemo:
        """The running parts; prepare() must have completed."""
        if (
            self.truth is None
            or self.stream is None
            or self.service is None
            or self.dispatch is None
            or self.site is None
            or self.runner is None
        ):
            raise RuntimeError("the demo is not prepared (call prepare() first)")
        return PreparedDemo(self.truth, self.stream, self.service, self.dispatch, self.site, self.runner)

    @property
    def review_url(self) -> str:
        return f"{self.dispatch.url}/ui/" if self.dispatch else ""

    # --- running ------------------------------------------------------------------------------------
    def run(self, stop: threading.Event) -> DemoSummary:
        parts = self.prepared()
        started = time.monotonic()
        watcher = threading.Thread(target=self._watch, args=(stop,), name="demo-cases", daemon=True)
        watcher_stop = threading.Event()
        self._watcher_stop = watcher_stop
        watcher.start()
        try:
            summary = parts.runner.run(stop, self.options.duration_s)
        finally:
            watcher_stop.set()
            watcher.join(5)
        self._report_new_cases()
        result = DemoSummary(
            review_url=self.review_url,
            stream_url=parts.stream.url,
            model=self._models_in_use(parts.runner),
            model_note=self.model_note,
            duration_s=time.monotonic() - started,
            stopped_by=summary.stopped_by,
            stream_started_at=parts.stream.started_at,
            cases=self.cases(),
            frames_processed=summary.processed,
            outbox=summary.outbox,
            verifier=self._verifier_looks(parts.runner),
        )
        return result

    @staticmethod
    def _verifier_looks(runner: SiteRunner) -> dict[str, Any]:
        """Candidates the verifier dropped per rule, and its last looks (every camera's, in stream time)."""
        if runner.verifier is None:
            return {}
        dropped: Counter[str] = Counter()
        recent = []
        for pipe in runner.pipelines.values():
            dropped.update(pipe.dropped)
            recent += pipe.recent_verdicts
        return {"dropped": dict(sorted(dropped.items())), "recent": sorted(recent, key=lambda r: r["t_s"])}

    @staticmethod
    def _models_in_use(runner: SiteRunner) -> str:
        """Every route's detector and the verifier, as the cases were made: "a (1.0) + b (1.1), verifier c (1.2)"."""
        names = []
        for route in runner.models.routes:
            det = route.detector
            name, version = getattr(det, "name", "?"), getattr(det, "version", "?")
            if f"{name} ({version})" not in names:
                names.append(f"{name} ({version})")
        text = " + ".join(names)
        if runner.verifier is not None:
            text += ", verifier " + " + ".join(f"{c.name} ({c.version})" for c in runner.verifier.heads())
        return text

    def _watch(self, stop: threading.Event) -> None:
        while not self._watcher_stop.wait(1.0):
            try:
                self._report_new_cases()
            except Exception:
                log.debug("case watcher failed", exc_info=True)

    def _report_new_cases(self) -> None:
        with self._seen_lock:
            new = [c for c in self.cases() if c.id not in self._seen_cases]
            self._seen_cases.update(c.id for c in new)
        for c in new:
            lat = f", {c.latency_s:.1f} s after it appeared" if c.latency_s is not None else ""
            self.say(
                f"case #{c.id} {c.violation} arrived with {len(c.evidence)} evidence file(s){lat}: {self.review_url}cases/{c.id}"
            )

    def cases(self) -> list[DemoCase]:
        """This run's cases as the dispatch center holds them, matched against the ground truth."""
        from vision.scenarios.scoring import SeenCase, score

        parts = self.prepared()
        listed = parts.service.list_cases(limit=1000).items
        details = [parts.service.get_case(c.id) for c in sorted(listed, key=lambda c: c.id)]
        t0 = parts.stream.started_at
        dwell = {r.rule_name: r.dwell_s for r in parts.site.rules}
        out: list[DemoCase] = []
        by_loop: dict[int, list[tuple[DemoCase, SeenCase]]] = {}
        for d in details:
            first = min(d.occurrences, key=lambda o: o.received_at) if d.occurrences else None
            received = _utc(first.received_at) if first else _utc(d.created_at)
            case = DemoCase(d.id, d.violation, d.rule, [e.name for e in d.evidence], received)
            out.append(case)
            if t0 is None or first is None:
                continue
            detected_s = (_utc(first.detected_at) - t0).total_seconds()
            loop = max(0, int(detected_s // parts.stream.loop_s))
            shift = loop * parts.stream.loop_s
            seen = SeenCase(
                d.violation,
                d.rule or "",
                ((_utc(first.onset_at) if first.onset_at else _utc(first.detected_at)) - t0).total_seconds() - shift,
                detected_s - shift,
                (received - t0).total_seconds() - shift,
                _xyxy(first.bbox or d.bbox or (0.0, 0.0, 0.0, 0.0)),
                dwell.get(d.rule or "", 0.0),
            )
            by_loop.setdefault(loop, []).append((case, seen))
        for pairs in by_loop.values():
            result = score(parts.truth, [s for _, s in pairs])
            for outcome in result.outcomes:
                case = next(c for c, s in pairs if s is outcome.case)
                case.matched = outcome.hit
                if outcome.latency_s is not None:
                    case.latency_s = round(outcome.latency_s, 2)
                    case.dwell_adjusted_s = round(outcome.latency_s - outcome.case.dwell_s, 2)
        return out

    # --- teardown -----------------------------------------------------------------------------------
    def close(self) -> None:
        if self.stream is not None:
            self.stream.stop()
        if self.dispatch is not None:
            self.dispatch.stop()
        if self.service is not None:
            self.service.close()

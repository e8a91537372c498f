"""The edge daemon: every camera of a site in one process, one shared detector.

    readers (one thread per camera, newest frame wins)
      -> main loop: frames due for detection from all cameras -> one detect_batch
         (split over the detector workers: one per core on multi-camera sites)
      -> per camera: tracker -> rules -> violations
      -> case-writer thread: snapshots at onset (durable at once), clip from the
         frame ring when its window is recorded -> CaseReport -> outbox (durable)
      -> sender thread -> dispatch center

`run_site(site, stop_event)` is the whole daemon as a function (the CLI and
the demo call it); `/healthz` and Prometheus `/metrics` are served while it
runs. Stopping (SIGTERM, SIGINT, the stop event, --duration, all file sources
ended) finishes the cases waiting for their clip, lets the request in flight
finish, and leaves everything unsent queued on disk for the next start.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable, Iterator, Protocol

import numpy as np

from vision.edge.casework.case_writer import CaseWriter, QueuedCase
from vision.edge.config import CameraConfig, ModelRouteConfig, SiteConfig, route_min_confidence
from vision.edge.detection.pool import DetectorPool, WorkerPlan, plan_workers
from vision.edge.detection.routing import ModelRoute, RoutedDetections, merge_detections
from vision.edge.casework.evidence import FrameRing, clip_window
from vision.edge.rules import CameraRules, Observation, RuleEvent, Violation
from vision.core.geometry import box_iou
from vision.edge.verify.verifier import Verifier

log = logging.getLogger(__name__)

__all__ = ["run_site", "SiteRunner", "RunSummary", "CameraPipeline", "open_site_detector", "open_site_detectors"]


class FrameLike(Protocol):
    camera_id: str
    index: int
    t_s: float
    captured_at: object
    image: np.ndarray


@dataclass
class _Pending:
    violation: Violation
    ready_at_t: float  # stream time when the clip's "after" part is buffered


class CameraPipeline:
    """Per-camera state: tracker, rules, frame ring, violations waiting for the end of their clip."""

    def __init__(self, site: SiteConfig, camera: CameraConfig, *, tracker=None, verifier=None):
        from vision.edge.tracking import CameraTracker

        self.site = site
        self.camera = camera
        self.detect_fps = camera.sampling.detect_fps
        self.clip_fps = site.evidence.clip_fps or self.detect_fps
        self.sample_fps = max(self.detect_fps, self.clip_fps)
        self.tracker = tracker or CameraTracker(site.tracker, fps_hint=self.detect_fps)
        self.rules = CameraRules.for_site(site, camera)
        ev = site.evidence
        longest_dwell = max([site.rule(n).dwell_s for n in camera.rules] or [0.0])
        self.ring = FrameRing(
            max_seconds=longest_dwell + ev.clip_before_s + ev.clip_after_s + 5.0,
            max_bytes=int(ev.buffer_max_mb * (1 << 20)),
            jpeg_quality=ev.jpeg_quality,
            dense_s=ev.clip_before_s + ev.clip_after_s + 2.0,
            sparse_interval_s=1.0 / self.detect_fps,
        )
        self.pending: list[_Pending] = []
        self.verifier = verifier
        # Moving objects a rule follows (trucks and their mud): while one is in view the camera looks at full rate.
        follow = [site.rule(n) for n in camera.rules if site.rule(n).type == "muddy_truck"]
        self.follow_classes = {c for r in follow for c in (*r.classes, *r.mud_classes)}
        self.follow_looks = {c for r in follow for c in r.mud_classes}  # models holding these must look again
        self._followed = np.empty((0, 4))  # boxes of followed objects at the last look that had any
        self.static = self._static_candidates()
        self.namer = self._proposal_namer()
        self._exit_mask: tuple[tuple[int, int], np.ndarray] | None = None
        self._watch: tuple[tuple[int, int], np.ndarray] | None = None
        self.unverified: dict[object, tuple[Violation, float]] = {}  # violation id -> (violation, next look at t)
        self.dropped: Counter = Counter()  # rule name -> candidates the verifier dropped
        self._next_detect_t: float | None = None
        self.frames = 0
        self.processed = 0
        self.last_t: float | None = None

    def add_frame(self, frame: FrameLike) -> bool:
        """Buffer a frame for clips; True when it is due for detection."""
        self.frames += 1
        self.last_t = frame.t_s
        self.ring.add(frame.t_s, frame.captured_at, frame.image)
        interval = 1.0 / self.detect_fps
        slack = 0.5 / self.sample_fps  # sampling jitter must not skip a beat
        if self._next_detect_t is None or frame.t_s >= self._next_detect_t - slack:
            # a fixed grid keeps the average at detect_fps; after a gap, restart the grid
            nxt = (frame.t_s if self._next_detect_t is None else self._next_detect_t) + interval
            self._next_detect_t = nxt if nxt > frame.t_s else frame.t_s + interval
            return True
        return False

    def followed_moving(self, detections) -> bool:
        """A followed object (a truck) that is new or moved since the last look; a parked one does not count."""
        names = detections.data.get("class_name")
        if not self.follow_classes or names is None or len(detections) == 0:
            return False
        boxes = detections.xyxy[np.isin(np.asarray(names, dtype=object), list(self.follow_classes))]
        if len(boxes) == 0:
            return False
        previous, self._followed = self._followed, boxes
        return len(previous) == 0 or bool((box_iou(boxes, previous).max(axis=1) < FOLLOW_STILL_IOU).any())

    STATIONARY_TYPES = ("street_vending", "non_motor_parking", "exposed_garbage")

    def _stationary_classes(self) -> set[str]:
        """The classes this camera's stationary rules consume."""
        rules = (self.site.rule(n) for n in self.camera.rules)
        return {c for r in rules if r.type in self.STATIONARY_TYPES for c in r.classes}

    def _static_candidates(self):  # type: ignore[no-untyped-def]
        cfg = self.site.static_objects
        if cfg is None or not cfg.enabled or self.verifier is None:
            return None
        wanted = self._stationary_classes()
        if not wanted:
            return None
        from vision.edge.detection.static_candidates import StaticCandidates

        return StaticCandidates(cfg.finder, _CurrentClassifier(self.verifier), wanted,
                                min_score=cfg.min_score, reclassify_s=cfg.reclassify_s)  # fmt: skip

    def _proposal_namer(self):  # type: ignore[no-untyped-def]
        cfg = self.site.verifier
        if cfg is None or not cfg.name_objects or self.verifier is None:
            return None
        wanted = self._stationary_classes()
        name_vehicles = any(self.site.rule(n).type == "muddy_truck" for n in self.camera.rules)
        if not wanted and not name_vehicles:
            return None
        from vision.edge.detection.proposal_naming import ProposalNamer

        return ProposalNamer(_CurrentClassifier(self.verifier), wanted, name_vehicles=name_vehicles,
                             min_score=cfg.name_min_score)  # fmt: skip

    def _vehicle_mask(self, width: int, height: int) -> np.ndarray:
        """Around this camera's site exits: where a vehicle is worth a look for mud."""
        if self._exit_mask is None or self._exit_mask[0] != (width, height):
            import cv2

            geometry = self.rules.zones.at(width, height)
            canvas = np.zeros((height, width), dtype=np.uint8)
            for i, kind in enumerate(geometry.kinds):
                if kind != "site_exit":
                    continue
                pts = np.round(geometry.points_px[i]).astype(np.int32)
                if geometry.is_line[i]:
                    cv2.polylines(canvas, [pts], False, 1, thickness=max(3, height // 10))
                else:
                    cv2.fillPoly(canvas, [pts], 1)
            self._exit_mask = ((width, height), canvas.astype(bool))
        return self._exit_mask[1]

    def _watch_mask(self, width: int, height: int) -> np.ndarray:
        """The zones of this camera's stationary rules (and the space above them), once per frame size."""
        if self._watch is None or self._watch[0] != (width, height):
            from vision.edge.config import RULE_ZONE_KIND
            from vision.edge.detection.static_candidates import watch_mask_for

            geometry = self.rules.zones.at(width, height)
            names: set[str] = set()
            for rule in (self.site.rule(n) for n in self.camera.rules):
                if rule.type in self.STATIONARY_TYPES:
                    kind = RULE_ZONE_KIND[rule.type]
                    names |= set(rule.zones or [z.name for z in self.camera.zones if z.kind == kind])
            idx = [geometry.index(n) for n in sorted(names) if n in geometry.names]
            self._watch = ((width, height), watch_mask_for(geometry.masks[idx]))
        return self._watch[1]

    def process(self, frame: FrameLike, detections) -> tuple[Observation, list[RuleEvent]]:
        h, w = frame.image.shape[:2]
        if self.namer is not None and len(detections):
            named = self.namer.update(frame.image, frame.t_s, detections, self._watch_mask(w, h), self._vehicle_mask(w, h))
            if len(named):
                detections = merge_detections([detections, named])
        if self.static is not None:
            extra = self.static.update(frame.image, frame.t_s, detections, self._watch_mask(w, h))
            if len(extra):
                detections = merge_detections([detections, extra])
        tracked = self.tracker.update(detections, frame.t_s)
        h, w = frame.image.shape[:2]
        obs = Observation(
            camera_id=self.camera.id,
            t_s=frame.t_s,
            captured_at=frame.captured_at,
            width=w,
            height=h,
            detections=tracked,
            image=frame.image,
            index=frame.index,
        )
        events = self._verified(self.rules.update(obs), obs)
        self.processed += 1
        after = self.site.evidence.clip_after_s
        for ev in events:
            v = ev.violation
            if ev.kind == "opened":
                log.info(
                    "camera %s: %s violation %s opened (%s, %d object(s), dwell %.0f s)",
                    self.camera.id, v.rule, v.id, v.zone, v.object_count, v.dwell_s,
                )  # fmt: skip
                self.pending.append(_Pending(v, v.onset_t_s + after))
            else:
                log.info("camera %s: %s violation %s %s", self.camera.id, v.rule, v.id, ev.kind)
        return obs, events

    # --- the verifier's second look ---------------------------------------------------------------
    MAX_UNVERIFIED = 256

    def _verified(self, events: list[RuleEvent], obs: Observation) -> list[RuleEvent]:
        """Rule events with the candidates the verifier drops held back (and looked at again later)."""
        if self.verifier is None:
            return events
        out: list[RuleEvent] = []
        for ev in events:
            v = ev.violation
            if v.id in self.unverified:
                if ev.kind == "cleared":
                    del self.unverified[v.id]
                continue  # the rule's "resumed" of a candidate never opened is no case either
            if ev.kind != "opened" or not self.site.rule(v.rule).verify:
                out.append(ev)
            elif self._accepted(v, obs):
                out.append(ev)
            elif v.violation_type != "muddy_truck":  # a truck drives on: no second look at the same box
                self.unverified[v.id] = (v, obs.t_s + self.site.verifier.recheck_s)  # type: ignore[union-attr]
                while len(self.unverified) > self.MAX_UNVERIFIED:
                    del self.unverified[next(iter(self.unverified))]
        due = next((vid for vid, (_, at) in self.unverified.items() if obs.t_s >= at), None)
        if due is not None:  # at most one second look per frame: bounded cost
            v, _ = self.unverified.pop(due)
            if self._accepted(v, obs):
                v.detected_t_s, v.detected_at = obs.t_s, obs.captured_at
                out.append(RuleEvent("opened", v))
            else:
                self.unverified[v.id] = (v, obs.t_s + self.site.verifier.recheck_s)  # type: ignore[union-attr]
        return out

    def _accepted(self, v: Violation, obs: Observation) -> bool:
        try:
            verdict = self.verifier.check(v, obs.image, obs.detections)
        except Exception:  # noqa: BLE001 - a verifier failure must not cost the case
            log.exception("camera %s: verifier failed on %s violation %s; case opened unverified", self.camera.id, v.rule, v.id)
            return True
        v.verification = verdict.as_dict()
        if not verdict.accepted:
            self.dropped[v.rule] += 1
            log.debug(
                "camera %s: %s candidate %s dropped by the verifier: %s (label %s, score %.2f)",
                self.camera.id, v.rule, v.id, verdict.reason, verdict.label, verdict.score,
            )  # fmt: skip
        return verdict.accepted

    def ready(self, flush: bool = False) -> list[_Pending]:
        """Violations whose clip window is fully buffered (all of them when flushing)."""
        if flush:
            done, self.pending = self.pending, []
            return done
        latest = self.ring.latest_t
        done = [p for p in self.pending if latest is not None and latest >= p.ready_at_t]
        self.pending = [p for p in self.pending if p not in done]
        return done


class _CurrentClassifier:
    """The verifier's classifier as it is now (a rolled-out version replaces it in place)."""

    def __init__(self, verifier: Verifier):
        self.verifier = verifier

    def classify(self, image, boxes):  # type: ignore[no-untyped-def]
        return self.verifier.classifier.classify(image, boxes)


@dataclass
class RunSummary:
    frames: int = 0
    processed: int = 0
    cases: int = 0
    events: Counter = field(default_factory=Counter)
    detections: Counter = field(default_factory=Counter)  # class name -> count over processed frames
    stopped_by: str = ""
    outbox: dict = field(default_factory=dict)
    model_reloads: int = 0


class SiteRunner:
    """Runs one site. Use `run(stop_event)`; the object exposes its parts for metrics and tests."""

    def __init__(
        self,
        site: SiteConfig,
        *,
        detector=None,
        live: bool = True,
        loop: bool = False,
        metrics_port: int | None = None,
        on_observation: Callable[[Observation, list[RuleEvent]], None] | None = None,
        outbox_dir: Path | str | None = None,
        verifier: Verifier | None = None,
    ):
        from vision.edge.delivery.outbox import Outbox
        from vision.core.taxonomy import load_taxonomy

        self.site = site
        self.live = live
        self.loop = loop
        self.on_observation = on_observation
        self.cameras = [c for c in site.cameras if c.enabled]
        if not self.cameras:
            raise ValueError("no enabled camera in the site")
        self.plan = plan_workers(site.detector.workers, site.detector.threads, len(self.cameras))
        self._owns_detector = detector is None
        if detector is None:
            detectors = open_site_detectors(site, self.plan)
        else:
            detectors = list(detector) if isinstance(detector, (list, tuple)) else [detector]
        self.models = RoutedDetections(_routes(site, detectors, self.plan))
        self._model_stamps = [_model_stamp(r.model) for r in site.detector.routes] if self._owns_detector else []
        self._next_model_check = time.monotonic() + MODEL_CHECK_S
        self._reload_requested = threading.Event()
        self.taxonomy = load_taxonomy(site.taxonomy)
        self.verifier = open_site_verifier(site) if verifier is None else verifier
        self.pipelines = {c.id: CameraPipeline(site, c, verifier=self.verifier) for c in self.cameras}
        self._verifier_stamp = _classifier_stamp(site.verifier.model) if site.verifier is not None else None
        self.outbox = Outbox(outbox_dir or site.outbox.path, int(site.outbox.max_evidence_mb * (1 << 20)))
        self.writer = CaseWriter(site, self.taxonomy, self.outbox, on_queued=self._queued, on_error=self._case_failed)
        self.sender = None
        if site.dispatch is not None:
            from vision.edge.delivery.sender import Sender

            self.sender = Sender.from_config(self.outbox, site.dispatch, site.site_id)
        else:
            log.warning("no dispatch section in the site config: cases are queued in %s but not sent", site.outbox.path)
        self.readers: dict[str, object] = {}
        self._gated: dict[str, object] = {}  # offline sources, for hold_open (live: the readers)
        self.summary = RunSummary()
        self.metrics = _Metrics(self)
        self._metrics_port = site.metrics.port if metrics_port is None else metrics_port
        self._http: ThreadingHTTPServer | None = None
        self.metrics_address: tuple[str, int] | None = None
        self.heartbeat = time.monotonic()
        self.started = time.monotonic()

    # --- lifecycle ------------------------------------------------------------------------------
    def run(self, stop: threading.Event, duration_s: float | None = None) -> RunSummary:
        deadline = None if duration_s is None else time.monotonic() + duration_s
        if self.site.metrics.enabled:
            self._start_http()
        for route in self.models.routes:
            log.info(
                "detector %s %s (%s, every %s): %d worker(s) x %d thread(s) for %d camera(s)",
                route.name, route.version, ", ".join(sorted(route.classes)) if route.classes else "all classes",
                f"{route.every_s:g} s" if route.every_s else "frame", route.pool.workers if hasattr(route.pool, "workers") else 1,
                self.plan.threads, len(self.cameras),
            )  # fmt: skip
        self.writer.start()
        if self.sender is not None:
            self.sender.start()
            self.sender.wake()  # resume what a previous run left queued (recovered pending cases too)
        try:
            frames = self._live_frames(stop, deadline) if self.live else self._offline_frames(stop, deadline)
            self._loop(frames)
        finally:
            self._shutdown()
        if not self.summary.stopped_by:
            self.summary.stopped_by = "stop" if stop.is_set() else "duration" if deadline and time.monotonic() >= deadline else "sources ended"
        return self.summary

    def _shutdown(self) -> None:
        for reader in self.readers.values():
            reader.stop()
        for pipe in self.pipelines.values():
            for p in pipe.ready(flush=True):  # finish cases still waiting for the end of their clip
                self._finish(pipe, p)
        self.writer.stop()  # writes everything handed over, so nothing is left in memory
        self.models.close()
        if self.sender is not None:
            self.sender.stop()
        self.summary.outbox = self.outbox.counts()
        self.outbox.close()
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
        log.info("daemon stopped: %s", json.dumps({k: v for k, v in self.summary.__dict__.items() if k in ("frames", "processed", "cases", "outbox")}))

    # --- frame sources --------------------------------------------------------------------------
    def _live_frames(self, stop: threading.Event, deadline: float | None) -> Iterator[list]:
        """Batches of the newest frame of each camera that has one (real time, drops when behind)."""
        from vision.edge.streams import CameraReader

        for cam in self.cameras:
            pipe = self.pipelines[cam.id]
            reader = CameraReader(cam.id, cam.source, sample_fps=pipe.sample_fps, decode=cam.sampling.decode, realtime=True, loop=self.loop,
                                  idle_every_s=cam.sampling.idle_every_s, motion_factor=cam.sampling.motion_factor)  # fmt: skip
            reader.start()
            self.readers[cam.id] = reader
        while not stop.is_set() and (deadline is None or time.monotonic() < deadline):
            batch = [f for f in (r.get(timeout=0) for r in self.readers.values()) if f is not None]
            if batch:
                yield batch
                continue
            if not any(r.running for r in self.readers.values()):
                self.summary.stopped_by = "sources ended"
                return
            self.heartbeat = time.monotonic()
            stop.wait(0.01)

    def _offline_frames(self, stop: threading.Event, deadline: float | None) -> Iterator[list]:
        """Every sampled frame of every camera, round robin, as fast as possible (files)."""
        from vision.edge.streams import open_source

        iters = {}
        for cam in self.cameras:
            pipe = self.pipelines[cam.id]
            iters[cam.id] = iter(open_source(cam.source, camera_id=cam.id, decode=cam.sampling.decode, sample_fps=pipe.sample_fps,
                                             idle_every_s=cam.sampling.idle_every_s, motion_factor=cam.sampling.motion_factor))  # fmt: skip
            self._gated[cam.id] = iters[cam.id]
        while iters and not stop.is_set() and (deadline is None or time.monotonic() < deadline):
            batch = []
            for cam_id in list(iters):
                frame = next(iters[cam_id], None)
                if frame is None:
                    del iters[cam_id]
                else:
                    batch.append(frame)
            if batch:
                yield batch
        if not iters:
            self.summary.stopped_by = "sources ended"

    # --- the loop -------------------------------------------------------------------------------
    # --- model roll-out -------------------------------------------------------------------------
    def request_reload(self) -> None:
        """Load the site's model again before the next batch (SIGHUP); streams keep running."""
        self._reload_requested.set()

    def _maybe_reload_model(self) -> None:
        now = time.monotonic()
        forced = self._reload_requested.is_set()
        if not forced:
            if not self._owns_detector or now < self._next_model_check:
                return
            self._next_model_check = now + MODEL_CHECK_S
        self._reload_requested.clear()
        self._maybe_reload_verifier(forced)
        for i, cfg in enumerate(self.site.detector.routes):
            stamp = _model_stamp(cfg.model)
            if not forced and stamp == self._model_stamps[i]:
                continue
            self._reload_route(i, cfg.model, stamp)

    def _maybe_reload_verifier(self, forced: bool) -> None:
        """A new crop classifier version is swapped in like a detector; a bad one is refused."""
        if self.site.verifier is None or self.verifier is None or not self._owns_detector:
            return
        stamp = _classifier_stamp(self.site.verifier.model)
        if not forced and stamp == self._verifier_stamp:
            return
        self._verifier_stamp = stamp
        old = self.verifier.classifier
        try:
            new = open_site_verifier(self.site)
        except Exception as exc:  # noqa: BLE001 - keep verifying with the running version
            log.error("crop classifier %s could not be reloaded, keeping %s: %s", self.site.verifier.model, old.version, exc)
            return
        if new is None or new.classifier.version == old.version and not forced:
            return
        self.verifier.classifier = new.classifier
        self.summary.model_reloads += 1
        log.info("crop classifier reloaded: %s %s -> %s", old.name, old.version, new.classifier.version)

    def _reload_route(self, i: int, model: str, stamp: tuple | None) -> None:
        route = self.models.routes[i]
        old = route.detector
        try:
            new = _open_route_detector(self.site, self.site.detector.routes[i], self.plan)
        except Exception as exc:  # noqa: BLE001 - a half-copied or bad model must not stop the cameras
            log.error("model %s could not be reloaded, keeping %s %s: %s", model, route.name, route.version, exc)
            self._model_stamps[i] = stamp  # do not retry the same bad files every check
            return
        old_pool, route.detector, route.pool = route.pool, new, DetectorPool(new, self.plan.workers)
        old_pool.close()
        route._tiles.clear()  # the tiles follow the model's input size
        self._model_stamps[i] = stamp
        self.summary.model_reloads += 1
        log.info("model reloaded: %s %s -> %s %s (streams kept running)", old.name, old.version, new.name, new.version)

    @property
    def detector(self):  # type: ignore[no-untyped-def]
        """The first (primary) detector of the site."""
        return self.models.routes[0].detector

    @property
    def pool(self) -> DetectorPool:
        return self.models.routes[0].pool  # type: ignore[return-value]

    def _loop(self, batches: Iterator[list]) -> None:
        for batch in batches:
            self.heartbeat = time.monotonic()
            self._maybe_reload_model()
            due = [f for f in batch if self.pipelines[f.camera_id].add_frame(f)]
            self.summary.frames += len(batch)
            if due:
                t0 = time.perf_counter()
                try:
                    results = self.models.detect(due)
                except Exception:  # noqa: BLE001 - one bad frame must not stop every camera
                    log.exception("detector failed on a batch of %d frame(s); skipped", len(due))
                    self.metrics.frame_errors.inc(len(due))
                    continue
                self.metrics.inference.observe(time.perf_counter() - t0)
                for frame, dets in zip(due, results):
                    try:
                        self._process(frame, dets)
                    except Exception:  # noqa: BLE001
                        log.exception("camera %s: frame %d could not be processed; skipped", frame.camera_id, frame.index)
                        self.metrics.frame_errors.inc()
            for pipe in self.pipelines.values():
                for p in pipe.ready():
                    self._finish(pipe, p)

    def _keep_looking(self, camera_id: str, pipe: CameraPipeline) -> None:
        """A followed object (a truck) is in view: full rate on a motion-gated camera, and a fresh look by
        every model that holds detections between looks (Frigate too keeps detecting where objects are)."""
        source = self.readers.get(camera_id) or self._gated.get(camera_id)
        if source is not None:
            source.hold_open(FOLLOW_HOLD_S)  # type: ignore[attr-defined]
        for route in self.models.routes:
            if route.every_s and any(route.serves(c) for c in pipe.follow_looks):
                route.forget(camera_id)

    def _process(self, frame, dets) -> None:
        pipe = self.pipelines[frame.camera_id]
        obs, events = pipe.process(frame, dets)
        self.summary.processed += 1
        self.metrics.processed.labels(frame.camera_id).inc()
        names = dets.data.get("class_name")
        if names is not None:
            self.summary.detections.update(str(n) for n in names)
            if pipe.followed_moving(dets):
                self._keep_looking(frame.camera_id, pipe)
        for ev in events:
            self.summary.events[ev.kind] += 1
            if ev.kind == "opened":  # stills now, durable before the clip is complete
                name, version = self.models.provenance(ev.violation.classes)
                self.writer.opened(pipe.camera, ev.violation, frame.image.copy(), name, version)
        if self.on_observation is not None:
            self.on_observation(obs, events)

    def _finish(self, pipe: CameraPipeline, pending: _Pending) -> None:
        """Hand the clip window's frames to the case writer (immutable JPEGs: no copy needed)."""
        v = pending.violation
        frames = pipe.ring.window(*clip_window(v, self.site.evidence))
        self.writer.finish(pipe.camera, v, frames, pipe.clip_fps)

    def _queued(self, queued: QueuedCase) -> None:
        """On the case-writer thread: a case is in the outbox."""
        v, camera = queued.violation, queued.camera
        self.summary.cases += 1
        self.metrics.cases.labels(camera.id, v.rule, v.violation_type).inc()
        log.info(
            "case %s queued: %s on %s (%s%s)",
            v.id, v.violation_type, camera.id, ", ".join(f.name for f in queued.files),
            f", clip {queued.clip.duration_s:.1f} s" if queued.clip else "",
        )  # fmt: skip
        if self.sender is not None:
            self.sender.wake()

    def _case_failed(self, camera: CameraConfig, violation: Violation) -> None:
        self.metrics.case_errors.inc()

    # --- health and metrics ---------------------------------------------------------------------
    def health(self) -> tuple[int, dict]:
        cams = {}
        for cam in self.cameras:
            reader = self.readers.get(cam.id)
            cams[cam.id] = reader.status().as_dict() if reader is not None else {"state": "offline-mode"}
        stale = time.monotonic() - self.heartbeat > 30
        body = {
            "status": "stalled" if stale else "ok",
            "uptime_s": round(time.monotonic() - self.started, 1),
            "cameras": cams,
            "outbox": {} if self.outbox.closed else self.outbox.counts(),
            "cases_emitted": self.summary.cases,
            "cases_being_written": self.writer.backlog,
            "detector": {"workers": self.pool.workers, "threads": self.plan.threads},
            "model": {"name": self.detector.name, "version": self.detector.version},
            "verifier": None if self.verifier is None else {
                "name": self.verifier.classifier.name, "version": self.verifier.classifier.version,
                "dropped": {c: dict(p.dropped) for c, p in self.pipelines.items()},
            },
            "models": [
                {"name": r.name, "version": r.version, "classes": sorted(r.classes) if r.classes else None, "every_s": r.every_s}
                for r in self.models.routes
            ],
        }
        return (503 if stale else 200), body

    def _start_http(self) -> None:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        runner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                if self.path == "/metrics":
                    status, body, ctype = 200, generate_latest(runner.metrics.registry), CONTENT_TYPE_LATEST
                elif self.path in ("/healthz", "/health"):
                    status, payload = runner.health()
                    body, ctype = json.dumps(payload, default=str).encode(), "application/json"
                else:
                    status, body, ctype = 404, b'{"detail": "not found"}', "application/json"
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._http = ThreadingHTTPServer((self.site.metrics.host, self._metrics_port), Handler)
        self._http.daemon_threads = True
        self.metrics_address = self._http.server_address[:2]
        threading.Thread(target=self._http.serve_forever, name="metrics-http", daemon=True).start()
        log.info("serving /healthz and /metrics on http://%s:%d", *self.metrics_address)


class _Metrics:
    """Prometheus metrics in a registry of this runner (no global state)."""

    def __init__(self, runner: SiteRunner):
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.registry = CollectorRegistry()
        self.inference = Histogram(
            "streetvision_inference_seconds",
            "Detector latency per batch (all cameras due in one call).",
            buckets=(0.01, 0.025, 0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 3.2),
            registry=self.registry,
        )
        self.processed = Counter("streetvision_frames_processed", "Frames run through detection, tracking and rules.", ["camera"], registry=self.registry)
        self.cases = Counter("streetvision_cases_emitted", "Cases queued in the outbox.", ["camera", "rule", "violation"], registry=self.registry)
        self.case_errors = Counter("streetvision_case_errors", "Violations whose case could not be built.", registry=self.registry)
        self.frame_errors = Counter("streetvision_frame_errors", "Frames skipped after a detector or rule error.", registry=self.registry)
        self.registry.register(_LiveCollector(runner))


class _LiveCollector:
    """Values read at scrape time from the readers, the outbox and the sender."""

    def __init__(self, runner: SiteRunner):
        self.runner = runner

    def describe(self):
        return []

    def collect(self):
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        r = self.runner
        fps = GaugeMetricFamily("streetvision_camera_fps", "Frames/s delivered by the camera reader.", labels=["camera"])
        online = GaugeMetricFamily("streetvision_camera_online", "1 while the camera delivers frames.", labels=["camera"])
        errors = CounterMetricFamily("streetvision_camera_decode_errors", "Decode errors of the camera.", labels=["camera"])
        reconnects = CounterMetricFamily("streetvision_camera_reconnects", "Stream reconnects.", labels=["camera"])
        dropped = CounterMetricFamily("streetvision_camera_dropped_frames", "Frames replaced by a newer one before processing.", labels=["camera"])
        gated = CounterMetricFamily("streetvision_camera_keyframes_gated", "Keyframes not decoded: the stream was quiet.", labels=["camera"])
        for cam_id, reader in list(r.readers.items()):
            st = reader.status()
            fps.add_metric([cam_id], st.fps)
            online.add_metric([cam_id], 1.0 if st.online else 0.0)
            errors.add_metric([cam_id], st.decode_errors)
            reconnects.add_metric([cam_id], st.reconnects)
            dropped.add_metric([cam_id], st.dropped_frames)
            gated.add_metric([cam_id], st.keyframes_gated)
        yield from (fps, online, errors, reconnects, dropped, gated)
        depth = GaugeMetricFamily("streetvision_outbox_cases", "Cases in the outbox by state (queued = queue depth).", labels=["state"])
        ev_bytes = GaugeMetricFamily("streetvision_outbox_evidence_bytes", "Evidence bytes on disk.")
        pruned = CounterMetricFamily("streetvision_outbox_evidence_pruned_files", "Evidence files deleted by the disk bound.")
        if not r.outbox.closed:
            for state, n in r.outbox.counts().items():
                depth.add_metric([state], n)
            ev_bytes.add_metric([], r.outbox.evidence_bytes())
        pruned.add_metric([], r.outbox.pruned_files)
        yield from (depth, ev_bytes, pruned)
        dropped = CounterMetricFamily("streetvision_candidates_dropped", "Candidate violations the crop verifier dropped.", labels=["camera", "rule"])
        for cam_id, pipe in r.pipelines.items():
            for rule, n in pipe.dropped.items():
                dropped.add_metric([cam_id, rule], n)
        yield dropped
        writing = GaugeMetricFamily("streetvision_cases_being_written", "Violations handed to the case writer, not yet queued.")
        writing.add_metric([], r.writer.backlog)
        yield writing
        sent = CounterMetricFamily("streetvision_cases_sent", "Cases accepted by dispatch (new or replay).")
        failures = CounterMetricFamily("streetvision_send_failures", "Failed send attempts.", labels=["kind"])
        stats = r.sender.stats if r.sender is not None else None
        sent.add_metric([], stats.sent if stats else 0)
        failures.add_metric(["retry"], stats.retries if stats else 0)
        failures.add_metric(["permanent"], stats.permanent_failures if stats else 0)
        yield from (sent, failures)


MODEL_CHECK_S = 10.0  # how often the daemon looks for a new version of its model
FOLLOW_HOLD_S = 3.0  # stream seconds of full rate after the last sighting of a followed object (a truck)
FOLLOW_STILL_IOU = 0.5  # a followed object's box overlapping one of the last look this much has not moved


def _model_stamp(model: str) -> tuple | None:
    """What changes when a model is rolled out: the card and model file sizes and times."""
    from vision.core.model_registry import ModelNotFound, load_card

    path = Path(model)
    files = [path] if path.suffix in (".onnx", ".pt") else []
    if not files:
        try:
            card = load_card(model)
        except (ModelNotFound, OSError, ValueError):
            return None
        files = [card.directory / "card.yaml", card.path]
    stamp = []
    for f in files:
        try:
            st = f.stat()
        except OSError:
            return None
        stamp.append((str(f), st.st_size, st.st_mtime_ns))
    return tuple(stamp)


def _classifier_stamp(model: str) -> tuple | None:
    from vision.core.model_registry import models_dir

    stamp = []
    base = Path(model) if (Path(model) / "card.yaml").is_file() else models_dir() / model
    for f in (base / "card.yaml", base / "head.npz"):
        try:
            st = f.stat()
        except OSError:
            return None
        stamp.append((str(f), st.st_size, st.st_mtime_ns))
    return tuple(stamp)


def _open_route_detector(site: SiteConfig, route: ModelRouteConfig, plan: WorkerPlan):  # type: ignore[no-untyped-def]
    from vision.edge.detection import open_detector

    return open_detector(route.model, min_confidence=route_min_confidence(site, route), threads=plan.threads)


def open_site_detectors(site: SiteConfig, plan: WorkerPlan | None = None) -> list:
    """One detector per `detector.models` route, each with the ONNX Runtime threads its worker plan gives."""
    cfg = site.detector
    plan = plan or plan_workers(cfg.workers, cfg.threads, len([c for c in site.cameras if c.enabled]))
    return [_open_route_detector(site, route, plan) for route in cfg.routes]


def open_site_detector(site: SiteConfig, plan: WorkerPlan | None = None):  # type: ignore[no-untyped-def]
    """The site's first (primary) detector."""
    return open_site_detectors(site, plan)[0]


def _routes(site: SiteConfig, detectors: list, plan: WorkerPlan) -> list[ModelRoute]:
    configs = site.detector.routes
    if len(detectors) != len(configs):
        # a caller-supplied detector (tests, a shared one) serves every class
        configs = [ModelRouteConfig(model=str(getattr(d, "name", "model"))) for d in detectors]
    routes = []
    for det, cfg in zip(detectors, configs, strict=True):
        routes.append(
            ModelRoute(
                detector=det,
                pool=DetectorPool(det, plan.workers),
                classes=frozenset(cfg.classes) if cfg.classes is not None else None,
                every_s=cfg.every_s,
                min_confidence=route_min_confidence(site, cfg, set(getattr(det, "class_names", []) or [])),
                zoom_every_s=cfg.zoom_every_s,
                zones={c.id: [z.polygon for z in c.zones] for c in site.cameras},
            )
        )
    return routes


def open_site_verifier(site: SiteConfig) -> Verifier | None:
    """The site's crop verifier, or None when the site has no `verifier` section."""
    if site.verifier is None:
        return None
    from vision.edge.verify import Verifier, load_classifier

    classifier = load_classifier(site.verifier.model, threads=site.verifier.threads)
    return Verifier(classifier, min_score={r.rule_name: r.verify_min_score for r in site.rules})


def run_site(
    site: SiteConfig,
    stop: threading.Event | None = None,
    *,
    duration_s: float | None = None,
    live: bool = True,
    loop: bool = False,
    detector=None,
    metrics_port: int | None = None,
    on_observation: Callable[[Observation, list[RuleEvent]], None] | None = None,
    outbox_dir: Path | str | None = None,
) -> RunSummary:
    """Run a site until `stop` is set, `duration_s` passes or every (file) source ends.

    live=True reads cameras in real time (files are paced like cameras, `loop`
    replays them); live=False reads files as fast as possible without dropping
    frames. `detector` may be shared by the caller; `on_observation` sees every
    processed frame and its rule events (for a live view)."""
    runner = SiteRunner(
        site, detector=detector, live=live, loop=loop, metrics_port=metrics_port, on_observation=on_observation, outbox_dir=outbox_dir
    )
    return runner.run(stop or threading.Event(), duration_s)

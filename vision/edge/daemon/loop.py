"""The site's main loop: frame batches -> one detect call -> per-camera pipelines -> cases.

    camera feeds (frames.py: one reader thread per camera, newest frame wins)
      -> the loop: the frames due for detection from all cameras -> one detect_batch
         (split over the detector workers: one per core on multi-camera sites)
      -> per camera (pipeline.py): tracker -> rules -> verifier's gate -> rule events
      -> each event counted here; an opened one becomes a case: the case-writer thread
         writes its snapshots at once (durable), its clip from the camera's frame ring
         when the clip window is recorded -> CaseReport -> outbox (durable)
      -> sender thread -> dispatch center
    beside it, a heartbeat thread tells the center how the box and its cameras stand
    (fleet_report.py, delivery/heartbeat.py), an updater installs the model versions
    the center rolls out to this box (delivery/model_updates.py -> rollout.py), and another
    takes the zones published for its cameras (delivery/zone_updates.py -> zone_rollout.py)

Between two batches the loop rolls out new model versions (rollout.py) and swaps in the
zones accepted from the center (zone_rollout.py); `/healthz` and
`/metrics` are served while it runs (health.py, metrics.py). Stopping (SIGTERM, SIGINT,
the stop event, a duration, every file source ended) finishes the cases waiting for
their clip, lets the request in flight finish, and leaves everything unsent queued on
disk for the next start.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import supervision as sv

from vision.core.cases import CaseLifecycle
from vision.core.fleet import Heartbeat
from vision.core.model_registry import models_dir
from vision.edge.casework.case_writer import CaseWriter, QueuedCase
from vision.edge.config import CameraConfig, SiteConfig
from vision.edge.daemon.detectors import (
    RoutePool,
    SiteDetector,
    model_routes,
    open_site_detectors,
    open_site_plates,
    open_site_verifier,
    pool_workers,
)
from vision.edge.daemon.fleet_report import config_sha256, heartbeat_of
from vision.edge.daemon.frames import CameraFeeds
from vision.edge.daemon.health import HealthServer, health_report
from vision.edge.daemon.metrics import ScrapedParts, SiteMetrics
from vision.edge.daemon.pipeline import CameraPipeline, FrameLike
from vision.edge.daemon.rollout import ModelRollout
from vision.edge.daemon.summary import RunSummary
from vision.edge.daemon.zone_rollout import ZoneRollout, override_path
from vision.edge.delivery.heartbeat import HeartbeatSender
from vision.edge.delivery.model_updates import ModelUpdater
from vision.edge.delivery.outbox import Outbox
from vision.edge.delivery.zone_updates import ZoneUpdater
from vision.edge.detection.pool import plan_workers
from vision.edge.detection.routing import RoutedDetections
from vision.edge.rules import Observation, RuleEvent, Violation
from vision.edge.streams import CameraReader, Frame
from vision.edge.verify.verifier import Verifier

log = logging.getLogger("vision.edge.daemon")  # one logger for the whole daemon, as operators filter it

__all__ = ["SiteRunner", "run_site", "FOLLOW_HOLD_S"]

FOLLOW_HOLD_S = 3.0  # stream seconds of full rate after the last sighting of a followed object (a truck)


class SiteRunner:
    """Runs one site. Use `run(stop_event)`; the object exposes its parts for metrics and tests."""

    def __init__(
        self,
        site: SiteConfig,
        *,
        detector: SiteDetector | Sequence[SiteDetector] | None = None,
        live: bool = True,
        loop: bool = False,
        metrics_port: int | None = None,
        on_observation: Callable[[Observation, list[RuleEvent]], None] | None = None,
        outbox_dir: Path | str | None = None,
        verifier: Verifier | None = None,
    ):
        """live=True reads cameras in real time (files are paced like cameras, `loop` replays
        them); live=False reads files as fast as possible without dropping frames. `detector`
        (one, or a list, one per route) may be shared by the caller, and is then never rolled
        out; otherwise the site's models are opened. `on_observation` sees every processed
        frame and its rule events (for a live view). `metrics_port` overrides `metrics.port`
        (0: any free port), `outbox_dir` the outbox's path, `verifier` the site's verifier."""
        from vision.core.taxonomy import load_taxonomy

        self.zone_rollout: ZoneRollout | None = None
        if site.zone_updates is not None:  # the zone versions accepted before, over the site file
            self.zone_rollout = ZoneRollout(site, override_path(site, outbox_dir))
            site = self.zone_rollout.site
        self.site = site
        self.live = live
        self.loop = loop
        self.on_observation = on_observation
        self.cameras = [c for c in site.cameras if c.enabled]
        if not self.cameras:
            raise ValueError("no enabled camera in the site")
        self.plan = plan_workers(site.detector.workers, site.detector.threads, len(self.cameras))
        detectors: Sequence[SiteDetector]
        if detector is None:
            detectors = open_site_detectors(site, self.plan)
        elif isinstance(detector, Sequence):
            detectors = list(detector)
        else:
            detectors = [detector]
        self.models = RoutedDetections(model_routes(site, detectors, self.plan))
        self.taxonomy = load_taxonomy(site.taxonomy)
        self.verifier = open_site_verifier(site) if verifier is None else verifier
        self.rollout = ModelRollout(site, self.models, self.plan, self.verifier, enabled=detector is None)
        self.pipelines = {c.id: CameraPipeline(site, c, verifier=self.verifier) for c in self.cameras}
        self.outbox = Outbox(
            outbox_dir or site.outbox.path,
            int(site.outbox.max_evidence_mb * (1 << 20)),
            min_free_bytes=int(site.outbox.min_free_mb * (1 << 20)),
        )
        self.writer = CaseWriter(
            site,
            self.taxonomy,
            self.outbox,
            on_queued=self._queued,
            on_error=self._case_failed,
            plates=open_site_plates(site),
            on_lifecycle=self._lifecycle_queued,
        )
        self.sender = None
        self.heartbeats: HeartbeatSender | None = None
        self.model_updates: ModelUpdater | None = None
        self.zone_updates: ZoneUpdater | None = None
        self.latest_images: dict[str, np.ndarray] = {}  # each camera's newest sampled frame (the heartbeat's picture)
        self.started_at = datetime.now(UTC)
        self._config_hash = config_sha256(site)
        if site.dispatch is not None:
            from vision.edge.delivery.sender import Sender, device_headers, device_token

            self.sender = Sender.from_config(self.outbox, site.dispatch, site.site_id)
            if site.dispatch.heartbeat_s > 0:
                self.heartbeats = HeartbeatSender(
                    site.dispatch.url,
                    device_headers(device_token(site.dispatch), site.dispatch.device_id or site.site_id),
                    self._heartbeat,
                    interval_s=site.dispatch.heartbeat_s,
                    frame_every_s=site.dispatch.frame_every_s,
                    timeout_s=site.dispatch.timeout_s,
                )
            if site.model_updates is not None:
                self.model_updates = ModelUpdater(
                    site.dispatch.url,
                    device_headers(device_token(site.dispatch), site.dispatch.device_id or site.site_id),
                    models_dir(),
                    site.model_names(),
                    trusted_keys=site.model_updates.trusted_keys,
                    require_signature=site.model_updates.require_signature,
                    on_installed=self.request_reload,
                    interval_s=site.model_updates.check_every_s,
                )
            if site.zone_updates is not None and self.zone_rollout is not None:
                self.zone_updates = ZoneUpdater(
                    site.dispatch.url,
                    device_headers(device_token(site.dispatch), site.dispatch.device_id or site.site_id),
                    self.zone_rollout.offer,
                    interval_s=site.zone_updates.check_every_s,
                    timeout_s=site.dispatch.timeout_s,
                )
        else:
            log.warning("no dispatch section in the site config: cases are queued in %s but not sent", site.outbox.path)
        sample_fps = {cam_id: pipe.sample_fps for cam_id, pipe in self.pipelines.items()}
        self.feeds = CameraFeeds(self.cameras, sample_fps, live=live, loop=loop, on_idle=self._beat)
        self.summary = RunSummary()
        self.metrics = SiteMetrics(
            ScrapedParts(
                readers=self.feeds.readers,
                outbox=self.outbox,
                pipelines=self.pipelines,
                writer=self.writer,
                sender=self.sender,
            )
        )
        self._metrics_port = site.metrics.port if metrics_port is None else metrics_port
        self._http: HealthServer | None = None
        self.metrics_address: tuple[str, int] | None = None
        self.heartbeat = time.monotonic()
        self.started = time.monotonic()

    @property
    def readers(self) -> Mapping[str, CameraReader]:
        """The live camera readers by camera id (filled as they start; empty offline)."""
        return self.feeds.readers

    @property
    def detector(self) -> SiteDetector:
        """The first (primary) detector of the site (the one rolled out last, once it was)."""
        detector = self.models.routes[0].detector
        if not isinstance(detector, SiteDetector):  # the routes only hold what __init__ and the rollout put there
            raise TypeError(f"the primary route holds a {type(detector).__name__}, not a detector")
        return detector

    @property
    def pool(self) -> RoutePool:
        """The primary detector's pool (a `DetectorPool`; `pool_workers` says how many frames it detects at once)."""
        return self.models.routes[0].pool

    def request_reload(self) -> None:
        """Load the site's models again before the next batch (SIGHUP); streams keep running."""
        self.rollout.request()

    def _heartbeat(self, with_frames: bool) -> tuple[Heartbeat, dict[str, bytes]]:
        """The heartbeat to the center now (the heartbeat thread asks)."""
        zone_state = self.zone_rollout.state if self.zone_rollout is not None else None
        return heartbeat_of(
            self, self.site, self.started_at, self._config_hash, self.latest_images, with_frames, zone_state
        )

    def health(self) -> tuple[int, dict[str, Any]]:
        """(HTTP status, body) of /healthz."""
        return health_report(self)

    # --- lifecycle ------------------------------------------------------------------------------
    def run(self, stop: threading.Event, duration_s: float | None = None) -> RunSummary:
        deadline = None if duration_s is None else time.monotonic() + duration_s
        if self.site.metrics.enabled:
            self._http = HealthServer(self.site.metrics.host, self._metrics_port, self.health, self.metrics.registry)
            self.metrics_address = self._http.address
        for route in self.models.routes:
            log.info(
                "detector %s %s (%s, every %s): %d worker(s) x %d thread(s) for %d camera(s)",
                route.name,
                route.version,
                ", ".join(sorted(route.classes)) if route.classes else "all classes",
                f"{route.every_s:g} s" if route.every_s else "frame",
                pool_workers(route),
                self.plan.threads,
                len(self.cameras),
            )
        self.writer.start()
        if self.sender is not None:
            self.sender.start()
            self.sender.wake()  # resume what a previous run left queued (recovered pending cases too)
        if self.heartbeats is not None:
            self.heartbeats.start()
        if self.model_updates is not None:
            self.model_updates.start()
        if self.zone_updates is not None:
            self.zone_updates.start()
        try:
            self._loop(self.feeds.batches(stop, deadline))
        finally:
            self._shutdown()
        if not self.summary.stopped_by:
            self.summary.stopped_by = (
                "sources ended"
                if self.feeds.ended
                else "stop"
                if stop.is_set()
                else "duration"
                if deadline and time.monotonic() >= deadline
                else "sources ended"
            )
        return self.summary

    def _shutdown(self) -> None:
        if self.heartbeats is not None:
            self.heartbeats.stop()
        if self.model_updates is not None:
            self.model_updates.stop()
        if self.zone_updates is not None:
            self.zone_updates.stop()
        self.feeds.stop()
        for pipe in self.pipelines.values():
            for violation in pipe.clips_ready(flush=True):  # finish cases still waiting for the end of their clip
                self._finish(pipe, violation)
        self.writer.stop()  # writes everything handed over, so nothing is left in memory
        self.models.close()
        if self.sender is not None:
            self.sender.stop()
        self.summary.outbox = self.outbox.counts()
        self.outbox.close()
        if self._http is not None:
            self._http.close()
        log.info(
            "daemon stopped: %s",
            json.dumps(
                {k: v for k, v in self.summary.__dict__.items() if k in ("frames", "processed", "cases", "outbox")}
            ),
        )

    def _beat(self) -> None:
        """The loop is alive (/healthz says "stalled" when this stops)."""
        self.heartbeat = time.monotonic()

    # --- the loop -------------------------------------------------------------------------------
    def _loop(self, batches: Iterator[list[Frame]]) -> None:
        for batch in batches:
            self._beat()
            for f in batch:
                self.latest_images[f.camera_id] = f.image
            self.summary.model_reloads += self.rollout.check()
            self._swap_zones()
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
                for frame, dets in zip(due, results, strict=True):
                    try:
                        self._process(frame, dets)
                    except Exception:  # noqa: BLE001
                        log.exception(
                            "camera %s: frame %d could not be processed; skipped", frame.camera_id, frame.index
                        )
                        self.metrics.frame_errors.inc()
            for pipe in self.pipelines.values():
                for violation in pipe.clips_ready():
                    self._finish(pipe, violation)

    def _swap_zones(self) -> None:
        """Zones the zone updater accepted (zone_rollout.py), swapped in between two batches: the
        cameras whose zones changed get their new rules (pipeline.py `replace_zones`) and the
        detectors their new zoom tiles; the camera readers never notice."""
        if self.zone_rollout is None:
            return
        site = self.zone_rollout.take()
        if site is None:
            return
        by_id = {c.id: c for c in site.cameras}
        for camera_id, pipe in self.pipelines.items():
            camera = by_id[camera_id]
            if camera.zones == pipe.camera.zones:
                continue
            fresh = pipe.replace_zones(site, camera)
            for route in self.models.routes:
                if route.zoom_every_s is not None:  # the zoom tiles follow the zones
                    route.zones[camera_id] = [z.polygon for z in camera.zones]
                    route._tiles.clear()
            self.summary.zone_reloads += 1
            log.info(
                "camera %s: zones reloaded (%s); rules started fresh: %s (streams kept running)",
                camera_id,
                ", ".join(z.name for z in camera.zones) or "no zones",
                ", ".join(fresh) or "none",
            )
        self.site = site
        self.cameras = [c for c in site.cameras if c.enabled]
        self._config_hash = config_sha256(site)

    def _process(self, frame: FrameLike, dets: sv.Detections) -> None:
        pipe = self.pipelines[frame.camera_id]
        obs, events = pipe.process(frame, dets)
        self.summary.processed += 1
        self.metrics.processed.labels(frame.camera_id).inc()
        names = dets.data.get("class_name")
        if names is not None:
            self.summary.detections.update(str(n) for n in names)
        # what the rules saw (a truck only the moving-region path found counts too)
        if pipe.followed_moving(obs.detections):
            self._keep_looking(frame, pipe)
        for ev in events:
            self._on_event(pipe, ev, frame)
        if self.on_observation is not None:
            self.on_observation(obs, events)

    def _on_event(self, pipe: CameraPipeline, ev: RuleEvent, frame: FrameLike) -> None:
        """The one place a rule event (one the verifier let through) is acted on: counted, logged,
        an opened violation becomes a case, and its clearing or resumption follows the case to the
        center with the frame that shows it (自动核查)."""
        v = ev.violation
        self.summary.events[ev.kind] += 1
        if ev.kind != "opened":
            grew = f" to {ev.object_count} object(s)" if ev.kind == "grew" else ""
            log.info("camera %s: %s violation %s %s%s", pipe.camera.id, v.rule, v.id, ev.kind, grew)
            self.writer.lifecycle(
                pipe.camera,
                v,
                ev.kind,
                frame.image.copy(),
                frame.captured_at,
                object_count=ev.object_count,
                joined_px=ev.joined_px,
            )
            return
        log.info(
            "camera %s: %s violation %s opened (%s, %d object(s), dwell %.0f s)",
            pipe.camera.id,
            v.rule,
            v.id,
            v.zone,
            v.object_count,
            v.dwell_s,
        )
        pipe.await_clip(v)  # the clip is cut once its seconds after onset are buffered
        name, version = self.models.provenance(v.classes)
        self.writer.opened(pipe.camera, v, frame.image.copy(), name, version)  # stills now, durable before the clip

    def _keep_looking(self, frame: FrameLike, pipe: CameraPipeline) -> None:
        """A followed object (a truck) is in view: full rate on a motion-gated camera, every sampled frame
        detected, and a fresh look by every model that holds detections between looks (Frigate too keeps
        detecting where objects are)."""
        camera_id = frame.camera_id
        self.feeds.hold_open(camera_id, FOLLOW_HOLD_S)
        pipe.full_rate_until(frame.t_s + FOLLOW_HOLD_S)
        for route in self.models.routes:
            if route.every_s and any(route.serves(c) for c in pipe.follow_looks):
                route.forget(camera_id)

    # --- cases ----------------------------------------------------------------------------------
    def _finish(self, pipe: CameraPipeline, violation: Violation) -> None:
        """Hand the clip window's frames to the case writer."""
        self.writer.finish(pipe.camera, violation, pipe.clip_frames(violation), pipe.clip_fps)

    def _queued(self, queued: QueuedCase) -> None:
        """On the case-writer thread: a case is in the outbox."""
        v, camera = queued.violation, queued.camera
        self.summary.cases += 1
        self.metrics.cases.labels(camera.id, v.rule, v.violation_type).inc()
        log.info(
            "case %s queued: %s on %s (%s%s)",
            v.id,
            v.violation_type,
            camera.id,
            ", ".join(f.name for f in queued.files),
            f", clip {queued.clip.duration_s:.1f} s" if queued.clip else "",
        )
        if self.sender is not None:
            self.sender.wake()

    def _lifecycle_queued(self, event: CaseLifecycle) -> None:
        """On the case-writer thread: a cleared/resumed/grew event is in the outbox."""
        self.metrics.lifecycle.labels(event.camera_id, event.kind).inc()
        if self.sender is not None:
            self.sender.wake()

    def _case_failed(self, camera: CameraConfig, violation: Violation) -> None:
        self.metrics.case_errors.inc()


def run_site(
    site: SiteConfig, stop: threading.Event | None = None, *, duration_s: float | None = None, **options: Any
) -> RunSummary:
    """Run a site until `stop` is set, `duration_s` passes or every (file) source ends.

    `options` are `SiteRunner`'s keywords (live, loop, detector, on_observation, ...),
    as `subprocess.run` takes `Popen`'s: one signature, the class's."""
    return SiteRunner(site, **options).run(stop or threading.Event(), duration_s)

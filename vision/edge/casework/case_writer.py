"""Opened violations -> evidence files -> cases in the outbox, on a thread of its own.

Why a thread: JPEG snapshots and an H.264 clip take about a second of CPU per
case on a small box; done on the detection loop, that second was a gap in every
camera's detections. The loop now only hands over references (the snapshot it
already copied, the ring frames of the clip window, which are immutable JPEG
bytes) and goes on.

Why two steps per case: a truck's clip needs seconds recorded after onset.
`opened` writes the stills and the case JSON to the outbox's pending area at
once (fsynced), so a kill -9 during those seconds loses only the clip; the next
start queues the case without it (`Outbox` recovers the pending area).
`finish` adds the clip and queues the case. One thread handles both in order,
so a case is always opened before it is finished.

On a full disk the case record matters more than its evidence: stills that do
not fit are dropped (after the outbox made what room it could), a clip that
does not fit is dropped, and a case the outbox cannot take at all (not even
its row) is held here and offered again every `RETRY_FULL_S` seconds, so a
case that was opened is never lost while the daemon runs.

What the camera sees of the violation afterwards (`lifecycle`: cleared, with a
snapshot of the empty place, or resumed) takes the same thread, so it is
always queued after its case was opened; the outbox sends it after the case.
"""

from __future__ import annotations

import logging
import queue
import shutil
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from vision.core.cases import CaseLifecycle, CaseReport, LifecycleKind
from vision.core.evidence_files import EvidenceFile
from vision.core.taxonomy import Taxonomy
from vision.edge.casework.case_builder import build_case
from vision.edge.casework.evidence import (
    BufferedFrame,
    ClipInfo,
    write_clip_file,
    write_images,
    write_lifecycle_images,
)
from vision.edge.casework.plate_step import PlateStep
from vision.edge.config import CameraConfig, SiteConfig
from vision.edge.delivery.outbox import Outbox, OutboxFullError, is_disk_full
from vision.edge.rules import Violation
from vision.edge.rules.base import union_rel

log = logging.getLogger(__name__)

__all__ = ["CaseWriter", "QueuedCase", "RETRY_FULL_S"]

RETRY_FULL_S = 5.0  # how often a case the full disk could not take is offered to the outbox again


@dataclass(frozen=True)
class QueuedCase:
    """What `on_queued` hears about each case the writer put in the outbox."""

    camera: CameraConfig
    violation: Violation
    files: list[EvidenceFile]
    clip: ClipInfo | None


@dataclass(frozen=True)
class _Opened:
    camera: CameraConfig
    violation: Violation
    snapshot: np.ndarray
    model_name: str
    model_version: str


@dataclass(frozen=True)
class _Started:
    case: CaseReport
    files: list[EvidenceFile]


@dataclass(frozen=True)
class _Held:
    """A finished case the outbox could not take (disk full), offered again later."""

    camera: CameraConfig
    violation: Violation
    case: CaseReport
    files: list[EvidenceFile]
    clip: ClipInfo | None


@dataclass(frozen=True)
class _Lifecycle:
    """The violation cleared, resumed or grew; `image` is the frame that showed it."""

    camera: CameraConfig
    violation: Violation
    kind: LifecycleKind
    image: np.ndarray
    observed_at: datetime
    object_count: int | None = None  # grew: how many objects it holds now
    joined_px: tuple[tuple[float, float, float, float], ...] = ()  # grew: the boxes of those that joined


@dataclass(frozen=True)
class _HeldEvent:
    """A lifecycle event the outbox could not take (disk full), offered again later."""

    event: CaseLifecycle
    files: list[EvidenceFile]
    rule: str
    violation_type: str


@dataclass(frozen=True)
class _Finish:
    camera: CameraConfig
    violation: Violation
    clip_frames: list[BufferedFrame]
    clip_fps: float


class CaseWriter:
    def __init__(
        self,
        site: SiteConfig,
        taxonomy: Taxonomy,
        outbox: Outbox,
        *,
        on_queued: Callable[[QueuedCase], None] | None = None,
        on_error: Callable[[CameraConfig, Violation], None] | None = None,
        plates: PlateStep | None = None,
        on_lifecycle: Callable[[CaseLifecycle], None] | None = None,
    ):
        self.site = site
        self.plates = plates  # reads a truck's plate before its stills are written
        self.taxonomy = taxonomy
        self.outbox = outbox
        self.on_queued = on_queued
        self.on_error = on_error
        self.on_lifecycle = on_lifecycle  # a lifecycle event is in the outbox
        self._jobs: queue.Queue[_Opened | _Finish | _Lifecycle | None] = queue.Queue()
        self._started: dict[str, _Started] = {}  # key -> what `opened` wrote
        self._failed_opens: dict[str, _Opened] = {}  # key -> opening that failed (disk full?), retried at finish
        self._held: dict[str, _Held] = {}  # key -> finished case the full disk could not take yet
        self._held_events: dict[str, _HeldEvent] = {}  # key -> lifecycle event the full disk could not take yet
        self._thread = threading.Thread(target=self._run, name="case-writer", daemon=True)

    # --- the detection loop's side -------------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def opened(
        self, camera: CameraConfig, violation: Violation, snapshot: np.ndarray, model_name: str, model_version: str
    ) -> None:
        """A violation opened: write its stills and make the case durable (pending its clip)."""
        self._jobs.put(_Opened(camera, violation, snapshot, model_name, model_version))

    def finish(
        self, camera: CameraConfig, violation: Violation, clip_frames: list[BufferedFrame], clip_fps: float
    ) -> None:
        """The clip window is buffered: encode it and queue the case."""
        self._jobs.put(_Finish(camera, violation, clip_frames, clip_fps))

    def lifecycle(
        self,
        camera: CameraConfig,
        violation: Violation,
        kind: LifecycleKind,
        image: np.ndarray,
        observed_at: datetime,
        *,
        object_count: int | None = None,
        joined_px: tuple[tuple[float, float, float, float], ...] = (),
    ) -> None:
        """The violation of an opened case cleared (absent for `clear_after_s`), resumed, or grew (more
        objects joined it: `object_count` now, `joined_px` theirs): tell the center, with the frame that
        shows it (自动核查)."""
        self._jobs.put(_Lifecycle(camera, violation, kind, image, observed_at, object_count, joined_px))

    @property
    def backlog(self) -> int:
        return self._jobs.qsize()

    @property
    def held(self) -> int:
        """Cases (and lifecycle events) finished but not queued yet because the disk is full (offered again
        every `RETRY_FULL_S`)."""
        return len(self._held) + len(self._held_events)

    def stop(self) -> None:
        """Write everything handed over so far, then end the thread."""
        if self._thread.is_alive():
            self._jobs.put(None)
            self._thread.join()

    # --- the writer thread ---------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            try:
                waiting = self._held or self._held_events or self.outbox.unrecovered
                job = self._jobs.get(timeout=RETRY_FULL_S if waiting else None)
            except queue.Empty:
                self._retry_held()
                continue
            if job is None:
                self._retry_held()
                break
            self._handle(job)
            if self._held or self._held_events:
                self._retry_held()

    def _handle(self, job: _Opened | _Finish | _Lifecycle) -> None:
        key = str(job.violation.id)
        if isinstance(job, _Lifecycle):
            try:
                self._lifecycle(job)
            except Exception:  # noqa: BLE001 - one bad event must not stop the cases
                log.exception("camera %s: could not queue the %s event of violation %s", job.camera.id, job.kind, key)
            return
        if isinstance(job, _Opened):
            try:
                self._open(key, job)
            except Exception:  # noqa: BLE001 - tried once more when the clip is due
                log.exception(
                    "camera %s: could not write the stills of violation %s; retrying later", job.camera.id, key
                )
                self._failed_opens[key] = job
            return
        try:
            if key in self._failed_opens:
                self._open(key, self._failed_opens.pop(key))
            self._finish(key, job)
        except Exception:  # noqa: BLE001 - one bad case must not stop the others
            log.exception("camera %s: could not queue the case of violation %s", job.camera.id, key)
            self._started.pop(key, None)
            if self.on_error is not None:
                self.on_error(job.camera, job.violation)

    def _open(self, key: str, job: _Opened) -> None:
        if self.plates is not None and job.violation.plate_views:
            try:
                self.plates.apply(job.violation)
            except Exception:  # noqa: BLE001 - a plate reader failure must not cost the case
                log.exception("camera %s: plate reading failed on violation %s; sent without", job.camera.id, key)
                job.violation.plate_views = []
        directory = self.outbox.pending(key)
        try:
            files = write_images(job.violation, job.snapshot, job.camera.zones, self.site.evidence, directory)
        except OSError as exc:
            if not is_disk_full(exc):
                raise
            self.outbox.note_disk_full(exc)
            _remove_files(directory)
            self.outbox.make_room()
            try:
                files = write_images(job.violation, job.snapshot, job.camera.zones, self.site.evidence, directory)
            except OSError as again:
                if not is_disk_full(again):
                    raise
                _remove_files(directory)
                self.outbox.evidence_dropped += 1
                log.warning(
                    "camera %s: disk full; the case of violation %s is kept without its stills", job.camera.id, key
                )
                files = []
        case = build_case(
            job.violation,
            site=self.site,
            camera=job.camera,
            taxonomy=self.taxonomy,
            model_name=job.model_name,
            model_version=job.model_version,
            evidence=files,
        )
        try:
            self.outbox.put_pending(case)
        except OSError as exc:  # the case is still queued at finish; only a crash before then loses it
            if not is_disk_full(exc):
                raise
            log.warning("camera %s: disk full; violation %s is kept in memory until its clip", job.camera.id, key)
        self._started[key] = _Started(case, files)

    def _finish(self, key: str, job: _Finish) -> None:
        started = self._started.pop(key)
        directory = self.outbox.pending(key)
        try:
            clip_file, clip = write_clip_file(
                job.violation, job.clip_frames, self.site.evidence, directory, job.clip_fps
            )
        except Exception as exc:  # noqa: BLE001 - the case matters more than its clip
            (directory / "clip.mp4").unlink(missing_ok=True)  # a partial clip only takes space
            if is_disk_full(exc):
                self.outbox.note_disk_full(exc)
                self.outbox.evidence_dropped += 1
                log.warning(
                    "camera %s: disk full; the case of violation %s is queued without its clip", job.camera.id, key
                )
            else:
                log.exception(
                    "camera %s: the clip of violation %s could not be encoded; queued without it", job.camera.id, key
                )
            clip_file, clip = None, None
        files = [*started.files, clip_file] if clip_file is not None else started.files
        self._queue(_Held(job.camera, job.violation, started.case, files, clip))

    def _lifecycle(self, job: _Lifecycle) -> None:
        # the same event (violation, kind, moment) always has the same key: a replay, never a second event
        key = uuid.uuid5(job.violation.id, f"{job.kind}@{job.observed_at.isoformat()}")
        grew = job.kind == "grew"
        directory = self.outbox.staging(str(key))
        try:
            files = write_lifecycle_images(
                job.violation, job.image, job.camera.zones, self.site.evidence, directory, job.kind, job.joined_px
            )
        except OSError as exc:
            if not is_disk_full(exc):
                raise
            self.outbox.note_disk_full(exc)
            _remove_files(directory)
            self.outbox.evidence_dropped += 1
            log.warning(
                "camera %s: disk full; the %s event of %s goes without its snapshot", job.camera.id, job.kind, key
            )
            files = []
        event = CaseLifecycle(
            idempotency_key=key,
            case_key=job.violation.id,
            site_id=self.site.site_id,
            camera_id=job.camera.id,
            kind=job.kind,
            observed_at=job.observed_at.astimezone(UTC),
            object_count=(job.object_count or job.violation.object_count) if grew else None,
            bbox=union_rel(job.joined_px, job.violation.frame_size) if grew else None,
        )  # its evidence list is written by the outbox from the files it keeps
        self._queue_event(_HeldEvent(event, files, job.violation.rule, job.violation.violation_type))

    def _queue_event(self, held: _HeldEvent) -> bool:
        key = str(held.event.idempotency_key)
        try:
            self.outbox.put_lifecycle(held.event, held.files, rule=held.rule, violation=held.violation_type)
        except OutboxFullError as exc:
            if key not in self._held_events:
                log.error("disk full; the %s event %s is held and queued once it fits (%s)", held.event.kind, key, exc)
            self._held_events[key] = held
            return False
        self._held_events.pop(key, None)
        log.info(
            "camera %s: %s event of case %s queued (%s)",
            held.event.camera_id,
            held.event.kind,
            held.event.case_key,
            ", ".join(f.name for f in held.files) or "no snapshot",
        )
        if self.on_lifecycle is not None:
            self.on_lifecycle(held.event)
        return True

    def _queue(self, case: _Held) -> bool:
        """Put a finished case in the outbox; held for a later try when not even its record fits."""
        key = str(case.case.idempotency_key)
        try:
            self.outbox.put(case.case, case.files)  # the case's evidence list is rebuilt from `files`
        except OutboxFullError as exc:
            if key not in self._held:
                log.error(
                    "camera %s: disk full; the case of violation %s is held and queued once it fits (%s)",
                    case.camera.id,
                    key,
                    exc,
                )
            self._held[key] = case
            return False
        self._held.pop(key, None)
        if self.on_queued is not None:
            self.on_queued(QueuedCase(case.camera, case.violation, case.files, case.clip))
        return True

    def _retry_held(self) -> None:
        """Offer the held cases (oldest first) and the pending cases that did not fit at open again."""
        try:
            self.outbox.retry_unrecovered()
            for case in list(self._held.values()):
                if not self._queue(case):
                    return  # still full: the rest waits for the next round
            for event in list(self._held_events.values()):
                if not self._queue_event(event):
                    return
        except Exception:  # noqa: BLE001 - the writer thread must outlive a bad round
            log.exception("could not retry the cases held for disk space")


def _remove_files(directory: Path) -> None:
    """Drop what a failed write left in a case's pending directory (not the directory itself)."""
    for child in directory.iterdir() if directory.is_dir() else ():
        if child.is_dir():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)

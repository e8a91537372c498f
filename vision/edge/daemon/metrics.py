"""Prometheus metrics of one running site, in a registry of its own (no global state).

Counters the loop increments as it goes (inference latency, frames, cases, errors), and
values read at scrape time from the parts that hold them: the camera readers, the outbox,
the verifier gates, the case writer and the sender. health.py serves them on /metrics.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from vision.edge.casework.case_writer import CaseWriter
from vision.edge.daemon.pipeline import CameraPipeline
from vision.edge.delivery.outbox import Outbox
from vision.edge.delivery.sender import Sender
from vision.edge.streams import CameraReader

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

__all__ = ["ScrapedParts", "SiteMetrics"]


@dataclass(frozen=True)
class ScrapedParts:
    """The parts whose state is read at every scrape (`readers` fills up as the cameras start)."""

    readers: Mapping[str, CameraReader]
    outbox: Outbox
    pipelines: Mapping[str, CameraPipeline]
    writer: CaseWriter
    sender: Sender | None


class SiteMetrics:
    def __init__(self, parts: ScrapedParts) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.registry = CollectorRegistry()
        self.inference = Histogram(
            "streetvision_inference_seconds",
            "Detector latency per batch (all cameras due in one call).",
            buckets=(0.01, 0.025, 0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 3.2),
            registry=self.registry,
        )
        self.processed = Counter(
            "streetvision_frames_processed",
            "Frames run through detection, tracking and rules.",
            ["camera"],
            registry=self.registry,
        )
        self.cases = Counter(
            "streetvision_cases_emitted",
            "Cases queued in the outbox.",
            ["camera", "rule", "violation"],
            registry=self.registry,
        )
        self.lifecycle = Counter(
            "streetvision_lifecycle_events",
            "Cleared/resumed/grew events of cases queued in the outbox (for the center's automatic verification).",
            ["camera", "kind"],
            registry=self.registry,
        )
        self.case_errors = Counter(
            "streetvision_case_errors", "Violations whose case could not be built.", registry=self.registry
        )
        self.frame_errors = Counter(
            "streetvision_frame_errors", "Frames skipped after a detector or rule error.", registry=self.registry
        )
        self.registry.register(_LiveCollector(parts))


_DISK_LEVELS = ("ok", "low", "full")


class _LiveCollector:
    """Values read at scrape time from the readers, the outbox, the pipelines, the writer and the sender."""

    def __init__(self, parts: ScrapedParts) -> None:
        self.parts = parts

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        fps = GaugeMetricFamily(
            "streetvision_camera_fps", "Frames/s delivered by the camera reader.", labels=["camera"]
        )
        online = GaugeMetricFamily(
            "streetvision_camera_online", "1 while the camera delivers frames.", labels=["camera"]
        )
        errors = CounterMetricFamily(
            "streetvision_camera_decode_errors", "Decode errors of the camera.", labels=["camera"]
        )
        reconnects = CounterMetricFamily("streetvision_camera_reconnects", "Stream reconnects.", labels=["camera"])
        dropped = CounterMetricFamily(
            "streetvision_camera_dropped_frames", "Frames replaced by a newer one before processing.", labels=["camera"]
        )
        gated = CounterMetricFamily(
            "streetvision_camera_keyframes_gated", "Keyframes not decoded: the stream was quiet.", labels=["camera"]
        )
        for cam_id, reader in list(self.parts.readers.items()):
            st = reader.status()
            fps.add_metric([cam_id], st.fps)
            online.add_metric([cam_id], 1.0 if st.online else 0.0)
            errors.add_metric([cam_id], st.decode_errors)
            reconnects.add_metric([cam_id], st.reconnects)
            dropped.add_metric([cam_id], st.dropped_frames)
            gated.add_metric([cam_id], st.keyframes_gated)
        yield from (fps, online, errors, reconnects, dropped, gated)
        depth = GaugeMetricFamily(
            "streetvision_outbox_cases", "Cases in the outbox by state (queued = queue depth).", labels=["state"]
        )
        ev_bytes = GaugeMetricFamily("streetvision_outbox_evidence_bytes", "Evidence bytes on disk.")
        pruned = CounterMetricFamily(
            "streetvision_outbox_evidence_pruned_files", "Evidence files deleted by the disk bound."
        )
        if not self.parts.outbox.closed:
            for state, n in self.parts.outbox.counts().items():
                depth.add_metric([state], n)
            ev_bytes.add_metric([], self.parts.outbox.evidence_bytes())
        pruned.add_metric([], self.parts.outbox.pruned_files)
        yield from (depth, ev_bytes, pruned)
        yield from self._disk()
        candidates = CounterMetricFamily(
            "streetvision_candidates_dropped",
            "Candidate violations the crop verifier dropped.",
            labels=["camera", "rule"],
        )
        for cam_id, pipe in self.parts.pipelines.items():
            for rule, n in pipe.dropped.items():
                candidates.add_metric([cam_id, rule], n)
        yield candidates
        writing = GaugeMetricFamily(
            "streetvision_cases_being_written", "Violations handed to the case writer, not yet queued."
        )
        writing.add_metric([], self.parts.writer.backlog)
        held = GaugeMetricFamily(
            "streetvision_cases_held_for_disk", "Cases finished but not queued yet: not even their record fits."
        )
        held.add_metric([], self.parts.writer.held)
        yield from (writing, held)
        plates = self.parts.writer.plates
        if plates is not None:
            read = CounterMetricFamily(
                "streetvision_plates",
                "Muddy-truck cases by plate outcome: read (text on the case) or unreadable (none, or not sure).",
                labels=["outcome"],
            )
            read.add_metric(["read"], plates.read)
            read.add_metric(["unreadable"], plates.unreadable)
            seconds = CounterMetricFamily("streetvision_plate_seconds", "Time the case writer spent reading plates.")
            seconds.add_metric([], plates.seconds)
            yield from (read, seconds)
        sent = CounterMetricFamily("streetvision_cases_sent", "Cases accepted by dispatch (new or replay).")
        failures = CounterMetricFamily("streetvision_send_failures", "Failed send attempts.", labels=["kind"])
        stats = self.parts.sender.stats if self.parts.sender is not None else None
        sent.add_metric([], stats.sent if stats else 0)
        failures.add_metric(["retry"], stats.retries if stats else 0)
        failures.add_metric(["permanent"], stats.permanent_failures if stats else 0)
        yield from (sent, failures)

    def _disk(self) -> Iterator[Metric]:
        """The outbox filesystem: free and total bytes, the floor, its level, disk-full errors survived."""
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        outbox = self.parts.outbox
        errors = CounterMetricFamily(
            "streetvision_outbox_disk_full_errors", "Writes that failed for disk space (and were survived)."
        )
        errors.add_metric([], outbox.write_errors)
        dropped = CounterMetricFamily(
            "streetvision_outbox_evidence_dropped_files", "Evidence files not kept because the disk was full."
        )
        dropped.add_metric([], outbox.evidence_dropped)
        yield from (errors, dropped)
        try:
            disk = outbox.disk()
        except OSError:  # the outbox directory is gone: no disk figures to give
            return
        free = GaugeMetricFamily("streetvision_outbox_disk_free_bytes", "Free bytes on the outbox filesystem.")
        free.add_metric([], disk.free_bytes)
        total = GaugeMetricFamily("streetvision_outbox_disk_total_bytes", "Size of the outbox filesystem.")
        total.add_metric([], disk.total_bytes)
        floor = GaugeMetricFamily(
            "streetvision_outbox_disk_min_free_bytes", "Free space kept; evidence is pruned below it."
        )
        floor.add_metric([], disk.min_free_bytes)
        level = GaugeMetricFamily(
            "streetvision_outbox_disk_level", "1 for the outbox disk's current level (ok, low, full).", labels=["level"]
        )
        for name in _DISK_LEVELS:
            level.add_metric([name], 1.0 if disk.level == name else 0.0)
        yield from (free, total, floor, level)

"""The center's `/metrics`: per box and per camera gauges for Prometheus, read from the
database at each scrape (so every worker and every node answers the same)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, InfoMetricFamily
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from vision.dispatch.service import DispatchService

__all__ = ["fleet_metrics_text"]


class _FleetCollector(Collector):
    def __init__(self, service: DispatchService) -> None:
        self.service = service

    def collect(self) -> Iterator[GaugeMetricFamily | InfoMetricFamily]:
        now = self.service.clock()
        silent_after = self.service.config.fleet.box_silent_after_s
        box = ["site"]
        cam = ["site", "camera"]
        up = GaugeMetricFamily("streetvision_box_up", "1 while the box's heartbeats arrive in time", labels=box)
        seen = GaugeMetricFamily(
            "streetvision_box_last_seen_seconds", "Seconds since the box's last heartbeat", labels=box
        )
        disk = GaugeMetricFamily("streetvision_box_disk_free_bytes", "Free bytes on the box's outbox disk", labels=box)
        queue = GaugeMetricFamily(
            "streetvision_box_queue_depth", "Cases waiting on the box to be delivered", labels=box
        )
        failed = GaugeMetricFamily("streetvision_box_failed_cases", "Cases the center refused for good", labels=box)
        info = InfoMetricFamily("streetvision_box", "Software and site config the box runs", labels=box)
        model = InfoMetricFamily("streetvision_box_model", "A model the box runs", labels=[*box, "model"])
        cam_up = GaugeMetricFamily("streetvision_camera_up", "1 while the camera is watching", labels=cam)
        fps = GaugeMetricFamily("streetvision_camera_fps", "Frames/s the box reads from the camera", labels=cam)
        errors = GaugeMetricFamily("streetvision_camera_decode_errors", "Decode errors the box counted", labels=cam)
        offline = GaugeMetricFamily(
            "streetvision_camera_offline_seconds", "Seconds the camera has not been watching (0: watching)", labels=cam
        )
        alerts = GaugeMetricFamily("streetvision_fleet_open_alerts", "Open maintenance alerts")
        open_alerts = 0
        for b in self.service.fleet_boxes():
            age = (now - b.last_seen_at).total_seconds()
            alive = not b.silent and age <= silent_after
            up.add_metric([b.site_id], 1.0 if alive else 0.0)
            seen.add_metric([b.site_id], max(0.0, age))
            if b.disk_free_bytes is not None:
                disk.add_metric([b.site_id], float(b.disk_free_bytes))
            queue.add_metric([b.site_id], float(b.queue_depth))
            failed.add_metric([b.site_id], float(b.failed))
            info.add_metric([b.site_id], {"software_version": b.software_version, "config_sha256": b.config_sha256})
            for mi in b.models:
                model.add_metric(
                    [b.site_id, str(mi.get("name"))],
                    {"version": str(mi.get("version")), "sha256": str(mi.get("sha256"))},
                )
            open_alerts += b.alert_case_id is not None
            for c in b.cameras:
                labels = [b.site_id, c.camera_id]
                cam_up.add_metric(labels, 1.0 if c.watching and alive else 0.0)
                fps.add_metric(labels, c.fps if alive else 0.0)
                errors.add_metric(labels, float(c.decode_errors))
                since = c.offline_since if c.offline_since is not None else (None if alive else b.last_seen_at)
                offline.add_metric(labels, max(0.0, (now - since).total_seconds()) if since else 0.0)
                open_alerts += c.alert_case_id is not None
        alerts.add_metric([], float(open_alerts))
        yield from (up, seen, disk, queue, failed, info, model, cam_up, fps, errors, offline, alerts)


def fleet_metrics_text(service: DispatchService) -> tuple[bytes, str]:
    """(body, content type) of one scrape."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_FleetCollector(service))
    return generate_latest(registry), CONTENT_TYPE_LATEST

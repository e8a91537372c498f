"""`/healthz` and `/metrics` of a running site, served over HTTP on a thread of their own.

`/healthz` (also `/health`) is JSON: each camera's reader status, the outbox counts,
the outbox disk (free bytes, "ok"/"low"/"full", write errors survived), cases emitted,
being written and held for disk space, the detector workers, the models and the verifier. It
answers 503 "stalled" when the loop has shown no life for `STALLED_AFTER_S` (a wedged
detector, a deadlock), so a supervisor can restart the box. `/metrics` is the site's
Prometheus registry (metrics.py).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, Protocol

from vision.edge.casework.case_writer import CaseWriter
from vision.edge.config import CameraConfig
from vision.edge.daemon.detectors import pool_workers
from vision.edge.daemon.pipeline import CameraPipeline
from vision.edge.daemon.summary import RunSummary
from vision.edge.delivery.outbox import Outbox
from vision.edge.detection.pool import WorkerPlan
from vision.edge.detection.routing import RoutedDetections
from vision.edge.streams import CameraReader
from vision.edge.verify.verifier import Verifier

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

log = logging.getLogger("vision.edge.daemon")

__all__ = ["HealthServer", "RunningSite", "STALLED_AFTER_S", "health_report"]

STALLED_AFTER_S = 30.0  # seconds without a heartbeat of the loop before /healthz says "stalled"


class RunningSite(Protocol):
    """What the health report reads of a running site (`SiteRunner` has it all)."""

    cameras: list[CameraConfig]
    pipelines: dict[str, CameraPipeline]
    outbox: Outbox
    writer: CaseWriter
    models: RoutedDetections
    plan: WorkerPlan
    verifier: Verifier | None
    summary: RunSummary
    heartbeat: float  # time.monotonic() when the loop last showed life
    started: float  # time.monotonic() at start

    @property
    def readers(self) -> Mapping[str, CameraReader]: ...


def health_report(site: RunningSite) -> tuple[int, dict[str, Any]]:
    """(HTTP status, JSON body) of `/healthz`."""
    cams = {}
    for cam in site.cameras:
        reader = site.readers.get(cam.id)
        cams[cam.id] = reader.status().as_dict() if reader is not None else {"state": "offline-mode"}
    stale = time.monotonic() - site.heartbeat > STALLED_AFTER_S
    primary = site.models.routes[0]
    body = {
        "status": "stalled" if stale else "ok",
        "uptime_s": round(time.monotonic() - site.started, 1),
        "cameras": cams,
        "outbox": {} if site.outbox.closed else site.outbox.counts(),
        "disk": _disk(site.outbox),
        "cases_emitted": site.summary.cases,
        "cases_being_written": site.writer.backlog,
        "cases_held_for_disk": site.writer.held,
        "detector": {"workers": pool_workers(primary), "threads": site.plan.threads},
        "model": {"name": primary.name, "version": primary.version},
        "verifier": None
        if site.verifier is None
        else {
            "name": site.verifier.classifier.name,
            "version": site.verifier.classifier.version,
            "by_violation": {t: {"name": c.name, "version": c.version} for t, c in site.verifier.by_violation.items()},
            "dropped": {c: dict(p.dropped) for c, p in site.pipelines.items()},
            "recent": {c: p.recent_verdicts for c, p in site.pipelines.items()},
        },
        "models": [
            {
                "name": r.name,
                "version": r.version,
                "classes": sorted(r.classes) if r.classes else None,
                "every_s": r.every_s,
            }
            for r in site.models.routes
        ],
    }
    return (503 if stale else 200), body


def _disk(outbox: Outbox) -> dict[str, object]:
    """The outbox's disk state; a full disk is reported, not a reason for 503 (a restart frees nothing)."""
    try:
        return outbox.disk().as_dict()
    except OSError as exc:  # the outbox directory itself is gone or unreadable
        return {"level": "unknown", "error": str(exc)}


class HealthServer:
    """`/healthz` from `health`, `/metrics` from `registry`; a daemon thread serves them until `close`."""

    def __init__(
        self, host: str, port: int, health: Callable[[], tuple[int, dict[str, Any]]], registry: CollectorRegistry
    ) -> None:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                if self.path == "/metrics":
                    status, body, ctype = 200, generate_latest(registry), CONTENT_TYPE_LATEST
                elif self.path in ("/healthz", "/health"):
                    status, payload = health()
                    body, ctype = json.dumps(payload, default=str).encode(), "application/json"
                else:
                    status, body, ctype = 404, b'{"detail": "not found"}', "application/json"
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._http = ThreadingHTTPServer((host, port), Handler)
        self._http.daemon_threads = True
        host, port = self._http.socket.getsockname()[:2]  # what server_address holds: an IPv4/IPv6 (host, port, ...)
        self.address: tuple[str, int] = (str(host), int(port))  # port: the one the system chose when asked for 0
        threading.Thread(target=self._http.serve_forever, name="metrics-http", daemon=True).start()
        log.info("serving /healthz and /metrics on http://%s:%d", *self.address)

    def close(self) -> None:
        self._http.shutdown()
        self._http.server_close()

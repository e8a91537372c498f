"""Fixtures and helpers for the edge tests (zones, rules, evidence, outbox, daemon)."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
import supervision as sv

from vision.edge.config import CameraConfig, parse_site

T0 = datetime(2026, 11, 28, 8, 0, 0, tzinfo=UTC)
W, H = 1000, 1000


def camera(zones: list[dict], rules: list[str] | None = None, cam_id: str = "cam1") -> CameraConfig:
    return CameraConfig.model_validate(
        {
            "id": cam_id,
            "source": "unused.mp4",
            "location": {"crs": "WGS84", "lat": 31.2, "lon": 121.4},
            "grid_code": "310101001001001",
            "zones": zones,
            "rules": rules or [],
        }
    )


def site_dict(zones: list[dict], rules: list[dict], **extra) -> dict:
    names = [r.get("name") or r["type"] for r in rules]
    return {
        "site_id": "test-site",
        "cameras": [
            {
                "id": "cam1",
                "source": "unused.mp4",
                "location": {"crs": "WGS84", "lat": 31.2, "lon": 121.4},
                "grid_code": "310101001001001",
                "zones": zones,
                "rules": names,
            }
        ],
        "rules": rules,
        **extra,
    }


def detections(objs: Iterable[tuple]) -> sv.Detections:
    """objs: (class_name, (x1, y1, x2, y2), confidence, tracker_id)."""
    objs = list(objs)
    if not objs:
        d = sv.Detections.empty()
        d.tracker_id = np.empty(0, dtype=int)
        d.data["class_name"] = np.empty(0, dtype=object)
        return d
    names = [o[0] for o in objs]
    return sv.Detections(
        xyxy=np.asarray([o[1] for o in objs], dtype=np.float32),
        confidence=np.asarray([o[2] for o in objs], dtype=np.float32),
        class_id=np.zeros(len(objs), dtype=int),
        tracker_id=np.asarray([o[3] for o in objs], dtype=int),
        data={"class_name": np.asarray(names, dtype=object)},
    )


def observation(t: float, objs: Iterable[tuple], image: np.ndarray | None = None, cam_id: str = "cam1"):
    from vision.edge.rules import Observation

    return Observation(
        camera_id=cam_id,
        t_s=float(t),
        captured_at=T0 + timedelta(seconds=float(t)),
        width=W,
        height=H,
        detections=detections(objs),
        image=image,
    )


@dataclass
class Script:
    """Runs scripted frames through a CameraRules and collects events with their times."""

    rules: object
    events: list = field(default_factory=list)

    def frame(self, t: float, objs: Iterable[tuple] = (), image=None):
        evs = self.rules.update(observation(t, objs, image))
        self.events.extend((t, e) for e in evs)
        return evs

    def kinds(self, kind: str) -> list:
        """[(t, Violation)] of the events of one kind."""
        return [(t, e.violation) for t, e in self.events if e.kind == kind]


# --- a dispatch stand-in for outbox/daemon tests -------------------------------------------------


class Receiver:
    """A real HTTP server on 127.0.0.1 that takes cases like the dispatch center does:
    dedups by idempotency key (201 new, 200 replay). `mode` switches behaviour live:
    'ok', '5xx', 'stall' (sleeps past the client timeout), '400'."""

    def __init__(self):
        self.mode = "ok"
        self.stall_s = 3.0
        self.cases: dict[str, dict] = {}
        self.files: dict[str, dict[str, bytes]] = {}
        self.deliveries: dict[str, int] = {}
        self.requests = 0
        self.auth: list[str | None] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                receiver._handle(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        import email.parser
        import email.policy
        import time

        with self.lock:
            self.requests += 1
            mode = self.mode
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length)
        if h.path != "/api/v1/cases":
            return self._reply(h, 404, {"detail": "not found"})
        if mode == "5xx":
            return self._reply(h, 503, {"detail": "down for maintenance"})
        if mode == "400":
            return self._reply(h, 400, {"detail": "bad case"})
        msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            b"Content-Type: " + h.headers["Content-Type"].encode() + b"\r\n\r\n" + body
        )
        parts = {}
        for part in msg.iter_parts():
            parts[part.get_param("name", header="content-disposition")] = part.get_payload(decode=True)
        case = json.loads(parts.pop("case"))
        key = case["idempotency_key"]
        with self.lock:
            self.auth.append(h.headers.get("Authorization"))
            self.deliveries[key] = self.deliveries.get(key, 0) + 1
            new = key not in self.cases
            if new:
                self.cases[key] = case
                self.files[key] = parts
        if mode == "stall":
            time.sleep(self.stall_s)  # stored, but the answer comes too late for the client
        self._reply(h, 201 if new else 200, {"case_id": len(self.cases), "idempotency_key": key})

    @staticmethod
    def _reply(h, status: int, payload: dict) -> None:
        data = json.dumps(payload).encode()
        try:
            h.send_response(status)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(data)))
            h.end_headers()
            h.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


__all__ = ["Receiver", "Script", "camera", "detections", "observation", "site_dict", "T0", "W", "H", "parse_site"]


def make_case(**kw):
    """A valid CaseReport with a fresh idempotency key."""
    import uuid

    from vision.core.cases import CaseReport

    data = {
        "idempotency_key": uuid.uuid4(),
        "site_id": "test-site",
        "camera_id": "cam1",
        "violation": "street_vending",
        "rule": "street_vending",
        "event_code": "0401",
        "event_name": "无照经营游商",
        "taxonomy_edition": "GB/T 30428.2-2013",
        "location": {"crs": "WGS84", "lat": 31.2, "lon": 121.4},
        "grid_code": "310101001001001",
        "zone": "pavement",
        "bbox": (0.1, 0.2, 0.3, 0.4),
        "confidence": 0.8,
        "onset_at": T0,
        "detected_at": T0,
        "dwell_s": 240.0,
        "model_name": "coco-nanodet",
        "model_version": "1.0.0",
    }
    data.update(kw)
    return CaseReport.model_validate(data)


def make_evidence(directory, name: str = "snapshot.jpg", size: int = 1000, kind: str = "snapshot"):
    """One evidence file of `size` bytes, as the evidence builder returns it."""
    import hashlib
    import os
    from pathlib import Path

    from vision.core.evidence_files import EvidenceFile

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    data = os.urandom(size)
    path = directory / name
    path.write_bytes(data)
    ctype = "video/mp4" if name.endswith(".mp4") else "image/jpeg"
    return EvidenceFile(name, kind, ctype, path, hashlib.sha256(data).hexdigest(), size)


def wait_for(cond, timeout: float = 20.0, step: float = 0.05) -> bool:
    """Poll `cond` until it is true or `timeout` seconds pass."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(step)
    return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]

"""Fixtures for the dispatch-center tests: a real PostgreSQL 15 (initdb + pg_ctl on
127.0.0.1, a free port, a temp data dir), a real mosquitto, the API test matrix
over SQLite and PostgreSQL, and evidence fixtures (JPEG snapshot, H.264 MP4 clip)."""

from __future__ import annotations

import hashlib
import json
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

PG_BIN = Path("/usr/lib/postgresql/15/bin")
MOSQUITTO = Path("/usr/sbin/mosquitto")
PASSWORD = "correct-horse-battery"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------- PostgreSQL
@dataclass
class PgServer:
    port: int
    user: str
    _counter: int = 0
    _template: str | None = None

    def url(self, db: str) -> str:
        return f"postgresql+psycopg://{self.user}@127.0.0.1:{self.port}/{db}"

    def _admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(f"host=127.0.0.1 port={self.port} user={self.user} dbname=postgres", autocommit=True) as c:
            c.execute(sql)

    def drop(self, url: str) -> None:
        self._admin(f"DROP DATABASE IF EXISTS {url.rsplit('/', 1)[1]} WITH (FORCE)")

    def fresh_database(self) -> str:
        """A new migrated database, cloned from a template migrated once per session."""
        if self._template is None:
            from vision.dispatch.db import make_engine, migrate

            self._admin("CREATE DATABASE sv_template")
            engine = make_engine(self.url("sv_template"))
            migrate(engine)
            engine.dispose()
            self._template = "sv_template"
        self._counter += 1
        name = f"sv_test_{self._counter}"
        self._admin(f"CREATE DATABASE {name} TEMPLATE {self._template}")
        return self.url(name)


def _as_postgres(cmd: list[str]) -> list[str]:
    """initdb refuses root: run the server as the `postgres` system user."""
    if os.geteuid() != 0:
        return cmd
    return ["runuser", "-u", "postgres", "--", *cmd]


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    assert (PG_BIN / "initdb").exists(), f"PostgreSQL 15 not installed at {PG_BIN} (Debian package postgresql-15)"
    tmp = Path(tempfile.mkdtemp(prefix="sv-pg-"))
    data = tmp / "data"
    user = "postgres" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name
    if os.geteuid() == 0:
        pw = pwd.getpwnam("postgres")
        os.chown(tmp, pw.pw_uid, pw.pw_gid)
    port = free_port()
    subprocess.run(
        _as_postgres(
            [
                str(PG_BIN / "initdb"),
                "-D",
                str(data),
                "-A",
                "trust",
                "-U",
                user,
                "-E",
                "UTF8",
                "--no-sync",
                "--locale=C",
            ]
        ),
        check=True,
        capture_output=True,
    )
    opts = f"-p {port} -k {tmp} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    subprocess.run(
        _as_postgres(
            [str(PG_BIN / "pg_ctl"), "-D", str(data), "-o", opts, "-l", str(tmp / "pg.log"), "-w", "-t", "60", "start"]
        ),
        check=True,
        capture_output=True,
    )
    try:
        yield PgServer(port=port, user=user)
    finally:
        subprocess.run(
            _as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"]),
            capture_output=True,
        )
        shutil.rmtree(tmp, ignore_errors=True)


# ---------------------------------------------------------------- mosquitto
@dataclass
class Broker:
    host: str
    port: int


@pytest.fixture(scope="session")
def mqtt_broker() -> Iterator[Broker]:
    assert MOSQUITTO.exists(), "mosquitto not installed (Debian package mosquitto)"
    tmp = Path(tempfile.mkdtemp(prefix="sv-mqtt-"))
    port = free_port()
    conf = tmp / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
    if os.geteuid() == 0:
        conf.write_text(conf.read_text() + "user root\n")
    proc = subprocess.Popen([str(MOSQUITTO), "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 15
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                err = proc.stderr.read().decode() if proc.stderr else ""
                proc.kill()
                raise RuntimeError(f"mosquitto did not start: {err}") from None
            time.sleep(0.05)
    try:
        yield Broker("127.0.0.1", port)
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)


# ---------------------------------------------------------------- evidence
def make_jpeg(width: int = 320, height: int = 240, seed: int = 0) -> bytes:
    import cv2
    import numpy as np

    img = np.full((height, width, 3), 90 + seed * 7 % 100, np.uint8)
    cv2.rectangle(img, (width // 4, height // 4), (width // 2, height // 2), (0, 200, 255), -1)
    cv2.putText(img, f"case {seed}", (10, height - 20), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (255, 255, 255), 2)
    ok, buf = cv2.imencode(".jpg", img)
    assert ok
    return buf.tobytes()


def make_h264_mp4(seconds: float = 2.0, fps: int = 10, size: tuple[int, int] = (320, 240)) -> bytes:
    """An H.264 (libx264, yuv420p, baseline-compatible) MP4 with faststart that Chromium plays."""
    import av
    import numpy as np

    tmp = Path(tempfile.mkdtemp(prefix="sv-clip-")) / "clip.mp4"  # faststart rewrites the file: not a BytesIO
    with av.open(str(tmp), "w", format="mp4", options={"movflags": "+faststart"}) as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.options = {"profile": "baseline", "preset": "ultrafast"}
        for i in range(int(seconds * fps)):
            frame = np.zeros((size[1], size[0], 3), np.uint8)
            frame[:, : (i * 7) % size[0]] = (40, 160, 90)
            frame[size[1] // 3 : size[1] // 2, 20:80] = (220, 60, 60)
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    data = tmp.read_bytes()
    shutil.rmtree(tmp.parent, ignore_errors=True)
    return data


@pytest.fixture(scope="session")
def snapshot_jpeg() -> bytes:
    return make_jpeg()


@pytest.fixture(scope="session")
def clip_mp4() -> bytes:
    return make_h264_mp4()


def case_report(
    evidence: dict[str, tuple[str, str, bytes]] | None = None,
    camera_id: str = "cam-01",
    violation: str = "street_vending",
    bbox: tuple[float, float, float, float] = (0.2, 0.3, 0.4, 0.6),
    detected_at: datetime | None = None,
    key: str | None = None,
    site_id: str = "site-a",
    **extra: Any,
) -> dict[str, Any]:
    """A CaseReport as a JSON-able dict; evidence maps name -> (kind, content_type, bytes)."""
    detected_at = detected_at or datetime.now(UTC)
    names = {
        "street_vending": ("无照经营游商", "0401"),
        "exposed_garbage": ("暴露垃圾", "0110"),
        "non_motor_parking": ("非机动车乱停放", "0410"),
        "muddy_truck": ("施工工地车轮夹带", "0312"),
    }
    name, code = names[violation]
    report = {
        "idempotency_key": key or str(uuid.uuid4()),
        "site_id": site_id,
        "camera_id": camera_id,
        "violation": violation,
        "rule": f"{violation}_rule",
        "event_code": code,
        "event_name": name,
        "taxonomy_edition": "GB/T 30428.2-2013",
        "location": {"crs": "WGS84", "lat": 31.2304, "lon": 121.4737, "address": "南京东路 100 号"},
        "grid_code": "310101001001001",
        "zone": "sidewalk",
        "bbox": list(bbox),
        "object_count": 1,
        "classes": ["person", "umbrella"],
        "confidence": 0.87,
        "onset_at": (detected_at - timedelta(minutes=4)).isoformat(),
        "detected_at": detected_at.isoformat(),
        "dwell_s": 240.0,
        "model_name": "coco-nanodet",
        "model_version": "2026.11-test",
        "evidence": [
            {
                "name": n,
                "kind": kind,
                "content_type": ctype,
                "sha256": hashlib.sha256(data).hexdigest(),
                "size_bytes": len(data),
            }
            for n, (kind, ctype, data) in (evidence or {}).items()
        ],
    }
    report.update(extra)
    return report


def multipart(report: dict[str, Any], evidence: dict[str, tuple[str, str, bytes]] | None = None) -> dict[str, Any]:
    """Keyword arguments for httpx/TestClient `post(..., **multipart(...))`."""
    files: list[tuple[str, tuple[str | None, Any, str | None]]] = [("case", (None, json.dumps(report), None))]
    for n, (_kind, ctype, data) in (evidence or {}).items():
        files.append((n, (n, data, ctype)))
    return {"files": files}


# ---------------------------------------------------------------- the service matrix
@pytest.fixture
def fast_passwords(monkeypatch: pytest.MonkeyPatch) -> None:
    """Argon2 with small cost parameters: same code path, milliseconds instead of 100 ms a hash."""
    from pwdlib import PasswordHash
    from pwdlib.hashers.argon2 import Argon2Hasher

    from vision.dispatch import security

    monkeypatch.setattr(
        security, "_hasher", lambda: PasswordHash((Argon2Hasher(time_cost=1, memory_cost=1024, parallelism=1),))
    )


@dataclass
class Dispatch:
    """A running dispatch app (TestClient, in-process) with an operator per role and a device."""

    service: Any
    client: Any
    settings: Any
    device_token: str
    tokens: dict[str, str] = field(default_factory=dict)
    clock_offset: timedelta = timedelta(0)

    def auth(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}

    @property
    def device(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.device_token}"}

    def post_case(
        self,
        report: dict[str, Any],
        evidence: dict[str, tuple[str, str, bytes]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        return self.client.post(
            "/api/v1/cases", headers=self.device if headers is None else headers, **multipart(report, evidence)
        )

    def act(self, case_id: int, action: str, role: str = "admin", **body: Any) -> Any:
        return self.client.post(
            f"/api/v1/cases/{case_id}/transitions", json={"action": action, **body}, headers=self.auth(role)
        )


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'dispatch.db'}"
        return
    pg: PgServer = request.getfixturevalue("pg_server")
    url = pg.fresh_database()
    yield url
    pg.drop(url)


def build_dispatch(
    tmp_path: Path, db_url: str, notifier: Any = None, config_path: Path | None = None, **settings: Any
) -> Dispatch:
    """A dispatch app over `db_url`; `settings` are further `Settings` fields (limits, intervals)."""
    from fastapi.testclient import TestClient

    from vision.dispatch.app import create_app
    from vision.dispatch.service import DispatchService
    from vision.dispatch.settings import Settings

    kwargs: dict[str, Any] = {"data_dir": tmp_path / "data", "db_url": db_url, **settings}
    if config_path:
        kwargs["config_path"] = config_path
    settings = Settings(**kwargs)
    # notifier None: built from the config file's `notifications` (none in the bundled one)
    service = DispatchService.from_settings(settings, notifier=notifier)
    holder: dict[str, timedelta] = {"offset": timedelta(0)}
    service.clock = lambda: datetime.now(UTC) + holder["offset"]
    tokens = {}
    for role in ("admin", "reviewer", "dispatcher"):
        service.create_operator(role, PASSWORD, role)
        tokens[role] = service.login(role, PASSWORD)[0]
    _, device_token = service.create_client("edge-01", "device", "site-a")
    client = TestClient(create_app(service=service))
    d = Dispatch(service, client, settings, device_token, tokens)
    d.clock_holder = holder  # type: ignore[attr-defined]
    return d


@pytest.fixture
def dispatch(tmp_path: Path, db_url: str, fast_passwords: None) -> Iterator[Dispatch]:
    d = build_dispatch(tmp_path, db_url)
    with d.client:
        yield d
    d.service.close()

"""Authorization before the body, and a body limit (Hardening issue), against a real
uvicorn server on 127.0.0.1 over SQLite and PostgreSQL: a huge upload without a
valid credential is refused before its body is read (no temp file is made); one
with a valid credential but over the limit is 413, whether it declares its length
or comes chunked; a normal case still goes through."""

from __future__ import annotations

import json
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.support_dispatch import Dispatch, build_dispatch, case_report, multipart

LIMIT = 256 * 1024
HUGE = 500 * 1000 * 1000  # declared, never sent: a server reading it first would hang
PROMPT_S = 10.0
BOUNDARY = "sv-test-boundary"


@dataclass
class Live:
    d: Dispatch
    url: str
    spool: Path  # the temp dir the server's multipart parser spools file parts to


@contextmanager
def _serve(tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch, **settings: Any) -> Iterator[Live]:
    from vision.dispatch.app import create_app
    from vision.dispatch.server import DispatchServer

    spool = tmp_path / "spool"
    spool.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spool))  # the in-process server's temp files land here
    d = build_dispatch(tmp_path, db_url, **settings)
    try:
        with DispatchServer(app=create_app(service=d.service)) as server:
            yield Live(d, server.url, spool)
    finally:
        d.service.close()


@pytest.fixture
def live(tmp_path: Path, db_url: str, fast_passwords: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Live]:
    """A server with a small body limit (LIMIT)."""
    with _serve(tmp_path, db_url, monkeypatch, max_body_bytes=LIMIT) as live:
        yield live


@pytest.fixture
def live_default(tmp_path: Path, db_url: str, fast_passwords: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Live]:
    """A server with the default limit, the largest legitimate case (over 500 MB)."""
    with _serve(tmp_path, db_url, monkeypatch) as live:
        assert live.d.settings.body_limit_bytes > HUGE
        yield live


def _leftovers(live: Live) -> list[Path]:
    return [*live.spool.iterdir(), *live.d.settings.evidence_dir.glob(".upload-*")]


def _send_and_read(url: str, head: str, body: Iterator[bytes]) -> tuple[int, bytes, float]:
    """Sends `head` and then `body` from a thread (the server may stop reading and close),
    and reads the response: (status, body, seconds until the status line arrived)."""
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=PROMPT_S)
    t0 = time.monotonic()
    sock.sendall(head.encode())

    def pump() -> None:
        try:
            for chunk in body:
                sock.sendall(chunk)
        except OSError:
            pass  # the server answered and closed: what is being tested

    sender = threading.Thread(target=pump, daemon=True)
    sender.start()
    data = b""
    try:
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        took = time.monotonic() - t0
        head_bytes, _, rest = data.partition(b"\r\n\r\n")
        length = next(
            (
                int(line.split(b":")[1])
                for line in head_bytes.split(b"\r\n")
                if line.lower().startswith(b"content-length")
            ),
            0,
        )
        while len(rest) < length:
            chunk = sock.recv(65536)
            if not chunk:
                break
            rest += chunk
    finally:
        sock.close()
        sender.join(timeout=10)
    return int(head_bytes.split(b" ", 2)[1]), rest, took


def _head(path: str, headers: dict[str, str]) -> str:
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", f"Content-Type: multipart/form-data; boundary={BOUNDARY}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return "\r\n".join(lines) + "\r\n\r\n"


def _file_part_start(name: str) -> bytes:
    return (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"; filename="{name}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()


def _body(total: int, name: str = "clip.mp4", chunk: int = 256 * 1024) -> Iterator[bytes]:
    yield _file_part_start(name)
    sent = 0
    while sent < total:
        yield b"\0" * chunk
        sent += chunk


def _chunked(body: Iterator[bytes]) -> Iterator[bytes]:
    for part in body:
        yield f"{len(part):x}\r\n".encode() + part + b"\r\n"
    yield b"0\r\n\r\n"


# ------------------------------------------------------------ credential before body
@pytest.mark.parametrize(
    ("path", "credential", "status"),
    [
        ("/api/v1/cases", {}, 401),
        ("/api/v1/cases", {"Authorization": "Bearer svd_not-a-real-token"}, 401),
        ("/api/v1/cases/1/handle", {}, 401),
        ("/ui/cases/1/action", {}, 303),  # the UI sends a visitor without a session to log in
    ],
)
def test_huge_upload_without_a_valid_credential_is_refused_before_its_body(
    live_default: Live, path: str, credential: dict[str, str], status: int
) -> None:
    """A 500 MB body (under the default limit) of which not one byte is sent: a server that
    read the body before the credential would wait for it; this one answers at once."""
    head = _head(path, {"Content-Length": str(HUGE), **credential})
    got, _, took = _send_and_read(live_default.url, head, iter(()))
    assert got == status and took < PROMPT_S, (got, took)
    assert _leftovers(live_default) == []


def test_upload_with_a_valid_token_is_read(live_default: Live) -> None:
    """The other side of the test above: with the device token the server waits for the body
    (here a short one, refused as a form without its `case` part)."""
    body = _file_part_start("x") + b"data\r\n" + f"--{BOUNDARY}--\r\n".encode()
    head = _head("/api/v1/cases", {"Content-Length": str(len(body)), **live_default.d.device})
    got, _, _ = _send_and_read(live_default.url, head, iter((body,)))
    assert got == 422


def test_reviewer_upload_to_an_admin_route_is_403_before_its_body(live: Live) -> None:
    head = "POST /api/v1/operators HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    head += f"Authorization: Bearer {live.d.tokens['reviewer']}\r\nContent-Length: {LIMIT // 2}\r\n\r\n"
    got, _, took = _send_and_read(live.url, head, iter((b"{" + b" " * 1024,)))
    assert got == 403 and took < PROMPT_S


# ------------------------------------------------------------ the limit
def test_declared_length_over_the_limit_is_413_before_reading(live: Live) -> None:
    head = _head("/api/v1/cases", {"Content-Length": str(HUGE), **live.d.device})
    got, body, took = _send_and_read(live.url, head, iter(()))
    assert got == 413 and took < PROMPT_S
    assert json.loads(body) == {"detail": f"request body is larger than {LIMIT} bytes"}
    assert _leftovers(live) == []


@pytest.mark.parametrize("path", ["/api/v1/cases", "/api/v1/cases/1/handle"])
def test_chunked_body_over_the_limit_is_413(live: Live, path: str) -> None:
    token = live.d.device if path == "/api/v1/cases" else live.d.auth("dispatcher")
    head = _head(path, {"Transfer-Encoding": "chunked", **token})
    got, body, took = _send_and_read(live.url, head, _chunked(_body(4 * LIMIT, chunk=32 * 1024)))
    assert got == 413 and took < PROMPT_S, (got, body)
    assert json.loads(body) == {"detail": f"request body is larger than {LIMIT} bytes"}
    assert live.d.service.list_cases().total == 0
    assert list(live.d.settings.evidence_dir.glob(".upload-*")) == []


def test_open311_over_the_limit_answers_in_georeport_format(live: Live) -> None:
    head = "POST /open311/v2/requests.json HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    head += f"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {LIMIT + 1}\r\n\r\n"
    got, body, _ = _send_and_read(live.url, head, iter(()))
    assert got == 413 and json.loads(body) == [
        {"code": 413, "description": f"request body is larger than {LIMIT} bytes"}
    ]


def test_a_normal_case_still_goes_through(live: Live, snapshot_jpeg: bytes) -> None:
    ev = {"snapshot.jpg": ("snapshot", "image/jpeg", snapshot_jpeg)}
    r = httpx.post(live.url + "/api/v1/cases", headers=live.d.device, timeout=30, **multipart(case_report(ev), ev))
    assert r.status_code == 201, r.text
    detail = httpx.get(f"{live.url}/api/v1/cases/{r.json()['case_id']}", headers=live.d.auth("admin")).json()
    assert httpx.get(live.url + detail["evidence"][0]["url"], headers=live.d.auth("admin")).content == snapshot_jpeg
    assert list(live.d.settings.evidence_dir.glob(".upload-*")) == []


# ------------------------------------------------------------ the setting
def test_default_limit_is_the_largest_legitimate_case() -> None:
    from vision.dispatch.settings import Settings
    from vision.dispatch.uploads import CASE_PART_MAX_BYTES, MULTIPART_OVERHEAD_BYTES

    s = Settings(max_evidence_bytes=1000)
    assert s.body_limit_bytes == 10 * 1000 + CASE_PART_MAX_BYTES + MULTIPART_OVERHEAD_BYTES  # 10 files a case
    assert Settings(max_body_bytes=5).body_limit_bytes == 5


def test_limit_and_collection_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from vision.dispatch.config import ConfigError
    from vision.dispatch.settings import Settings

    monkeypatch.setenv("STREETVISION_DISPATCH_MAX_BODY_BYTES", "1048576")
    monkeypatch.setenv("STREETVISION_DISPATCH_COLLECT_INTERVAL_S", "60")
    s = Settings.from_env()
    assert s.body_limit_bytes == 1048576 and s.collect_interval_s == 60
    monkeypatch.setenv("STREETVISION_DISPATCH_MAX_BODY_BYTES", "lots")
    with pytest.raises(ConfigError, match="STREETVISION_DISPATCH_MAX_BODY_BYTES"):
        Settings.from_env()


# ------------------------------------------------------------ routes that take no files
FORM_ROUTES = [
    ("/api/v1/auth/login", "application/json"),
    ("/ui/login", "application/x-www-form-urlencoded"),
    ("/open311/v2/requests.json", "application/x-www-form-urlencoded"),
]


@pytest.mark.parametrize(("path", "content_type"), FORM_ROUTES)
def test_routes_without_files_take_no_case_sized_body_even_without_a_credential(
    live_default: Live, path: str, content_type: str
) -> None:
    """Login and Open311 POST are answered before any credential (the credential is in the
    body), so they get the small form limit, not the upload limit of 600+ MB."""
    from vision.dispatch.settings import DEFAULT_MAX_FORM_BYTES

    head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n"
    head += f"Content-Length: {HUGE}\r\n\r\n"
    got, body, took = _send_and_read(live_default.url, head, iter(()))
    assert got == 413 and took < PROMPT_S, (got, body)
    assert f"larger than {DEFAULT_MAX_FORM_BYTES} bytes" in body.decode()

    chunked = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n"
    chunked += "Transfer-Encoding: chunked\r\n\r\n"
    got, _, took = _send_and_read(live_default.url, chunked, _chunked(iter([b"a" * (256 << 10)] * 8)))
    assert got == 413 and took < PROMPT_S


def test_an_upload_route_still_takes_more_than_the_form_limit(live_default: Live) -> None:
    """A 2 MiB body to intake with the device token is read (and refused as a form without its
    `case` part), not cut off at the form limit."""
    body = b"".join(_body(2 << 20)) + f"\r\n--{BOUNDARY}--\r\n".encode()
    head = _head("/api/v1/cases", {"Content-Length": str(len(body)), **live_default.d.device})
    got, _, _ = _send_and_read(live_default.url, head, iter((body,)))
    assert got == 422


def test_which_routes_take_files() -> None:
    from vision.dispatch.api.body_limit import BodyLimit

    limit = BodyLimit(app=None, max_bytes=1000, max_form_bytes=10)  # type: ignore[arg-type]
    assert limit.limit_for("POST", "/api/v1/cases") == 1000
    assert limit.limit_for("POST", "/api/v1/cases/17/handle") == 1000
    assert limit.limit_for("POST", "/ui/cases/17/action") == 1000
    assert limit.limit_for("POST", "/api/v1/cases/17/transitions") == 10
    assert limit.limit_for("POST", "/api/v1/auth/login") == 10
    assert limit.limit_for("PUT", "/api/v1/cases") == 10
    assert BodyLimit(app=None, max_bytes=5, max_form_bytes=10).limit_for("POST", "/ui/login") == 5  # type: ignore[arg-type]

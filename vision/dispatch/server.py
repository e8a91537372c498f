"""Run the service in-process (uvicorn in a thread) or as a subprocess, on a free port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
from starlette.types import ASGIApp

from vision.dispatch.settings import Settings


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]  # (host, port) for an IPv4 socket
        return port


def wait_healthy(url: str, timeout: float = 30.0, proc: subprocess.Popen[bytes] | None = None) -> None:
    end = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < end:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"dispatch server exited with code {proc.returncode}")
        try:
            if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError as exc:
            last = exc
        time.sleep(0.1)
    raise TimeoutError(f"dispatch server at {url} not healthy after {timeout}s ({last})")


class DispatchServer:
    """uvicorn serving `create_app(settings)` in a background thread.

    with DispatchServer(settings) as srv:
        httpx.get(srv.url + "/healthz")
    """

    def __init__(
        self,
        settings: Settings | None = None,
        host: str = "127.0.0.1",
        port: int | None = None,
        app: ASGIApp | None = None,
    ) -> None:
        import uvicorn

        from vision.dispatch.app import create_app

        self.host = host
        self.port = port or free_port(host)
        self.app = app or create_app(settings)
        self._server = uvicorn.Server(
            uvicorn.Config(self.app, host=host, port=self.port, log_level="warning", lifespan="on")
        )
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 30.0) -> DispatchServer:
        self._thread = threading.Thread(target=self._server.run, name="dispatch-uvicorn", daemon=True)
        self._thread.start()
        wait_healthy(self.url, timeout)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def __enter__(self) -> DispatchServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def spawn_server(
    settings: Settings,
    host: str = "127.0.0.1",
    port: int | None = None,
    timeout: float = 60.0,
    log_path: Path | None = None,
) -> tuple[subprocess.Popen[bytes], str]:
    """Starts `python -m vision dispatch serve` and waits until it answers; returns (process, url).
    Stop it with `proc.terminate(); proc.wait()`."""
    port = port or free_port(host)
    cmd = [
        sys.executable,
        "-m",
        "vision",
        "dispatch",
        "serve",
        "--host",
        host,
        "--port",
        str(port),
        "--data-dir",
        str(settings.data_dir),
        "--config",
        str(settings.config_path),
    ]
    if settings.db_url:
        cmd += ["--db", settings.db_url]
    if settings.taxonomy_path:
        cmd += ["--taxonomy", str(settings.taxonomy_path)]
    out = open(log_path, "ab") if log_path else subprocess.DEVNULL
    proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=dict(os.environ))
    url = f"http://{host}:{port}"
    try:
        wait_healthy(url, timeout, proc)
    except BaseException:
        proc.terminate()
        proc.wait(10)
        raise
    return proc, url

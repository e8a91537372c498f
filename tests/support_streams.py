"""Fixtures for the stream tests: real servers on 127.0.0.1 with free ports.

- `rtsp_server`: tests/rtsp_server.py (GstRtspServer, Debian's /usr/bin/python3) serving
  the bundled footage as H.264 with a keyframe every 10 frames; can be killed,
  frozen (SIGSTOP) and restarted on the same port.
- `silent_tcp_server`: accepts TCP connections and never answers.
- `mjpeg_server`: a tiny HTTP server streaming multipart/x-mixed-replace JPEG frames.
- `h264_gop_file`: a 10 s H.264 MP4 of the footage with a GOP of exactly 10 frames.
"""

from __future__ import annotations

import os
import selectors
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2
import numpy as np
import pytest

RTSP_SCRIPT = Path(__file__).resolve().parent / "rtsp_server.py"
SYSTEM_PYTHON = "/usr/bin/python3"
GOP = 10


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(predicate, timeout: float, interval: float = 0.05) -> bool:  # type: ignore[no-untyped-def]
    """Poll `predicate` until true or `timeout` seconds pass; returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


class RtspServer:
    """One GstRtspServer process serving a file on rtsp://127.0.0.1:PORT/cam."""

    def __init__(self, media: Path, log_dir: Path, key_int: int = GOP) -> None:
        self.media = media
        self.port = free_port()
        self.key_int = key_int
        self.url = f"rtsp://127.0.0.1:{self.port}/cam"
        self._log_dir = log_dir
        self._proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self, timeout: float = 15) -> None:
        assert self._proc is None, "already running"
        self.starts += 1
        log = open(self._log_dir / f"rtsp-server-{self.starts}.log", "wb")
        cmd = [
            SYSTEM_PYTHON,
            str(RTSP_SCRIPT),
            "--port",
            str(self.port),
            "--file",
            str(self.media),
            "--key-int",
            str(self.key_int),
        ]
        self._proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, start_new_session=True)
        assert self._proc.stdout is not None
        with selectors.DefaultSelector() as sel:
            sel.register(self._proc.stdout, selectors.EVENT_READ)
            if not sel.select(timeout):
                self.kill()
                raise RuntimeError(f"RTSP server did not start within {timeout} s")
        line = self._proc.stdout.readline().decode().strip()
        if not line.startswith("READY"):
            self.kill()
            raise RuntimeError(f"RTSP server failed: {line!r} (log in {self._log_dir})")

    def kill(self) -> None:
        """SIGKILL: the server vanishes mid-stream like a crashed camera."""
        proc, self._proc = self._proc, None
        if proc is not None:
            try:
                os.kill(proc.pid, signal.SIGCONT)
                proc.kill()
            except ProcessLookupError:
                pass
            proc.wait(timeout=10)
            if proc.stdout:
                proc.stdout.close()

    def freeze(self) -> None:
        """SIGSTOP: the connection stays up but no byte comes (a hung camera)."""
        assert self._proc is not None
        os.kill(self._proc.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        assert self._proc is not None
        os.kill(self._proc.pid, signal.SIGCONT)


@pytest.fixture(scope="session")
def rtsp_available() -> None:
    probe = subprocess.run(
        [
            SYSTEM_PYTHON,
            "-c",
            "import gi; gi.require_version('GstRtspServer', '1.0');from gi.repository import GstRtspServer",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    if probe.returncode != 0 or shutil.which("gst-launch-1.0") is None:
        pytest.fail(
            "RTSP test server unavailable: install the Debian packages in .ci/apt-packages.txt "
            f"(gir1.2-gst-rtsp-server-1.0, python3-gi, gstreamer1.0-*): {probe.stderr.strip()[-300:]}"
        )


@pytest.fixture
def rtsp_server(rtsp_available: None, footage_path: Path, tmp_path: Path) -> Iterator[RtspServer]:
    server = RtspServer(footage_path, tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.kill()


class SilentTcpServer:
    """Accepts connections on 127.0.0.1 and never sends a byte."""

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self._sock.settimeout(0.2)
        self.port = int(self._sock.getsockname()[1])
        self.accepted = 0
        self._held: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                continue
            self.accepted += 1
            self._held.append(conn)  # keep it open, never answer

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        for conn in self._held:
            conn.close()
        self._sock.close()


@pytest.fixture
def silent_tcp_server() -> Iterator[SilentTcpServer]:
    server = SilentTcpServer()
    try:
        yield server
    finally:
        server.close()


def footage_jpegs(footage: Path, count: int, step: int = 5) -> list[bytes]:
    cap = cv2.VideoCapture(str(footage), cv2.CAP_FFMPEG)
    jpegs: list[bytes] = []
    index = 0
    while len(jpegs) < count:
        ok, image = cap.read()
        if not ok:
            break
        if index % step == 0:
            ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 80])
            assert ok
            jpegs.append(buf.tobytes())
        index += 1
    cap.release()
    return jpegs


class MjpegServer:
    """HTTP MJPEG camera: GET /video.mjpg streams multipart/x-mixed-replace JPEG parts at `fps`."""

    BOUNDARY = "frameboundary"

    def __init__(self, jpegs: list[bytes], fps: float = 10.0) -> None:
        server_self = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server API)
                if self.path != "/video.mjpg":
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={MjpegServer.BOUNDARY}")
                self.send_header("Cache-Control", "no-cache")
                self.end_headers()
                i = 0
                try:
                    while not server_self.stopping.is_set():
                        jpeg = jpegs[i % len(jpegs)]
                        self.wfile.write(
                            f"--{MjpegServer.BOUNDARY}\r\nContent-Type: image/jpeg\r\n"
                            f"Content-Length: {len(jpeg)}\r\n\r\n".encode()
                            + jpeg
                            + b"\r\n"
                        )
                        self.wfile.flush()
                        i += 1
                        server_self.parts_sent = i
                        time.sleep(1.0 / fps)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args: object) -> None:
                pass

        self.stopping = threading.Event()
        self.parts_sent = 0
        self.size = (0, 0)
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}/video.mjpg"
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(2)


@pytest.fixture
def mjpeg_server(footage_path: Path) -> Iterator[MjpegServer]:
    jpegs = footage_jpegs(footage_path, 12)
    server = MjpegServer(jpegs)
    image = cv2.imdecode(np.frombuffer(jpegs[0], np.uint8), cv2.IMREAD_COLOR)
    server.size = (image.shape[1], image.shape[0])
    try:
        yield server
    finally:
        server.close()


def fixed_gop_x264(gop: int) -> dict[str, str]:
    """libx264 options for a keyframe exactly every `gop` frames and no B-frames (what the
    keyframe-only decoding and the motion gate are tested on)."""
    return {"g": str(gop), "keyint_min": str(gop), "sc_threshold": "0", "bf": "0", "preset": "ultrafast", "crf": "28"}


@pytest.fixture(scope="session")
def h264_gop_file(footage_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first 10 s (100 frames) of the footage as H.264 in MP4 with a keyframe every 10 frames."""
    import av

    out = tmp_path_factory.mktemp("h264") / f"vtest_gop{GOP}.mp4"
    cap = cv2.VideoCapture(str(footage_path), cv2.CAP_FFMPEG)
    with av.open(str(out), "w") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 768, 576, "yuv420p"
        stream.options = fixed_gop_x264(GOP)
        for _ in range(100):
            ok, image = cap.read()
            assert ok
            frame = av.VideoFrame.from_ndarray(image, format="bgr24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    cap.release()
    return out

"""A rendered video served as a live HTTP MJPEG camera on 127.0.0.1, looping in real time.

The demo needs a live stream without apt packages (an RTSP server would need
GStreamer), and the daemon reads `http://` MJPEG like any IP camera. All
clients see the same frame at the same moment (one clock per server, like a
real camera); the clock starts when the first client connects, so the viewer
always sees the whole scripted story, and `stream_time_to_wall()` maps a
scenario second (of the first loop) to the wall-clock moment it was shown.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2

log = logging.getLogger(__name__)

BOUNDARY = "streetvisionframe"
PATH = "/video.mjpg"


def load_jpegs(video: Path, quality: int = 85) -> tuple[list[bytes], float]:
    """Every frame of `video` as JPEG bytes (decoded once; 50 s of 768x576 is ~20 MB) and its fps."""
    cap = cv2.VideoCapture(str(video), cv2.CAP_FFMPEG)
    if not cap.isOpened():
        raise OSError(f"cannot open {video}")
    fps = cap.get(cv2.CAP_PROP_FPS) or 10.0
    jpegs: list[bytes] = []
    while True:
        ok, image = cap.read()
        if not ok:
            break
        ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
        if ok:
            jpegs.append(buf.tobytes())
    cap.release()
    if not jpegs:
        raise OSError(f"{video}: no frames decoded")
    return jpegs, float(fps)


class LoopingMjpegServer:
    """Serves `jpegs` at `fps` on http://127.0.0.1:PORT/video.mjpg, forever, in a daemon thread.

    with LoopingMjpegServer(jpegs, fps) as cam:
        site.cameras[0].source = cam.url
    """

    def __init__(self, jpegs: list[bytes], fps: float, host: str = "127.0.0.1", port: int = 0) -> None:
        if not jpegs or fps <= 0:
            raise ValueError("need at least one frame and fps > 0")
        self.jpegs, self.fps = jpegs, fps
        self.loop_s = len(jpegs) / fps
        self.stopping = threading.Event()
        self.clients = 0
        self._t0: float | None = None  # monotonic time of frame 0
        self._t0_wall: datetime | None = None
        self._lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                if self.path.split("?", 1)[0] != PATH:
                    self.send_error(404, f"the stream is at {PATH}")
                    return
                owner._serve(self)

        self._httpd = ThreadingHTTPServer((host, port), Handler)
        self._httpd.daemon_threads = True
        self.url = f"http://{host}:{self._httpd.server_address[1]}{PATH}"
        self._thread: threading.Thread | None = None

    # --- clock -------------------------------------------------------------------------------
    def _start_clock(self) -> float:
        with self._lock:
            if self._t0 is None:
                self._t0 = time.monotonic()
                self._t0_wall = datetime.now(UTC)
                log.info("stream clock started: scenario second 0 shown at %s", self._t0_wall.isoformat())
            return self._t0

    @property
    def started_at(self) -> datetime | None:
        """Wall-clock (UTC) moment scenario second 0 of the first loop was shown; None before any client."""
        return self._t0_wall

    def stream_time_to_wall(self, t_s: float, loop: int = 0) -> datetime | None:
        if self._t0_wall is None:
            return None
        return self._t0_wall + timedelta(seconds=t_s + loop * self.loop_s)

    def position_s(self) -> float:
        """Seconds shown since the clock started (grows across loops); 0 before any client."""
        return 0.0 if self._t0 is None else time.monotonic() - self._t0

    # --- serving -----------------------------------------------------------------------------
    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        t0 = self._start_clock()
        handler.send_response(200)
        handler.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
        handler.send_header("Cache-Control", "no-cache, no-store")
        handler.send_header("Pragma", "no-cache")
        handler.end_headers()
        self.clients += 1
        last = -1
        try:
            while not self.stopping.is_set():
                index = int((time.monotonic() - t0) * self.fps)
                if index == last:
                    self.stopping.wait(max(0.0, t0 + (index + 1) / self.fps - time.monotonic()))
                    continue
                last = index
                jpeg = self.jpegs[index % len(self.jpegs)]
                handler.wfile.write(
                    f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n".encode()
                    + jpeg
                    + b"\r\n"
                )
                handler.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, OSError):
            pass  # the client went away
        finally:
            self.clients -= 1

    def start(self) -> LoopingMjpegServer:
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.2}, name="demo-mjpeg", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def __enter__(self) -> LoopingMjpegServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

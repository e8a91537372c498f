"""Decoders behind one small interface: OpenCV's FFmpeg backend, PyAV, and still images.

`grab()` decodes the next frame and returns only its timestamp and keyframe flag;
`retrieve()` converts it to a BGR array. Callers that skip a frame (sampling) never
pay for the colour conversion. Every blocking wait is bounded: OpenCV gets
CAP_PROP_OPEN_TIMEOUT_MSEC / CAP_PROP_READ_TIMEOUT_MSEC, PyAV gets `timeout=`, both
of which FFmpeg enforces through its interrupt callback.

Why two video backends: OpenCV is the common path (small API, the same FFmpeg the
rest of the project reads files with), but it cannot decode only keyframes; PyAV
exposes `codec_context.skip_frame = "NONKEY"`, which lets FFmpeg skip the decoding
of every non-key frame (the decode cost drops by the GOP length). With a
`MotionGate` (vision/edge/streams/motion.py) it also skips whole keyframes of a quiet
stream, judged from the packet sizes it demuxes anyway.
"""

from __future__ import annotations

import math
import os
import socket
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import cv2
import numpy as np

from vision.edge.streams.motion import MotionGate
from vision.edge.streams.spec import SourceError, SourceSpec, mask_secrets

if TYPE_CHECKING:
    from av.packet import Packet
    from av.video.frame import VideoFrame
    from av.video.stream import VideoStream

DecodeMode = Literal["all", "keyframes"]
_I_FRAME = ord("I")


@dataclass(frozen=True)
class Grabbed:
    """What is known about a decoded frame before converting it: its time and kind."""

    pts_s: float | None  # decoder timestamp in seconds; None when the stream has none
    keyframe: bool


class Decoder:
    """One opened source. Not thread-safe: one reader thread owns it."""

    backend: str = "?"
    fps: float = 0.0  # container's nominal frame rate, 0 when unknown
    size: tuple[int, int] = (0, 0)  # (width, height)

    def __init__(self) -> None:
        self.decode_errors = 0
        self.error: str | None = None  # why grab() returned None, None for a clean end of file
        self.last_activity = time.monotonic()  # last time data arrived (liveness for the watchdog)

    def grab(self) -> Grabbed | None:
        raise NotImplementedError

    def retrieve(self) -> np.ndarray | None:
        raise NotImplementedError

    def close(self) -> None:
        pass


def _sane_fps(value: float) -> float:
    return float(value) if math.isfinite(value) and 0 < value <= 1000 else 0.0


def _as_bgr(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    return image


def check_file(spec: SourceSpec) -> Path:
    """Clear errors for the common file mistakes before a decoder sees the path."""
    path = Path(str(spec.target))
    if not path.exists():
        raise SourceError(spec.raw, f"file not found (looked at {path.resolve()})")
    if path.is_dir():
        raise SourceError(spec.raw, "is a directory, not a video or image file")
    if not os.access(path, os.R_OK):
        raise SourceError(spec.raw, "file is not readable (permission denied)")
    return path


def check_reachable(spec: SourceSpec, timeout_s: float) -> float:
    """Connect once to host:port so 'refused' and 'unknown host' are told apart from silence.

    Returns the seconds spent, which callers take off the decoder's open timeout.
    """
    if spec.host is None or spec.port is None:
        return 0.0
    start = time.monotonic()
    where = f"{spec.host}:{spec.port}"
    try:
        with socket.create_connection((spec.host, spec.port), timeout=timeout_s):
            pass
    except socket.gaierror as exc:
        raise SourceError(spec.raw, f"cannot resolve host {spec.host!r} ({exc.strerror})") from None
    except ConnectionRefusedError:
        raise SourceError(spec.raw, f"connection refused by {where} (server not running?)") from None
    except TimeoutError:
        raise SourceError(spec.raw, f"no TCP answer from {where} within {timeout_s:g} s") from None
    except OSError as exc:
        raise SourceError(spec.raw, f"cannot connect to {where}: {exc.strerror or exc}") from None
    return time.monotonic() - start


class OpenCvDecoder(Decoder):
    """cv2.VideoCapture with the FFmpeg backend (files, RTSP, HTTP/MJPEG) or V4L2 (devices)."""

    backend = "opencv-ffmpeg"

    def __init__(self, spec: SourceSpec, *, open_timeout_s: float, read_timeout_s: float) -> None:
        super().__init__()
        self._spec = spec
        self._read_timeout_s = read_timeout_s
        started = time.monotonic()
        if spec.kind == "device":
            self.backend = "opencv-device"
            index = int(spec.target)
            if sys.platform.startswith("linux") and not Path(f"/dev/video{index}").exists():
                raise SourceError(spec.raw, f"no local camera: /dev/video{index} does not exist")
            api = cv2.CAP_V4L2 if sys.platform.startswith("linux") else cv2.CAP_ANY
            cap = cv2.VideoCapture(index, api)
        else:
            if spec.kind in ("file",):
                check_file(spec)
            elif spec.live:
                open_timeout_s = max(0.5, open_timeout_s - check_reachable(spec, open_timeout_s))
            params = [
                cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
                max(1, int(open_timeout_s * 1000)),
                cv2.CAP_PROP_READ_TIMEOUT_MSEC,
                max(1, int(read_timeout_s * 1000)),
            ]
            cap = cv2.VideoCapture(str(spec.target), cv2.CAP_FFMPEG, params)
        if not cap.isOpened():
            cap.release()
            raise SourceError(spec.raw, self._open_failure(spec, time.monotonic() - started, open_timeout_s))
        self._cap = cap
        self.fps = _sane_fps(cap.get(cv2.CAP_PROP_FPS))
        self.size = (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))

    @staticmethod
    def _open_failure(spec: SourceSpec, elapsed: float, timeout_s: float) -> str:
        if spec.kind == "file":
            return "not a video OpenCV/FFmpeg can decode (unknown container or codec, or a damaged file)"
        if spec.kind == "device":
            return "the local camera exists but could not be opened (busy or unsupported)"
        if elapsed >= 0.8 * timeout_s:
            return f"no video within the {timeout_s:g} s open timeout (the server accepted but did not answer)"
        return "the server answered but no video stream could be opened (wrong path, credentials or codec?)"

    def grab(self) -> Grabbed | None:
        started = time.monotonic()
        ok = self._cap.grab()
        now = time.monotonic()
        waited = now - started
        if ok and self._spec.live and waited >= self._read_timeout_s:
            # FFmpeg's read timeout fired; OpenCV then drains one frame left in the decoder and
            # reports success. The stream is silent: say so now, not one more timeout later.
            ok = False
        else:
            self.last_activity = now
        if not ok:
            if self._spec.live:
                self.error = (
                    f"no frame for {waited:.1f} s (read timeout)"
                    if waited >= 0.8 * self._read_timeout_s
                    else "stream closed by the server or unreadable"
                )
            return None
        pos_ms = self._cap.get(cv2.CAP_PROP_POS_MSEC)
        pts_s = pos_ms / 1000.0 if math.isfinite(pos_ms) and pos_ms >= 0 else None
        if self._spec.kind == "http":
            pts_s = None  # MJPEG over HTTP has no timestamps (FFmpeg invents 25 fps ones): wall clock
        if self._spec.kind == "device":
            return Grabbed(pts_s=None, keyframe=True)  # raw camera frames stand alone
        keyframe = int(self._cap.get(cv2.CAP_PROP_FRAME_TYPE)) == _I_FRAME
        return Grabbed(pts_s=pts_s, keyframe=keyframe)

    def retrieve(self) -> np.ndarray | None:
        ok, image = self._cap.retrieve()
        if not ok or image is None or image.size == 0:
            self.decode_errors += 1
            return None
        return _as_bgr(image)

    def close(self) -> None:
        self._cap.release()


class PyAvDecoder(Decoder):
    """PyAV demux + decode; used for keyframe-only decoding (`skip_frame = "NONKEY"`)."""

    backend = "pyav"

    def __init__(
        self,
        spec: SourceSpec,
        *,
        keyframes_only: bool,
        open_timeout_s: float,
        read_timeout_s: float,
        gate: MotionGate | None = None,
    ) -> None:
        super().__init__()
        import av  # local: only keyframe cameras need it loaded

        self._av = av
        self._spec = spec
        self._gate = gate if keyframes_only else None
        options: dict[str, str] = {}
        fmt = None
        target = str(spec.target)
        if spec.kind == "file":
            check_file(spec)
        elif spec.kind == "device":
            target, fmt = f"/dev/video{int(spec.target)}", "v4l2"
            if not Path(target).exists():
                raise SourceError(spec.raw, f"no local camera: {target} does not exist")
        elif spec.live:
            open_timeout_s = max(0.5, open_timeout_s - check_reachable(spec, open_timeout_s))
            if spec.kind == "rtsp":
                options["rtsp_transport"] = "tcp"  # no UDP loss artefacts on lossy links
        started = time.monotonic()
        try:
            self._container = av.open(
                target, mode="r", format=fmt, options=options, timeout=(open_timeout_s, read_timeout_s)
            )
        except (av.FFmpegError, OSError) as exc:
            if spec.live and time.monotonic() - started >= 0.8 * open_timeout_s:
                reason = (
                    f"no video within the {open_timeout_s:g} s open timeout (the server accepted but did not answer)"
                )
            else:
                reason = f"cannot open with PyAV: {_av_reason(exc, spec)}"
            raise SourceError(spec.raw, reason) from None
        if not self._container.streams.video:
            self._container.close()
            raise SourceError(spec.raw, "no video stream in this source")
        self._stream = self._container.streams.video[0]
        ctx = self._stream.codec_context
        if keyframes_only:
            ctx.skip_frame = "NONKEY"
        rate = self._stream.average_rate or self._stream.guessed_rate
        self.fps = _sane_fps(float(rate)) if rate else 0.0
        self.size = (ctx.width, ctx.height)
        self._frames = self._decode_packets()
        self._frame: VideoFrame | None = None  # the last grabbed frame, converted by retrieve()
        self._seen_pts = False
        # MJPEG over HTTP carries no timestamps (FFmpeg invents 25 fps ones): use the wall clock.
        self._trust_pts = self._container.format.name not in ("mpjpeg", "mjpeg")

    def _decode_packets(self) -> Iterator[VideoFrame]:
        gate = self._gate
        for packet in self._container.demux(self._stream):
            self.last_activity = time.monotonic()
            if gate is not None and packet.size:
                if not packet.is_keyframe:
                    gate.packet(packet.size)  # still fed to the decoder below, which skips it (NONKEY)
                elif not gate.keyframe(self._packet_time(packet)):
                    continue  # a quiet stream's keyframe that is not due: never decoded
            try:
                frames = packet.decode()
            except self._av.FFmpegError:
                self.decode_errors += 1  # a damaged packet: skip it, the next keyframe resyncs
                continue
            yield from frames

    def grab(self) -> Grabbed | None:
        try:
            frame = next(self._frames)
        except StopIteration:
            if self._spec.live:
                self.error = "stream ended (server closed it)"
            return None
        except (self._av.FFmpegError, OSError) as exc:
            self.error = _av_reason(exc, self._spec)
            return None
        self._frame = frame
        keyframe = bool(frame.key_frame) or str(frame.pict_type) in ("I", "1", "PictureType.I")
        return Grabbed(pts_s=self._pts_of(frame), keyframe=keyframe)

    def _packet_time(self, packet: Packet[VideoStream]) -> float:
        """Stream seconds of a packet for the gate; the monotonic clock where pts are missing or untrusted."""
        time_base = self._stream.time_base
        if packet.pts is None or time_base is None or not self._trust_pts:
            return time.monotonic()
        return float(packet.pts * time_base)

    def _pts_of(self, frame: VideoFrame) -> float | None:
        if not self._trust_pts:
            return None
        t: float | None = frame.time  # None for a frame without pts (PyAV's stubs say float)
        if t is not None:
            self._seen_pts = True
            return float(t)
        start, time_base = self._stream.start_time, self._stream.time_base
        if not self._seen_pts and start is not None and time_base is not None and self.fps > 0:
            # RTSP's first frame often precedes the first RTP timestamp FFmpeg could map: it is the
            # frame just before the stream's start time.
            self._seen_pts = True
            return max(0.0, float(start * time_base) - 1.0 / self.fps)
        return None

    def retrieve(self) -> np.ndarray | None:
        if self._frame is None:  # retrieve() before any grab(), or after the end
            self.decode_errors += 1
            return None
        try:
            return self._frame.to_ndarray(format="bgr24")
        except (self._av.FFmpegError, ValueError, AttributeError):
            self.decode_errors += 1
            return None

    def close(self) -> None:
        self._container.close()


def _av_reason(exc: BaseException, spec: SourceSpec) -> str:
    text = getattr(exc, "strerror", None) or str(exc)
    if "Immediate exit requested" in text or "ExitError" in type(exc).__name__:
        text = "timed out"
    return mask_secrets(text.replace(str(spec.target), spec.masked))


class StillDecoder(Decoder):
    """A still image: one frame, or (repeat=True, live use) the same frame at `rate` per second."""

    backend = "image"

    def __init__(self, spec: SourceSpec, *, repeat: bool, rate: float) -> None:
        super().__init__()
        path = check_file(spec)
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise SourceError(spec.raw, "not an image OpenCV can decode (damaged or unknown format)")
        self._image = image
        self._repeat = repeat
        self._n = 0
        self.fps = rate
        self.size = (image.shape[1], image.shape[0])

    def grab(self) -> Grabbed | None:
        if self._n and not self._repeat:
            return None
        self.last_activity = time.monotonic()
        self._n += 1
        return Grabbed(pts_s=(self._n - 1) / self.fps, keyframe=True)

    def retrieve(self) -> np.ndarray | None:
        return self._image.copy()  # consumers draw on frames; the original stays clean


def open_decoder(
    spec: SourceSpec,
    *,
    decode: DecodeMode,
    open_timeout_s: float,
    read_timeout_s: float,
    still_repeat: bool = False,
    still_rate: float = 1.0,
    gate: MotionGate | None = None,
) -> Decoder:
    """Pick the backend: images → StillDecoder, keyframes → PyAV, everything else → OpenCV.

    `gate` applies to keyframe decoding only (the other backends decode every frame anyway)."""
    if spec.kind == "image":
        return StillDecoder(spec, repeat=still_repeat, rate=still_rate)
    if decode == "keyframes" and spec.kind != "device":
        return PyAvDecoder(
            spec, keyframes_only=True, open_timeout_s=open_timeout_s, read_timeout_s=read_timeout_s, gate=gate
        )
    return OpenCvDecoder(spec, open_timeout_s=open_timeout_s, read_timeout_s=read_timeout_s)

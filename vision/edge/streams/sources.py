"""Frames with stream timestamps, sampling on those timestamps, and the offline iterator.

`Timeline` turns decoder timestamps into a `t_s` that never goes backwards for the
life of a reader: a reopened stream or a looped file restarts its pts at zero, so
each new segment continues from the last `t_s` plus the gap (wall clock for live
sources, one frame interval for files). Rules measure durations on `t_s`, never on
frame counts, so dropped or sampled-out frames do not distort them.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType

import numpy as np

from vision.edge.streams.decoders import DecodeMode, Decoder, Grabbed, open_decoder
from vision.edge.streams.motion import MotionGate, gate_phase_s
from vision.edge.streams.spec import SourceSpec, parse_source

log = logging.getLogger("vision.edge.streams")

_BACKWARD_JUMP_S = 0.5  # pts going back more than this starts a new segment


@dataclass(frozen=True)
class Frame:
    """One decoded, sampled frame as handed to detection."""

    camera_id: str
    index: int  # running count of frames delivered by this reader/source (0-based)
    t_s: float  # stream time (s), from decoder timestamps; non-decreasing, also across reconnects
    captured_at: datetime  # UTC wall clock when decoded
    image: np.ndarray  # BGR uint8 HxWx3
    keyframe: bool


def validate_options(
    decode: str,
    sample_fps: float | None,
    *,
    idle_every_s: float | None = None,
    motion_factor: float = 2.0,
    **timeouts: float,
) -> None:
    """Bad arguments fail at construction with the argument named, not later in a thread."""
    if decode not in ("all", "keyframes"):
        raise ValueError(f"decode must be 'all' or 'keyframes', got {decode!r}")
    if sample_fps is not None and not (math.isfinite(sample_fps) and sample_fps > 0):
        raise ValueError(f"sample_fps must be a positive number or None, got {sample_fps!r}")
    if idle_every_s is not None:
        if not (math.isfinite(idle_every_s) and idle_every_s > 0):
            raise ValueError(f"idle_every_s must be a positive number of seconds or None, got {idle_every_s!r}")
        if decode != "keyframes":
            raise ValueError("idle_every_s (the motion gate) needs decode='keyframes': it skips keyframes")
    if not (math.isfinite(motion_factor) and motion_factor > 0):
        raise ValueError(f"motion_factor must be a positive number, got {motion_factor!r}")
    for name, value in timeouts.items():
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")


class Timeline:
    """Maps decoder pts (which restart per stream segment) to one non-decreasing `t_s`."""

    def __init__(self, *, live: bool) -> None:
        self._live = live
        self.last_t: float | None = None
        self._last_wall: float | None = None
        self._last_raw: float | None = None
        self._offset: float | None = None  # t_s = offset + pts within a segment

    def new_segment(self) -> None:
        """Call after a reopen or a loop restart: the next pts starts a fresh mapping."""
        self._offset = None
        self._last_raw = None

    def stamp(self, raw: float | None, wall: float, nominal_dt: float) -> float:
        """The t_s of a frame with decoder time `raw`, decoded at monotonic time `wall`."""
        last_t = self.last_t
        step = (wall - self._last_wall) if (self._live and self._last_wall is not None) else nominal_dt
        step = max(step, 0.0)
        last_raw = self._last_raw
        if last_t is None:  # very first frame: files keep their pts, live streams start at 0
            t = raw if (raw is not None and not self._live) else 0.0
            self._offset, self._last_raw = t - (raw or 0.0), raw
        elif self._offset is None:  # first frame of a new segment
            t = last_t + step
            self._offset, self._last_raw = t - (raw or 0.0), raw
        elif raw is not None and last_raw is not None and raw > last_raw:
            t = self._offset + raw
            self._last_raw = raw
        elif raw is not None and (last_raw is None or raw < last_raw - _BACKWARD_JUMP_S):
            t = last_t + step  # pts appeared, or restarted inside the stream: re-anchor on it
            self._offset, self._last_raw = t - raw, raw
        else:  # no usable pts (none, or not advancing): advance by the wall clock / frame interval
            t = last_t + step
        if last_t is not None:
            t = max(t, last_t)
        self.last_t = t
        self._last_wall = wall
        return t


class Sampler:
    """Keeps at most one frame per 1/fps bucket of stream time (None: keep all)."""

    def __init__(self, fps: float | None) -> None:
        self._fps = fps
        self._last_bucket: int | None = None

    def take(self, t_s: float) -> bool:
        if self._fps is None:
            return True
        bucket = math.floor(t_s * self._fps + 1e-6)
        if self._last_bucket is not None and bucket <= self._last_bucket:
            return False
        self._last_bucket = bucket
        return True


def nominal_dt(decoder: Decoder) -> float:
    return 1.0 / decoder.fps if decoder.fps > 0 else 0.04


def make_gate(
    camera_id: str, sample_fps: float | None, idle_every_s: float | None, motion_factor: float
) -> MotionGate | None:
    """The camera's motion gate, or None when it has no idle rate (every due keyframe is decoded)."""
    if idle_every_s is None:
        return None
    return MotionGate(
        detect_fps=sample_fps or 1000.0,
        idle_every_s=idle_every_s,
        factor=motion_factor,
        phase_s=gate_phase_s(camera_id, idle_every_s),
    )


class FrameSource:
    """Synchronous iterator of `Frame` for offline use: no dropping beyond `sample_fps`.

    Opens a file, image, URL or device at construction (SourceError if it cannot open;
    `open_source` is this class). Ends at the end of a file (one frame for a still
    image); on a network source it ends when the stream ends or stays silent past
    `read_timeout_s` (see `.error`). `idle_every_s` (keyframe decoding only) turns on
    the motion gate (vision/edge/streams/motion.py).
    """

    def __init__(
        self,
        source: str,
        *,
        camera_id: str = "cam",
        decode: DecodeMode = "all",
        sample_fps: float | None = None,
        open_timeout_s: float = 10,
        read_timeout_s: float = 10,
        idle_every_s: float | None = None,
        motion_factor: float = 2.0,
    ) -> None:
        validate_options(
            decode,
            sample_fps,
            idle_every_s=idle_every_s,
            motion_factor=motion_factor,
            open_timeout_s=open_timeout_s,
            read_timeout_s=read_timeout_s,
        )
        self.spec: SourceSpec = parse_source(source)
        self.camera_id = camera_id
        self.decode = decode
        self.sample_fps = sample_fps
        self.gate = make_gate(camera_id, sample_fps, idle_every_s, motion_factor)
        self._decoder = open_decoder(
            self.spec,
            decode=decode,
            open_timeout_s=open_timeout_s,
            read_timeout_s=read_timeout_s,
            still_rate=sample_fps or 1.0,
            gate=self.gate,
        )
        self._timeline = Timeline(live=self.spec.live)
        self._sampler = Sampler(sample_fps)
        self._delivered = 0
        self.decoded_frames = 0
        self.error: str | None = None
        self._closed = False

    @property
    def fps(self) -> float:
        """The source's nominal frame rate (0 when unknown), before sampling."""
        return self._decoder.fps

    @property
    def effective_fps(self) -> float:
        """Frames per second this iterator yields: the source rate capped by sample_fps."""
        if self.sample_fps is None:
            return self.fps
        return min(self.fps, self.sample_fps) if self.fps > 0 else self.sample_fps

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the decoded frames."""
        return self._decoder.size

    @property
    def backend(self) -> str:
        return self._decoder.backend

    @property
    def decode_errors(self) -> int:
        return self._decoder.decode_errors

    def hold_open(self, seconds: float) -> None:
        """Decode every due keyframe for the next `seconds` of stream time (no-op without a gate)."""
        if self.gate is not None:
            self.gate.hold(seconds)

    def __iter__(self) -> Iterator[Frame]:
        return self

    def __next__(self) -> Frame:
        if self._closed:
            raise StopIteration
        decoder = self._decoder
        while True:
            grabbed: Grabbed | None = decoder.grab()
            if grabbed is None:
                if decoder.error:
                    self.error = decoder.error
                    log.warning("%s: %s ended: %s", self.camera_id, self.spec.masked, decoder.error)
                self.close()
                raise StopIteration
            self.decoded_frames += 1
            wall = decoder.last_activity
            t_s = self._timeline.stamp(grabbed.pts_s, wall, nominal_dt(decoder))
            if not self._sampler.take(t_s):
                continue
            image = decoder.retrieve()
            if image is None:
                continue
            frame = Frame(
                camera_id=self.camera_id,
                index=self._delivered,
                t_s=t_s,
                captured_at=datetime.now(UTC),
                image=image,
                keyframe=grabbed.keyframe,
            )
            self._delivered += 1
            return frame

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._decoder.close()

    def __enter__(self) -> FrameSource:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 (interpreter shutdown)
            pass


# The offline entry point: `open_source(path, camera_id=..., sample_fps=...)` is `FrameSource(...)`,
# one signature for both (the class's), so the two cannot drift apart.
open_source = FrameSource

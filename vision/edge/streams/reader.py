"""One thread per live camera: decode, sample, keep only the newest frame, reconnect forever.

Latest-frame slot: detection is slower than decoding on an edge box, so a queue
would grow and the detector would work on ever older pictures. The reader keeps
exactly one unconsumed frame; a newer one replaces it and the replaced one is
counted as dropped. Latency stays at most one frame plus one detection.

Watchdog: every blocking decoder call is bounded by FFmpeg's timeouts, so the
reader thread itself notices a silent or closed stream, reopens it with
exponential backoff and jitter (capped), and logs once per online/offline change.
A dead camera is retried until stop() and never raises into the caller.

Motion gate (`idle_every_s`, keyframe decoding): a quiet camera decodes a keyframe
only every idle_every_s seconds, one that shows motion every keyframe due at
`sample_fps` (vision/edge/streams/motion.py). The gate outlives reconnects, so the
camera's usual level of motion is not learnt again after each drop.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from vision.core.backoff import Backoff
from vision.edge.streams.decoders import DecodeMode, Decoder, open_decoder
from vision.edge.streams.sources import Frame, Sampler, Timeline, make_gate, nominal_dt, validate_options
from vision.edge.streams.spec import SourceError, mask_secrets, parse_source

log = logging.getLogger("vision.edge.streams")

_FPS_WINDOW_S = 5.0
_STILL_DEFAULT_FPS = 1.0
_MAX_LATE_S = 1.0  # realtime pacing: if decoding falls this far behind, re-anchor instead of bursting

CameraState = Literal["starting", "online", "offline", "ended", "stopped"]


@dataclass
class CameraStatus:
    """A snapshot of one camera's health, safe to serialise (credentials masked)."""

    camera_id: str
    source: str
    online: bool
    fps: float  # frames/s the reader offered after sampling, over the last few seconds
    decoded_frames: int
    delivered_frames: int  # frames handed out by get()
    dropped_frames: int  # sampled frames replaced by a newer one before anyone took them
    decode_errors: int
    reconnects: int  # successful reopens after the stream dropped or stalled
    last_frame_at: datetime | None
    last_error: str | None
    state: CameraState = "starting"
    open_failures: int = 0  # failed open attempts (a dead camera keeps raising this)
    backend: str | None = None
    size: tuple[int, int] | None = None
    # motion gate (sampling.idle_every_s); zero / None without one
    keyframes_seen: int = 0  # keyframes demuxed, decoded or not
    keyframes_gated: int = 0  # keyframes not decoded because the stream was quiet
    motion: bool | None = None  # full rate as of the last keyframe (motion or a hold)

    def as_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["last_frame_at"] = self.last_frame_at.isoformat() if self.last_frame_at else None
        data["size"] = list(self.size) if self.size else None
        return data


@dataclass(frozen=True)
class _Pumped:
    """How one connection's decoding ended: the stream ended ("eof"), the reader was stopped,
    or decoding failed ("failed", `error` says how: the decoder's error or a stall)."""

    end: Literal["eof", "stopped", "failed"]
    frames: int  # frames decoded on this connection
    error: str | None = None


class LatestFrameSlot:
    """A one-frame mailbox: put() replaces, get() takes; replaced frames are counted as dropped."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._frame: Frame | None = None
        self._closed = False
        self.dropped = 0

    def put(self, frame: Frame) -> None:
        with self._cond:
            if self._frame is not None:
                self.dropped += 1
            self._frame = frame
            self._cond.notify_all()

    def take(self, timeout: float | None) -> Frame | None:
        with self._cond:
            if self._frame is None and not self._closed:
                self._cond.wait_for(lambda: self._frame is not None or self._closed, timeout)
            frame, self._frame = self._frame, None
            return frame

    def close(self) -> None:
        """No more frames will come: wake waiting consumers (a pending frame can still be taken)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()


class CameraReader:
    """Reads one camera in a background thread; `get()` returns the newest sampled frame.

    For files, `realtime=True` paces frames at their timestamps (a simulated live
    camera) and `loop=True` restarts at the end of file with `t_s` still increasing.
    A still image is offered at `sample_fps` (1/s by default) until stop().
    `idle_every_s` turns on the motion gate (keyframe decoding only), `motion_factor` is its
    threshold over the camera's usual P-frame bytes; `hold_open()` keeps the full rate.
    """

    def __init__(
        self,
        camera_id: str,
        source: str,
        *,
        sample_fps: float | None = None,
        decode: DecodeMode = "all",
        open_timeout_s: float = 5,
        read_timeout_s: float = 5,
        stall_timeout_s: float = 10,
        backoff_initial_s: float = 1,
        backoff_max_s: float = 30,
        realtime: bool = True,
        loop: bool = False,
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
            stall_timeout_s=stall_timeout_s,
            backoff_initial_s=backoff_initial_s,
            backoff_max_s=backoff_max_s,
        )
        self.camera_id = camera_id
        self.spec = parse_source(source)
        self.decode = decode
        self.sample_fps = sample_fps
        self.open_timeout_s = open_timeout_s
        # A read never blocks longer than the stall timeout: a silent stream is a stalled one.
        self.read_timeout_s = min(read_timeout_s, stall_timeout_s)
        self.stall_timeout_s = stall_timeout_s
        self.realtime = realtime
        self.loop = loop
        self.gate = make_gate(camera_id, sample_fps, idle_every_s, motion_factor) if self.spec.kind != "image" else None
        self._backoff = Backoff(backoff_initial_s, max(backoff_max_s, backoff_initial_s))

        self._slot = LatestFrameSlot()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()  # guards the counters below, read by status()
        self._state: CameraState = "starting"
        self._decoded = 0
        self._delivered = 0
        self._decode_errors_closed = 0  # errors of decoders already closed
        self._decoder: Decoder | None = None
        self._reconnects = 0
        self._open_failures = 0
        self._last_frame_at: datetime | None = None
        self._last_alive_mono: float | None = None  # last frame decoded (sampled or not)
        self._last_error: str | None = None
        self._offered_times: deque[float] = deque()
        self._backend: str | None = None
        self._size: tuple[int, int] | None = None
        self._pace_anchor: tuple[float, float] | None = None  # (wall, t_s) for realtime file playback

    # ----------------------------------------------------------------- public API
    def start(self) -> None:
        """Start the reader thread (once; later calls do nothing). A stopped reader stays stopped."""
        with self._lock:
            if self._stop.is_set():
                raise RuntimeError(f"camera {self.camera_id}: reader was stopped; create a new CameraReader")
            if self._thread is not None:
                return
            self._thread = threading.Thread(target=self._run, name=f"camera-{self.camera_id}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5) -> None:
        """Stop and join the thread (idempotent). A decoder blocked in FFmpeg returns within its
        timeout; if it has not by `timeout`, the daemon thread is left to finish on its own."""
        self._stop.set()
        self._slot.close()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            if thread.is_alive():
                log.warning(
                    "camera %s: reader still inside the decoder after %.1f s; it exits when FFmpeg's timeout fires",
                    self.camera_id,
                    timeout,
                )
        with self._lock:
            self._state = "stopped"

    def get(self, timeout: float | None = None) -> Frame | None:
        """The newest sampled frame not yet consumed (older ones were dropped), or None on
        timeout, or None at once when the reader has ended or stopped and nothing is pending."""
        frame = self._slot.take(timeout)
        if frame is None:
            return None
        with self._lock:
            frame = dataclasses.replace(frame, index=self._delivered)
            self._delivered += 1
        return frame

    def hold_open(self, seconds: float) -> None:
        """Decode every due keyframe for the next `seconds` of stream time, motion or not (a
        consumer following a moving object calls it; no-op without a gate). Any thread."""
        if self.gate is not None:
            self.gate.hold(seconds)

    @property
    def running(self) -> bool:
        """True while the reader thread is alive (False after stop() or the end of a file)."""
        return self._thread is not None and self._thread.is_alive()

    def status(self) -> CameraStatus:
        now = time.monotonic()
        gate = self.gate
        with self._lock:
            decoder = self._decoder
            decode_errors = self._decode_errors_closed + (decoder.decode_errors if decoder else 0)
            last_seen = max(
                self._last_alive_mono or 0.0, decoder.last_activity if decoder else 0.0
            )  # packets count as life: keyframe mode goes a whole GOP between frames
            online = self._state == "online" and now - last_seen <= self.stall_timeout_s
            times = self._offered_times
            while times and now - times[0] > _FPS_WINDOW_S:
                times.popleft()
            fps = 0.0
            if len(times) >= 2 and now - times[-1] <= self.stall_timeout_s:
                fps = (len(times) - 1) / max(times[-1] - times[0], 1e-6)
            return CameraStatus(
                camera_id=self.camera_id,
                source=self.spec.masked,
                online=online,
                fps=round(fps, 2),
                decoded_frames=self._decoded,
                delivered_frames=self._delivered,
                dropped_frames=self._slot.dropped,
                decode_errors=decode_errors,
                reconnects=self._reconnects,
                last_frame_at=self._last_frame_at,
                last_error=self._last_error,
                state=self._state if online or self._state != "online" else "offline",
                open_failures=self._open_failures,
                backend=self._backend,
                size=self._size,
                keyframes_seen=gate.keyframes if gate else 0,
                keyframes_gated=gate.gated if gate else 0,
                motion=gate.is_open if gate else None,
            )

    def __enter__(self) -> CameraReader:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ----------------------------------------------------------------- the thread
    def _run(self) -> None:
        try:
            self._loop()
        except Exception as exc:  # noqa: BLE001 (a bug must not kill the daemon silently)
            log.exception("camera %s: reader crashed", self.camera_id)
            self._set_offline(f"internal error: {exc!r}")
        finally:
            self._slot.close()

    def _loop(self) -> None:
        timeline = Timeline(live=self.spec.live)
        still_rate = self.sample_fps or _STILL_DEFAULT_FPS
        sampler = Sampler(self.sample_fps if self.spec.kind != "image" else None)
        self._pace_anchor = None
        had_frames = False
        while not self._stop.is_set():
            try:
                decoder = open_decoder(
                    self.spec,
                    decode=self.decode,
                    open_timeout_s=self.open_timeout_s,
                    read_timeout_s=self.read_timeout_s,
                    still_repeat=True,
                    still_rate=still_rate,
                    gate=self.gate,
                )
            except SourceError as exc:
                with self._lock:
                    self._open_failures += 1
                self._set_offline(exc.reason)
                self._sleep_backoff()
                continue
            except Exception as exc:  # noqa: BLE001 (an odd backend error is retried like any other)
                with self._lock:
                    self._open_failures += 1
                self._set_offline(mask_secrets(f"cannot open: {exc!r}"))
                self._sleep_backoff()
                continue
            if had_frames:
                timeline.new_segment()
            with self._lock:
                self._decoder = decoder
                self._backend, self._size = decoder.backend, decoder.size
            try:
                pumped = self._pump(decoder, timeline, sampler, reconnected=had_frames)
            finally:
                decoder.close()
                with self._lock:
                    self._decode_errors_closed += decoder.decode_errors
                    self._decoder = None
            had_frames = had_frames or pumped.frames > 0
            if self._stop.is_set():
                break
            if pumped.end == "eof" and not self.spec.live and pumped.frames > 0:
                if self.loop:
                    continue  # a file loops without backoff; t_s continues from the timeline
                with self._lock:
                    self._state = "ended"
                log.info("camera %s: end of %s", self.camera_id, self.spec.masked)
                return
            self._set_offline(pumped.error or "no frame could be decoded")
            self._sleep_backoff()

    def _pump(self, decoder: Decoder, timeline: Timeline, sampler: Sampler, *, reconnected: bool) -> _Pumped:
        """Decode until the stream ends, fails or stalls, or the reader is stopped."""
        decoded = 0
        last_alive = time.monotonic()
        dt = nominal_dt(decoder)
        while not self._stop.is_set():
            grabbed = decoder.grab()
            if grabbed is None:
                return _Pumped("failed", decoded, decoder.error) if decoder.error else _Pumped("eof", decoded)
            now = time.monotonic()
            t_s = timeline.stamp(grabbed.pts_s, now, dt)
            sampled = sampler.take(t_s)
            image = decoder.retrieve() if sampled else None  # skipped frames pay no colour conversion
            if sampled and image is None:  # undecodable: the watchdog decides when it is a stall
                if now - last_alive > self.stall_timeout_s:
                    return _Pumped("failed", decoded, f"stalled: no decodable frame for {self.stall_timeout_s:g} s")
                continue
            decoded += 1
            last_alive = now
            self._mark_alive(now, first_after_reconnect=reconnected and decoded == 1)
            if image is None:
                continue
            if (self.realtime and not self.spec.live) or self.spec.kind == "image":  # a still is always paced
                self._pace(t_s)
                if self._stop.is_set():
                    break
            frame = Frame(
                camera_id=self.camera_id,
                index=-1,
                t_s=t_s,
                captured_at=datetime.now(UTC),
                image=image,
                keyframe=grabbed.keyframe,
            )
            self._slot.put(frame)
            self._mark_offered(frame)
        return _Pumped("stopped", decoded)

    def _pace(self, t_s: float) -> None:
        """Sleep until this frame's time relative to the first one (a simulated live camera)."""
        now = time.monotonic()
        anchor = self._pace_anchor
        if anchor is None:
            self._pace_anchor = (now, t_s)
            return
        due = anchor[0] + (t_s - anchor[1])
        if now - due > _MAX_LATE_S:
            self._pace_anchor = (now, t_s)  # decoding fell behind: continue from here, no burst
        elif due > now:
            self._stop.wait(due - now)

    def _mark_alive(self, now: float, *, first_after_reconnect: bool) -> None:
        """A frame decoded: the camera is online (logged once per change)."""
        with self._lock:
            self._decoded += 1
            self._last_alive_mono = now
            previous = self._state
            if previous == "online":
                return
            self._state = "online"
            if first_after_reconnect and self.spec.live:
                self._reconnects += 1
            retries = self._backoff.attempt
        self._backoff.reset()
        if previous == "offline":
            log.info("camera %s back online after %d retries: %s", self.camera_id, retries, self.spec.masked)
        else:
            log.info("camera %s online: %s", self.camera_id, self.spec.masked)

    def _mark_offered(self, frame: Frame) -> None:
        now = time.monotonic()
        with self._lock:
            self._last_frame_at = frame.captured_at
            self._offered_times.append(now)
            while self._offered_times and now - self._offered_times[0] > _FPS_WINDOW_S:
                self._offered_times.popleft()

    def _set_offline(self, reason: str) -> None:
        reason = mask_secrets(reason)
        with self._lock:
            previous, self._state = self._state, "offline"
            self._last_error = reason
        if previous != "offline":  # one warning per state change, not per retry
            log.warning(
                "camera %s offline: %s (%s); retrying with backoff up to %g s",
                self.camera_id,
                self.spec.masked,
                reason,
                self._backoff.max_s,
            )
        else:
            log.debug("camera %s still offline: %s", self.camera_id, reason)

    def _sleep_backoff(self) -> None:
        self._stop.wait(self._backoff.next_delay())

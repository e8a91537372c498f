"""Motion gate on the compressed stream: which keyframes a quiet camera skips before decoding.

Why: decoding a 1080p keyframe costs ~18 ms of CPU and every decoded frame then
goes through detection, so what a box can serve is set by how often each camera
looks. Stationary rules (stalls, parked bikes, garbage) need a look every few
seconds; only moving objects (a truck crossing a site exit) need every second.
Like Frigate, which decodes but detects only where there is motion, the gate looks
at full rate only while something moves, but it reads motion from the bitstream
instead of pixels: in keyframe mode the demuxer reads every packet anyway, and the
bytes an encoder spends on P-frames follow how much changed (a still scene codes
nearly empty P-frames, a vehicle driving through makes them large). So a quiet
camera costs one keyframe decode every `idle_every_s` seconds and almost nothing
in between.

Motion means the mean P-frame size of the last GOP is over `factor` times the
camera's usual level, a low quantile of the recent GOPs (a busy street's usual
walkers raise the level, so only more than usual opens the gate). The gate stays
open `HOLD_S` after the last motion, and a consumer that follows a moving object
(the daemon, while a truck is in view) can hold it open: Frigate likewise keeps
detecting where tracked objects are. It fails open: until it has seen a few GOPs,
and on streams with no P-frames (MJPEG, all-intra), every due keyframe is decoded.

Rate-controlled encoders (CBR, or ABR as in the benchmark's camera file) spread
bits evenly, so the P-frame bytes of a busy scene change little when one more
object moves; the gate then opens mostly through the consumer's hold.
"""

from __future__ import annotations

import math
import threading
import zlib
from collections import deque
from dataclasses import dataclass, field

import numpy as np

__all__ = ["HOLD_S", "MotionGate", "gate_phase_s"]

HOLD_S = 3.0  # full rate this long after the last motion (a truck that slows at the gate)
BASELINE_GOPS = 120  # GOPs the usual level is taken over (2 min at one keyframe a second)
BASELINE_QUANTILE = 0.25  # the usual level: a low quantile, robust to motion in most of the window
WARMUP_GOPS = 5  # GOPs seen before the gate may close
MIN_MOTION_BYTES = 64.0  # mean P-frame bytes a GOP must add over the level (noise on tiny P-frames)
_JUMP_BACK_S = 0.5  # packet time going back more than this: a loop or a reconnect


def gate_phase_s(camera_id: str, idle_every_s: float) -> float:
    """A fixed per-camera offset into the idle interval, so quiet cameras do not all look at once."""
    return (zlib.crc32(camera_id.encode()) % 1000) / 1000.0 * idle_every_s


@dataclass
class MotionGate:
    """Per camera, fed by the demuxer: `packet()` for each non-key packet, `keyframe()` decides.

    Times are the stream's packet times in seconds (the decoder's, not the reader's `t_s`).
    Counters are read by other threads (`CameraStatus`); `hold()` may be called from any thread.
    """

    detect_fps: float
    idle_every_s: float
    factor: float = 2.0
    phase_s: float = 0.0
    keyframes: int = 0  # keyframes seen
    decoded: int = 0  # keyframes the gate let through
    gated: int = 0  # keyframes skipped because the stream was quiet
    is_open: bool = True  # full rate as of the last keyframe (motion, its hold, or a consumer's hold)
    _bytes: int = 0
    _packets: int = 0
    _scores: deque[float] = field(default_factory=lambda: deque(maxlen=BASELINE_GOPS))
    _last_t: float | None = None  # last keyframe seen
    _decoded_t: float | None = None  # last keyframe let through
    _open_until: float = -math.inf
    _hold_s: float = 0.0  # requested by a consumer, applied at the next keyframe
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        if not (self.detect_fps > 0 and self.idle_every_s > 0 and self.factor > 0):
            raise ValueError("detect_fps, idle_every_s and factor must be positive")

    def packet(self, nbytes: int) -> None:
        """A non-key packet of the current GOP (skipped by the keyframe decoder, counted here)."""
        self._bytes += nbytes
        self._packets += 1

    def hold(self, seconds: float) -> None:
        """Keep the full rate for `seconds` of stream time from the next keyframe on."""
        with self._lock:
            self._hold_s = max(self._hold_s, seconds)

    def level(self) -> float | None:
        """The camera's usual mean P-frame bytes per GOP, None while warming up."""
        if len(self._scores) < WARMUP_GOPS:
            return None
        return float(np.quantile(np.asarray(self._scores), BASELINE_QUANTILE))

    def keyframe(self, t: float) -> bool:
        """A keyframe at stream time `t` arrived: True to decode it, False to skip it."""
        score = self._bytes / self._packets if self._packets else None
        self._bytes = self._packets = 0
        if self._last_t is not None and t < self._last_t - _JUMP_BACK_S:
            self._decoded_t, self._open_until = None, -math.inf  # a new time base: start over
        self._last_t = t
        level = self.level()
        # No P-frames to judge by (first GOP, all-intra stream) or no level yet: look.
        moving = score is None or level is None or score > self.factor * level + MIN_MOTION_BYTES
        with self._lock:
            hold, self._hold_s = self._hold_s, 0.0
        if moving or hold:
            self._open_until = max(self._open_until, t + max(HOLD_S if moving else 0.0, hold))
        if score is not None:
            self._scores.append(score)
        self.is_open = moving or t < self._open_until
        due = self._due(t)
        self.keyframes += 1
        if due:
            self.decoded += 1
            self._decoded_t = t
        else:
            self.gated += 1
        return due

    def _due(self, t: float) -> bool:
        """On a per-camera grid: every 1/detect_fps while open, every idle_every_s while quiet."""
        if self._decoded_t is None:
            return True
        interval = 1.0 / self.detect_fps
        phase = 0.0
        if not self.is_open and self.idle_every_s > interval:
            interval, phase = self.idle_every_s, self.phase_s
        slot = math.floor((t + phase) / interval + 1e-6)
        return slot > math.floor((self._decoded_t + phase) / interval + 1e-6)

"""Evidence for a case: clean and annotated snapshots, a clip around onset, crops.

Frames of the last minutes are kept per camera in an in-memory ring of JPEG
bytes (bounded by seconds and by bytes), because a stall's onset is minutes
before its rule fires. The clip is cut from the ring and written as H.264 MP4
(PyAV's bundled libx264, yuv420p, faststart) which browsers play. Drawing is
here, not in the rules.
"""

from __future__ import annotations

import logging
import os
from bisect import bisect_right
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import cv2
import numpy as np

from vision.core.cases import EvidenceKind
from vision.core.evidence_files import EvidenceFile
from vision.edge.config import EvidenceConfig, ZoneConfig
from vision.edge.rules.base import Violation

log = logging.getLogger(__name__)

CROP_KINDS: tuple[EvidenceKind, ...] = ("vehicle_crop", "plate_crop")  # the kinds a rule's `crops` may hold

__all__ = [
    "BufferedFrame",
    "FrameRing",
    "ClipInfo",
    "write_clip",
    "annotate_violation",
    "write_images",
    "clip_window",
    "write_clip_file",
]


@dataclass(frozen=True)
class BufferedFrame:
    t_s: float
    captured_at: datetime
    jpeg: bytes
    width: int
    height: int

    def image(self) -> np.ndarray:
        image = cv2.imdecode(np.frombuffer(self.jpeg, dtype=np.uint8), cv2.IMREAD_COLOR)
        if image is None:  # the ring holds JPEGs it encoded itself: only damaged memory gets here
            raise ValueError(f"cannot decode the buffered frame at t={self.t_s:.2f} s")
        return image


class FrameRing:
    """Recent frames of one camera as JPEG.

    The last `dense_s` seconds are kept at the full rate (clips of trucks, whose onset is
    now); older frames are thinned to one per `sparse_interval_s` (a stall's onset is
    minutes back, and a clip at the detection rate is enough there). Oldest frames go
    beyond `max_seconds` or `max_bytes` (the latter counted in `dropped_for_memory`)."""

    def __init__(
        self,
        max_seconds: float,
        max_bytes: int,
        jpeg_quality: int = 85,
        *,
        dense_s: float | None = None,
        sparse_interval_s: float = 0.0,
    ):
        self.max_seconds = max_seconds
        self.max_bytes = max_bytes
        self.jpeg_quality = jpeg_quality
        self.dense_s = max_seconds if dense_s is None else dense_s
        self.sparse_interval_s = sparse_interval_s
        self._old: deque[BufferedFrame] = deque()  # thinned
        self._recent: deque[BufferedFrame] = deque()  # full rate
        self._bytes = 0
        self.dropped_for_memory = 0

    def add(self, t_s: float, captured_at: datetime, image: np.ndarray) -> None:
        latest = self.latest_t
        if latest is not None and t_s < latest:
            return  # stream time never goes back; a late frame is not worth reordering
        ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality])
        if not ok:
            return
        h, w = image.shape[:2]
        frame = BufferedFrame(float(t_s), captured_at, buf.tobytes(), w, h)
        self._recent.append(frame)
        self._bytes += len(frame.jpeg)
        while self._recent and t_s - self._recent[0].t_s > self.dense_s:
            f = self._recent.popleft()
            if not self._old or f.t_s - self._old[-1].t_s >= self.sparse_interval_s - 1e-6:
                self._old.append(f)
            else:
                self._bytes -= len(f.jpeg)
        while self._old and t_s - self._old[0].t_s > self.max_seconds:
            self._bytes -= len(self._old.popleft().jpeg)
        while self._bytes > self.max_bytes and len(self) > 1:
            q = self._old if self._old else self._recent
            self._bytes -= len(q.popleft().jpeg)
            self.dropped_for_memory += 1

    def frames(self) -> list[BufferedFrame]:
        return [*self._old, *self._recent]

    def window(self, start_t: float, end_t: float) -> list[BufferedFrame]:
        """Frames with start_t - (one frame) <= t < end_t: the frame showing start_t is included."""
        frames = self.frames()
        times = [f.t_s for f in frames]
        i = max(bisect_right(times, start_t) - 1, 0)
        return [f for f in frames[i:] if f.t_s < end_t]

    @property
    def latest_t(self) -> float | None:
        if self._recent:
            return self._recent[-1].t_s
        return self._old[-1].t_s if self._old else None

    @property
    def oldest_t(self) -> float | None:
        if self._old:
            return self._old[0].t_s
        return self._recent[0].t_s if self._recent else None

    @property
    def nbytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._old) + len(self._recent)


@dataclass(frozen=True)
class ClipInfo:
    start_t: float
    end_t: float
    frames: int
    fps: float

    @property
    def duration_s(self) -> float:
        return self.frames / self.fps


def write_clip(frames: list[BufferedFrame], start_t: float, end_t: float, fps: float, path: Path) -> ClipInfo | None:
    """An MP4 showing [start_t, end_t) of stream time at a constant `fps`: each output frame is
    the newest buffered frame at or before its time, so the duration is exact even when frames
    were dropped. None when nothing of the window is buffered."""
    if not frames:
        return None
    start_t = max(start_t, frames[0].t_s)  # cannot show what the ring no longer holds
    n = int(round((end_t - start_t) * fps))
    if n <= 0:
        return None
    from vision.edge.casework.video_writer import Mp4Writer

    times = [f.t_s for f in frames]
    first = frames[0]
    cache: dict[int, np.ndarray] = {}
    with Mp4Writer(path, fps, (first.width, first.height)) as writer:
        for i in range(n):
            j = max(bisect_right(times, start_t + i / fps) - 1, 0)
            if j not in cache:
                cache.clear()
                img = frames[j].image()
                if img.shape[1] != first.width or img.shape[0] != first.height:
                    img = cv2.resize(img, (first.width, first.height))
                cache[j] = img
            writer.write(cache[j])
    return ClipInfo(start_t, start_t + n / fps, n, fps)


def label_size(frame_height: int) -> tuple[float, int]:
    """Font scale and stroke for labels about 3 % of the frame high: still readable when a
    1080p snapshot is shown 320 px high in the review queue (a fixed 0.5 is ~3 px there)."""
    scale = max(0.5, 0.03 * frame_height / 22)  # FONT_HERSHEY_SIMPLEX is ~22 px high at scale 1
    return scale, max(1, round(scale * 1.4))


def annotate_violation(image: np.ndarray, violation: Violation, zones: list[ZoneConfig]) -> np.ndarray:
    """The snapshot with the rule's zone, each object's box and a label saying what and how long."""
    from vision.edge.casework.annotate import FrameAnnotator

    out = image.copy()
    shown = [z for z in zones if z.name == violation.zone] or list(zones)
    FrameAnnotator().draw_zones(out, shown)
    colour = (0, 0, 255)
    scale, thick = label_size(out.shape[0])
    for box in violation.object_boxes_px or [violation.box_px]:
        x1, y1, x2, y2 = (int(round(v)) for v in box)
        cv2.rectangle(out, (x1, y1), (x2, y2), colour, max(2, thick))
    x1, y1, x2, y2 = (int(round(v)) for v in violation.box_px)
    label = f"{violation.rule}: {'+'.join(violation.classes)}"
    if violation.object_count > 1:
        label += f" x{violation.object_count}"
    label += f" {violation.confidence:.2f} dwell {violation.dwell_s:.0f}s"
    (tw, th), _ = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
    ty = y1 - 6 if y1 - th - 8 > 0 else min(y2 + th + 6, out.shape[0] - 4)
    lx = max(0, min(x1, out.shape[1] - tw - 6))  # keep the label inside the frame
    cv2.rectangle(out, (lx, ty - th - 4), (lx + tw + 6, ty + 4), colour, -1)
    cv2.putText(out, label, (lx + 3, ty), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thick, cv2.LINE_AA)
    return out


def _write(path: Path, data: bytes) -> None:
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def _jpeg(image: np.ndarray, quality: int) -> bytes:
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("cannot encode JPEG")
    return buf.tobytes()


def write_images(
    violation: Violation, snapshot: np.ndarray, zones: list[ZoneConfig], config: EvidenceConfig, directory: Path
) -> list[EvidenceFile]:
    """The still evidence of one violation (clean and annotated snapshot, crops), fsynced."""
    directory.mkdir(parents=True, exist_ok=True)
    files: list[EvidenceFile] = []
    q = config.jpeg_quality
    stills: list[tuple[str, EvidenceKind, np.ndarray]] = [
        ("snapshot.jpg", "snapshot", snapshot),
        ("annotated.jpg", "annotated", annotate_violation(snapshot, violation, zones)),
        *[
            (f"{k.replace('_crop', '')}.jpg", _crop_kind(k), img)
            for k, img in violation.crops.items()
            if img is not None and img.size
        ],
    ]
    for name, kind, image in stills:
        path = directory / name
        _write(path, _jpeg(image, q))
        files.append(EvidenceFile.of(name, kind, "image/jpeg", path))
    return files


def write_lifecycle_images(
    violation: Violation,
    image: np.ndarray,
    zones: list[ZoneConfig],
    config: EvidenceConfig,
    directory: Path,
    kind: str,
    joined_px: tuple[tuple[float, float, float, float], ...] = (),
) -> list[EvidenceFile]:
    """The place as the camera sees it when the violation cleared, resumed or grew: the clean frame,
    and one with the rule's zone and where the violation stood (the proof a reviewer compares with
    the case's snapshot), with the objects that joined it in their own colour, fsynced."""
    directory.mkdir(parents=True, exist_ok=True)
    marked = image.copy()
    shown = [z for z in zones if z.name == violation.zone] or list(zones)
    from vision.edge.casework.annotate import FrameAnnotator

    FrameAnnotator().draw_zones(marked, shown)
    colour = (0, 200, 0) if kind == "cleared" else (0, 0, 255)
    _, thick = label_size(marked.shape[0])
    x1, y1, x2, y2 = (int(round(v)) for v in violation.box_px)
    cv2.rectangle(marked, (x1, y1), (x2, y2), colour, max(2, thick))
    for box in joined_px:  # what is new since the case: orange
        x1, y1, x2, y2 = (int(round(v)) for v in box)
        cv2.rectangle(marked, (x1, y1), (x2, y2), (0, 140, 255), max(2, thick))
    stills: list[tuple[str, EvidenceKind, np.ndarray]] = [
        (f"{kind}.jpg", "snapshot", image),
        (f"{kind}_annotated.jpg", "annotated", marked),
    ]
    files = []
    for name, evidence_kind, still in stills:
        path = directory / name
        _write(path, _jpeg(still, config.jpeg_quality))
        files.append(EvidenceFile.of(name, evidence_kind, "image/jpeg", path))
    return files


def _crop_kind(key: str) -> EvidenceKind:
    """A `Violation.crops` key as the evidence kind it names (the case schema knows no other)."""
    for kind in CROP_KINDS:
        if key == kind:
            return kind
    raise ValueError(f"crop {key!r} is no evidence kind (crops are {', '.join(CROP_KINDS)})")


def clip_window(violation: Violation, config: EvidenceConfig) -> tuple[float, float]:
    """Stream times [start, end) the clip of a violation shows."""
    return violation.onset_t_s - config.clip_before_s, violation.onset_t_s + config.clip_after_s


def write_clip_file(
    violation: Violation, frames: list[BufferedFrame], config: EvidenceConfig, directory: Path, clip_fps: float
) -> tuple[EvidenceFile | None, ClipInfo | None]:
    """clip.mp4 from buffered frames of the clip window (see `clip_window`), fsynced."""
    if config.clip_before_s + config.clip_after_s <= 0:
        return None, None
    start, end = clip_window(violation, config)
    path = directory / "clip.mp4"
    directory.mkdir(parents=True, exist_ok=True)
    clip = write_clip(frames, start, end, clip_fps, path)
    if clip is None:
        log.warning("case %s: no frames buffered for the clip window", violation.id)
        return None, None
    with open(path, "rb+") as fh:
        os.fsync(fh.fileno())
    return EvidenceFile.of("clip.mp4", "clip", "video/mp4", path), clip

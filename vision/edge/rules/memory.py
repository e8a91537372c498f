"""Stationary-object memory: violations keyed by class and location, not by track id.

Stalls, parked bikes and garbage stay for hours while their track ids come and
go (occlusion by passers-by, lighting changes, detector misses). Each object is
an entry anchored where it was first seen; a detection of the same class near
that anchor *is* that object, whatever its track id. Entries are deleted when
they fail inertia, when a candidate is unseen for `max_gap_s`, or when an
active one is unseen for `clear_after_s` (then it is reported as cleared).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

import numpy as np

from vision.core.geometry import box_ios, box_iou
from vision.edge.rules.base import ConfidenceSample

MAX_HISTORY = 240  # confidence samples kept per entry (thinned when full)


@dataclass
class MemoryEntry:
    id: int
    class_name: str
    zone: str
    ref_point: np.ndarray  # pixel anchor where the object was first seen: the "location" key
    box: np.ndarray
    height: float
    first_t: float
    first_at: datetime
    last_seen_t: float
    last_seen_at: datetime
    consecutive: int = 1
    entered: bool = False
    onset_t: float = 0.0
    onset_at: datetime | None = None
    seen_frames: int = 0  # since onset
    frames_since_onset: int = 0
    state: Literal["candidate", "active"] = "candidate"
    group: int | None = None  # the violation (case) this entry belongs to once active
    track_ids: set[int] = field(default_factory=set)
    history: deque[ConfidenceSample] = field(default_factory=lambda: deque(maxlen=MAX_HISTORY))
    seen_now: bool = False
    recent: deque[tuple[float, bool]] = field(default_factory=deque)  # (t, seen) of the presence window

    @property
    def presence(self) -> float:
        return self.seen_frames / self.frames_since_onset if self.frames_since_onset else 0.0

    @property
    def recent_presence(self) -> float:
        return sum(seen for _, seen in self.recent) / len(self.recent) if self.recent else 0.0

    def record(self, sample: ConfidenceSample) -> None:
        if len(self.history) == self.history.maxlen:
            # keep the whole span: drop every other sample instead of the oldest
            kept = list(self.history)[::2]
            self.history.clear()
            self.history.extend(kept)
        self.history.append(sample)


@dataclass
class MemoryUpdate:
    matched: list[MemoryEntry]
    created: list[MemoryEntry]
    cleared: list[MemoryEntry]  # active entries absent for clear_after_s (removed)
    dropped: list[MemoryEntry]  # candidates that failed inertia or max_gap_s (removed)


class StationaryMemory:
    def __init__(
        self,
        *,
        inertia_frames: int,
        max_move: float,
        max_gap_s: float,
        clear_after_s: float,
        presence_window_s: float = 10.0,
        passing_classes: frozenset[str] = frozenset(),
    ):
        """`passing_classes`: classes that also pass by (people, ridden bikes). Between looks seconds apart
        the tracker cannot see them move, and on a busy pavement some passer-by is near any spot at most
        looks; a detection of these classes is an entry's object only under a track id already seen there
        or on the same place (box IoU >= SAME_PLACE_IOU), not merely within `max_move`."""
        self.presence_window_s = presence_window_s
        self.passing_classes = passing_classes
        self.inertia_frames = inertia_frames
        self.max_move = max_move
        self.max_gap_s = max_gap_s
        self.clear_after_s = clear_after_s
        self.entries: dict[int, MemoryEntry] = {}
        self._next_id = 1

    def update(
        self,
        t_s: float,
        at: datetime,
        class_names: np.ndarray,
        boxes: np.ndarray,
        points: np.ndarray,
        confidences: np.ndarray,
        tracker_ids: np.ndarray,
        zones: list[str],
    ) -> MemoryUpdate:
        """Feed the eligible detections of one processed frame (already filtered by zone,
        class, confidence and motion)."""
        for e in self.entries.values():
            e.seen_now = False
        heights = (boxes[:, 3] - boxes[:, 1]) if len(boxes) else np.empty(0)
        pairs = self._candidate_pairs(class_names, boxes, points, tracker_ids)
        used_dets: set[int] = set()
        used_entries: set[int] = set()
        matched: list[MemoryEntry] = []
        for _, n, eid in pairs:
            if n in used_dets or eid in used_entries:
                continue
            used_dets.add(n)
            used_entries.add(eid)
            e = self.entries[eid]
            self._see(e, t_s, at, boxes[n], float(heights[n]), float(confidences[n]), int(tracker_ids[n]))
            matched.append(e)
        created: list[MemoryEntry] = []
        for n in range(len(boxes)):
            if n in used_dets or self._part_of_seen(str(class_names[n]), boxes[n]):
                continue
            e = MemoryEntry(
                id=self._next_id,
                class_name=str(class_names[n]),
                zone=zones[n],
                ref_point=np.asarray(points[n], dtype=np.float64).copy(),
                box=np.asarray(boxes[n], dtype=np.float64).copy(),
                height=float(heights[n]),
                first_t=t_s,
                first_at=at,
                last_seen_t=t_s,
                last_seen_at=at,
            )
            self._next_id += 1
            e.seen_now = True
            if int(tracker_ids[n]) >= 0:
                e.track_ids.add(int(tracker_ids[n]))
            e.record(ConfidenceSample(t_s, at, float(confidences[n])))
            self._check_entered(e)
            self.entries[e.id] = e
            created.append(e)
        cleared, dropped = self._expire(t_s)
        for e in self.entries.values():
            if e.entered:
                e.frames_since_onset += 1
                e.seen_frames += int(e.seen_now)
                e.recent.append((t_s, e.seen_now))
                while e.recent and t_s - e.recent[0][0] > self.presence_window_s:
                    e.recent.popleft()
        return MemoryUpdate(matched, created, cleared, dropped)

    def _part_of_seen(self, class_name: str, box: np.ndarray) -> bool:
        """A second box of an object already seen this frame (a stall's awning and its table, one model's
        box and another's, a tile's and the full frame's): mostly inside or around the first one's box."""
        for e in self.entries.values():
            if not e.seen_now or e.class_name != class_name:
                continue
            if _overlap_of_smaller(box, e.box) >= PART_OVERLAP:
                return True
            if class_name in STACKED_CLASSES and _stacked(box, e.box):
                return True
        return False

    def _candidate_pairs(
        self, class_names: np.ndarray, boxes: np.ndarray, points: np.ndarray, tracker_ids: np.ndarray
    ) -> list[tuple[float, int, int]]:
        """(cost, detection, entry) for every detection within reach of an entry of its class;
        cheapest first. A detection carrying one of the entry's track ids is preferred."""
        pairs: list[tuple[float, int, int]] = []
        if not self.entries or len(points) == 0:
            return pairs
        ids = list(self.entries)
        refs = np.stack([self.entries[i].ref_point for i in ids])
        reach = np.asarray([self.max_move * max(self.entries[i].height, 1.0) for i in ids])
        classes = np.asarray([self.entries[i].class_name for i in ids], dtype=object)
        dist = np.hypot(points[:, None, 0] - refs[None, :, 0], points[:, None, 1] - refs[None, :, 1])
        ok = (dist <= reach[None, :]) & (np.asarray(class_names, dtype=object)[:, None] == classes[None, :])
        passing = np.asarray([c in self.passing_classes for c in classes], dtype=bool)
        if passing.any() and ok[:, passing].any():
            same_track = np.asarray(
                [[int(t) in self.entries[i].track_ids for i in ids] for t in tracker_ids], dtype=bool
            ).reshape(len(points), len(ids))
            same_place = box_iou(boxes, np.stack([self.entries[i].box for i in ids])) >= SAME_PLACE_IOU
            ok &= ~passing[None, :] | same_track | same_place
        for n, j in zip(*np.nonzero(ok), strict=True):
            e = self.entries[ids[j]]
            cost = dist[n, j] / reach[j]
            if int(tracker_ids[n]) in e.track_ids:
                cost -= 1.0
            pairs.append((float(cost), int(n), ids[j]))
        pairs.sort()
        return pairs

    def _see(
        self, e: MemoryEntry, t_s: float, at: datetime, box: np.ndarray, height: float, conf: float, tid: int
    ) -> None:
        e.box = (
            0.8 * e.box + 0.2 * np.asarray(box, dtype=np.float64) if e.entered else np.asarray(box, dtype=np.float64)
        )
        e.height = 0.8 * e.height + 0.2 * height
        if not e.entered:
            if t_s - e.last_seen_t > self.max_gap_s:  # "consecutive" frames across a stream gap: restart
                e.consecutive, e.first_t, e.first_at = 0, t_s, at
            e.consecutive += 1
        e.last_seen_t, e.last_seen_at = t_s, at
        e.seen_now = True
        if tid >= 0:
            e.track_ids.add(tid)
            if len(e.track_ids) > 16:
                e.track_ids = set(sorted(e.track_ids)[-16:])
        e.record(ConfidenceSample(t_s, at, conf))
        self._check_entered(e)

    def _check_entered(self, e: MemoryEntry) -> None:
        if not e.entered and e.consecutive >= self.inertia_frames:
            e.entered = True
            # onset is the first frame of the consecutive streak
            e.onset_t, e.onset_at = e.first_t, e.first_at

    def _expire(self, t_s: float) -> tuple[list[MemoryEntry], list[MemoryEntry]]:
        cleared, dropped = [], []
        for eid in list(self.entries):
            e = self.entries[eid]
            if e.seen_now:
                continue
            absent = t_s - e.last_seen_t
            if not e.entered:
                dropped.append(self.entries.pop(eid))  # inertia needs consecutive frames
            elif e.state == "candidate" and absent > self.max_gap_s:
                dropped.append(self.entries.pop(eid))
            elif e.state == "active" and absent > self.clear_after_s:
                cleared.append(self.entries.pop(eid))
        return cleared, dropped

    def __len__(self) -> int:
        return len(self.entries)

    def reset(self) -> None:
        self.entries.clear()


SAME_PLACE_IOU = 0.5  # a passing-class detection under a new track id on this much of an entry's box is its object
PART_OVERLAP = 0.6  # intersection over the smaller box above which two boxes of one class are one object
# Objects built of parts one above the other (a stall's awning or umbrella over its table and goods): a box
# right above or below one already seen, sharing most of its width, is the same object.
STACKED_CLASSES = frozenset({"vendor_stall"})
STACK_GAP = 0.25  # of the taller box's height


def _stacked(a: np.ndarray, b: np.ndarray) -> bool:
    width_overlap = min(a[2], b[2]) - max(a[0], b[0])
    narrower = min(a[2] - a[0], b[2] - b[0])
    gap = max(a[1], b[1]) - min(a[3], b[3])  # < 0 when they overlap vertically
    taller = max(a[3] - a[1], b[3] - b[1])
    return bool(narrower > 0 and width_overlap >= PART_OVERLAP * narrower and gap <= STACK_GAP * taller)


def _overlap_of_smaller(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over the smaller box's area: the larger of the two containments."""
    return float(box_ios(a, b)[0, 0])

"""One ByteTrack per camera (roboflow `trackers`), driven by stream time.

`trackers` keeps its id counter per instance, so ids never leak between
cameras, and accepts a timestamp per update, so a camera sampled at 1 fps or
one that skipped frames after a reconnect keeps its tracks for the same
number of seconds.

Why twins are tracked once: one object often arrives as two boxes in the same
place, the detector's `truck` and the crop classifier's `muddy_truck` name for
that very box (vision/edge/detection/proposal_naming.py), or one box under two
COCO classes. ByteTrack is class-agnostic, so it made two tracks of them and
swapped their ids from look to look; the truck rule then split the truck's mud
votes and exit crossing between two ids, and the live demo's truck sometimes
opened no case. Boxes overlapping a stronger one by `TWIN_IOU` are left out of
tracking and take its track id.
"""

from __future__ import annotations

import numpy as np
import supervision as sv
from trackers import ByteTrackTracker

from vision.core.geometry import box_iou
from vision.edge.config import TrackerConfig

TWIN_IOU = 0.9  # two boxes this alike are one object (a box and its classifier name, or two classes)


def _twins(detections: sv.Detections) -> dict[int, int]:
    """Index of each twin -> the index of the most confident box it goes with."""
    n = len(detections)
    if n < 2:
        return {}
    conf = np.asarray(detections.confidence if detections.confidence is not None else np.ones(n))
    xyxy = np.asarray(detections.xyxy, dtype=np.float64)
    iou = box_iou(xyxy, xyxy)
    twin_of: dict[int, int] = {}
    kept: set[int] = set()
    for i in map(int, np.argsort(-conf, kind="stable")):
        if i in twin_of:
            continue
        kept.add(i)
        for j in map(int, np.flatnonzero(iou[i] >= TWIN_IOU)):
            if j not in kept and j not in twin_of:
                twin_of[j] = i
    return twin_of


def _subset(detections: sv.Detections, mask: np.ndarray) -> sv.Detections:
    subset = detections[mask]
    assert isinstance(subset, sv.Detections)  # a boolean mask selects detections, not one field
    return subset


def _tracker_id_at(tracked: sv.Detections, box: np.ndarray) -> int:
    """The track id ByteTrack gave the box at `box` (-1 when it gave none)."""
    if tracked.tracker_id is None or len(tracked) == 0:
        return -1
    same = np.flatnonzero(np.all(np.isclose(np.asarray(tracked.xyxy), box), axis=1))
    return int(tracked.tracker_id[same[0]]) if len(same) else -1


class CameraTracker:
    def __init__(self, config: TrackerConfig | None = None, *, fps_hint: float = 10.0):
        self.config = config or TrackerConfig()
        self.fps_hint = fps_hint
        self._tracker = self._new_tracker()

    def _new_tracker(self) -> ByteTrackTracker:
        cfg = self.config
        # trackers counts the lost buffer in 30 fps frames; convert our seconds.
        return ByteTrackTracker(
            lost_track_buffer=max(1, round(cfg.lost_track_s * 30)),
            frame_rate=self.fps_hint,
            track_activation_threshold=cfg.activation_confidence,
            minimum_consecutive_frames=1,
            minimum_iou_threshold=cfg.min_iou,
            high_conf_det_threshold=max(cfg.activation_confidence, 0.5),
        )

    def update(self, detections: sv.Detections, t_s: float) -> sv.Detections:
        """Detections with `tracker_id` set (-1 where a low-score box matched no track); twins share one."""
        twin_of = _twins(detections)
        if not len(twin_of):
            tracked = self._tracker.update(detections, timestamp=float(t_s))
        else:
            alone = np.ones(len(detections), dtype=bool)
            alone[list(twin_of)] = False
            tracked = self._tracker.update(_subset(detections, alone), timestamp=float(t_s))
            twins = _subset(detections, ~alone)
            twins.tracker_id = np.asarray(
                [_tracker_id_at(tracked, detections.xyxy[twin_of[int(j)]]) for j in np.flatnonzero(~alone)],
                dtype=np.int64,
            )
            tracked = sv.Detections.merge([tracked, twins])
        if "class_name" not in tracked.data and tracked.class_id is not None and len(tracked) == 0:
            tracked.data["class_name"] = np.empty(0, dtype=object)
        return tracked

    def reset(self) -> None:
        self._tracker = self._new_tracker()

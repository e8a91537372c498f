"""One ByteTrack per camera (roboflow `trackers`), driven by stream time.

`trackers` keeps its id counter per instance, so ids never leak between
cameras, and accepts a timestamp per update, so a camera sampled at 1 fps or
one that skipped frames after a reconnect keeps its tracks for the same
number of seconds.
"""

from __future__ import annotations

import numpy as np
import supervision as sv
from trackers import ByteTrackTracker

from vision.edge.config import TrackerConfig


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
        """Detections with `tracker_id` set (-1 where a low-score box matched no track)."""
        tracked = self._tracker.update(detections, timestamp=float(t_s))
        if "class_name" not in tracked.data and tracked.class_id is not None and len(tracked) == 0:
            tracked.data["class_name"] = np.empty(0, dtype=object)
        return tracked

    def reset(self) -> None:
        self._tracker = self._new_tracker()

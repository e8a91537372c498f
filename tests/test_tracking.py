"""ByteTrack per camera, on stream time."""

from __future__ import annotations

import numpy as np

from vision.edge.detection import empty_detections, make_detections
from vision.edge.tracking import CameraTracker

NAMES = ["person", "bicycle"]


def box_at(x: float, y: float = 100.0, conf: float = 0.9, cls: int = 0):
    return make_detections(np.array([[x, y, x + 30, y + 80]], np.float32), np.array([conf]), np.array([cls]), NAMES)


def test_moving_object_keeps_one_id():
    tracker = CameraTracker(fps_hint=10)
    ids = []
    for i in range(20):
        out = tracker.update(box_at(100 + 3 * i), t_s=i * 0.1)
        ids.extend(t for t in out.tracker_id if t >= 0)
    assert len(ids) >= 18 and len(set(ids)) == 1


def test_trackers_of_two_cameras_are_independent():
    a, b = CameraTracker(fps_hint=10), CameraTracker(fps_hint=10)
    for i in range(5):
        out_a = a.update(box_at(100 + i), t_s=i * 0.1)
        out_b = b.update(box_at(300 + i), t_s=i * 0.1)
    assert out_a.tracker_id.tolist() == out_b.tracker_id.tolist()  # each counts from its own start


def test_lost_track_expires_on_stream_time():
    from vision.edge.config import TrackerConfig

    tracker = CameraTracker(TrackerConfig(lost_track_s=2.0), fps_hint=1)
    for i in range(4):
        first = tracker.update(box_at(100), t_s=float(i))
    first_id = int(first.tracker_id[0])
    # gap shorter than lost_track_s at 1 fps: same object, same id
    tracker.update(empty_detections(), t_s=4.0)
    again = tracker.update(box_at(100), t_s=4.5)
    assert int(again.tracker_id[0]) == first_id
    # absent for 30 s of stream time: the id is gone, a new one starts
    tracker.update(empty_detections(), t_s=10.0)
    tracker.update(empty_detections(), t_s=34.5)
    later = [tracker.update(box_at(100), t_s=35.0 + k) for k in range(3)][-1]
    assert int(later.tracker_id[0]) != first_id


def test_reset_forgets_tracks():
    tracker = CameraTracker(fps_hint=10)
    for i in range(5):
        tracker.update(box_at(100 + i), t_s=i * 0.1)
    tracker.reset()
    out = tracker.update(box_at(500), t_s=10.0)
    assert (out.tracker_id == -1).all()


def test_a_box_and_its_classifier_name_are_one_object_with_one_track():
    """The namer adds `muddy_truck` at the very box the detector called `truck`: one truck, so one track id for
    both boxes at every look (two tracks swapped ids between looks and split the truck rule's votes)."""
    names = ["truck", "muddy_truck", "person"]
    tracker = CameraTracker(fps_hint=2)
    ids: set[int] = set()
    for i in range(12):
        x = 600.0 - 25 * i
        truck = [x, 140.0, x + 140, 260.0]
        dets = make_detections(
            np.array([truck, truck, [100.0, 100, 130, 180]], np.float32),
            np.array([0.55, 0.9 if i % 2 else 0.5, 0.8]),  # which of the two is stronger changes between looks
            np.array([0, 1, 2]),
            names,
        )
        out = tracker.update(dets, t_s=i * 0.5)
        assert len(out) == 3  # nothing is dropped: the rules still see the mud box
        by_name = dict(zip(out.data["class_name"], out.tracker_id, strict=True))
        assert by_name["truck"] == by_name["muddy_truck"]
        if by_name["truck"] >= 0:
            ids.add(int(by_name["truck"]))
            assert by_name["person"] != by_name["truck"]
    assert len(ids) == 1


def test_boxes_that_only_overlap_stay_two_objects():
    names = ["bicycle"]
    tracker = CameraTracker(fps_hint=2)
    for i in range(4):
        dets = make_detections(
            np.array([[100.0, 100, 140, 180], [120.0, 100, 160, 180]], np.float32),  # two bikes side by side
            np.array([0.8, 0.7]),
            np.array([0, 0]),
            names,
        )
        out = tracker.update(dets, t_s=i * 0.5)
    assert len(set(out.tracker_id.tolist())) == 2

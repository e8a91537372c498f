"""Evidence: the ring buffer's bounds, snapshots, and a clip that decodes with the configured window."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import av
import cv2
import numpy as np
import pytest
import supervision as sv

from tests.support_edge import T0
from vision.edge.casework.annotate import FrameAnnotator
from vision.edge.casework.evidence import (
    BufferedFrame,
    FrameRing,
    clip_window,
    write_clip,
    write_clip_file,
    write_images,
)
from vision.edge.config import EvidenceConfig, ZoneConfig
from vision.edge.rules.base import ConfidenceSample, Violation

ZONE = ZoneConfig(name="pavement", kind="no_vending", polygon=[(0.1, 0.5), (0.9, 0.5), (0.9, 0.95), (0.1, 0.95)])


def footage_frames(path, n: int, every: int = 1):
    cap = cv2.VideoCapture(str(path))
    fps = cap.get(cv2.CAP_PROP_FPS) or 10.0
    out, i = [], 0
    while len(out) < n:
        ok, img = cap.read()
        if not ok:
            break
        if i % every == 0:
            out.append((i / fps, img))
        i += 1
    cap.release()
    return out


def violation(onset_t: float, detected_t: float, **kw) -> Violation:
    return Violation(
        rule="street_vending",
        violation_type="street_vending",
        camera_id="cam1",
        zone="pavement",
        box_px=(300.0, 300.0, 420.0, 450.0),
        frame_size=(768, 576),
        classes=["person"],
        object_count=1,
        confidence=0.8,
        confidence_history=[ConfidenceSample(onset_t, T0, 0.8)],
        onset_t_s=onset_t,
        onset_at=T0 + timedelta(seconds=onset_t),
        detected_t_s=detected_t,
        detected_at=T0 + timedelta(seconds=detected_t),
        **kw,
    )


def decode(path):
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        frames = list(c.decode(s))
        return s, frames, float(c.duration) / av.time_base if c.duration else None


def test_ring_bounds_by_time_and_bytes():
    img = np.random.default_rng(0).integers(0, 255, (120, 160, 3), dtype=np.uint8)
    ring = FrameRing(max_seconds=5, max_bytes=10**9)
    for i in range(100):
        ring.add(i * 0.1, T0, img)
    assert ring.oldest_t == pytest.approx(4.9) and ring.latest_t == pytest.approx(9.9)
    one = ring.nbytes / len(ring)
    small = FrameRing(max_seconds=100, max_bytes=int(one * 10.5))
    for i in range(100):
        small.add(i * 0.1, T0, img)
    assert len(small) <= 11 and small.dropped_for_memory >= 89
    assert ring.window(7.0, 8.0)[0].t_s == pytest.approx(7.0)
    assert ring.window(7.05, 8.0)[0].t_s == pytest.approx(7.0), "the frame showing the start is included"


@pytest.mark.parametrize("fps", [10.0, 2.0])
def test_clip_decodes_and_matches_window(tmp_path, footage_path, fps):
    every = int(10 / fps)
    frames = footage_frames(footage_path, int(12 * fps), every=every)
    ring = FrameRing(max_seconds=60, max_bytes=64 << 20)
    for t, img in frames:
        ring.add(t, T0 + timedelta(seconds=t), img)
    cfg = EvidenceConfig(clip_before_s=3, clip_after_s=4)
    v = violation(onset_t=5.0, detected_t=9.0)
    files = write_images(v, frames[-1][1], [ZONE], cfg, tmp_path / "ev")
    clip_file, clip = write_clip_file(v, ring.window(*clip_window(v, cfg)), cfg, tmp_path / "ev", clip_fps=fps)
    files.append(clip_file)
    by_kind = {f.kind: f for f in files}
    assert set(by_kind) == {"snapshot", "annotated", "clip"}
    for f in files:
        assert f.path.stat().st_size == f.size_bytes
        assert hashlib.sha256(f.path.read_bytes()).hexdigest() == f.sha256
    stream, decoded, duration = decode(by_kind["clip"].path)
    assert stream.codec_context.name == "h264"
    assert stream.codec_context.pix_fmt == "yuv420p", "browsers need 4:2:0"
    assert (decoded[0].width, decoded[0].height) == (768, 576)
    assert len(decoded) == clip.frames == round(7 * fps)
    assert duration == pytest.approx(7.0, abs=1 / fps), "duration = clip_before_s + clip_after_s (+-1 frame)"
    assert clip.start_t == pytest.approx(2.0)
    snap = cv2.imread(str(by_kind["snapshot"].path))
    ann = cv2.imread(str(by_kind["annotated"].path))
    assert snap.shape == ann.shape == (576, 768, 3)
    assert np.abs(snap.astype(int) - ann.astype(int)).mean() > 1, "annotation draws on the copy"


def test_clip_frames_follow_stream_time(tmp_path):
    """Frames at irregular times (a stall in the stream): each output frame shows the newest
    frame at or before its time, so the clip keeps real-time pacing."""
    from vision.edge.casework.evidence import BufferedFrame

    def solid(v):
        ok, buf = cv2.imencode(".jpg", np.full((64, 64, 3), v, dtype=np.uint8))
        return BufferedFrame(0, T0, buf.tobytes(), 64, 64)

    frames = [BufferedFrame(t, T0, solid(v).jpeg, 64, 64) for t, v in [(0.0, 0), (1.0, 100), (3.5, 200)]]
    clip = write_clip(frames, 0.0, 5.0, 2.0, tmp_path / "c.mp4")
    _, decoded, _ = decode(tmp_path / "c.mp4")
    levels = [int(round(f.to_ndarray(format="gray").mean() / 50)) * 50 for f in decoded]
    assert clip.frames == 10
    assert levels == [0, 0, 100, 100, 100, 100, 100, 200, 200, 200]


def test_crops_become_evidence(tmp_path):
    img = np.zeros((576, 768, 3), dtype=np.uint8)
    v = violation(0.0, 0.0, crops={"vehicle_crop": img[:100, :200], "plate_crop": img[:30, :60]})
    files = write_images(v, img, [ZONE], EvidenceConfig(), tmp_path)
    assert {f.name: f.kind for f in files} == {
        "snapshot.jpg": "snapshot",
        "annotated.jpg": "annotated",
        "vehicle.jpg": "vehicle_crop",
        "plate.jpg": "plate_crop",
    }
    assert write_clip_file(v, [], EvidenceConfig(), tmp_path, clip_fps=1) == (None, None), "no frames, no clip"


def test_ring_keeps_recent_frames_dense_and_old_ones_sparse():
    img = np.zeros((48, 64, 3), dtype=np.uint8)
    ring = FrameRing(max_seconds=300, max_bytes=10**9, dense_s=10, sparse_interval_s=1.0)
    for i in range(0, 1000):  # 100 s at 10 fps
        ring.add(i / 10, T0, img)
    times = [f.t_s for f in ring.frames()]
    old = [t for t in times if t < 99.9 - 10]
    assert np.allclose(np.diff(old), 1.0), "older than dense_s: one frame per second"
    assert len([t for t in times if t >= 90]) == 100, "the last 10 s at the full 10 fps"
    assert ring.oldest_t == 0.0 and len(ring) == 90 + 101  # 0..89 s sparse, 89.9..99.9 s dense


def test_a_crop_of_no_evidence_kind_is_refused(tmp_path):
    img = np.zeros((64, 64, 3), dtype=np.uint8)
    v = violation(0.0, 0.0, crops={"wheel_crop": img[:10, :10]})
    with pytest.raises(ValueError, match="wheel_crop"):
        write_images(v, img, [ZONE], EvidenceConfig(), tmp_path)


def test_a_damaged_buffered_frame_says_so():
    # cv2.imdecode returns None for bytes that are no JPEG; the clip writer used to fail on None.shape
    with pytest.raises(ValueError, match="cannot decode"):
        BufferedFrame(1.0, T0, b"not a jpeg", 64, 48).image()


def test_annotator_draws_detections_without_scores():
    # detections without confidence (a tracker's or a caller's) used to fail in zip(names, None, ids)
    img = np.zeros((48, 64, 3), dtype=np.uint8)
    dets = sv.Detections(
        xyxy=np.array([[4.0, 4.0, 30.0, 30.0]]), class_id=np.array([0]), data={"class_name": np.array(["vendor_stall"])}
    )
    out = FrameAnnotator().draw_detections(img.copy(), dets)
    assert out.shape == img.shape and out.any(), "the box is drawn"

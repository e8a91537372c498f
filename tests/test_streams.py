"""Stream sources without a network: parsing, masking, files, images, sampling, keyframes,
the latest-frame slot, backoff, and CameraReader on files."""

from __future__ import annotations

import logging
import time
from datetime import UTC
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.support_streams import GOP, free_port, wait_until
from vision.core.backoff import Backoff
from vision.edge.streams import (
    CameraReader,
    Frame,
    LatestFrameSlot,
    Sampler,
    SourceError,
    Timeline,
    mask_secrets,
    open_source,
    parse_source,
)

pytestmark = pytest.mark.timeout(60)

VTEST_FRAMES, VTEST_FPS, VTEST_SIZE = 795, 10.0, (768, 576)


# ---------------------------------------------------------------- parsing and masking
@pytest.mark.parametrize(
    ("source", "kind", "target", "live"),
    [
        ("device:0", "device", 0, True),
        ("2", "device", 2, True),
        ("rtsp://user:pw@10.0.0.5:8554/live", "rtsp", "rtsp://user:pw@10.0.0.5:8554/live", True),
        ("http://cam.local/video.mjpg", "http", "http://cam.local/video.mjpg", True),
        ("srt://10.0.0.9:9000", "stream", "srt://10.0.0.9:9000", True),
        ("datasets/footage/vtest.avi", "file", "datasets/footage/vtest.avi", False),
        ("file:///data/clip.mp4", "file", "/data/clip.mp4", False),
        ("/data/still.JPG", "image", "/data/still.JPG", False),
        ("shot.png", "image", "shot.png", False),
    ],
)
def test_parse_source_kinds(source: str, kind: str, target: object, live: bool) -> None:
    spec = parse_source(source)
    assert (spec.kind, spec.target, spec.live) == (kind, target, live)


@pytest.mark.parametrize(
    ("source", "fragment"),
    [
        ("", "empty source"),
        ("   ", "empty source"),
        ("device:front", "device:N"),
        ("foo://cam/1", "unsupported URL scheme 'foo'"),
        ("rtsp:///nohost", "without a host"),
        ("rtsp://cam:99999/x", "port"),
    ],
)
def test_parse_source_errors_name_the_problem(source: str, fragment: str) -> None:
    with pytest.raises(SourceError, match=fragment):
        parse_source(source)


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("rtsp://admin:s3cr3t@10.0.0.5:554/h264", "rtsp://admin:***@10.0.0.5:554/h264"),
        ("failed rtsp://a:b@h/x and http://c:d@e/f", "failed rtsp://a:***@h/x and http://c:***@e/f"),
        ("http://cam/snap.cgi?user=u&password=abc&x=1", "http://cam/snap.cgi?user=u&password=***&x=1"),
        ("rtsp://host/live?token=xyz", "rtsp://host/live?token=***"),
        ("rtsp://onlyuser@host/x", "rtsp://onlyuser@host/x"),
        ("/plain/path.mp4", "/plain/path.mp4"),
    ],
)
def test_mask_secrets(text: str, masked: str) -> None:
    assert mask_secrets(text) == masked


# ---------------------------------------------------------------- offline sources
def test_open_source_reads_every_frame_with_timestamps(footage_path: Path) -> None:
    with open_source(str(footage_path), camera_id="c1") as src:
        assert src.fps == VTEST_FPS and src.size == VTEST_SIZE
        frames = list(src)
    assert len(frames) == VTEST_FRAMES
    first = frames[0]
    assert isinstance(first, Frame) and first.camera_id == "c1"
    assert first.image.shape == (576, 768, 3) and first.image.dtype == np.uint8
    assert first.captured_at.tzinfo is not None and first.captured_at.utcoffset() == UTC.utcoffset(None)
    assert [f.index for f in frames] == list(range(VTEST_FRAMES))
    t = np.array([f.t_s for f in frames])
    assert np.allclose(t, np.arange(VTEST_FRAMES) / VTEST_FPS, atol=1e-6)
    # vtest.avi (MPEG-4 part 2) has a keyframe every 250 frames; OpenCV reports the frame type.
    assert [f.index for f in frames if f.keyframe] == [0, 250, 500, 750]


@pytest.mark.parametrize("fps", [0.5, 1.0, 2.0, 3.0, 7.0, 10.0, 25.0])
def test_sample_fps_on_a_file_keeps_the_expected_count(footage_path: Path, fps: float) -> None:
    with open_source(str(footage_path), sample_fps=fps) as src:
        times = [f.t_s for f in src]
    duration = VTEST_FRAMES / VTEST_FPS  # 79.5 s of stream time
    expected = duration * min(fps, VTEST_FPS)
    assert abs(len(times) - expected) <= 1, (len(times), expected)
    gaps = np.diff(times)
    assert gaps.min() >= min(1 / fps, 1 / VTEST_FPS) - 0.1 - 1e-9  # never two frames in one period


def test_keyframe_mode_on_vtest_decodes_only_keyframes(footage_path: Path) -> None:
    with open_source(str(footage_path), decode="keyframes") as src:
        assert src.backend == "pyav" and src.fps == VTEST_FPS and src.size == VTEST_SIZE
        frames = list(src)
        decoded = src.decoded_frames
    assert [f.t_s for f in frames] == [0.0, 25.0, 50.0, 75.0]
    assert all(f.keyframe for f in frames) and decoded == 4 < VTEST_FRAMES
    assert frames[1].image.shape == (576, 768, 3)


def test_keyframe_mode_on_h264_gop_file(h264_gop_file: Path) -> None:
    with open_source(str(h264_gop_file)) as src:
        every = list(src)
    with open_source(str(h264_gop_file), decode="keyframes") as src:
        keys = list(src)
        decoded = src.decoded_frames
    assert len(every) == 100
    # Both backends agree on which frames are keyframes: every GOP-th one.
    assert [f.index for f in every if f.keyframe] == list(range(0, 100, GOP))
    assert len(keys) == decoded == 100 // GOP
    assert all(f.keyframe for f in keys)
    assert [round(f.t_s, 3) for f in keys] == [round(i / 10, 3) for i in range(0, 100, GOP)]
    # The keyframe decoded by PyAV is the same picture OpenCV decoded (same FFmpeg decoder).
    diff = np.abs(keys[3].image.astype(int) - every[30].image.astype(int)).mean()
    assert diff < 2.0


def test_keyframes_and_sampling_combine(h264_gop_file: Path) -> None:
    with open_source(str(h264_gop_file), decode="keyframes", sample_fps=0.5) as src:
        times = [f.t_s for f in src]
    assert times == pytest.approx([0.0, 2.0, 4.0, 6.0, 8.0])


def test_still_image_offline_is_one_frame(tmp_path: Path) -> None:
    image = np.full((48, 64, 3), (10, 20, 30), np.uint8)
    path = tmp_path / "still.png"
    cv2.imwrite(str(path), image)
    with open_source(str(path), camera_id="snap") as src:
        assert src.size == (64, 48)
        frames = list(src)
    assert len(frames) == 1 and frames[0].keyframe and frames[0].t_s == 0.0
    assert np.array_equal(frames[0].image, image)


@pytest.mark.parametrize(
    ("make", "fragment"),
    [
        (lambda d: d / "missing.mp4", "file not found"),
        (lambda d: d / "missing.jpg", "file not found"),
        (lambda d: d, "is a directory"),
        (lambda d: _write(d / "notes.mp4", b"this is not a video"), "not a video"),
        (lambda d: _write(d / "broken.jpg", b"\xff\xd8 nope"), "not an image"),
    ],
)
@pytest.mark.parametrize("decode", ["all", "keyframes"])
def test_bad_files_raise_source_error(tmp_path: Path, make, fragment: str, decode: str) -> None:  # type: ignore[no-untyped-def]
    path = make(tmp_path)
    if decode == "keyframes" and fragment == "not a video":
        fragment = "cannot open with PyAV"
    with pytest.raises(SourceError, match=fragment) as info:
        open_source(str(path), decode=decode)  # type: ignore[arg-type]
    assert str(path) in str(info.value)


def test_refused_url_is_a_clear_source_error_with_masked_password() -> None:
    url = f"rtsp://admin:hunter2@127.0.0.1:{free_port()}/cam"
    started = time.monotonic()
    with pytest.raises(SourceError, match="connection refused") as info:
        open_source(url, open_timeout_s=3)
    assert time.monotonic() - started < 3
    assert "hunter2" not in str(info.value) and "admin:***@" in str(info.value)


def test_absent_device_is_a_clear_source_error() -> None:
    with pytest.raises(SourceError, match="no local camera"):
        open_source("device:63")


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"sample_fps": 0}, "sample_fps"),
        ({"sample_fps": -1.0}, "sample_fps"),
        ({"decode": "iframes"}, "decode"),
        ({"open_timeout_s": 0}, "open_timeout_s"),
    ],
)
def test_bad_options_name_the_argument(footage_path: Path, kwargs: dict, field: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(ValueError, match=field):
        open_source(str(footage_path), **kwargs)
    with pytest.raises(ValueError, match=field):
        CameraReader("c", str(footage_path), **kwargs)


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


# ---------------------------------------------------------------- building blocks
def test_timeline_continues_across_segments() -> None:
    tl = Timeline(live=True)
    assert [tl.stamp(pts, 100 + pts, 0.1) for pts in (5.0, 5.1, 5.2)] == pytest.approx([0, 0.1, 0.2])
    tl.new_segment()  # reconnect 3 s of wall clock later; the new stream's pts restart at 0
    assert tl.stamp(0.0, 108.2, 0.1) == pytest.approx(3.2)
    assert tl.stamp(0.1, 108.3, 0.1) == pytest.approx(3.3)
    # pts jumping back inside a stream re-anchors instead of freezing t_s
    assert tl.stamp(0.0, 108.4, 0.1) == pytest.approx(3.4)
    assert tl.stamp(0.1, 108.5, 0.1) == pytest.approx(3.5)
    # no pts at all (e.g. MJPEG): wall clock
    assert tl.stamp(None, 109.0, 0.1) == pytest.approx(4.0)


def test_timeline_for_files_keeps_pts_and_loops_by_frame_interval() -> None:
    tl = Timeline(live=False)
    assert [tl.stamp(p, 0.0, 0.1) for p in (0.0, 0.1, 0.2)] == pytest.approx([0, 0.1, 0.2])
    tl.new_segment()  # loop restart
    assert [tl.stamp(p, 0.0, 0.1) for p in (0.0, 0.1)] == pytest.approx([0.3, 0.4])
    assert tl.stamp(0.1, 0.0, 0.1) == pytest.approx(0.5)  # repeated pts still advances


def test_sampler_buckets_on_stream_time() -> None:
    sampler = Sampler(2.0)
    kept = [t for t in np.arange(0, 3.0, 0.1).round(3) if sampler.take(float(t))]
    assert kept == [0.0, 0.5, 1.0, 1.5, 2.0, 2.5]
    assert all(Sampler(None).take(t) for t in (0.0, 0.0, 0.01))


def test_backoff_grows_with_jitter_and_is_capped() -> None:
    backoff = Backoff(1.0, 8.0)
    delays = [backoff.next_delay() for _ in range(8)]
    for attempt, delay in enumerate(delays):
        base = min(8.0, 2.0**attempt)
        assert 0.5 * base <= delay <= base
    backoff.reset()
    assert backoff.next_delay() <= 1.0


def test_latest_frame_slot_keeps_only_the_newest() -> None:
    slot = LatestFrameSlot()
    frames = [Frame("c", -1, float(i), _utc(), np.zeros((1, 1, 3), np.uint8), True) for i in range(5)]
    for f in frames:
        slot.put(f)
    got = slot.take(0)
    assert got is frames[-1] and slot.dropped == 4
    assert slot.take(0.05) is None  # no backlog behind the newest
    slot.close()
    started = time.monotonic()
    assert slot.take(5) is None and time.monotonic() - started < 1  # closed: no waiting


def _utc():  # type: ignore[no-untyped-def]
    from datetime import datetime

    return datetime.now(UTC)


# ---------------------------------------------------------------- CameraReader on files
def test_slow_consumer_gets_the_newest_frame_and_drops_are_counted(footage_path: Path) -> None:
    started = time.monotonic()
    reader = CameraReader("slow", str(footage_path), realtime=True)
    reader.start()
    try:
        first = reader.get(timeout=10)
        assert first is not None and first.index == 0
        # a detector far slower than the camera: before it asks again, the reader offers ten more
        # frames and keeps only the newest (each one replaced unseen is counted as dropped)
        dropped_before = reader.status().dropped_frames
        assert wait_until(lambda: reader.status().dropped_frames >= dropped_before + 9, 30)
        second = reader.get(timeout=5)
        waited_s = time.monotonic() - started
        assert second is not None and second.index == 1
        # the newest frame is those ten frames (1 s at 10 fps) of stream later, not the next one;
        # realtime playback offers no frame before its time (decoding flat out would run far ahead)
        assert 1.0 - 1e-6 <= second.t_s - first.t_s <= waited_s + 0.2
        status = reader.status()
        assert status.dropped_frames >= dropped_before + 9
        assert status.delivered_frames == 2
        assert status.online and status.state == "online" and status.backend == "opencv-ffmpeg"
        assert 3 <= status.fps <= 14  # offered at the file's 10 fps
        assert status.decoded_frames >= 11
    finally:
        reader.stop()


def test_no_backlog_builds_up(footage_path: Path) -> None:
    reader = CameraReader("fast", str(footage_path), realtime=False)  # decodes as fast as it can
    reader.start()
    try:
        assert wait_until(lambda: reader.status().decoded_frames >= 200, 20)
        taken = [reader.get(timeout=5) for _ in range(3)]
        assert all(f is not None for f in taken)
        times = [f.t_s for f in taken if f is not None]
        assert times == sorted(times)
        status = reader.status()
        # every sampled frame was either delivered, dropped, or is the one pending
        assert status.decoded_frames - status.delivered_frames - status.dropped_frames in (0, 1, 2)
    finally:
        reader.stop()


def test_file_loop_keeps_time_increasing(h264_gop_file: Path) -> None:
    reader = CameraReader("loop", str(h264_gop_file), realtime=False, loop=True, sample_fps=5)
    reader.start()
    seen: list[float] = []
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and (not seen or seen[-1] < 25):
            frame = reader.get(timeout=2)
            if frame is not None:
                seen.append(frame.t_s)
        assert seen and seen[-1] >= 25, "file of 10 s should have looped at least twice"
        assert seen == sorted(seen)
        assert reader.status().reconnects == 0  # a loop is not a reconnect
    finally:
        reader.stop()


def test_file_without_loop_ends(h264_gop_file: Path) -> None:
    reader = CameraReader("once", str(h264_gop_file), realtime=False, decode="keyframes")
    reader.start()
    try:
        assert wait_until(lambda: not reader.running, 15)
        status = reader.status()
        assert status.state == "ended" and not status.online
        assert status.decoded_frames == 100 // GOP and status.backend == "pyav"
        frame = reader.get(timeout=0.1)  # the newest keyframe is still there
        assert frame is not None and frame.keyframe and frame.t_s == pytest.approx(9.0)
        started = time.monotonic()
        assert reader.get(timeout=5) is None and time.monotonic() - started < 1  # ended: no wait
    finally:
        reader.stop()


def test_still_image_is_offered_at_the_sample_rate(tmp_path: Path) -> None:
    path = tmp_path / "still.jpg"
    cv2.imwrite(str(path), np.zeros((32, 32, 3), np.uint8))
    reader = CameraReader("snap", str(path), sample_fps=10)
    reader.start()
    try:
        frames = []
        started = time.monotonic()
        while time.monotonic() - started < 1.2:
            frame = reader.get(timeout=1)
            if frame is not None:
                frames.append(frame)
        assert 8 <= len(frames) <= 14
        assert [f.index for f in frames] == list(range(len(frames)))
        assert np.diff([f.t_s for f in frames]).min() >= 0.09
    finally:
        reader.stop()


def test_missing_file_is_retried_never_raised(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="vision.edge.streams")
    missing = tmp_path / "later.mp4"
    reader = CameraReader("gone", str(missing), backoff_initial_s=0.05, backoff_max_s=0.1)
    reader.start()
    try:
        assert wait_until(lambda: reader.status().open_failures >= 4, 10)
        status = reader.status()
        assert not status.online and status.state == "offline"
        assert status.last_error is not None and "file not found" in status.last_error
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "gone" in r.getMessage()]
        assert len(warnings) == 1  # one warning per state change, not one per retry
        assert reader.get(timeout=0.1) is None
    finally:
        started = time.monotonic()
        reader.stop()
        assert time.monotonic() - started < 2
    assert reader.status().state == "stopped"


def test_stop_is_idempotent_and_get_after_stop_returns(footage_path: Path) -> None:
    unused = CameraReader("never", str(footage_path))
    unused.stop()  # before start: fine, and the reader stays stopped
    with pytest.raises(RuntimeError, match="stopped"):
        unused.start()
    reader = CameraReader("idem", str(footage_path))
    reader.start()
    reader.start()  # already running: nothing happens
    assert reader.get(timeout=10) is not None
    reader.stop()
    reader.stop()
    assert not reader.running
    started = time.monotonic()
    assert reader.get(timeout=5) is None and time.monotonic() - started < 1


def test_status_masks_credentials_everywhere(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="vision.edge.streams")
    url = f"rtsp://operator:topsecret@127.0.0.1:{free_port()}/stream1"
    reader = CameraReader("masked", url, backoff_initial_s=0.05, backoff_max_s=0.1)
    reader.start()
    try:
        assert wait_until(lambda: reader.status().open_failures >= 2, 10)
        status = reader.status().as_dict()
        assert status["source"] == url.replace("topsecret", "***")
        assert "refused" in status["last_error"]
        assert "topsecret" not in repr(status)
        assert "topsecret" not in caplog.text and "operator:***@" in caplog.text
    finally:
        reader.stop()

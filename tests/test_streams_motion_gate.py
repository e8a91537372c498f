"""The motion gate: a quiet camera skips keyframes before decoding, motion brings the full rate back.

The video tests use a real H.264 file made here: the footage's first frame held still for
25 s, then 15 s of the footage itself (people walking), then its last frame held still for
20 s; 10 fps, a keyframe every 10 frames (one a second). Counts only, no timing.
"""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import cv2
import pytest

from tests.support_streams import fixed_gop_x264, wait_until
from vision.edge.config import SamplingConfig
from vision.edge.streams import CameraReader, open_source
from vision.edge.streams.motion import HOLD_S, WARMUP_GOPS, MotionGate, gate_phase_s
from vision.edge.streams.sources import validate_options

FPS, GOP = 10, 10
STILL_S, MOVING_S, STILL_AFTER_S = 25, 15, 20
KEYFRAMES = STILL_S + MOVING_S + STILL_AFTER_S  # one a second
IDLE_S = 5.0


@pytest.fixture(scope="module")
def still_moving_still(footage_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    import av

    cap = cv2.VideoCapture(str(footage_path), cv2.CAP_FFMPEG)
    moving = []
    for _ in range(MOVING_S * FPS):
        ok, image = cap.read()
        assert ok
        moving.append(cv2.resize(image, (384, 288), interpolation=cv2.INTER_AREA))
    cap.release()
    frames = [moving[0]] * (STILL_S * FPS) + moving + [moving[-1]] * (STILL_AFTER_S * FPS)
    out = tmp_path_factory.mktemp("gate") / "still-moving-still.mp4"
    with av.open(str(out), "w") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = 384, 288, "yuv420p"
        stream.options = fixed_gop_x264(GOP)
        for image in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")))
        container.mux(stream.encode())
    return out


def decoded_seconds(path: Path, **kwargs) -> tuple[list[int], MotionGate | None]:  # type: ignore[no-untyped-def]
    with open_source(str(path), camera_id="cam", decode="keyframes", sample_fps=1, **kwargs) as src:
        seconds = [round(f.t_s) for f in src]
        return seconds, src.gate


def test_still_stretches_are_gated_and_motion_decodes_every_keyframe(still_moving_still: Path) -> None:
    seconds, gate = decoded_seconds(still_moving_still, idle_every_s=IDLE_S)
    assert gate is not None
    assert gate.keyframes == KEYFRAMES and gate.decoded == len(seconds) and gate.gated == KEYFRAMES - len(seconds)
    # People walking from 25 s on: every keyframe after the first GOP that shows them is decoded.
    assert set(range(STILL_S + 1, STILL_S + MOVING_S + 1)) <= set(seconds)
    # The still stretches after warm-up (first GOPs, then the hold): one look per idle interval.
    settled = WARMUP_GOPS + int(HOLD_S) + 1
    before = [s for s in seconds if settled <= s < STILL_S]
    after = [s for s in seconds if STILL_S + MOVING_S + int(HOLD_S) + 3 <= s]
    assert 3 <= len(before) <= (STILL_S - settled) / IDLE_S + 1
    assert 2 <= len(after) <= 4
    assert all(b - a >= IDLE_S - 0.5 for a, b in pairwise(before))
    assert len(seconds) < 0.7 * KEYFRAMES


def test_without_idle_rate_every_keyframe_is_decoded(still_moving_still: Path) -> None:
    seconds, gate = decoded_seconds(still_moving_still)
    assert gate is None
    assert seconds == list(range(KEYFRAMES))


def test_hold_open_keeps_the_full_rate_on_a_still_stream(still_moving_still: Path) -> None:
    held = []
    with open_source(str(still_moving_still), decode="keyframes", sample_fps=1, idle_every_s=IDLE_S) as src:
        for frame in src:
            held.append(round(frame.t_s))
            if round(frame.t_s) == 12:
                src.hold_open(6)  # a consumer follows something from here on
    assert set(range(13, 19)) <= set(held)
    plain, _ = decoded_seconds(still_moving_still, idle_every_s=IDLE_S)
    assert len([s for s in plain if 13 <= s < 19]) <= 2


def test_reader_reports_gated_keyframes(still_moving_still: Path) -> None:
    with CameraReader(
        "cam", str(still_moving_still), sample_fps=1, decode="keyframes", realtime=False, idle_every_s=IDLE_S
    ) as reader:
        assert wait_until(lambda: not reader.running, 30)
        status = reader.status()
    assert status.keyframes_seen == KEYFRAMES
    assert 0 < status.keyframes_gated < KEYFRAMES
    assert status.decoded_frames == KEYFRAMES - status.keyframes_gated
    assert status.as_dict()["keyframes_gated"] == status.keyframes_gated
    assert isinstance(status.motion, bool)


def test_reader_without_gate_reports_none(still_moving_still: Path) -> None:
    with CameraReader("cam", str(still_moving_still), sample_fps=1, decode="keyframes", realtime=False) as reader:
        assert wait_until(lambda: not reader.running, 30)
        status = reader.status()
    assert status.keyframes_gated == 0 and status.motion is None and status.decoded_frames == KEYFRAMES


# ------------------------------------------------------------------ the gate alone, fed by hand
def feed(gate: MotionGate, seconds: range, p_bytes, per_gop: int = 9) -> list[int]:  # type: ignore[no-untyped-def]
    """Keyframes at whole seconds with `per_gop` P-frames of p_bytes(t) bytes before each; decoded seconds."""
    decoded = []
    for t in seconds:
        for _ in range(per_gop if t else 0):
            gate.packet(p_bytes(t))
        if gate.keyframe(float(t)):
            decoded.append(t)
    return decoded


def test_gate_without_p_frames_fails_open() -> None:
    gate = MotionGate(detect_fps=1, idle_every_s=5)
    assert feed(gate, range(30), lambda t: 0, per_gop=0) == list(range(30))  # MJPEG, all-intra: cannot judge


def test_gate_quiet_stream_looks_on_its_phase_grid() -> None:
    gate = MotionGate(detect_fps=1, idle_every_s=5, phase_s=2.0)
    decoded = feed(gate, range(60), lambda t: 100)
    quiet = [t for t in decoded if t >= WARMUP_GOPS + HOLD_S]
    assert quiet and all((t + 2) % 5 == 0 for t in quiet)
    assert gate.gated == 60 - len(decoded) and gate.is_open is False


def test_gate_opens_on_motion_over_the_usual_level_and_holds() -> None:
    gate = MotionGate(detect_fps=1, idle_every_s=5)
    busy = range(30, 36)  # keyframes whose GOP before them was busy
    decoded = feed(gate, range(50), lambda t: 5000 if t in busy else 100)
    last_busy = busy[-1]
    assert set(range(busy[0], last_busy + int(HOLD_S))) <= set(decoded)  # full rate, then HOLD_S more
    assert len([t for t in decoded if last_busy + HOLD_S <= t]) <= 3  # quiet again: one look per 5 s
    assert len([t for t in decoded if 12 <= t < 30]) <= 4


def test_gate_ignores_the_usual_bustle_of_a_busy_street() -> None:
    gate = MotionGate(detect_fps=1, idle_every_s=5, factor=2.0)
    decoded = feed(gate, range(60), lambda t: 8000 + 700 * (t % 3))  # walkers all the time: their level is usual
    assert len([t for t in decoded if t >= 10]) <= 11


def test_gate_looks_at_once_when_stream_time_jumps_back() -> None:
    gate = MotionGate(detect_fps=1, idle_every_s=5)
    feed(gate, range(40), lambda t: 100)
    gate.packet(100)
    assert gate.keyframe(1.0) is True  # a looped file or a reconnect: a new time base, look at once
    gate.packet(100)
    assert gate.keyframe(2.0) is False  # ... and quiet again on the new grid


@pytest.mark.parametrize("name", ["cam0", "street-17-east", "x"])
def test_gate_phase_is_within_the_interval_and_stable(name: str) -> None:
    assert 0 <= gate_phase_s(name, 5.0) < 5.0
    assert gate_phase_s(name, 5.0) == gate_phase_s(name, 5.0)


def test_gate_rejects_bad_settings() -> None:
    with pytest.raises(ValueError):
        MotionGate(detect_fps=0, idle_every_s=5)


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"decode": "all", "idle_every_s": 5.0}, "idle_every_s"),
        ({"decode": "keyframes", "idle_every_s": 0.0}, "idle_every_s"),
        ({"decode": "keyframes", "idle_every_s": 5.0, "motion_factor": -1.0}, "motion_factor"),
    ],
)
def test_stream_options_name_the_bad_argument(kwargs: dict, fragment: str) -> None:  # type: ignore[type-arg]
    decode = kwargs.pop("decode")
    with pytest.raises(ValueError, match=fragment):
        validate_options(decode, 1.0, **kwargs)


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ({"decode": "all", "idle_every_s": 5}, "needs decode 'keyframes'"),
        ({"decode": "keyframes", "detect_fps": 0.1, "idle_every_s": 5}, "at least 1/detect_fps"),
        ({"decode": "keyframes", "idle_every_s": 61}, "idle_every_s"),
        ({"decode": "keyframes", "idle_every_s": 5, "motion_factor": 1}, "motion_factor"),
    ],
)
def test_sampling_config_checks_the_gate(data: dict, fragment: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(ValueError, match=fragment):
        SamplingConfig(**data)


def test_sampling_defaults_keep_the_gate_off() -> None:
    sampling = SamplingConfig()
    assert sampling.idle_every_s is None and sampling.motion_factor == 2.0
    assert SamplingConfig(decode="keyframes", idle_every_s=5).idle_every_s == 5


# ------------------------------------------------------------------ the daemon's hold: moving trucks only
def _dets(boxes: list[list[float]], names: list[str]):  # type: ignore[no-untyped-def]
    import numpy as np
    import supervision as sv

    return sv.Detections(
        xyxy=np.asarray(boxes, dtype=np.float32).reshape(-1, 4),
        confidence=np.ones(len(names)),
        class_id=np.zeros(len(names), dtype=int),
        data={"class_name": np.asarray(names, dtype=object)},
    )


def test_daemon_holds_the_gate_for_a_new_or_moving_truck_not_a_parked_one(repo_root: Path) -> None:
    from vision.edge.config import load_site
    from vision.edge.daemon import CameraPipeline

    site = load_site(repo_root / "configs" / "site-city.yaml")
    exit_cam = next(c for c in site.cameras if "muddy-trucks" in c.rules)
    street = next(c for c in site.cameras if "muddy-trucks" not in c.rules)
    pipe = CameraPipeline(site, exit_cam)
    parked = [100, 100, 300, 250]
    assert pipe.followed_moving(_dets([parked], ["truck"])) is True  # first sighting
    assert pipe.followed_moving(_dets([parked], ["truck"])) is False  # the same box: parked
    assert pipe.followed_moving(_dets([], [])) is False
    assert pipe.followed_moving(_dets([parked], ["truck"])) is False  # still parked after a missed look
    assert pipe.followed_moving(_dets([parked, [600, 100, 800, 250]], ["truck", "truck"])) is True  # one drives in
    assert pipe.followed_moving(_dets([[400, 100, 600, 250]], ["person"])) is False  # not followed
    assert CameraPipeline(site, street).followed_moving(_dets([parked], ["truck"])) is False  # no truck rule

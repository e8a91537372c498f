"""`streetvision detect` end to end on the bundled footage, offline."""

from __future__ import annotations

import json
import subprocess
import sys
from itertools import pairwise

import av
import pytest

from tests.support_offline import run_offline


def run_detect(*args, timeout=300):
    return subprocess.run(
        [sys.executable, "-m", "vision", "detect", *args], capture_output=True, text=True, timeout=timeout
    )


def test_json_lines_per_frame(footage_path):
    res = run_detect(str(footage_path), "--max-frames", "12", "--json")
    assert res.returncode == 0, res.stderr
    records = [json.loads(line) for line in res.stdout.splitlines()]
    assert [r["frame"] for r in records] == list(range(12))
    ts = [r["t"] for r in records]
    assert ts == sorted(ts) and ts[1] - ts[0] == pytest.approx(0.1, abs=0.01)  # 10 fps footage
    people = [d for r in records for d in r["detections"] if d["class"] == "person"]
    assert len(people) >= 12 * 2
    for d in people:
        assert set(d) == {"class", "score", "box", "track_id"} and 0 < d["score"] <= 1 and len(d["box"]) == 4
    # the tracker names the people it has followed for a few frames
    assert any(d["track_id"] is not None for d in records[-1]["detections"])


def test_sample_fps_thins_frames(footage_path):
    res = run_detect(str(footage_path), "--max-frames", "5", "--json", "--sample-fps", "2")
    assert res.returncode == 0, res.stderr
    ts = [json.loads(line)["t"] for line in res.stdout.splitlines()]
    gaps = [b - a for a, b in pairwise(ts)]
    assert len(ts) == 5 and all(g == pytest.approx(0.5, abs=0.11) for g in gaps), ts


def test_annotated_video_is_browser_playable_h264(footage_path, tmp_path):
    out = tmp_path / "annotated.mp4"
    res = run_detect(str(footage_path), "--max-frames", "20", "--save", str(out))
    assert res.returncode == 0, res.stderr
    with av.open(str(out)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        frames = list(container.decode(stream))
    assert len(frames) == 20 and (frames[0].width, frames[0].height) == (768, 576)


def test_save_to_an_image_writes_the_annotated_still_of_the_last_frame(footage_path, tmp_path):
    import cv2

    out = tmp_path / "frame.jpg"
    res = run_detect(str(footage_path), "--max-frames", "3", "--save", str(out))
    assert res.returncode == 0 and "Traceback" not in res.stderr, res.stderr
    still = cv2.imread(str(out))
    assert still is not None and still.shape[:2] == (576, 768)
    assert "annotated still" in res.stderr

    res = run_detect(str(footage_path), "--max-frames", "1", "--save", str(tmp_path / "frame.gif"))
    assert res.returncode == 2 and "OUT.mp4" in res.stderr and "Traceback" not in res.stderr
    res = run_detect(str(footage_path), "--max-frames", "1", "--save", str(tmp_path / "no" / "dir" / "f.png"))
    assert res.returncode == 1 and "could not write" in res.stderr and "Traceback" not in res.stderr


def test_missing_source_is_clear_error(tmp_path):
    res = run_detect(str(tmp_path / "nope.mp4"))
    assert res.returncode != 0 and "nope.mp4" in res.stderr and "Traceback" not in res.stderr


def test_detect_stays_offline(footage_path, tmp_path):
    run = run_offline(
        [
            sys.executable,
            "-m",
            "vision",
            "detect",
            str(footage_path),
            "--max-frames",
            "3",
            "--json",
            "--save",
            str(tmp_path / "o.mp4"),
        ],
        tmp_path,
    )
    assert run.returncode == 0, run.stderr
    assert run.attempts == "", f"network attempts while offline:\n{run.attempts}"
    assert len(run.stdout.splitlines()) == 3


def test_offline_guard_catches_a_download(tmp_path):
    """The guard itself must fail a download attempt, or the test above proves nothing."""
    code = "import urllib.request; urllib.request.urlopen('http://example.com', timeout=3)"
    run = run_offline([sys.executable, "-c", code], tmp_path)
    assert run.returncode != 0 and "example.com" in run.attempts

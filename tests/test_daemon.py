"""The daemon on the real bundled footage, and `streetvision run` as a process:
SIGTERM exits 0 with the queue intact, kill -9 loses and duplicates nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import urllib.request
from functools import partial
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from tests.support_edge import free_port, wait_for
from vision.core.cases import CaseReport
from vision.edge.config import load_site, parse_site
from vision.edge.delivery.outbox import Outbox
from vision.edge.zones import ZoneSet, anchor_points

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "configs" / "site-example.yaml"


WAIT = partial(wait_for, timeout=60.0, step=0.1)


def example_dict(tmp_path: Path, **overrides) -> dict:
    data = yaml.safe_load(EXAMPLE.read_text())
    data["cameras"][0]["source"] = str(REPO / "datasets" / "footage" / "vtest.avi")
    data["outbox"] = {"path": str(tmp_path / "outbox"), "max_evidence_mb": 64}
    data["metrics"] = {"enabled": False}
    data.pop("dispatch")
    data.update(overrides)
    return data


def test_example_and_city_configs_check():
    env = dict(os.environ)
    ok = subprocess.run(
        [sys.executable, "-m", "vision", "config", "check", str(EXAMPLE)], capture_output=True, text=True, env=env
    )
    assert ok.returncode == 0, ok.stderr
    city = subprocess.run(
        [sys.executable, "-m", "vision", "config", "check", str(REPO / "configs" / "site-city.yaml")],
        capture_output=True,
        text=True,
    )
    assert city.returncode == 0, city.stderr  # models/city-v1 has every class its four rules consume
    site = load_site(REPO / "configs" / "site-city.yaml")
    assert {r.type for r in site.rules} == {"street_vending", "non_motor_parking", "exposed_garbage", "muddy_truck"}


@pytest.mark.slow
def test_real_footage_walkers_never_trigger_vending(tmp_path):
    """The whole bundled clip with the COCO model: persons are a consumed vending class, the
    dwell is cut to 20 s (the clip is 79.5 s), and dozens of people walk through the footpath
    zone: zero vending cases. The parked van on the road is the positive control: a stationary
    rule over it opens exactly one case, kept across passers-by and detector misses."""
    from vision.edge.daemon import run_site

    data = example_dict(tmp_path)
    data["cameras"][0]["rules"] = ["vending-persons", "parked-vehicles"]
    data["rules"][0]["dwell_s"] = 20
    data["rules"].append(
        {
            "type": "non_motor_parking",
            "name": "parked-vehicles",
            "classes": ["car", "truck"],
            "zones": ["road"],
            "dwell_s": 20,
            "cluster_distance": 0.12,
        }
    )
    data["evidence"] = {"clip_before_s": 2, "clip_after_s": 2}
    site = parse_site(data)
    geo = ZoneSet(site.cameras[0].zones).at(768, 576)
    footpath = geo.index("footpath")
    persons_in_zone = 0
    walker_ids: set[int] = set()

    def watch(obs, events):
        nonlocal persons_in_zone
        d = obs.detections
        person = np.asarray(d.data["class_name"]) == "person"
        inside = geo.contains(anchor_points(d.xyxy[person]))[:, footpath]
        persons_in_zone += int(inside.sum())
        walker_ids.update(int(t) for t in d.tracker_id[person][inside] if t >= 0)

    summary = run_site(site, live=False, on_observation=watch)
    assert summary.stopped_by == "sources ended"
    assert summary.processed >= 155, "the whole clip at 2 fps"
    assert persons_in_zone > 300 and len(walker_ids) > 20, "people really walked through the zone"
    ob = Outbox(tmp_path / "outbox", owner=False)
    cases = [ob.get(r.key).report() for r in ob.records()]
    assert [c.rule for c in cases if c.violation == "street_vending"] == [], "no vending case from walkers"
    parked = [c for c in cases if c.rule == "parked-vehicles"]
    assert len(parked) == 1, "the parked van: one case, not one per track or per occlusion"
    case = parked[0]
    assert case.event_code == "0410" and case.event_name == "非机动车乱停放"
    assert case.model_name == "coco-nanodet" and case.model_version == "1.0.0"
    assert case.zone == "road" and case.dwell_s >= 20 and set(case.classes) <= {"car", "truck"}
    assert case.bbox[0] > 0.8 and case.bbox[3] < 0.25, "top right of the frame"
    assert {e.kind for e in case.evidence} == {"snapshot", "annotated", "clip"}
    assert len(case.confidence_history) >= 40
    for e in case.evidence:
        assert (tmp_path / "outbox" / "evidence" / str(case.idempotency_key) / e.name).stat().st_size == e.size_bytes


def short_clip(path: Path, seconds: float = 6.0) -> Path:
    from vision.edge.casework.video_writer import Mp4Writer

    cap = cv2.VideoCapture(str(REPO / "datasets" / "footage" / "vtest.avi"))
    with Mp4Writer(path, 10.0, (768, 576)) as w:
        for _ in range(int(seconds * 10)):
            ok, img = cap.read()
            assert ok
            w.write(img)
    cap.release()
    return path


def daemon_site(tmp_path: Path, clip: Path, url: str, metrics_port: int, name: str) -> Path:
    data = example_dict(tmp_path)
    data["cameras"][0]["source"] = str(clip)
    data["cameras"][0]["rules"] = ["parked-vehicles"]
    data["rules"] = [
        {
            "type": "non_motor_parking",
            "name": "parked-vehicles",
            "classes": ["car", "truck"],
            "zones": ["road"],
            "dwell_s": 2,
            "inertia_frames": 2,
            "cluster_distance": 0.12,
            "clear_after_s": 600,
        }
    ]
    data["evidence"] = {"clip_before_s": 1, "clip_after_s": 1}
    data["dispatch"] = {
        "url": url,
        "token": "edge-token",
        "timeout_s": 2,
        "backoff_initial_s": 0.1,
        "backoff_max_s": 0.5,
    }
    data["metrics"] = {"host": "127.0.0.1", "port": metrics_port}
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    return path


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except OSError:
        return 0, ""


def metric(text: str, name: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            if name + "{" in line or line.startswith(name + " "):
                return float(line.rsplit(" ", 1)[1])
    return None


@pytest.mark.slow
def test_run_kill9_then_restart_delivers_once_and_sigterm_keeps_queue(tmp_path, receiver):
    clip = short_clip(tmp_path / "short.mp4")
    env = dict(os.environ, PYTHONPATH=str(REPO))
    cli = [sys.executable, "-m", "vision", "run", "--loop", "--config"]

    # run A: dispatch unreachable; wait until a case is queued, then kill -9
    port_a = free_port()
    site_a = daemon_site(tmp_path, clip, f"http://127.0.0.1:{free_port()}", port_a, "a.yaml")
    proc = subprocess.Popen([*cli, str(site_a)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:

        def queued() -> float:
            return (
                metric(get(f"http://127.0.0.1:{port_a}/metrics")[1], 'streetvision_outbox_cases{state="queued"}') or 0
            )

        assert WAIT(lambda: queued() >= 1, timeout=90), "no case queued by run A"
        status, body = get(f"http://127.0.0.1:{port_a}/healthz")
        assert status == 200 and json.loads(body)["cameras"]["campus-north"]["online"] is True
        assert json.loads(body)["detector"] == {"workers": 1, "threads": os.cpu_count()}, (
            "one camera: one worker, every core"
        )
        text = get(f"http://127.0.0.1:{port_a}/metrics")[1]
        for name in (
            "streetvision_camera_fps",
            "streetvision_camera_decode_errors_total",
            "streetvision_inference_seconds_count",
            "streetvision_cases_being_written",
            "streetvision_cases_emitted_total",
            "streetvision_send_failures_total",
        ):
            assert name in text, name
        assert metric(text, 'streetvision_send_failures_total{kind="retry"}') >= 1
    finally:
        proc.send_signal(signal.SIGKILL)
        out_a = proc.communicate(timeout=10)[0]
    assert proc.returncode == -signal.SIGKILL
    ob = Outbox(tmp_path / "outbox", owner=False)
    keys_a = [c["key"] for c in ob.cases()]
    ob.close()
    assert keys_a and receiver.cases == {}, out_a[-2000:]

    # run B: dispatch up; the cases of run A are delivered exactly once, then SIGTERM
    port_b = free_port()
    site_b = daemon_site(tmp_path, clip, receiver.url, port_b, "b.yaml")
    proc = subprocess.Popen([*cli, str(site_b)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert WAIT(lambda: set(keys_a) <= set(receiver.cases), timeout=90), "run B did not resume run A's queue"
        assert WAIT(lambda: get(f"http://127.0.0.1:{port_b}/healthz")[0] == 200, timeout=30)
    finally:
        proc.send_signal(signal.SIGTERM)
        out_b = proc.communicate(timeout=30)[0]
    assert proc.returncode == 0, out_b[-3000:]
    assert "stopped" in out_b and "Traceback" not in out_b
    assert all(receiver.deliveries[k] == 1 for k in keys_a), "nothing duplicated"
    assert all(a == "Bearer edge-token" for a in receiver.auth)
    ob = Outbox(tmp_path / "outbox", owner=False)
    rows = {c["key"]: c for c in ob.cases()}
    assert set(keys_a) <= set(rows), "queue intact"
    assert all(rows[k]["state"] == "sent" for k in keys_a)
    assert all(r["state"] in ("sent", "queued") for r in rows.values())
    for key, row in rows.items():  # whatever run B queued after A is either delivered or still queued with files
        if row["state"] == "queued":
            assert (tmp_path / "outbox" / "evidence" / key / "snapshot.jpg").is_file()
    received = CaseReport.model_validate(receiver.cases[keys_a[0]])
    assert received.violation == "non_motor_parking" and received.site_id == "demo-campus"
    assert set(receiver.files[keys_a[0]]) == {"snapshot.jpg", "annotated.jpg", "clip.mp4"}


def test_two_cameras_share_one_detector_with_per_camera_state(tmp_path):
    from vision.edge.daemon import SiteRunner
    from vision.edge.detection import open_detector

    clip = short_clip(tmp_path / "short.mp4", seconds=3.0)
    data = example_dict(tmp_path)
    cam = data["cameras"][0]
    cam["source"] = str(clip)
    data["cameras"] = [cam, {**cam, "id": "campus-north-2", "sampling": {"detect_fps": 1}}]
    site = parse_site(data)

    class CountingDetector:
        def __init__(self):
            self.inner = open_detector("coco-nanodet", min_confidence=0.35)
            self.name, self.version, self.class_names = self.inner.name, self.inner.version, self.inner.class_names
            self.batches: list[int] = []

        def detect_batch(self, images):
            self.batches.append(len(images))
            return self.inner.detect_batch(images)

    det = CountingDetector()
    seen: dict[str, int] = {}
    runner = SiteRunner(
        site,
        detector=det,
        live=False,
        on_observation=lambda o, e: seen.__setitem__(o.camera_id, seen.get(o.camera_id, 0) + 1),
    )
    summary = runner.run(threading.Event())
    assert summary.stopped_by == "sources ended"
    assert seen == {"campus-north": 6, "campus-north-2": 3}, "each camera at its own detect_fps"
    assert max(det.batches) == 2, "frames of both cameras went to the detector in one call"
    a, b = runner.pipelines.values()
    assert a.tracker is not b.tracker and a.rules is not b.rules and a.ring is not b.ring


def test_a_failing_detector_batch_is_skipped_not_fatal(tmp_path):
    from vision.edge.daemon import SiteRunner
    from vision.edge.detection import open_detector

    clip = short_clip(tmp_path / "short.mp4", seconds=2.0)
    data = example_dict(tmp_path)
    data["cameras"][0]["source"] = str(clip)
    site = parse_site(data)
    inner = open_detector("coco-nanodet")

    class Flaky:
        name, version, class_names = inner.name, inner.version, inner.class_names
        calls = 0

        def detect_batch(self, images):
            Flaky.calls += 1
            if Flaky.calls == 2:
                raise RuntimeError("simulated runtime failure")
            return inner.detect_batch(images)

    runner = SiteRunner(site, detector=Flaky(), live=False)
    summary = runner.run(threading.Event())
    assert summary.stopped_by == "sources ended" and summary.processed == Flaky.calls - 1 >= 3
    assert runner.metrics.frame_errors._value.get() == 1


def test_writing_evidence_does_not_pause_detection(tmp_path, monkeypatch):
    """The case writer runs beside the loop: while a case's stills take 2 s to write, the
    loop goes on detecting (before, evidence was written on the loop and every camera
    lost its detections meanwhile)."""
    import time

    import vision.edge.casework.case_writer as case_writer
    from vision.edge.daemon import SiteRunner

    clip = short_clip(tmp_path / "short.mp4", seconds=6.0)
    data = yaml.safe_load(daemon_site(tmp_path, clip, "http://127.0.0.1:9", free_port(), "s.yaml").read_text())
    data.pop("dispatch")
    data["metrics"] = {"enabled": False}
    site = parse_site(data)
    marks: dict[str, float] = {}
    real_write_images = case_writer.write_images

    def slow_write_images(*args, **kwargs):
        marks.setdefault("writing", time.monotonic())
        time.sleep(2.0)
        out = real_write_images(*args, **kwargs)
        marks.setdefault("written", time.monotonic())
        return out

    monkeypatch.setattr(case_writer, "write_images", slow_write_images)
    seen: list[float] = []
    runner = SiteRunner(site, live=False, on_observation=lambda o, e: seen.append(time.monotonic()))
    summary = runner.run(threading.Event())
    assert summary.cases >= 1 and summary.events["opened"] >= 1
    during = [t for t in seen if marks["writing"] < t < marks["written"]]
    assert len(during) >= 3, f"the loop processed {len(during)} frame(s) while the case was being written"
    ob = Outbox(tmp_path / "outbox", owner=False)
    names = {f.name for r in ob.records() for f in ob.get(r.key).files}
    ob.close()
    assert {"snapshot.jpg", "annotated.jpg", "clip.mp4"} <= names, "the case was completed after the slow write"


@pytest.mark.slow
def test_kill9_while_a_case_waits_for_its_clip_then_restart_delivers_it_once(tmp_path, receiver):
    """A violation has opened but its clip needs 2 more minutes of video: kill -9 now must not
    lose the case. The next start queues it (stills, no clip) and delivers it once."""
    clip = short_clip(tmp_path / "short.mp4")
    env = dict(os.environ, PYTHONPATH=str(REPO))
    cli = [sys.executable, "-m", "vision", "run", "--loop", "--config"]

    def site(url: str, name: str) -> Path:
        path = daemon_site(tmp_path, clip, url, free_port(), name)
        data = yaml.safe_load(path.read_text())
        data["evidence"] = {"clip_before_s": 1, "clip_after_s": 120}
        path.write_text(yaml.safe_dump(data, allow_unicode=True))
        return path

    pending = tmp_path / "outbox" / "evidence" / ".pending"
    proc = subprocess.Popen(
        [*cli, str(site(f"http://127.0.0.1:{free_port()}", "a.yaml"))],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        pending_seen = WAIT(lambda: pending.is_dir() and any(pending.glob("*/case.json")), timeout=90)
    finally:
        proc.send_signal(signal.SIGKILL)
        out_a = proc.communicate(timeout=10)[0]
    assert pending_seen, "no case pending:\n" + out_a[-3000:]
    keys_a = {p.parent.name for p in pending.glob("*/case.json")}
    ob = Outbox(tmp_path / "outbox", owner=False)
    assert ob.cases() == [], "the case was only pending (its clip not recorded yet)"
    ob.close()
    assert keys_a, out_a[-2000:]

    proc = subprocess.Popen(
        [*cli, str(site(receiver.url, "b.yaml"))], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        delivered = WAIT(lambda: keys_a <= set(receiver.cases), timeout=90)
    finally:
        proc.send_signal(signal.SIGTERM)
        out_b = proc.communicate(timeout=60)[0]
    assert delivered, "the pending case was not delivered:\n" + out_b[-3000:]
    assert proc.returncode == 0, out_b[-3000:]
    assert "waiting for its clip" in out_b
    for key in keys_a:
        assert receiver.deliveries[key] == 1
        assert set(receiver.files[key]) == {"snapshot.jpg", "annotated.jpg"}
        assert CaseReport.model_validate(receiver.cases[key]).violation == "non_motor_parking"


def test_a_multi_camera_site_detects_on_one_worker_per_core(tmp_path):
    from vision.edge.daemon import SiteRunner

    clip = short_clip(tmp_path / "short.mp4", seconds=3.0)
    data = example_dict(tmp_path)
    cam = data["cameras"][0]
    cam["source"] = str(clip)
    data["cameras"] = [cam, {**cam, "id": "campus-north-2"}, {**cam, "id": "campus-north-3"}]
    site = parse_site(data)
    seen: dict[str, int] = {}
    runner = SiteRunner(
        site, live=False, on_observation=lambda o, e: seen.__setitem__(o.camera_id, seen.get(o.camera_id, 0) + 1)
    )
    cores = os.cpu_count() or 1
    assert (runner.pool.workers, runner.plan.threads) == (min(cores, 3), max(1, cores // min(cores, 3)))
    assert runner.detector.session.get_session_options().intra_op_num_threads == runner.plan.threads
    summary = runner.run(threading.Event())
    assert seen == {"campus-north": 6, "campus-north-2": 6, "campus-north-3": 6}
    assert summary.detections["person"] > 0

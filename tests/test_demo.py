"""`streetvision demo`: the whole system end to end, as a new user starts it.

The headless test needs a model with all four violation classes (`city-v1`):
with the COCO base model the stall, garbage and muddy-truck cases cannot
appear, and the test says so by failing on the missing types.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.slow  # the demo end to end, as a user runs it

REPO = Path(__file__).resolve().parent.parent
TYPES = {"street_vending", "non_motor_parking", "exposed_garbage", "muddy_truck"}


def _demo(*args: str, data_dir: Path) -> list[str]:
    return [sys.executable, "-m", "vision", "demo", "--data-dir", str(data_dir), *args]


@pytest.mark.timeout(420)
def test_headless_demo_delivers_a_case_of_each_type_with_evidence(tmp_path: Path) -> None:
    data_dir = tmp_path / "demo"
    t0 = time.monotonic()
    proc = subprocess.run(
        _demo("--headless", "--duration", "60", "--json", data_dir=data_dir),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=400,
    )
    wall = time.monotonic() - t0
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout)
    print(
        f"demo: {wall:.0f} s wall; {json.dumps({k: summary[k] for k in ('cases_by_type', 'latency_s', 'dwell_adjusted_latency_s', 'model')})}"
    )
    assert summary["stopped_by"] == "duration"
    assert summary["frames_processed"] > 60
    missing = TYPES - set(summary["cases_by_type"])
    looks = json.dumps(summary["verifier"], ensure_ascii=False)
    assert not missing, f"no case of {sorted(missing)} with model {summary['model']} ({summary['model_note']}); {looks}"
    # every case of a verified rule was looked at, and the summary says so with the verdict's reason
    confirmed = {
        r["rule"] for r in summary["verifier"]["recent"] if r["accepted"] and r["reason"].startswith("confirmed")
    }
    assert {case["rule"] for case in summary["cases"]} <= confirmed, looks
    for violation in TYPES:
        assert summary["latency_s"][violation] is not None, f"{violation}: no case explained by the script"

    # the dispatch center's own records: every case has its evidence stored
    from vision.dispatch.service import DispatchService
    from vision.dispatch.settings import Settings

    service = DispatchService.from_settings(Settings(data_dir=data_dir / "dispatch"))
    try:
        cases = [service.get_case(c.id) for c in service.list_cases(limit=1000).items]
        assert {c.violation for c in cases} >= TYPES
        for case in cases:
            assert case.evidence, f"case {case.id} ({case.violation}) has no evidence"
            assert any(e.content_type == "image/jpeg" for e in case.evidence)
            for ev in case.evidence:
                path, _ = service.evidence_file(case.id, ev.id)
                assert path.stat().st_size == ev.size_bytes
        # the scripted muddy truck carries 苏E·12345 (configs/scenarios/demo.yaml): its case names it
        (truck,) = [c for c in cases if c.violation == "muddy_truck"]
        assert (truck.plate_text, truck.plate_colour) == ("苏E12345", "yellow")
        assert any(e.name == "plate.jpg" for e in truck.evidence)
    finally:
        service.close()


@pytest.mark.timeout(300)
def test_demo_serves_the_ui_and_stream_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    """Interactive mode: the printed addresses answer; SIGTERM stops the daemon and both servers."""
    proc = subprocess.Popen(
        _demo("--password", "demo-password-1", data_dir=tmp_path / "demo"),
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        ui = stream = None
        deadline = time.monotonic() + 240  # renders the scene on a cold cache
        lines = []
        while time.monotonic() < deadline and (ui is None or stream is None):
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if line.startswith("review UI:"):
                ui = line.split()[2]
            if line.startswith("live camera:"):
                stream = line.split()[2]
        assert ui and stream, "".join(lines) + proc.stderr.read()[-2000:] if proc.poll() is not None else "".join(lines)
        base = ui.rsplit("/ui/", 1)[0]
        assert httpx.get(base + "/healthz", timeout=5).json() == {"status": "ok"}
        login = httpx.post(
            base + "/api/v1/auth/login", json={"username": "admin", "password": "demo-password-1"}, timeout=10
        )
        assert login.status_code == 200, login.text
        with httpx.stream("GET", stream, timeout=5) as r:
            assert r.headers["content-type"].startswith("multipart/x-mixed-replace")
            assert b"image/jpeg" in next(r.iter_bytes())
        time.sleep(3)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err[-2000:]
        assert "SIGTERM: stopping" in out and "cases per type" in out
        with pytest.raises(httpx.TransportError):
            httpx.get(base + "/healthz", timeout=2)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


@pytest.mark.parametrize(
    "args, rc, message",
    [
        (["demo", "--duration", "0"], 2, "--duration must be positive"),
        (["demo", "--port", "70000"], 2, "--port must be 1-65535"),
        (["demo", "--model", "no/such/model.onnx"], 1, "--model: file not found"),
        (["demo", "--model", "no-such-model"], 1, "no-such-model"),
        (["demo", "--site", "no/such/site.yaml"], 2, "cannot read"),
        (["bench", "scenarios", "--suite", "nope"], 2, "suite 'nope' not in"),
        (["bench", "scenarios", "--model", "no/such/model.onnx"], 2, "--model: file not found"),
        (["bench", "scenarios", "--swap-model", "coco-city"], 2, "is not OLD=NEW"),
        (["bench", "scenarios", "--swap-model", "coco-city=no-such-model"], 2, "no model 'no-such-model'"),
        (["bench", "scenarios", "--swap-model", "city-v1=coco-city-int8"], 2, "city-v1 is not among the site's models"),
    ],
)
def test_bad_arguments_are_one_clear_line(args: list[str], rc: int, message: str, tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "vision", *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert proc.returncode == rc, proc.stderr
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr

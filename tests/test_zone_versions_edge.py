"""Zones published at the center, taken live by a running box (issue 15 item 3), with the real
processes: the real edge daemon (`python -m vision run`) streams a rendered scene of the demo
camera (a garbage bag on the lawn) and reports to a real dispatch center on 127.0.0.1. Its site
file watches a `lawn` drawn where there is no bag, so no case opens. A version that renames the
lawn is refused by the box (its garbage rule watches `lawn`) and the center's camera page says
why; the next version draws the lawn around the bag: the daemon swaps the camera's rules at its
next batch without restarting (same start time, the reader never reconnects), the heartbeat says
it runs that version, and a case then opens in the new lawn. Started again, the box runs the
saved version before it asks the center."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support_daemon import daemon_processes
from tests.support_dispatch import free_port
from vision.core.zone_shapes import ZoneConfig
from vision.dispatch.app import create_app
from vision.dispatch.server import DispatchServer
from vision.dispatch.service import DispatchService
from vision.dispatch.settings import Settings
from vision.edge.daemon.zone_rollout import OVERRIDE_FILE
from vision.scenarios.render import render
from vision.scenarios.script import Scenario

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
TOKEN_ENV = "STREETVISION_DEVICE_TOKEN"
CAMERA = "demo-cam"
# the bag lies where the demo's lawn is, the whole time
SCRIPT = {
    "name": "zone-bag",
    "description": "A garbage bag on the lawn.",
    "background": "datasets/footage/vtest.avi",
    "duration_s": 16,
    "fps": 5,
    "site": "configs/site-demo.yaml",
    "objects": [{"kind": "garbage", "start_s": 0.5, "end_s": 16, "at": [0.47, 0.80], "seed": 13}],
}
NOWHERE = [[0.0, 0.0], [0.2, 0.0], [0.2, 0.15], [0.0, 0.15]]  # the site file's lawn: no bag there


def _site(tmp: Path, video: Path, url: str) -> tuple[Path, list[list[float]]]:
    """The demo site watching only a lawn for garbage (drawn away from the bag), asking the center
    for zones every second; and the demo's own lawn, around the bag."""
    site = yaml.safe_load((REPO / "configs" / "site-demo.yaml").read_text(encoding="utf-8"))
    (cam,) = site["cameras"]
    cam["source"] = str(video)
    cam["rules"] = ["garbage"]
    (lawn,) = [z for z in cam["zones"] if z["name"] == "lawn"]
    demo_lawn = lawn["polygon"]
    lawn["polygon"] = NOWHERE
    (rule,) = [r for r in site["rules"] if r["name"] == "garbage"]
    rule.update(dwell_s=3, clear_after_s=3)
    site["rules"] = [rule]
    site["dispatch"] = {
        "url": url,
        "token_env": TOKEN_ENV,
        "timeout_s": 2,
        "backoff_initial_s": 0.2,
        "backoff_max_s": 1,
        "heartbeat_s": 0.5,
        "frame_every_s": 0,
    }
    site["zone_updates"] = {"check_every_s": 1}
    site["outbox"] = {"path": str(tmp / "outbox"), "max_evidence_mb": 64}
    site["evidence"].update(clip_before_s=1, clip_after_s=1)
    site["metrics"] = {"host": "127.0.0.1", "port": 0}
    path = tmp / "site.yaml"
    path.write_text(yaml.safe_dump(site, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path, demo_lawn


def _cases(db: Path) -> list[tuple[str, str | None, str | None]]:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        return list(con.execute("SELECT violation, camera_id, zone FROM cases"))
    finally:
        con.close()


@pytest.fixture
def daemon() -> Iterator[Callable[..., subprocess.Popen[str]]]:
    with daemon_processes() as start:
        yield lambda site, token, *args: start(site, {TOKEN_ENV: token}, *args)


@pytest.mark.timeout(420)
def test_zones_published_at_the_center_are_taken_live_and_a_case_opens_in_the_new_zone(
    tmp_path: Path, daemon: Callable[..., subprocess.Popen[str]]
) -> None:
    render(Scenario.model_validate(SCRIPT), tmp_path / "scene", progress=False)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    db = tmp_path / "dispatch.db"
    service = DispatchService.from_settings(Settings(data_dir=tmp_path / "center", db_url=f"sqlite:///{db}"))
    _, token = service.create_client("box", "device", "demo-site")
    site, demo_lawn = _site(tmp_path, tmp_path / "scene" / "zone-bag.mp4", url)

    def camera() -> Any:
        boxes = service.fleet_boxes()
        return boxes[0].cameras[0] if boxes and boxes[0].cameras else None

    def until(what: str, check: Callable[[], Any], timeout: float, proc: subprocess.Popen[str]) -> Any:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            got = check()
            if got:
                return got
            if proc.poll() is not None:
                raise AssertionError(f"the daemon exited before {what}:\n{proc.communicate(timeout=20)[0][-4000:]}")
            time.sleep(0.25)
        proc.send_signal(signal.SIGTERM)
        raise AssertionError(f"no {what} after {timeout:.0f} s:\n{proc.communicate(timeout=60)[0][-4000:]}")

    def publish(zones: list[dict[str, Any]]) -> int:
        checked = [ZoneConfig.model_validate(z) for z in zones]
        return service.publish_zones("admin", "demo-site", CAMERA, checked).version

    own = yaml.safe_load(site.read_text(encoding="utf-8"))["cameras"][0]["zones"]
    with DispatchServer(app=create_app(service=service), port=port):
        proc = daemon(site, token, "--loop")
        first = until(
            "the camera online", lambda: (c := camera()) and c.state == "online" and c.last_frame_at and c, 120, proc
        )
        started_at = service.fleet_boxes()[0].started_at
        time.sleep(8)  # the bag lies there for more than the dwell: outside the lawn drawn, no case
        assert _cases(db) == []
        assert camera().zone_version is None

        # a version without the lawn its garbage rule watches: refused, the running zones stay
        renamed = [{**z, "name": "grass"} if z["name"] == "lawn" else z for z in own]
        assert publish(renamed) == 1
        refused = until("the refusal reported", lambda: (c := camera()) and c.zone_refused_version == 1 and c, 60, proc)
        assert "zone 'lawn' does not exist" in refused.zone_refused and refused.zone_version is None
        assert [z["name"] for z in refused.zones] == [z["name"] for z in own]

        # the lawn drawn around the bag: taken live, and the case opens in it
        assert publish([{**z, "polygon": demo_lawn} if z["name"] == "lawn" else z for z in own]) == 2
        taken = until("zone version 2 running", lambda: (c := camera()) and c.zone_version == 2 and c, 60, proc)
        (lawn,) = [z for z in taken.zones if z["name"] == "lawn"]
        assert lawn["points"] == demo_lawn and taken.zone_refused is None
        cases = until("a case in the new lawn", lambda: _cases(db), 150, proc)
        assert cases[0] == ("exposed_garbage", CAMERA, "lawn"), cases
        now = camera()
        box = service.fleet_boxes()[0]
        assert box.started_at == started_at, "the daemon restarted"
        assert now.reconnects == first.reconnects and now.state == "online"
        saved = json.loads((tmp_path / "outbox" / OVERRIDE_FILE).read_text(encoding="utf-8"))
        assert [(s["camera_id"], s["version"]) for s in saved] == [(CAMERA, 2)]
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0, out[-3000:]
        assert "zone version 1 REFUSED" in out and "the running zones stay" in out
        assert f"camera {CAMERA}: zones reloaded" in out and "streams kept running" in out

        # started again on the same disk: version 2 runs from the start, before any question to the center
        again = daemon(site, token, "--duration", "6")
        out, _ = again.communicate(timeout=120)
        assert again.returncode == 0, out[-3000:]
        assert f"zones from {tmp_path / 'outbox' / OVERRIDE_FILE}: camera {CAMERA} version 2" in out, out[-3000:]
    service.close()

"""A real box and a real center for the zone roll-out tests (issue 15 item 3): a rendered scene of
the demo camera with a garbage bag on the lawn the whole time; the demo site watching only a
`lawn` drawn away from the bag (so no case opens until the lawn is drawn around it) and asking
the center for zones every second; a dispatch center on 127.0.0.1 that knows the box; the
daemon as a real process (`python -m vision run`), killed when the test ends."""

from __future__ import annotations

import sqlite3
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.support_daemon import daemon_processes
from tests.support_dispatch import free_port

REPO = Path(__file__).resolve().parent.parent
TOKEN_ENV = "STREETVISION_DEVICE_TOKEN"
SITE = "demo-site"
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

StartBox = Callable[..., subprocess.Popen[str]]


def render_bag_scene(tmp: Path) -> Path:
    """The scene as a video file (16 s at 5 fps), played by the daemon as a live camera."""
    from vision.scenarios.render import render
    from vision.scenarios.script import Scenario

    render(Scenario.model_validate(SCRIPT), tmp / "scene", progress=False)
    return tmp / "scene" / "zone-bag.mp4"


def bag_site(tmp: Path, video: Path, url: str, *, frame_every_s: float = 0) -> tuple[Path, list[list[float]]]:
    """The demo site watching only a lawn for garbage (drawn away from the bag), asking the center
    for zones every second and sending a picture of the camera every `frame_every_s` (0: never);
    and the demo's own lawn, around the bag."""
    site = yaml.safe_load((REPO / "configs" / "site-demo.yaml").read_text(encoding="utf-8"))
    (cam,) = site["cameras"]
    assert (site["site_id"], cam["id"]) == (SITE, CAMERA)
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
        "frame_every_s": frame_every_s,
    }
    site["zone_updates"] = {"check_every_s": 1}
    site["outbox"] = {"path": str(tmp / "outbox"), "max_evidence_mb": 64}
    site["evidence"].update(clip_before_s=1, clip_after_s=1)
    site["metrics"] = {"host": "127.0.0.1", "port": 0}
    path = tmp / "site.yaml"
    path.write_text(yaml.safe_dump(site, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path, demo_lawn


@dataclass
class BagCenter:
    """The running center: its service (in this process), address, database file and the box's token."""

    service: Any
    url: str
    db: Path
    token: str

    def camera(self) -> Any:
        """The demo camera as the box's latest heartbeat tells (a FleetCamera), None before one."""
        boxes = self.service.fleet_boxes()
        return boxes[0].cameras[0] if boxes and boxes[0].cameras else None

    def cases(self) -> list[tuple[str, str | None, str | None]]:
        """(violation, camera, zone) of every case the center has."""
        con = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=5)
        try:
            return list(con.execute("SELECT violation, camera_id, zone FROM cases"))
        finally:
            con.close()


@contextmanager
def bag_center(tmp: Path) -> Iterator[BagCenter]:
    """A dispatch center on 127.0.0.1 (SQLite) with a device client for the demo site."""
    from vision.dispatch.app import create_app
    from vision.dispatch.server import DispatchServer
    from vision.dispatch.service import DispatchService
    from vision.dispatch.settings import Settings

    port = free_port()
    db = tmp / "dispatch.db"
    service = DispatchService.from_settings(Settings(data_dir=tmp / "center", db_url=f"sqlite:///{db}"))
    try:
        _, token = service.create_client("box", "device", SITE)
        with DispatchServer(app=create_app(service=service), port=port):
            yield BagCenter(service, f"http://127.0.0.1:{port}", db, token)
    finally:
        service.close()


@contextmanager
def box_daemons() -> Iterator[StartBox]:
    """Yields `start(site, token, *args)`: the daemon on `site` with its device token."""
    with daemon_processes() as start:
        yield lambda site, token, *args: start(site, {TOKEN_ENV: token}, *args)

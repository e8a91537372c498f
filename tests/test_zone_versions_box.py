"""Zones published at the dispatch center, taken by the box (issue 15 item 3), with a real
center on 127.0.0.1: the box's zone updater asks for its cameras' latest zone versions and the
daemon's zone roll-out checks each as `config check` checks a site file. A version the site
refuses (a rule's zone renamed away, a rule's zone of another kind) keeps the running zones and
says why; an accepted one is written to the box's disk, atomically, and read over the site file
at the next start; a changed zone's rule starts fresh while the others keep what they remember."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from vision.core.fleet import CameraHeartbeat, Heartbeat
from vision.core.zone_shapes import ZoneConfig
from vision.dispatch.app import create_app
from vision.dispatch.server import DispatchServer
from vision.dispatch.service import DispatchService
from vision.dispatch.settings import Settings
from vision.edge.config import SiteConfig, parse_site
from vision.edge.daemon.pipeline import CameraPipeline
from vision.edge.daemon.zone_rollout import OVERRIDE_FILE, ZoneRollout, override_path
from vision.edge.delivery.sender import device_headers
from vision.edge.delivery.zone_updates import ZoneUpdater

REPO = Path(__file__).resolve().parent.parent
CAMERA = "demo-cam"
LAWN_MOVED = [[0.0, 0.6], [0.5, 0.6], [0.5, 1.0], [0.0, 1.0]]


def demo_site(tmp: Path, url: str) -> SiteConfig:
    data = yaml.safe_load((REPO / "configs" / "site-demo.yaml").read_text(encoding="utf-8"))
    data["dispatch"] = {"url": url, "token": "unused"}
    data["zone_updates"] = {"check_every_s": 1}
    data["outbox"] = {"path": str(tmp / "outbox")}
    return parse_site(data)


def zones_of(site: SiteConfig) -> dict[str, list[tuple[float, float]]]:
    (cam,) = site.cameras
    return {z.name: list(z.polygon) for z in cam.zones}


class Box:
    """The box's side, as the daemon wires it: an updater asking the center, a roll-out keeping the zones."""

    def __init__(self, site: SiteConfig, url: str, token: str) -> None:
        self.rollout = ZoneRollout(site, override_path(site))
        self.updater = ZoneUpdater(url, device_headers(token, site.site_id), self.rollout.offer, interval_s=1)

    def check(self) -> SiteConfig | None:
        """One question to the center; the site the loop would swap in, if any."""
        self.updater.check()
        return self.rollout.take()


@pytest.fixture
def center(tmp_path: Path) -> Iterator[tuple[DispatchService, str, str]]:
    settings = Settings(data_dir=tmp_path / "center", db_url=f"sqlite:///{tmp_path / 'dispatch.db'}")
    service = DispatchService.from_settings(settings)
    _, token = service.create_client("box", "device", "demo-site")
    with DispatchServer(app=create_app(service=service)) as server:
        hb = Heartbeat(
            site_id="demo-site",
            sent_at=datetime.now(UTC),
            started_at=datetime.now(UTC),
            software_version="test",
            config_sha256="a" * 64,
            queue_depth=0,
            cameras=[CameraHeartbeat(camera_id=CAMERA, state="online", fps=2, decode_errors=0, reconnects=0)],
        )
        r = httpx.post(
            f"{server.url}/api/v1/heartbeats",
            files={"heartbeat": (None, hb.model_dump_json())},
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,  # the server's first request on a busy 2-core CI box took over httpx's default 5 s
        )
        assert r.status_code == 200, r.text
        yield service, server.url, token
    service.close()


def publish(service: DispatchService, zones: list[dict[str, Any]]) -> int:
    checked = [ZoneConfig.model_validate(z) for z in zones]
    return service.publish_zones("admin", "demo-site", CAMERA, checked).version


def demo_zones(site: SiteConfig, **polygons: list[list[float]]) -> list[dict[str, Any]]:
    (cam,) = site.cameras
    out = [z.model_dump(mode="json") for z in cam.zones]
    for z in out:
        if z["name"] in polygons:
            z["polygon"] = polygons[z["name"]]
    return out


def test_a_refused_version_keeps_the_running_zones_and_an_accepted_one_survives_a_restart(
    tmp_path: Path, center: tuple[DispatchService, str, str]
) -> None:
    service, url, token = center
    site = demo_site(tmp_path, url)
    before = zones_of(site)
    box = Box(site, url, token)
    assert box.check() is None and box.rollout.state(CAMERA) == (None, None)  # nothing published yet

    # 1. the lawn renamed: the garbage rule watches `lawn`, so the site is refused; the running zones stay
    renamed = [z if z["name"] != "lawn" else {**z, "name": "grass"} for z in demo_zones(site)]
    assert publish(service, renamed) == 1
    assert box.check() is None
    version, refusal = box.rollout.state(CAMERA)
    assert version is None and refusal is not None and refusal.version == 1
    assert "zone 'lawn' does not exist on camera 'demo-cam'" in refusal.reason
    assert zones_of(box.rollout.site) == before
    assert not (tmp_path / "outbox" / OVERRIDE_FILE).exists()
    # 2. the lawn turned into a bike bay: the garbage rule watches garbage_watch zones, refused too
    rekinded = [z if z["name"] != "lawn" else {**z, "kind": "no_parking"} for z in demo_zones(site)]
    assert publish(service, rekinded) == 2
    assert box.check() is None
    assert box.rollout.state(CAMERA)[1].version == 2  # type: ignore[union-attr]
    assert "a exposed_garbage rule watches garbage_watch zones" in box.rollout.state(CAMERA)[1].reason  # type: ignore[union-attr]

    # 3. the lawn moved: accepted, written to the box's disk, swapped in once
    assert publish(service, demo_zones(site, lawn=LAWN_MOVED)) == 3
    box.updater.check()  # accepted and saved, not yet swapped in by the loop: the heartbeat, which
    assert box.rollout.state(CAMERA) == (None, None)  # shows the running zones, must not claim it yet
    swapped = box.rollout.take()
    assert swapped is not None and zones_of(swapped)["lawn"] == [tuple(p) for p in LAWN_MOVED]
    assert {k: v for k, v in zones_of(swapped).items() if k != "lawn"} == {
        k: v for k, v in before.items() if k != "lawn"
    }
    assert box.rollout.state(CAMERA) == (3, None)
    assert box.check() is None  # the same version again: nothing to do
    saved = json.loads((tmp_path / "outbox" / OVERRIDE_FILE).read_text(encoding="utf-8"))
    assert [(s["camera_id"], s["version"]) for s in saved] == [(CAMERA, 3)]
    assert not [p for p in (tmp_path / "outbox").iterdir() if p.name.endswith(".tmp")]

    # 4. a restart: the site file says the old lawn, the box runs version 3 before asking the center
    restarted = ZoneRollout(demo_site(tmp_path, url), override_path(site))
    assert zones_of(restarted.site)["lawn"] == [tuple(p) for p in LAWN_MOVED]
    assert restarted.state(CAMERA) == (3, None)
    box.updater.stop()


def test_a_saved_version_the_site_file_no_longer_allows_is_left_out_at_start(tmp_path: Path) -> None:
    site = demo_site(tmp_path, "http://127.0.0.1:9")
    path = override_path(site)
    path.parent.mkdir(parents=True)
    grass = [z if z["name"] != "lawn" else {**z, "name": "grass"} for z in demo_zones(site)]
    path.write_text(
        json.dumps(
            [
                {
                    "camera_id": CAMERA,
                    "version": 4,
                    "zones": grass,
                    "published_at": "2026-12-06T10:00:00Z",
                    "published_by": "admin",
                }
            ]
        ),
        encoding="utf-8",
    )
    rollout = ZoneRollout(site, path)
    assert zones_of(rollout.site) == zones_of(site)
    version, refusal = rollout.state(CAMERA)
    assert version is None and refusal is not None and refusal.version == 4
    path.write_text("{not json", encoding="utf-8")  # a file that is no list of versions: the site file runs
    assert zones_of(ZoneRollout(site, path).site) == zones_of(site)
    # the center unreachable: counted, the zones stay
    updater = ZoneUpdater("http://127.0.0.1:9", {}, rollout.offer, interval_s=1, timeout_s=2)
    assert updater.check() == [] and updater.errors == 1
    updater.stop()


def test_a_changed_zones_rule_starts_fresh_and_the_others_keep_their_state(tmp_path: Path) -> None:
    site = demo_site(tmp_path, "http://127.0.0.1:9")
    (camera,) = site.cameras
    pipe = CameraPipeline(site, camera)
    before = {r.name: r for r in pipe.rules.rules}
    data = site.model_dump(mode="json")
    data["cameras"][0]["zones"] = demo_zones(site, lawn=LAWN_MOVED)
    moved = parse_site(data)
    fresh = pipe.replace_zones(moved, moved.cameras[0])
    assert fresh == ["garbage"]
    after = {r.name: r for r in pipe.rules.rules}
    assert after["garbage"] is not before["garbage"]
    assert all(after[n] is before[n] for n in ("vending", "bikes", "muddy-trucks"))
    assert pipe.camera.zones == moved.cameras[0].zones
    assert pipe.rules.zones.at(100, 100).names == [z.name for z in moved.cameras[0].zones]

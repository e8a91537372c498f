"""Zones published at the center, taken live by a running box (issue 15 item 3), with the real
processes: the real edge daemon (`python -m vision run`) streams a rendered scene of the demo
camera (a garbage bag on the lawn) and reports to a real dispatch center on 127.0.0.1. Its site
file watches a `lawn` drawn where there is no bag, so no case opens. A version that renames the
lawn is refused by the box (its garbage rule watches `lawn`) and the center's camera page says
why; the next version draws the lawn around the bag: the daemon swaps the camera's rules at its
next batch without restarting (same start time, the reader never reconnects), the heartbeat says
it runs that version, and a case then opens in the new lawn. Started again, the box runs the
saved version before it asks the center. (The same with the lawn drawn in the editor in
Chromium: tests/test_zone_editor_e2e.py; the scene, site and center: tests/support_zone_box.py.)"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support_daemon import until
from tests.support_zone_box import CAMERA, SITE, StartBox, bag_center, bag_site, box_daemons, render_bag_scene
from vision.core.zone_shapes import ZoneConfig
from vision.edge.daemon.zone_rollout import OVERRIDE_FILE

pytestmark = pytest.mark.slow


@pytest.fixture
def daemon() -> Iterator[StartBox]:
    with box_daemons() as start:
        yield start


@pytest.mark.timeout(420)
def test_zones_published_at_the_center_are_taken_live_and_a_case_opens_in_the_new_zone(
    tmp_path: Path, daemon: StartBox
) -> None:
    video = render_bag_scene(tmp_path)
    with bag_center(tmp_path) as center:
        service = center.service
        site, demo_lawn = bag_site(tmp_path, video, center.url)

        def publish(zones: list[dict[str, Any]]) -> int:
            checked = [ZoneConfig.model_validate(z) for z in zones]
            return service.publish_zones("admin", SITE, CAMERA, checked).version

        own = yaml.safe_load(site.read_text(encoding="utf-8"))["cameras"][0]["zones"]
        proc = daemon(site, center.token, "--loop")
        first = until(
            "the camera online",
            lambda: (c := center.camera()) and c.state == "online" and c.last_frame_at and c,
            120,
            proc,
        )
        started_at = service.fleet_boxes()[0].started_at
        time.sleep(8)  # the bag lies there for more than the dwell: outside the lawn drawn, no case
        assert center.cases() == []
        assert center.camera().zone_version is None

        # a version without the lawn its garbage rule watches: refused, the running zones stay
        renamed = [{**z, "name": "grass"} if z["name"] == "lawn" else z for z in own]
        assert publish(renamed) == 1
        refused = until(
            "the refusal reported", lambda: (c := center.camera()) and c.zone_refused_version == 1 and c, 60, proc
        )
        assert "zone 'lawn' does not exist" in refused.zone_refused and refused.zone_version is None
        assert [z["name"] for z in refused.zones] == [z["name"] for z in own]

        # the lawn drawn around the bag: taken live, and the case opens in it
        assert publish([{**z, "polygon": demo_lawn} if z["name"] == "lawn" else z for z in own]) == 2
        taken = until("zone version 2 running", lambda: (c := center.camera()) and c.zone_version == 2 and c, 60, proc)
        (lawn,) = [z for z in taken.zones if z["name"] == "lawn"]
        assert lawn["points"] == demo_lawn and taken.zone_refused is None
        cases = until("a case in the new lawn", center.cases, 150, proc)
        assert cases[0] == ("exposed_garbage", CAMERA, "lawn"), cases
        now = center.camera()
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
        again = daemon(site, center.token, "--duration", "6")
        out, _ = again.communicate(timeout=120)
        assert again.returncode == 0, out[-3000:]
        assert f"zones from {tmp_path / 'outbox' / OVERRIDE_FILE}: camera {CAMERA} version 2" in out, out[-3000:]

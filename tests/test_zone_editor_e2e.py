"""Issue 15 item 3's check, end to end: in Chromium, a zone drawn on a camera's picture in the
editor reaches the box, which reloads it and makes a case in the new zone. The real edge daemon
(`python -m vision run`) plays a rendered scene of the demo camera (a garbage bag on the lawn the
whole time) and reports to a real dispatch center on 127.0.0.1, with a picture of its camera every
second; its site file watches a `lawn` drawn away from the bag, so no case opens. An
administrator opens the camera's page in headless Chromium, sees the box's picture, redraws the
lawn around the bag by clicking its corners on the picture and publishes it. The daemon takes
the version without restarting, its heartbeat reports it, the camera page says the box runs it,
and a case opens in the new lawn. (A version the box refuses, and a restart keeping the saved
version: tests/test_zone_versions_edge.py.)"""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest

from tests.support_browser import chromium_page, click_on_picture, log_in, wait_until
from tests.support_daemon import until
from tests.support_dispatch import PASSWORD
from tests.support_zone_box import CAMERA, NOWHERE, SITE, bag_center, bag_site, box_daemons, render_bag_scene
from vision.edge.daemon.fleet_report import FRAME_WIDTH

pytestmark = pytest.mark.slow  # a real daemon, a real center and a headless Chromium

ADMIN = "chief"


def _near(got: list[list[float]], want: list[list[float]], tol: float = 0.01) -> bool:
    if len(got) != len(want):
        return False
    return all(abs(a - b) < tol for p, q in zip(got, want, strict=True) for a, b in zip(p, q, strict=True))


def _inside(points: list[list[float]], margin: float = 0.004) -> list[tuple[float, float]]:
    """The points, moved just inside the picture: a click on its very edge may miss it."""
    return [(min(max(x, margin), 1 - margin), min(max(y, margin), 1 - margin)) for x, y in points]


@pytest.mark.timeout(240)
def test_a_zone_drawn_in_the_editor_reaches_the_box_which_reloads_it_and_a_case_opens_in_it(
    tmp_path: Path, fast_passwords: None
) -> None:
    video = render_bag_scene(tmp_path)
    with bag_center(tmp_path) as center, box_daemons() as daemon, chromium_page() as page:
        center.service.create_operator(ADMIN, PASSWORD, "admin")
        site, demo_lawn = bag_site(tmp_path, video, center.url, frame_every_s=1)
        proc = daemon(site, center.token, "--loop")
        first = until(
            "a picture of the camera",
            lambda: (c := center.camera()) and c.state == "online" and c.frame_at and c,
            120,
            proc,
        )
        online = time.monotonic()
        started_at = center.service.fleet_boxes()[0].started_at

        log_in(page, center.url, ADMIN, PASSWORD)
        page.goto(f"{center.url}/ui/fleet/{SITE}/{CAMERA}")
        assert "该摄像头尚未发布区域" in page.locator("#zone-version").inner_text()
        # the picture is the box's (the 768 px scene shrunk for the heartbeat), the zones its site file's
        wait_until(page, "() => document.querySelector('#camera-picture img').naturalWidth > 0")
        assert page.evaluate("document.querySelector('#camera-picture img').naturalWidth") == FRAME_WIDTH
        drafted = {z["name"]: z["points"] for z in json.loads(page.locator("#zones-json").input_value())}
        assert drafted["lawn"] == NOWHERE, drafted

        # the administrator picks the lawn, takes its points away and clicks new ones around the bag
        page.select_option("#zone-pick", label="lawn")
        for _ in NOWHERE:
            page.click("#zone-undo")
        click_on_picture(page, _inside(demo_lawn))
        assert page.locator('#camera-picture polygon.zone.selected[data-zone="lawn"]').count() == 1
        drawn = {z["name"]: z["points"] for z in json.loads(page.locator("#zones-json").input_value())}
        assert _near(drawn["lawn"], demo_lawn), drawn["lawn"]
        assert {n: p for n, p in drawn.items() if n != "lawn"} == {n: p for n, p in drafted.items() if n != "lawn"}

        # the bag has lain there longer than the rule's dwell (3 s), outside the lawn the box watches
        time.sleep(max(0.0, 8 - (time.monotonic() - online)))
        assert center.cases() == []
        assert center.camera().zone_version is None

        page.click("#zones-publish")
        page.wait_for_selector("#zone-published")
        assert "已发布为区域版本 1" in page.locator("#zone-published").inner_text()

        # the box takes it live: its heartbeat reports the version and the lawn drawn
        taken = until("zone version 1 running", lambda: (c := center.camera()) and c.zone_version == 1 and c, 60, proc)
        (lawn,) = [z["points"] for z in taken.zones if z["name"] == "lawn"]
        assert _near(lawn, demo_lawn) and taken.zone_refused is None, lawn
        page.goto(f"{center.url}/ui/fleet/{SITE}/{CAMERA}")
        state = page.locator("#zone-version").inner_text()
        assert f"区域版本 1，由 {ADMIN}" in state and "设备已应用" in state, state

        cases = until("a case in the lawn drawn", center.cases, 90, proc)
        assert cases[0] == ("exposed_garbage", CAMERA, "lawn"), cases
        now = center.camera()
        assert center.service.fleet_boxes()[0].started_at == started_at, "the daemon restarted"
        assert now.reconnects == first.reconnects and now.state == "online"
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0, out[-3000:]
        assert f"camera {CAMERA}: zones reloaded" in out and "streams kept running" in out, out[-3000:]

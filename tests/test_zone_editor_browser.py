"""The zone editor in headless Chromium (issue 15 item 3, the part built): an administrator
draws a zone by clicking on a camera's picture, the center checks it as the box's
`config check` would and gives the camera's `zones:` as YAML that the box's own site schema
takes; a zone the box would refuse is shown with why, in Chinese. Published, the zones are the
camera's next zone version: the camera page shows it waiting for the box, and the box's device
endpoint gives it."""

from __future__ import annotations

import html
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.support_browser import chromium_page, click_on_picture, log_in
from tests.support_dispatch import PASSWORD, make_jpeg

pytestmark = pytest.mark.slow  # a headless Chromium session

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def center(tmp_path: Path, fast_passwords: None) -> Iterator[str]:
    """A center whose box site-a has told it about cam-01, with a picture."""
    from vision.dispatch import bootstrap
    from vision.dispatch.server import DispatchServer
    from vision.dispatch.settings import Settings

    settings = Settings(data_dir=tmp_path / "data")
    bootstrap.create_admin(settings, "chief", PASSWORD)
    token = bootstrap.create_device(settings, "edge-01", "site-a")
    now = datetime.now(UTC).isoformat()
    beat = {
        "site_id": "site-a",
        "sent_at": now,
        "started_at": now,
        "software_version": "0.1.0",
        "config_sha256": "a" * 64,
        "queue_depth": 0,
        "cameras": [{"camera_id": "cam-01", "state": "online", "fps": 2.0, "decode_errors": 0, "reconnects": 0}],
    }
    with DispatchServer(settings) as srv:
        r = httpx.post(
            srv.url + "/api/v1/heartbeats",
            headers={"Authorization": f"Bearer {token}"},
            files=[
                ("heartbeat", (None, json.dumps(beat), None)),
                ("frame:cam-01", ("cam-01.jpg", make_jpeg(640, 360, seed=3), "image/jpeg")),
            ],
        )
        assert r.status_code == 200, r.text
        yield srv.url


@pytest.fixture
def page() -> Iterator[Any]:
    with chromium_page() as pg:
        yield pg


def test_a_zone_drawn_on_the_picture_becomes_yaml_the_box_takes(center: str, page: Any) -> None:
    from vision.edge.config import SiteConfig

    log_in(page, center, "chief", PASSWORD)
    page.goto(center + "/ui/fleet/site-a/cam-01")
    assert page.locator("#zone-editor h2").inner_text() == "绘制监控区域"

    page.click("#zone-new")
    page.fill("#zone-name", "new-stall")
    page.select_option("#zone-kind", "no_vending")
    corners = [(0.2, 0.25), (0.6, 0.25), (0.6, 0.7), (0.2, 0.7)]
    click_on_picture(page, corners)
    assert page.locator('#camera-picture polygon.zone.selected[data-zone="new-stall"]').count() == 1, (
        page.locator("#zones-json").input_value(),
        page.locator("#camera-picture svg.zones").inner_html(),
    )
    page.click("#zone-new")  # and an exit line of two points
    page.fill("#zone-name", "gate")
    page.select_option("#zone-kind", "site_exit")
    click_on_picture(page, [(0.7, 0.9), (0.95, 0.8)])
    page.click("#zones-check")
    page.wait_for_selector("#zones-yaml")
    zones = yaml.safe_load(html.unescape(page.locator("#zones-yaml").inner_text()))["zones"]
    assert [(z["name"], z["kind"]) for z in zones] == [("new-stall", "no_vending"), ("gate", "site_exit")]
    for (x, y), (gx, gy) in zip(corners, zones[0]["polygon"], strict=True):
        assert abs(gx - x) < 0.01 and abs(gy - y) < 0.01, zones[0]["polygon"]
    # what the box's own schema says of the demo site with these zones on its camera
    site = yaml.safe_load((REPO / "configs" / "site-demo.yaml").read_text(encoding="utf-8"))
    site["cameras"][0]["zones"] += zones
    assert [z.name for z in SiteConfig.model_validate(site).cameras[0].zones][-2:] == ["new-stall", "gate"]

    # the drawing is still there after the check; a zone of two points is refused, with why
    page.select_option("#zone-pick", "0")
    page.click("#zone-undo")
    page.click("#zone-undo")
    page.click("#zones-check")
    page.wait_for_selector("#zone-problems")
    problems = page.locator("#zone-problems").inner_text()
    assert "new-stall" in problems and "区域至少需要 3 个点" in problems
    assert page.locator("#zones-yaml").count() == 0


def test_zones_drawn_and_published_become_a_version_the_box_is_given(center: str, page: Any, tmp_path: Path) -> None:
    from vision.dispatch import bootstrap
    from vision.dispatch.settings import Settings

    box_token = bootstrap.create_device(Settings(data_dir=tmp_path / "data"), "edge-02", "site-a")
    log_in(page, center, "chief", PASSWORD)
    page.goto(center + "/ui/fleet/site-a/cam-01")
    assert "该摄像头尚未发布区域" in page.locator("#zone-version").inner_text()
    page.click("#zone-new")
    page.fill("#zone-name", "plaza")
    page.select_option("#zone-kind", "no_vending")
    corners = [(0.1, 0.3), (0.7, 0.3), (0.7, 0.6), (0.1, 0.6)]
    click_on_picture(page, corners)
    assert page.locator("#zones-publish").inner_text() == "发布到设备"
    page.click("#zones-publish")
    page.wait_for_selector("#zone-published")
    assert "已发布为区域版本 1" in page.locator("#zone-published").inner_text()
    state = page.locator("#zone-version").inner_text()
    assert "区域版本 1，由 chief" in state and "等待设备应用" in state

    page.goto(center + "/ui/fleet/site-a/cam-01")  # the version stays on the camera's page
    assert "区域版本 1，由 chief" in page.locator("#zone-version").inner_text()
    r = httpx.get(center + "/api/v1/zones/assigned", headers={"Authorization": f"Bearer {box_token}"})
    assert r.status_code == 200, r.text
    ((cam, version, zones),) = [(v["camera_id"], v["version"], v["zones"]) for v in r.json()]
    assert (cam, version, [z["name"] for z in zones]) == ("cam-01", 1, ["plaza"])
    for (x, y), (gx, gy) in zip(corners, zones[0]["polygon"], strict=True):
        assert abs(gx - x) < 0.01 and abs(gy - y) < 0.01, zones[0]["polygon"]

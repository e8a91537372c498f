"""Zones published to the boxes, at the dispatch center (issue 15 item 3), on SQLite and on a real
PostgreSQL: an administrator publishes a camera's zones from the editor (or the API), checked as
the box checks them; each publication is the camera's next version with who and when; a box is
told the latest version of each of its own cameras only; its heartbeat's zone version (or its
refusal) shows on the camera page as applied, pending or refused; bad input is 4xx, never 500."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support_dispatch import Dispatch, build_dispatch
from tests.test_fleet import PICTURE, beat, heartbeat, ui
from vision.core.fleet import CameraZones

PLAZA = {"name": "plaza", "kind": "no_vending", "points": [[0.1, 0.3], [0.7, 0.3], [0.7, 0.6], [0.1, 0.6]]}
EXIT = {"name": "road-exit", "kind": "site_exit", "points": [[0.85, 0.3], [0.85, 0.8]]}


def assigned(d: Dispatch, token: str) -> list[dict[str, Any]]:
    r = d.client.get("/api/v1/zones/assigned", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    return list(r.json())


def publish_form(d: Dispatch, zones: Any, action: str = "publish", camera: str = "cam-01") -> Any:
    """The camera page's editor form, as the administrator, with its publish (or check) button."""
    page = ui(d, f"/ui/fleet/site-a/{camera}", "admin")
    token = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text)
    assert token, page.text[-2000:]
    data = {"zones": zones if isinstance(zones, str) else json.dumps(zones), "csrf": token.group(1), "action": action}
    return d.client.post(f"/ui/fleet/site-a/{camera}/zones", data=data)


def test_published_zones_become_versions_the_box_of_the_camera_is_told(dispatch: Dispatch) -> None:
    other_box = dispatch.service.create_client("edge-02", "device", "site-b")[1]
    assert beat(dispatch, heartbeat(), {"cam-01": PICTURE}).status_code == 200
    theirs = {"Authorization": f"Bearer {other_box}"}
    assert beat(dispatch, heartbeat("site-b", {"cam-01": "online"}), headers=theirs).status_code == 200
    dispatch.client.cookies.set("sv_lang", "zh-CN")
    assert assigned(dispatch, dispatch.device_token) == []
    assert "该摄像头尚未发布区域" in ui(dispatch, "/ui/fleet/site-a/cam-01", "admin").text

    # checking alone publishes nothing
    assert publish_form(dispatch, [PLAZA], action="check").status_code == 200
    assert assigned(dispatch, dispatch.device_token) == []

    r = publish_form(dispatch, [PLAZA, EXIT])
    assert r.status_code == 201, r.text[-2000:]
    assert 'id="zone-published"' in r.text and "已发布为区域版本 1" in r.text
    assert "等待设备应用" in r.text  # the box has not said it runs it yet
    (v1,) = assigned(dispatch, dispatch.device_token)
    got = CameraZones.model_validate(v1)  # the schema the box reads
    assert (got.camera_id, got.version, got.published_by) == ("cam-01", 1, "admin")
    assert [(z.name, z.kind, [list(p) for p in z.polygon]) for z in got.zones] == [
        ("plaza", "no_vending", PLAZA["points"]),
        ("road-exit", "site_exit", EXIT["points"]),
    ]
    assert assigned(dispatch, other_box) == []  # another box's camera of the same id is not this one
    r = dispatch.client.post("/api/v1/zones/site-b/cam-01", json={"zones": [EXIT]}, headers=dispatch.auth("admin"))
    assert r.status_code == 201 and r.json()["version"] == 1, r.text
    assert [(a["version"], len(a["zones"])) for a in assigned(dispatch, other_box)] == [(1, 1)]
    assert [(a["version"], len(a["zones"])) for a in assigned(dispatch, dispatch.device_token)] == [(1, 2)]

    moved = {**PLAZA, "points": [[0.2, 0.3], [0.8, 0.3], [0.8, 0.6], [0.2, 0.6]]}
    r = dispatch.client.post("/api/v1/zones/site-a/cam-01", json={"zones": [moved]}, headers=dispatch.auth("admin"))
    assert r.status_code == 201 and r.json()["version"] == 2, r.text
    (v2,) = assigned(dispatch, dispatch.device_token)
    assert v2["version"] == 2 and v2["zones"][0]["polygon"] == moved["points"]
    history = dispatch.client.get("/api/v1/zones/site-a/cam-01", headers=dispatch.auth("reviewer")).json()
    assert [(h["version"], h["published_by"]) for h in history] == [(2, "admin"), (1, "admin")]
    assert history[1]["zones"][0]["polygon"] == PLAZA["points"]  # versions are kept as published

    # the box says it runs version 2: applied
    body = heartbeat()
    body["cameras"][0].update(
        zone_version=2, zones=[{"name": "plaza", "kind": "no_vending", "points": moved["points"]}]
    )
    assert beat(dispatch, body).status_code == 200
    page = ui(dispatch, "/ui/fleet/site-a/cam-01", "admin").text
    assert "区域版本 2，由 admin" in page and "设备已应用" in page and "等待设备应用" not in page
    fleet = dispatch.client.get("/api/v1/fleet", headers=dispatch.auth("reviewer")).json()
    assert fleet["boxes"][0]["cameras"][0]["zone_version"] == 2

    # version 3 refused by the box: the page says so, in the operator's language, with the box's reason
    renamed = {**moved, "name": "square"}
    assert publish_form(dispatch, [renamed]).status_code == 201
    body["cameras"][0].update(
        zone_refused_version=3, zone_refused="rules.0.zones: zone 'plaza' does not exist on camera 'cam-01'"
    )
    assert beat(dispatch, body).status_code == 200
    page = ui(dispatch, "/ui/fleet/site-a/cam-01", "admin").text
    assert "设备拒绝了该版本" in page and "设备的规则监看的区域名称在这些区域中已不存在" in page
    assert "zone &#39;plaza&#39; does not exist" in page
    assert "设备报告正在使用区域版本 2" in page


def test_an_old_box_without_zone_versions_still_reports(dispatch: Dispatch) -> None:
    body = heartbeat()
    assert all("zone_version" not in c for c in body["cameras"])
    assert beat(dispatch, body).status_code == 200
    fleet = dispatch.client.get("/api/v1/fleet", headers=dispatch.auth("reviewer")).json()
    assert fleet["boxes"][0]["cameras"][0]["zone_version"] is None


@pytest.mark.parametrize(
    ("path", "body", "role", "status", "says"),
    [
        (
            "/api/v1/zones/site-a/cam-01",
            {"zones": [{**PLAZA, "points": [[0.1, 0.1], [0.2, 0.2]]}]},
            "admin",
            422,
            "zones.0.polygon: polygon: needs at least 3 points",
        ),
        (
            "/api/v1/zones/site-a/cam-01",
            {"zones": [{**PLAZA, "points": [[0.1, 0.1], [1.5, 0.2], [0.1, 0.4]]}]},
            "admin",
            422,
            "zones.0.points",
        ),
        ("/api/v1/zones/site-a/cam-01", {"zones": [PLAZA, PLAZA]}, "admin", 422, "two zones have this name"),
        ("/api/v1/zones/site-a/cam-01", {"zones": [{**PLAZA, "colour": "red"}]}, "admin", 422, "colour"),
        ("/api/v1/zones/site-a/cam-01", {"zones": "plaza"}, "admin", 422, "zones"),
        ("/api/v1/zones/site-a/cam-01", {"zones": [PLAZA] * 40}, "admin", 422, "zones"),
        ("/api/v1/zones/site-a/cam-99", {"zones": [PLAZA]}, "admin", 404, "no camera cam-99"),
        ("/api/v1/zones/site-a/..%2Fx", {"zones": [PLAZA]}, "admin", 404, ""),
        ("/api/v1/zones/site-a/cam-01", {"zones": [PLAZA]}, "reviewer", 403, ""),
    ],
)
def test_bad_publications_are_refused_naming_the_field(
    dispatch: Dispatch, path: str, body: Any, role: str, status: int, says: str
) -> None:
    assert beat(dispatch, heartbeat()).status_code == 200
    r = dispatch.client.post(path, json=body, headers=dispatch.auth(role))
    assert r.status_code == status, r.text
    assert says in r.text
    assert assigned(dispatch, dispatch.device_token) == []


def test_the_editor_publishes_only_zones_that_pass_and_only_for_administrators(dispatch: Dispatch) -> None:
    assert beat(dispatch, heartbeat(), {"cam-01": PICTURE}).status_code == 200
    dispatch.client.cookies.set("sv_lang", "zh-CN")
    r = publish_form(dispatch, [{**PLAZA, "points": [[0.1, 0.1], [0.2, 0.2]]}])
    assert r.status_code == 422 and "至少需要 3 个点" in r.text and 'id="zone-published"' not in r.text
    assert publish_form(dispatch, [PLAZA], action="delete").status_code == 422  # no such button
    assert assigned(dispatch, dispatch.device_token) == []
    page = ui(dispatch, "/ui/fleet/site-a/cam-01", "admin")
    token = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text)
    assert token
    ui(dispatch, "/ui/fleet/site-a/cam-01", "dispatcher")
    r = dispatch.client.post(
        "/ui/fleet/site-a/cam-01/zones",
        data={"zones": json.dumps([PLAZA]), "action": "publish", "csrf": token.group(1)},
    )
    assert r.status_code == 403
    assert dispatch.client.get("/api/v1/zones/assigned").status_code == 401
    assert dispatch.client.get("/api/v1/zones/assigned", headers=dispatch.auth("admin")).status_code in (401, 403)
    assert assigned(dispatch, dispatch.device_token) == []


@pytest.fixture
def dispatch(tmp_path: Path, db_url: str, fast_passwords: None) -> Iterator[Dispatch]:
    d = build_dispatch(tmp_path, db_url)
    with d.client:
        yield d
    d.service.close()

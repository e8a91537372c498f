"""Fleet health at the dispatch center (issue 15 item 1), on SQLite and on a real PostgreSQL:
an edge box's heartbeat is kept with its cameras and their pictures; a camera offline, or a
box silent, past the configured time becomes one maintenance alert (a case dispatched to the
maintenance department) that closes by itself when it is back; the time a camera was not
watching is left out of the statistics; the fleet page and /metrics show it all."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.support_dispatch import PASSWORD, Dispatch, build_dispatch, case_report, make_jpeg

SILENT_S = 120  # fleet.box_silent_after_s in the bundled configs/dispatch.yaml
OFFLINE_S = 300  # fleet.camera_offline_after_s
PICTURE = make_jpeg(640, 360, seed=5)


def heartbeat(site: str = "site-a", cameras: dict[str, str] | None = None, **extra: Any) -> dict[str, Any]:
    now = datetime.now(UTC).isoformat()
    cams = cameras if cameras is not None else {"cam-01": "online", "cam-02": "online"}
    return {
        "site_id": site,
        "sent_at": now,
        "started_at": now,
        "software_version": "0.1.0",
        "config_sha256": "a" * 64,
        "disk_free_bytes": 12_000_000_000,
        "disk_level": "ok",
        "queue_depth": 3,
        "models": [{"name": "city-v1", "version": "1.0.0", "sha256": "b" * 64}],
        "cameras": [
            {"camera_id": c, "state": s, "fps": 2.0 if s == "online" else 0.0, "decode_errors": 1, "reconnects": 0}
            for c, s in cams.items()
        ],
        **extra,
    }


def with_zones(body: dict[str, Any], zones: list[dict[str, Any]], camera: int = 0) -> dict[str, Any]:
    """The heartbeat with `zones` on its `camera`-th camera."""
    body["cameras"][camera]["zones"] = zones
    return body


def beat(d: Dispatch, body: dict[str, Any] | str, frames: dict[str, bytes] | None = None, **kw: Any) -> Any:
    parts: list[tuple[str, tuple[str | None, Any, str | None]]] = [
        ("heartbeat", (None, body if isinstance(body, str) else json.dumps(body), None))
    ]
    parts += [(f"frame:{cam}", (f"{cam}.jpg", data, "image/jpeg")) for cam, data in (frames or {}).items()]
    return d.client.post("/api/v1/heartbeats", headers=kw.get("headers", d.device), files=parts)


def ui(d: Dispatch, path: str, user: str = "reviewer") -> Any:
    """A page or picture as a signed-in operator of the web UI sees it."""
    r = d.client.post(
        "/ui/login", data={"username": user, "password": PASSWORD, "next": "/ui/"}, follow_redirects=False
    )
    assert r.status_code == 303, r.text
    return d.client.get(path)


def later(d: Dispatch, seconds: float) -> None:
    d.clock_holder["offset"] += timedelta(seconds=seconds)  # type: ignore[attr-defined]


def alerts(d: Dispatch) -> list[dict[str, Any]]:
    r = d.client.get("/api/v1/cases?violation=device_offline", headers=d.auth("admin"))
    assert r.status_code == 200, r.text
    return r.json()["items"]


def case(d: Dispatch, cid: int) -> dict[str, Any]:
    r = d.client.get(f"/api/v1/cases/{cid}", headers=d.auth("admin"))
    assert r.status_code == 200, r.text
    return r.json()


def fleet(d: Dispatch) -> dict[str, Any]:
    r = d.client.get("/api/v1/fleet", headers=d.auth("reviewer"))
    assert r.status_code == 200, r.text
    return r.json()


def metric(d: Dispatch, name: str, **labels: str) -> float | None:
    """The value of one sample of /metrics (Prometheus text format), None when it is not there."""
    for line in d.client.get("/metrics").text.splitlines():
        m = re.fullmatch(rf"{name}(?:{{(.*)}})? (\S+)", line)
        if m and dict(re.findall(r'(\w+)="([^"]*)"', m.group(1) or "")) == labels:
            return float(m.group(2))
    return None


def test_a_heartbeat_is_kept_with_its_cameras_and_pictures(dispatch: Dispatch) -> None:
    r = beat(dispatch, heartbeat(), {"cam-01": PICTURE})
    assert r.status_code == 200, r.text
    assert r.json()["cameras"] == 2 and r.json()["frames"] == 1
    (box,) = fleet(dispatch)["boxes"]
    assert box["site_id"] == "site-a" and box["online"] and box["queue_depth"] == 3
    assert box["models"][0]["sha256"] == "b" * 64
    cams = {c["camera_id"]: c for c in box["cameras"]}
    assert cams["cam-01"]["watching"] and cams["cam-01"]["frame_at"] and cams["cam-02"]["frame_at"] is None
    pic = ui(dispatch, "/ui/fleet/site-a/cam-01/frame.jpg")
    assert pic.status_code == 200 and pic.content == PICTURE
    assert ui(dispatch, "/ui/fleet/site-a/cam-02/frame.jpg").status_code == 404
    # the next picture replaces it; the old one is no longer named, the collector may take it
    newer = make_jpeg(640, 360, seed=6)
    assert beat(dispatch, heartbeat(), {"cam-01": newer}).status_code == 200
    assert ui(dispatch, "/ui/fleet/site-a/cam-01/frame.jpg").content == newer
    assert dispatch.service.collect_evidence(now=datetime.now(UTC).timestamp() + 10 * 86400).orphans == 1
    assert ui(dispatch, "/ui/fleet/site-a/cam-01/frame.jpg").content == newer


@pytest.mark.parametrize(
    ("body", "frames", "status", "says"),
    [
        ("{not json", None, 422, "heartbeat"),
        (heartbeat(disk_level="burning"), None, 422, "disk_level"),
        (heartbeat(cameras={"cam-01": "online"}), {"cam-09": PICTURE}, 422, "frame:cam-09"),
        (heartbeat(), {"cam-01": b"GIF89a not a jpeg"}, 422, "not a JPEG"),
        (heartbeat(site="site-b"), None, 403, "site-a"),
        (heartbeat(cameras={"c\x00": "online"}), None, 422, "NUL"),
        (
            with_zones(heartbeat(), [{"name": "z", "kind": "no_vending", "points": [[0.1, 0.1], [1.5, 0.2]]}]),
            None,
            422,
            "points",
        ),
        (with_zones(heartbeat(), [{"name": "z", "kind": "no_vending", "points": [[0.1, 0.1]]}]), None, 422, "points"),
        (with_zones(heartbeat(), [{"name": "z", "kind": "no_vending", "points": [[0, 0]] * 65}]), None, 422, "points"),
    ],
)
def test_a_bad_heartbeat_is_refused_with_a_4xx_that_says_why(
    dispatch: Dispatch, body: Any, frames: Any, status: int, says: str
) -> None:
    r = beat(dispatch, body, frames)
    assert r.status_code == status, r.text
    assert says in r.text
    assert fleet(dispatch)["boxes"] == []


def test_a_heartbeat_needs_the_device_token(dispatch: Dispatch) -> None:
    assert beat(dispatch, heartbeat(), headers={}).status_code == 401
    assert beat(dispatch, heartbeat(), headers=dispatch.auth("admin")).status_code in (401, 403)


def test_a_camera_offline_too_long_becomes_one_alert_that_closes_when_it_is_back(dispatch: Dispatch) -> None:
    cid, _ = _a_case(dispatch, camera="cam-02")  # the alert is placed where the camera's cases are
    assert beat(dispatch, heartbeat(cameras={"cam-01": "online", "cam-02": "offline"})).status_code == 200
    assert dispatch.service.check_fleet().cameras_offline == 0  # not yet: offline for less than the limit
    later(dispatch, OFFLINE_S + 1)
    assert beat(dispatch, heartbeat(cameras={"cam-01": "online", "cam-02": "offline"})).status_code == 200
    first = dispatch.service.check_fleet()
    again = dispatch.service.check_fleet()
    assert (first.cameras_offline, again.cameras_offline, first.boxes_silent) == (1, 0, 0)
    (alert,) = alerts(dispatch)
    full = case(dispatch, alert["id"])
    assert full["source"] == "fleet" and full["camera_id"] == "cam-02" and full["status"] == "dispatched"
    assert full["department"] == "maintenance" and full["deadline_at"]
    assert full["lat"] == case(dispatch, cid)["lat"]
    assert metric(dispatch, "streetvision_camera_up", site="site-a", camera="cam-02") == 0.0
    assert metric(dispatch, "streetvision_camera_up", site="site-a", camera="cam-01") == 1.0
    assert metric(dispatch, "streetvision_fleet_open_alerts") == 1.0
    # the public sees violations, never the center's own alerts
    assert alert["id"] not in [
        int(r["service_request_id"]) for r in dispatch.client.get("/open311/v2/requests.json").json()
    ]
    assert dispatch.client.get(f"/open311/v2/requests/{alert['id']}.json").status_code == 404

    later(dispatch, 60)
    assert beat(dispatch, heartbeat()).status_code == 200
    closed = case(dispatch, alert["id"])
    assert closed["status"] == "closed"
    last = closed["transitions"][-1]
    assert (last["actor"], last["actor_kind"], last["action"]) == ("fleet", "system", "close")
    assert metric(dispatch, "streetvision_fleet_open_alerts") == 0.0
    assert dispatch.service.check_fleet().cameras_offline == 0


def test_a_silent_box_becomes_one_alert_and_its_cameras_stop_counting(dispatch: Dispatch) -> None:
    assert beat(dispatch, heartbeat()).status_code == 200
    assert metric(dispatch, "streetvision_box_up", site="site-a") == 1.0
    later(dispatch, SILENT_S + 5)
    check = dispatch.service.check_fleet()
    assert (check.boxes_silent, check.cameras_offline) == (1, 0)  # one alert for the box, not one per camera
    (alert,) = alerts(dispatch)
    assert alert["camera_id"] is None and alert["status"] == "dispatched"
    assert metric(dispatch, "streetvision_box_up", site="site-a") == 0.0
    box = fleet(dispatch)["boxes"][0]
    assert not box["online"] and box["alert_case_id"] == alert["id"]
    assert not any(c["watching"] for c in box["cameras"])
    page = ui(dispatch, "/ui/fleet", "dispatcher")
    assert page.status_code == 200 and 'data-online="false"' in page.text and f"/ui/cases/{alert['id']}" in page.text
    # silent long enough for a camera alert too: still one alert, the box's
    later(dispatch, OFFLINE_S)
    assert dispatch.service.check_fleet() == type(check)(0, 0)
    later(dispatch, 3600)
    assert beat(dispatch, heartbeat()).status_code == 200
    assert case(dispatch, alert["id"])["status"] == "closed"
    assert fleet(dispatch)["cameras_watching"] == 2


def test_time_not_watching_is_left_out_of_the_statistics(dispatch: Dispatch) -> None:
    _a_case(dispatch, camera="cam-01")
    assert beat(dispatch, heartbeat()).status_code == 200
    later(dispatch, 3600)
    assert beat(dispatch, heartbeat(cameras={"cam-01": "online", "cam-02": "offline"})).status_code == 200
    later(dispatch, 2 * 3600)
    assert beat(dispatch, heartbeat()).status_code == 200
    from vision.dispatch import stats

    rows = {r.camera_id: r for r in stats.compute(dispatch.service).cameras}
    assert rows["cam-01"].cases == 1 and rows["cam-01"].offline_hours == 0
    assert rows["cam-02"].cases == 0 and rows["cam-02"].offline_hours == pytest.approx(2.0, abs=0.01)
    assert rows["cam-02"].watching_share == pytest.approx(1 / 3, abs=0.01)
    page = ui(dispatch, "/ui/stats", "admin")
    assert page.status_code == 200
    row = re.search(r'<tr data-camera="site-a/cam-02".*?</tr>', page.text, re.S)
    assert row and "2.0" in row.group(0) and "33%" in row.group(0)


def test_a_camera_dropped_from_the_site_config_closes_its_alert(dispatch: Dispatch) -> None:
    assert beat(dispatch, heartbeat(cameras={"cam-01": "online", "cam-02": "offline"})).status_code == 200
    later(dispatch, OFFLINE_S + 1)
    assert beat(dispatch, heartbeat(cameras={"cam-01": "online", "cam-02": "offline"})).status_code == 200
    assert dispatch.service.check_fleet().cameras_offline == 1
    (alert,) = alerts(dispatch)
    assert beat(dispatch, heartbeat(cameras={"cam-01": "online"})).status_code == 200
    assert case(dispatch, alert["id"])["status"] == "closed"
    assert [c["camera_id"] for c in fleet(dispatch)["boxes"][0]["cameras"]] == ["cam-01"]


def test_checks_running_at_once_open_each_alert_once(dispatch: Dispatch) -> None:
    """Every worker (and every center node) runs the check: the row locks keep it to one alert."""
    from vision.core.fleet import Heartbeat
    from vision.dispatch.accounts import ClientPrincipal

    for n in range(4):
        client_id, _token = dispatch.service.create_client(f"edge-{n + 10}", "device", f"box-{n}")
        box = ClientPrincipal(client_id, f"edge-{n + 10}", "device", f"box-{n}")
        dispatch.service.record_heartbeat(box, Heartbeat(**heartbeat(site=f"box-{n}")), {})
    later(dispatch, SILENT_S + 1)
    results: list[Any] = []
    threads = [threading.Thread(target=lambda: results.append(dispatch.service.check_fleet())) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(r.boxes_silent for r in results) == 4
    assert len(alerts(dispatch)) == 4


def test_the_fleet_page_speaks_chinese(dispatch: Dispatch) -> None:
    assert (
        beat(dispatch, heartbeat(cameras={"cam-01": "online", "cam-02": "offline"}), {"cam-01": PICTURE}).status_code
        == 200
    )
    dispatch.client.cookies.set("sv_lang", "zh-CN")
    page = ui(dispatch, "/ui/fleet")
    assert page.status_code == 200
    assert "离线" in page.text and "在线" in page.text and 'src="/ui/fleet/site-a/cam-01/frame.jpg"' in page.text


ZONES = [
    {"name": "plaza-south", "kind": "no_vending", "points": [[0.05, 0.6], [0.5, 0.55], [0.55, 0.95], [0.1, 0.98]]},
    {"name": "gate", "kind": "site_exit", "points": [[0.6, 0.9], [0.95, 0.85]]},
]


def test_a_cameras_zones_are_drawn_on_its_picture(dispatch: Dispatch) -> None:
    assert beat(dispatch, with_zones(heartbeat(), ZONES), {"cam-01": PICTURE}).status_code == 200
    cams = {c["camera_id"]: c for c in fleet(dispatch)["boxes"][0]["cameras"]}
    assert cams["cam-01"]["zones"] == ZONES and cams["cam-02"]["zones"] == []
    dispatch.client.cookies.set("sv_lang", "zh-CN")
    page = ui(dispatch, "/ui/fleet").text
    assert 'href="/ui/fleet/site-a/cam-01"' in page  # the thumbnail opens the camera's page
    assert '<polygon class="zone kind-no_vending" points="0.05,0.6 0.5,0.55 0.55,0.95 0.1,0.98"' in page
    assert '<polyline class="zone kind-site_exit" points="0.6,0.9 0.95,0.85"' in page
    camera = ui(dispatch, "/ui/fleet/site-a/cam-01")
    assert camera.status_code == 200
    assert "禁止摆摊区" in camera.text and "工地出口" in camera.text and "plaza-south" in camera.text
    assert '<polygon class="zone kind-no_vending"' in camera.text
    assert "[0.600, 0.900] [0.950, 0.850]" in camera.text
    # the box's next heartbeat tells the zones it has now: the center forgets the old ones
    assert beat(dispatch, with_zones(heartbeat(), ZONES[1:])).status_code == 200
    assert "plaza-south" not in ui(dispatch, "/ui/fleet/site-a/cam-01").text
    # a camera the center has not heard of, and one without a picture
    assert ui(dispatch, "/ui/fleet/site-a/cam-99").status_code == 404
    assert "尚未发来此摄像头的画面" in ui(dispatch, "/ui/fleet/site-a/cam-02").text


def _a_case(d: Dispatch, camera: str) -> tuple[int, str]:
    body = case_report(camera_id=camera)
    r = d.post_case(body)
    assert r.status_code == 201, r.text
    return r.json()["case_id"], body["idempotency_key"]


@pytest.fixture
def dispatch(tmp_path: Path, db_url: str, fast_passwords: None) -> Iterator[Dispatch]:
    d = build_dispatch(tmp_path, db_url, evidence_grace_s=60)
    with d.client:
        yield d
    d.service.close()


def test_a_center_back_from_an_outage_listens_before_calling_boxes_silent(dispatch: Dispatch) -> None:
    """Down for an hour, the center finds every heartbeat old: no storm of alerts at start;
    a box that stays silent is still an alert once the center has listened long enough."""
    from vision.dispatch.fleet import Fleet

    assert beat(dispatch, heartbeat()).status_code == 200
    later(dispatch, 3600)
    restarted = Fleet(dispatch.service.ctx)
    assert restarted.check().boxes_silent == 0
    later(dispatch, SILENT_S + 1)
    assert restarted.check().boxes_silent == 1


# ------------------------------------------------------------ zones drawn at the center
def _check_zones(d: Dispatch, zones: Any, user: str = "admin", csrf: bool = True) -> Any:
    """Zones posted by the camera page's editor form, as `user`."""
    page = ui(d, "/ui/fleet/site-a/cam-01", user)
    token = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text)
    data = {"zones": zones if isinstance(zones, str) else json.dumps(zones)}
    if csrf and token:
        data["csrf"] = token.group(1)
    return d.client.post("/ui/fleet/site-a/cam-01/zones", data=data)


def test_zones_drawn_at_the_center_are_checked_as_the_box_checks_a_site_file(dispatch: Dispatch) -> None:
    import yaml

    from vision.edge.config import SiteConfig

    assert beat(dispatch, heartbeat(), {"cam-01": PICTURE}).status_code == 200
    dispatch.client.cookies.set("sv_lang", "zh-CN")
    demo = yaml.safe_load(Path("configs/site-demo.yaml").read_text(encoding="utf-8"))
    own = demo["cameras"][0]["zones"]  # the demo camera's zones, the plaza moved a little
    drawn = [{"name": z["name"], "kind": z["kind"], "points": z["polygon"]} for z in own]
    drawn[0]["points"] = [[round(x * 0.9, 4), round(y * 0.95, 4)] for x, y in drawn[0]["points"]]
    r = _check_zones(dispatch, drawn)
    assert r.status_code == 200, r.text
    (text,) = re.findall(r'<pre id="zones-yaml" translate="no">(.*?)</pre>', r.text, re.S)
    import html

    zones = yaml.safe_load(html.unescape(text))["zones"]
    assert [z["name"] for z in zones] == [z["name"] for z in own]
    assert zones[0]["polygon"] == [[round(x * 0.9, 3), round(y * 0.95, 3)] for x, y in own[0]["polygon"]]
    demo["cameras"][0]["zones"] = zones  # the box's own checks take it
    assert SiteConfig.model_validate(demo).cameras[0].zones[0].polygon[1] == tuple(zones[0]["polygon"][1])

    bowtie = [{"name": "stall", "kind": "no_vending", "points": [[0.1, 0.1], [0.5, 0.5], [0.5, 0.1], [0.1, 0.5]]}]
    r = _check_zones(dispatch, bowtie + [{"name": "stall", "kind": "site_exit", "points": [[0.2, 0.9], [0.8, 0.9]]}])
    assert r.status_code == 422
    assert "边相交" in r.text and "有两个区域同名" in r.text and 'id="zone-ok"' not in r.text
    assert 'points="0.1,0.1 0.5,0.5 0.5,0.1 0.1,0.5"' in r.text  # the draft is drawn again to fix it
    for bad, says in [
        ("{not json", "not JSON"),
        ([{"name": "a", "kind": "no_vending", "points": [[0.1, 0.1], [0.2, 0.2]]}], "至少需要 3 个点"),
        ([{"name": "a", "kind": "moat", "points": [[0.1, 0.1], [0.2, 0.2], [0.1, 0.3]]}], "未知的区域类型"),
        ([{"name": "-a", "kind": "no_vending", "points": [[0.1, 0.1], [0.2, 0.2], [0.1, 0.3]]}], "名称只能用"),
        ([{"name": "a", "kind": "no_vending", "points": [[0.1, 0.1], [1.2, 0.2], [0.1, 0.3]]}], "points"),
    ]:
        r = _check_zones(dispatch, bad)
        assert r.status_code == 422 and says in r.text, (bad, r.text[-2000:])
    # only an administrator, and only from the page's own form
    assert 'id="zone-editor"' not in ui(dispatch, "/ui/fleet/site-a/cam-01", "reviewer").text
    assert _check_zones(dispatch, drawn, user="reviewer").status_code == 403
    assert _check_zones(dispatch, drawn, csrf=False).status_code == 403

"""The operator map without a browser: /ui/map and its GeoJSON on SQLite and PostgreSQL
(login, filters, 4xx for malformed ones, points in the tiles' datum, the cap and its
notice, the tile server in the page's CSP), and Leaflet served from the package."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support_dispatch import PASSWORD, Dispatch, build_dispatch, case_report
from vision.core.geo import gcj02_to_wgs84, wgs84_to_gcj02
from vision.core.paths import REPO_ROOT
from vision.dispatch.config import DEFAULT_DISPATCH_CONFIG, ConfigError, load_dispatch_config


def _login(d: Dispatch, user: str = "admin") -> None:
    r = d.client.post(
        "/ui/login", data={"username": user, "password": PASSWORD, "next": "/ui/"}, follow_redirects=False
    )
    assert r.status_code == 303


def _layer(fc: dict[str, Any], layer: str) -> list[dict[str, Any]]:
    return [f for f in fc["features"] if f["properties"]["layer"] == layer]


def test_map_page_and_its_geojson(dispatch: Dispatch) -> None:
    d = dispatch
    gcj = {"crs": "GCJ-02", "lat": 31.2317, "lon": 121.4845, "address": "Street 17 east corner"}
    ids = [
        d.post_case(case_report(camera_id="cam-01")).json()["case_id"],
        d.post_case(case_report(camera_id="cam-01", violation="exposed_garbage")).json()["case_id"],
        d.post_case(case_report(camera_id="cam-02", violation="muddy_truck", location=gcj)).json()["case_id"],
    ]
    d.act(ids[1], "reject", reason="duplicate")

    page = d.client.get("/ui/map", follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"] == "/ui/login?next=/ui/map"
    anon = d.client.get("/ui/map.geojson")
    assert anon.status_code == 401 and anon.headers["content-type"] == "application/json"

    _login(d)
    page = d.client.get("/ui/map?violation=street_vending")
    assert page.status_code == 200 and 'id="nav-map"' in page.text and 'id="map"' in page.text
    assert 'data-src="/ui/map.geojson?violation=street_vending"' in page.text
    assert "/static/vendor/leaflet/leaflet.js" in page.text and "/static/map.js" in page.text
    assert "地图" in page.text and "未配置底图" in page.text  # no base map by default

    r = d.client.get("/ui/map.geojson")
    assert r.status_code == 200 and r.headers["content-type"] == "application/geo+json"
    fc = r.json()
    assert fc["type"] == "FeatureCollection" and (fc["total"], fc["shown"], fc["capped"]) == (3, 3, False)
    cases = {f["properties"]["id"]: f for f in _layer(fc, "case")}
    assert sorted(cases) == sorted(ids)
    vending = cases[ids[0]]
    assert vending["geometry"] == {"type": "Point", "coordinates": [121.4737, 31.2304]}  # WGS84 on WGS84 tiles
    p = vending["properties"]
    assert (p["url"], p["type"], p["status"], p["status_label"]) == (
        f"/ui/cases/{ids[0]}",
        "无照经营游商",
        "suspected",
        "疑似",
    )
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d", p["time"]) and p["status_colour"].startswith("#")
    assert cases[ids[1]]["properties"]["status_label"] == "误报"
    lon, lat = cases[ids[2]]["geometry"]["coordinates"]  # the GCJ-02 case, drawn in WGS84
    assert (lat, lon) == pytest.approx(gcj02_to_wgs84(31.2317, 121.4845), abs=1e-6)
    cams = {f["properties"]["camera_id"]: f["properties"] for f in _layer(fc, "camera")}
    assert {k: v["cases"] for k, v in cams.items()} == {"cam-01": 2, "cam-02": 1}
    grids = _layer(fc, "grid")
    assert "310101001001001" in {g["properties"]["grid_code"] for g in grids}  # configs/grids-demo.geojson

    def shown(query: str) -> list[int]:
        return sorted(f["properties"]["id"] for f in _layer(d.client.get("/ui/map.geojson?" + query).json(), "case"))

    assert shown("violation=exposed_garbage") == [ids[1]]
    assert shown("status=rejected") == [ids[1]]
    assert shown("status=suspected&camera=cam-02") == [ids[2]]
    assert shown("since=2000-01-01&until=2000-01-02") == []
    assert len(shown("since=2000-01-01")) == 3

    for bad in (
        "since=yesterday",
        "until=2026-13-01",
        "status=bogus",
        "since=2026-02-01&until=2026-01-01",
        "page=x&violation=" + "v" * 65,
        "q=%00",
    ):
        r = d.client.get("/ui/map.geojson?" + bad)
        assert r.status_code == 422 and r.headers["content-type"] == "application/json", bad
    page = d.client.get("/ui/map?since=yesterday&violation=muddy_truck")
    assert page.status_code == 200 and "不是有效日期" in page.text  # the page shows it and leaves it out
    assert 'data-src="/ui/map.geojson?violation=muddy_truck"' in page.text
    assert d.client.get("/ui/map?violation=" + "v" * 65).status_code == 422


@pytest.fixture
def tiled(tmp_path: Path, fast_passwords: None) -> Iterator[Dispatch]:
    """A center whose map has a GCJ-02 tile server (AutoNavi-like) and a cap of 2 points."""
    cfg = yaml.safe_load(DEFAULT_DISPATCH_CONFIG.read_text(encoding="utf-8"))
    cfg["map"] = {
        "tiles": "https://wprd0{s}.tiles.city.example/appmaptile?x={x}&y={y}&z={z}",
        "subdomains": "12",
        "attribution": "© City mapping <b>",
        "datum": "GCJ-02",
        "grids": str(REPO_ROOT / "configs" / "grids-demo.geojson"),
        "max_points": 2,
    }
    path = tmp_path / "dispatch.yaml"
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    d = build_dispatch(tmp_path, f"sqlite:///{tmp_path / 'map.db'}", config_path=path)
    with d.client:
        yield d
    d.service.close()


def test_tiles_in_gcj02_cap_and_csp(tiled: Dispatch) -> None:
    d = tiled
    ids = [d.post_case(case_report(camera_id=f"cam-{i}")).json()["case_id"] for i in range(3)]
    _login(d)
    fc = d.client.get("/ui/map.geojson").json()
    assert (fc["total"], fc["shown"], fc["capped"]) == (3, 2, True)
    assert "仅显示最新的 2 件" in fc["notice"] and "共 3 件" in fc["notice"]
    cases = _layer(fc, "case")
    assert sorted(f["properties"]["id"] for f in cases) == ids[1:]  # the newest
    lon, lat = cases[0]["geometry"]["coordinates"]
    assert (lat, lon) == pytest.approx(wgs84_to_gcj02(31.2304, 121.4737), abs=1e-6)  # moved onto the GCJ-02 tiles
    g = next(f for f in _layer(fc, "grid") if f["properties"]["grid_code"] == "310101001001001")
    corner = g["geometry"]["coordinates"][0][0]
    assert corner == pytest.approx(list(reversed(wgs84_to_gcj02(31.2295, 121.4725))), abs=1e-6)
    page = d.client.get("/ui/map")
    csp = page.headers["content-security-policy"]
    img_src = next(p for p in csp.split("; ") if p.startswith("img-src"))
    assert "https://wprd01.tiles.city.example" in img_src and "https://wprd02.tiles.city.example" in img_src
    assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp  # the rest of the policy kept
    assert "tiles.city.example" not in d.client.get("/ui/cases").headers["content-security-policy"]
    assert 'data-attribution="© City mapping &lt;b&gt;"' in page.text and 'data-datum="GCJ-02"' in page.text
    d.client.cookies.set("sv_lang", "en")
    en = d.client.get("/ui/map.geojson").json()
    assert (
        "Showing the newest 2 of 3" in en["notice"]
        and _layer(en, "case")[0]["properties"]["status_label"] == "Suspected"
    )


def test_leaflet_is_served_from_the_package(tiled: Dispatch) -> None:
    js = tiled.client.get("/static/vendor/leaflet/leaflet.js")
    assert js.status_code == 200 and "Leaflet 1.9.4" in js.text[:300]
    assert tiled.client.get("/static/vendor/leaflet/leaflet.css").status_code == 200
    assert tiled.client.get("/static/vendor/leaflet/images/layers.png").headers["content-type"] == "image/png"
    vendor = REPO_ROOT / "vision/dispatch/static/vendor/leaflet"
    note = (vendor / "PROVENANCE.md").read_text(encoding="utf-8")
    listed = dict(re.findall(r"^\| `([^`]+)` \| `([0-9a-f]{64})` \|$", note, re.M))
    assert "leaflet-1.9.4.tgz" in note and {"leaflet.js", "leaflet.css", "LICENSE"} <= set(listed)
    for name, sha in listed.items():  # the files are the ones the note says came from the tarball
        assert hashlib.sha256((vendor / name).read_bytes()).hexdigest() == sha, name


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"tiles": "https://t.example/{z}/{x}.png"}, "{z}, {x} and {y}"),
        ({"tiles": "https://t{s}.example/{z}/{x}/{y}.png"}, "subdomains"),
        ({"tiles": "javascript:alert(1)//{z}{x}{y}"}, "map.tiles"),
        ({"datum": "BD-09"}, "map.datum"),
        ({"grids": "missing.geojson"}, "cannot read"),
    ],
)
def test_map_config_errors(tmp_path: Path, section: dict[str, Any], message: str) -> None:
    cfg = yaml.safe_load(DEFAULT_DISPATCH_CONFIG.read_text(encoding="utf-8"))
    cfg["map"] = section
    path = tmp_path / "dispatch.yaml"
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_dispatch_config(path)

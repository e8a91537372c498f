"""Open311 GeoReport v2 responses checked field by field, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.support_dispatch import Dispatch, case_report

SERVICE_FIELDS = {"service_code", "service_name", "description", "metadata", "type", "keywords", "group"}
REQUEST_FIELDS = {
    "service_request_id",
    "status",
    "status_notes",
    "service_name",
    "service_code",
    "description",
    "agency_responsible",
    "service_notice",
    "requested_datetime",
    "updated_datetime",
    "expected_datetime",
    "address",
    "address_id",
    "zipcode",
    "lat",
    "long",
    "media_url",
    "extended_attributes",  # the GeoReport v2 extension: our fields beyond the standard's (a plate), or null
}
BASE = "/open311/v2"


def _is_iso_with_zone(value: str) -> bool:
    return datetime.fromisoformat(value).tzinfo is not None


@pytest.fixture(autouse=True)
def publish_everything(dispatch: Dispatch) -> None:
    """These tests check the field mapping of every state, so the city here publishes
    every case with its exact point; the default (accepted and later, coarse location)
    is checked in test_dispatch_credentials.py."""
    from vision.dispatch.config import Open311Config, Open311Publish
    from vision.dispatch.workflow import Status

    everything = Open311Config(publish=Open311Publish(statuses=list(Status), location_decimals=None))
    dispatch.service.ctx.config = dispatch.service.config.model_copy(update={"open311": everything})


@pytest.fixture
def api_key(dispatch: Dispatch) -> str:
    return dispatch.service.create_client("city-app", "open311")[1]


def test_services_list_has_every_field(dispatch: Dispatch) -> None:
    r = dispatch.client.get(f"{BASE}/services.json")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    services = r.json()
    assert {s["service_code"] for s in services} >= {
        "street_vending",
        "non_motor_parking",
        "exposed_garbage",
        "muddy_truck",
    }
    for s in services:
        assert set(s) == SERVICE_FIELDS
        assert s["metadata"] is False and s["type"] in ("realtime", "batch", "blackbox")
        assert isinstance(s["keywords"], str) and s["group"]
    garbage = next(s for s in services if s["service_code"] == "exposed_garbage")
    assert "暴露垃圾" in garbage["service_name"] and "0110" in garbage["keywords"] and garbage["group"] == "市容环境"


def test_request_fields_and_state_mapping(dispatch: Dispatch) -> None:
    cid = dispatch.post_case(case_report()).json()["case_id"]
    r = dispatch.client.get(f"{BASE}/requests/{cid}.json")
    assert r.status_code == 200
    (req,) = r.json()
    assert set(req) == REQUEST_FIELDS
    assert req["service_request_id"] == str(cid) and req["status"] == "open"
    assert req["status_notes"].startswith("疑似") and req["agency_responsible"] is None
    assert req["service_code"] == "street_vending" and "无照经营游商" in req["service_name"]
    assert req["lat"] == pytest.approx(31.2304) and req["long"] == pytest.approx(121.4737)
    assert req["address"] == "南京东路 100 号" and req["address_id"] == "310101001001001"
    assert _is_iso_with_zone(req["requested_datetime"]) and _is_iso_with_zone(req["updated_datetime"])
    assert req["expected_datetime"] is None and req["media_url"] is None

    dispatch.act(cid, "accept")
    dispatch.act(cid, "dispatch")
    (req,) = dispatch.client.get(f"{BASE}/requests/{cid}.json").json()
    assert req["status"] == "open" and req["status_notes"].startswith("派遣")
    assert req["agency_responsible"] == "城市管理执法大队" and _is_iso_with_zone(req["expected_datetime"])

    other = dispatch.post_case(case_report(camera_id="cam-02")).json()["case_id"]
    dispatch.act(other, "reject", reason="parked legally")
    (req,) = dispatch.client.get(f"{BASE}/requests/{other}.json").json()
    assert req["status"] == "closed" and "误报" in req["status_notes"] and "parked legally" in req["status_notes"]


def test_gcj02_coordinates_are_not_passed_off_as_wgs84(dispatch: Dispatch) -> None:
    report = case_report()
    report["location"]["crs"] = "GCJ-02"
    cid = dispatch.post_case(report).json()["case_id"]
    (req,) = dispatch.client.get(f"{BASE}/requests/{cid}.json").json()
    assert req["lat"] is None and req["long"] is None and req["address"]


def test_request_search_filters(dispatch: Dispatch) -> None:
    a = dispatch.post_case(case_report()).json()["case_id"]
    b = dispatch.post_case(case_report(camera_id="cam-02", violation="exposed_garbage")).json()["case_id"]
    dispatch.act(b, "reject", reason="bin, not garbage")
    get = lambda **p: dispatch.client.get(f"{BASE}/requests.json", params=p)  # noqa: E731
    ids = lambda r: sorted(int(x["service_request_id"]) for x in r.json())  # noqa: E731
    assert ids(get()) == sorted([a, b])
    assert ids(get(status="open")) == [a]
    assert ids(get(status="closed")) == [b]
    assert ids(get(status="open,closed")) == sorted([a, b])
    assert ids(get(service_code="exposed_garbage")) == [b]
    assert ids(get(service_code="exposed_garbage,street_vending")) == sorted([a, b])
    assert ids(get(service_request_id=f"{a},{b}", status="open")) == sorted([a, b])  # other filters ignored
    now = datetime.now(UTC)
    assert ids(
        get(start_date=(now - timedelta(hours=1)).isoformat(), end_date=(now + timedelta(hours=1)).isoformat())
    ) == sorted([a, b])
    assert ids(get(start_date=(now + timedelta(hours=1)).isoformat())) == []
    assert ids(get(end_date=(now - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"))) == []
    for params, code in [
        ({"start_date": (now - timedelta(days=100)).isoformat(), "end_date": now.isoformat()}, 400),
        ({"start_date": now.isoformat(), "end_date": (now - timedelta(days=1)).isoformat()}, 400),
        ({"start_date": "yesterday"}, 400),
        ({"status": "pending"}, 400),
        ({"service_request_id": "1;drop"}, 400),
    ]:
        r = get(**params)
        assert r.status_code == code, params
        (err,) = r.json()
        assert set(err) == {"code", "description"} and err["code"] == code


def test_missing_request_is_404_in_georeport_format(dispatch: Dispatch) -> None:
    for rid in ("999999", "abc", "0", "-1"):
        r = dispatch.client.get(f"{BASE}/requests/{rid}.json")
        assert r.status_code == 404
        assert r.json()[0]["code"] == 404 and r.json()[0]["description"]


def test_post_request_creates_a_suspected_case(dispatch: Dispatch, api_key: str) -> None:
    form = {
        "api_key": api_key,
        "service_code": "exposed_garbage",
        "lat": "31.2",
        "long": "121.5",
        "address_string": "人民广场东侧",
        "description": "垃圾堆在路边",
        "media_url": "https://example.org/p.jpg",
        "email": "a@example.org",
        "first_name": "Li",
        "attribute[WHERE]": "sidewalk",
    }
    r = dispatch.client.post(f"{BASE}/requests.json", data=form)
    assert r.status_code == 201, r.text
    (created,) = r.json()
    assert set(created) == {"service_request_id", "service_notice", "account_id"}
    (req,) = dispatch.client.get(f"{BASE}/requests/{created['service_request_id']}.json").json()
    assert req["status"] == "open" and req["description"] == "垃圾堆在路边"
    assert req["media_url"] == "https://example.org/p.jpg" and req["lat"] == pytest.approx(31.2)
    detail = dispatch.client.get(
        f"/api/v1/cases/{created['service_request_id']}", headers=dispatch.auth("reviewer")
    ).json()
    assert detail["source"] == "open311" and detail["status"] == "suspected"
    assert detail["transitions"][0]["actor"] == "city-app" and detail["department"] == "sanitation"


@pytest.mark.parametrize(
    "form, code",
    [
        ({"service_code": "exposed_garbage", "lat": "1", "long": "2"}, 403),
        ({"api_key": "wrong", "service_code": "exposed_garbage", "lat": "1", "long": "2"}, 403),
        ({"api_key": "KEY", "lat": "1", "long": "2"}, 400),
        ({"api_key": "KEY", "service_code": "flying_cars", "lat": "1", "long": "2"}, 404),
        ({"api_key": "KEY", "service_code": "exposed_garbage"}, 400),
        ({"api_key": "KEY", "service_code": "exposed_garbage", "lat": "north", "long": "2"}, 400),
        ({"api_key": "KEY", "service_code": "exposed_garbage", "lat": "91", "long": "2"}, 400),
        ({"api_key": "KEY", "service_code": "exposed_garbage", "address_string": "x", "description": "d" * 4001}, 400),
        (
            {
                "api_key": "KEY",
                "service_code": "exposed_garbage",
                "address_string": "x",
                "media_url": "file:///etc/passwd",
            },
            400,
        ),
    ],
)
def test_post_request_errors(dispatch: Dispatch, api_key: str, form: dict, code: int) -> None:
    form = {k: (api_key if v == "KEY" else v) for k, v in form.items()}
    r = dispatch.client.post(f"{BASE}/requests.json", data=form)
    assert r.status_code == code, r.text
    (err,) = r.json()
    assert err["code"] == code and err["description"]


def test_device_token_is_not_an_open311_key(dispatch: Dispatch) -> None:
    r = dispatch.client.post(
        f"{BASE}/requests.json",
        data={"api_key": dispatch.device_token, "service_code": "exposed_garbage", "address_string": "x"},
    )
    assert r.status_code == 403


def test_service_definition(dispatch: Dispatch) -> None:
    assert dispatch.client.get(f"{BASE}/services/muddy_truck.json").json() == {
        "service_code": "muddy_truck",
        "attributes": [],
    }
    r = dispatch.client.get(f"{BASE}/services/nothing.json")
    assert r.status_code == 404 and r.json()[0]["code"] == 404

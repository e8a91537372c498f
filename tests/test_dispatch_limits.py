"""Inputs the database would refuse are refused by the API first (4xx, never 5xx), on
SQLite and PostgreSQL alike: dates near year 1 and 9999, integers beyond an INTEGER
column, text longer than its column, NUL characters, NaN and Infinity (issue 11,
item 3). And the edge's `config check` refuses a camera whose every case the center
would refuse (item 4)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from tests.support_dispatch import PASSWORD, Dispatch, case_report
from tests.support_edge import make_case
from vision.core.cases import ADDRESS_MAX, ID_MAX, INT32_MAX, CaseReport, Location
from vision.edge.config import CameraConfig, StreetVendingRuleConfig
from vision.edge.delivery.outbox import Outbox
from vision.edge.delivery.sender import Sender

OPEN311 = "/open311/v2"
FAR_DATES = [
    "0001-01-01T00:00:00+05:00",  # UTC conversion leaves datetime's range
    "0001-01-01T00:00:00",
    "9999-12-31T23:59:59-05:00",
    "9999-12-31T00:00:00",  # + the 90-day search span leaves datetime's range
    "9999-10-15T00:00:00Z",
]


def _client_error(r: Any) -> None:
    assert 400 <= r.status_code < 500, (r.status_code, r.text[:300])


@pytest.fixture
def api_key(dispatch: Dispatch) -> str:
    return dispatch.service.create_client("city-app", "open311")[1]


# ------------------------------------------------------------------ Open311
@pytest.mark.parametrize("date", FAR_DATES)
@pytest.mark.parametrize("param", ["start_date", "end_date"])
def test_open311_far_dates_are_400(dispatch: Dispatch, param: str, date: str) -> None:
    r = dispatch.client.get(f"{OPEN311}/requests.json", params={param: date})
    assert r.status_code == 400, r.text
    assert r.json()[0]["description"].startswith(param)


def test_open311_dates_in_range_still_work(dispatch: Dispatch) -> None:
    r = dispatch.client.get(f"{OPEN311}/requests.json", params={"start_date": "2026-01-01T00:00:00+05:00"})
    assert r.status_code == 200 and r.json() == []


def test_open311_nul_in_service_code_is_400(dispatch: Dispatch) -> None:
    r = dispatch.client.get(f"{OPEN311}/requests.json", params={"service_code": "street_vending\x00"})
    assert r.status_code == 400 and "NUL" in r.json()[0]["description"]


@pytest.mark.parametrize("field", ["address_string", "description", "media_url", "address_id"])
def test_open311_post_nul_is_400(dispatch: Dispatch, api_key: str, field: str) -> None:
    form = {"api_key": api_key, "service_code": "street_vending", "lat": "31.2", "long": "121.4"}
    form[field] = "http://x/\x00" if field == "media_url" else "南京东路\x00"
    r = dispatch.client.post(f"{OPEN311}/requests.json", data=form)
    assert r.status_code == 400 and r.json()[0]["description"].startswith(field)


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e400"])
def test_open311_post_non_finite_coordinates_are_400(dispatch: Dispatch, api_key: str, value: str) -> None:
    form = {"api_key": api_key, "service_code": "street_vending", "lat": value, "long": "121.4"}
    r = dispatch.client.post(f"{OPEN311}/requests.json", data=form)
    assert r.status_code == 400, r.text


def test_open311_post_long_address_is_cut_to_the_column(dispatch: Dispatch, api_key: str) -> None:
    form = {"api_key": api_key, "service_code": "street_vending", "address_string": "路" * 300}
    r = dispatch.client.post(f"{OPEN311}/requests.json", data=form)
    assert r.status_code == 201, r.text
    case_id = int(r.json()[0]["service_request_id"])
    assert dispatch.service.cases_by_ids([case_id])[0].address == "路" * ADDRESS_MAX


# ------------------------------------------------------------------ case intake
@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"object_count": 10**20}, "object_count"),
        ({"object_count": 2**31}, "object_count"),
        ({"location": {"crs": "WGS84", "lat": 31.2, "lon": 121.4, "address": "路" * 300}}, "location"),
        ({"camera_id": "cam\x00"}, "camera_id"),
        ({"zone": "side\x00walk"}, "zone"),
        ({"classes": ["person\x00"]}, "classes"),
        ({"rule": "r" * (ID_MAX + 1)}, "rule"),
        ({"detected_at": "0001-01-01T00:00:00+05:00"}, "detected_at"),
        ({"onset_at": "9999-12-31T23:59:59-05:00"}, "onset_at"),
        ({"detected_at": "9999-12-31T23:00:00Z"}, "detected_at"),
    ],
)
def test_case_values_beyond_the_columns_are_422(dispatch: Dispatch, change: dict[str, Any], where: str) -> None:
    r = dispatch.post_case({**case_report(), **change})
    assert r.status_code == 422, r.text
    assert any(e["loc"][:2] == ["case", where] for e in r.json()["detail"]), r.json()


@pytest.mark.parametrize("token", ["Infinity", "-Infinity", "NaN"])
@pytest.mark.parametrize("field", ["dwell_s", "confidence"])
def test_case_non_finite_numbers_in_json_are_422(dispatch: Dispatch, field: str, token: str) -> None:
    body = json.dumps(case_report(**{field: 4242.4242})).replace("4242.4242", token)
    files = [("case", (None, body, None))]
    r = dispatch.client.post("/api/v1/cases", headers=dispatch.device, files=files)
    assert r.status_code == 422, r.text


def test_case_at_the_limits_is_stored(dispatch: Dispatch) -> None:
    report = case_report(
        object_count=INT32_MAX,
        camera_id="c" * ID_MAX,
        location={"crs": "WGS84", "lat": 31.2, "lon": 121.4, "address": "路" * ADDRESS_MAX},
    )
    r = dispatch.post_case(report)
    assert r.status_code == 201, r.text
    case = dispatch.service.cases_by_ids([r.json()["case_id"]])[0]
    assert (case.object_count, case.address) == (INT32_MAX, "路" * ADDRESS_MAX)


# ------------------------------------------------------------------ operator routes
def test_list_filters_nul_and_far_dates_are_422(dispatch: Dispatch) -> None:
    for params in (
        {"camera_id": "cam\x00"},
        {"violation": "street_vending\x00"},
        {"since": "0001-01-01T00:00:00+05:00"},
        {"until": "9999-12-31T23:59:59-05:00"},
    ):
        r = dispatch.client.get("/api/v1/cases", params=params, headers=dispatch.auth("reviewer"))
        assert r.status_code == 422, (params, r.text)
    r = dispatch.client.get(
        "/api/v1/cases", params={"since": "2026-01-01T00:00:00+05:00"}, headers=dispatch.auth("reviewer")
    )
    assert r.status_code == 200


def test_login_nul_username_is_4xx(dispatch: Dispatch) -> None:
    r = dispatch.client.post("/api/v1/auth/login", json={"username": "admin\x00", "password": PASSWORD})
    assert r.status_code == 422, r.text
    r = dispatch.client.post(
        "/ui/login", data={"username": "admin\x00", "password": PASSWORD, "next": "/ui/"}, follow_redirects=False
    )
    _client_error(r)


def test_transition_nul_reason_is_422(dispatch: Dispatch) -> None:
    case_id = dispatch.post_case(case_report()).json()["case_id"]
    r = dispatch.act(case_id, "reject", role="reviewer", reason="误报\x00")
    assert r.status_code == 422, r.text


def test_database_data_error_is_422_not_500(dispatch: Dispatch, monkeypatch: pytest.MonkeyPatch) -> None:
    """The net under the schemas: a value the database refuses still answers 422."""
    from sqlalchemy.exc import DataError

    def refuse(*_args: Any, **_kwargs: Any) -> None:
        raise DataError("INSERT ...", {}, Exception("value too long for type character varying(255)"))

    monkeypatch.setattr(dispatch.service, "intake", refuse)
    r = dispatch.post_case(case_report())
    assert r.status_code == 422 and "refused by the database" in r.json()["detail"]


# ------------------------------------------------------------------ the schema itself
def test_report_schema_refuses_nul_and_non_finite() -> None:
    with pytest.raises(ValidationError):
        Location(crs="WGS84", lat=float("nan"), lon=0.0)
    with pytest.raises(ValidationError):
        CaseReport.model_validate({**case_report(), "dwell_s": float("inf")})
    with pytest.raises(ValidationError):
        CaseReport.model_validate({**case_report(), "event_name": "a\x00"})


# ------------------------------------------------------------------ the edge's config check
def _camera(**change: Any) -> dict[str, Any]:
    cam = {
        "id": "cam-01",
        "source": "video.mp4",
        "location": {"crs": "WGS84", "lat": 31.2, "lon": 121.4, "address": "南京东路 100 号"},
        "grid_code": "310101001001001",
    }
    cam.update(change)
    return cam


def test_config_refuses_a_camera_address_the_center_refuses() -> None:
    CameraConfig.model_validate(_camera(location={"crs": "WGS84", "lat": 31.2, "lon": 121.4, "address": "路" * 255}))
    with pytest.raises(ValidationError, match="address"):
        CameraConfig.model_validate(
            _camera(location={"crs": "WGS84", "lat": 31.2, "lon": 121.4, "address": "路" * 306})
        )
    with pytest.raises(ValidationError, match="address"):
        CameraConfig.model_validate(_camera(location={"crs": "WGS84", "lat": 31.2, "lon": 121.4, "address": "a\x00"}))
    with pytest.raises(ValidationError, match="id"):
        CameraConfig.model_validate(_camera(id="c" * (ID_MAX + 1)))


def test_config_refuses_rule_names_and_classes_the_center_refuses() -> None:
    StreetVendingRuleConfig.model_validate({"type": "street_vending", "name": "r" * ID_MAX})
    with pytest.raises(ValidationError, match="name"):
        StreetVendingRuleConfig.model_validate({"type": "street_vending", "name": "r" * (ID_MAX + 1)})
    with pytest.raises(ValidationError, match="classes"):
        StreetVendingRuleConfig.model_validate({"type": "street_vending", "classes": ["stall\x00"]})


# ------------------------------------------------------------------ the edge's sender
@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (400, "failed"),
        (401, "failed"),
        (403, "failed"),
        (404, "failed"),
        (409, "failed"),
        (413, "failed"),
        (422, "failed"),
        (408, "retry"),
        (429, "retry"),
        (500, "retry"),
        (503, "retry"),
    ],
)
def test_sender_keeps_a_4xx_as_failed_and_retries_only_408_429_5xx(tmp_path: Path, status: int, outcome: str) -> None:
    ob = Outbox(tmp_path / "ob")
    key = ob.put(make_case(), [])
    transport = httpx.MockTransport(lambda _request: httpx.Response(status, text="refused"))
    sender = Sender(ob, "http://dispatch", "t", transport=transport)
    assert sender.send(ob.next_due()) == outcome
    state = ob.record(key).state
    assert state == ("failed" if outcome == "failed" else "queued")


def test_a_case_the_center_refuses_is_failed_once_not_retried(dispatch: Dispatch, tmp_path: Path) -> None:
    """Issue 11, item 4: a report from an edge box without the new config limits (a
    306-character camera address) gets a 422 from the center, on PostgreSQL too, and
    the sender keeps it as failed instead of retrying it forever."""
    case = make_case(site_id="site-a")
    loc = case.location.model_construct(**{**case.location.model_dump(), "address": "路" * 306})
    ob = Outbox(tmp_path / "ob")
    key = ob.put(case.model_copy(update={"location": loc}), [])
    sender = Sender(ob, "http://testserver", dispatch.device_token, transport=dispatch.client._transport)
    assert sender.drain() == 0
    record = ob.record(key)
    assert (record.state, record.last_status) == ("failed", 422)
    assert sender.stats.permanent_failures == 1 and sender.stats.retries == 0

"""Muddy-truck cases that name the truck (issue 13), on SQLite and on a real PostgreSQL:
reports merge by the plate read, not by box overlap; the plate is stored, searched,
shown in the UI and carried by the case JSON, Open311 and notifications."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.support_dispatch import PASSWORD, Dispatch, build_dispatch, case_report, make_jpeg

EXIT = (0.40, 0.50, 0.70, 0.90)  # where trucks leave the site
ELSEWHERE = (0.05, 0.05, 0.20, 0.25)  # no overlap with EXIT


def plate(text: str = "苏E12345", confidence: float = 0.9, colour: str = "yellow", rows: int = 2) -> dict[str, Any]:
    return {"text": text, "confidence": confidence, "colour": colour, "rows": rows, "frames": 4}


def truck(reading: dict[str, Any] | None, at: datetime, bbox: tuple[float, ...] = EXIT, **extra: Any) -> dict[str, Any]:
    """A muddy-truck report; `reading` is its plate (None: the plate was not read)."""
    report = case_report(violation="muddy_truck", bbox=bbox, detected_at=at, classes=["truck"], **extra)
    if reading is not None:
        report["plate"] = reading
    return report


def post(d: Dispatch, report: dict[str, Any], evidence: dict[str, tuple[str, str, bytes]] | None = None) -> Any:
    r = d.post_case(report, evidence)
    assert r.status_code in (200, 201), r.text
    return r.json()


def detail(d: Dispatch, case_id: int) -> dict[str, Any]:
    return d.client.get(f"/api/v1/cases/{case_id}", headers=d.auth("admin")).json()


def ui_login(d: Dispatch) -> None:
    r = d.client.post("/ui/login", data={"username": "admin", "password": PASSWORD}, follow_redirects=False)
    assert r.status_code == 303


# ------------------------------------------------------------------ merging
def test_two_trucks_at_one_exit_are_two_cases(dispatch: Dispatch) -> None:
    t0 = datetime.now(UTC)
    a = post(dispatch, truck(plate("苏E12345"), t0))
    b = post(dispatch, truck(plate("苏E67890"), t0 + timedelta(minutes=2)))  # same box, other plate
    assert a["created"] and b["created"] and a["case_id"] != b["case_id"]
    assert detail(dispatch, a["case_id"])["plate_text"] == "苏E12345"
    assert detail(dispatch, b["case_id"])["plate_text"] == "苏E67890"


def test_the_same_truck_again_is_one_case_wherever_its_box(dispatch: Dispatch) -> None:
    t0 = datetime.now(UTC)
    first = post(dispatch, truck(plate("苏E12345", 0.80, rows=1), t0))
    # read as 苏e·12345 this time (normalised by the schema), elsewhere in the frame, more sure of it
    again = post(dispatch, truck(plate("苏e·12345", 0.95, rows=2), t0 + timedelta(minutes=10), bbox=ELSEWHERE))
    assert again["merged"] and again["case_id"] == first["case_id"]
    case = detail(dispatch, first["case_id"])
    assert case["occurrence_count"] == 2 and len(case["occurrences"]) == 2
    assert (case["plate_text"], case["plate_confidence"], case["plate_rows"]) == ("苏E12345", 0.95, 2)
    # a less confident reading joins too, but does not replace the better one
    third = post(dispatch, truck(plate("苏E12345", 0.60, "blue", 1), t0 + timedelta(minutes=12)))
    assert third["case_id"] == first["case_id"]
    case = detail(dispatch, first["case_id"])
    assert (case["plate_confidence"], case["plate_colour"], case["occurrence_count"]) == (0.95, "yellow", 3)


def test_a_truck_without_a_plate_is_always_its_own_case(dispatch: Dispatch) -> None:
    t0 = datetime.now(UTC)
    unread = [post(dispatch, truck(None, t0 + timedelta(minutes=i))) for i in range(2)]  # same box twice
    assert all(r["created"] for r in unread) and unread[0]["case_id"] != unread[1]["case_id"]
    named = post(dispatch, truck(plate(), t0 + timedelta(minutes=3)))  # never joins a plate-less case
    assert named["created"]
    later = post(dispatch, truck(None, t0 + timedelta(minutes=4)))  # nor a plate-less report a plated one
    assert later["created"] and later["case_id"] != named["case_id"]
    assert detail(dispatch, named["case_id"])["occurrence_count"] == 1
    case = detail(dispatch, later["case_id"])
    assert case["plate_text"] is case["plate_colour"] is case["plate_confidence"] is case["plate_rows"] is None


def test_same_plate_elsewhere_later_or_after_rejection_is_a_new_case(dispatch: Dispatch) -> None:
    t0 = datetime.now(UTC)
    first = post(dispatch, truck(plate(), t0))["case_id"]
    for report in [
        truck(plate(), t0 + timedelta(minutes=5), camera_id="cam-02"),  # another camera
        truck(plate(), t0 + timedelta(hours=2)),  # outside the window
    ]:
        assert post(dispatch, report)["created"]
    assert dispatch.act(first, "reject", "reviewer", reason="not muddy").status_code == 200
    assert post(dispatch, truck(plate(), t0 + timedelta(minutes=6)))["case_id"] != first


def test_other_types_still_merge_by_overlap(dispatch: Dispatch) -> None:
    t0 = datetime.now(UTC)
    first = post(dispatch, case_report(detected_at=t0))
    same = post(dispatch, case_report(detected_at=t0 + timedelta(minutes=5), bbox=(0.3, 0.35, 0.5, 0.7)))
    assert same["merged"] and same["case_id"] == first["case_id"]
    apart = post(dispatch, case_report(detected_at=t0 + timedelta(minutes=6), bbox=(0.6, 0.6, 0.9, 0.9)))
    assert apart["created"]


def test_without_merge_by_plate_trucks_merge_by_overlap(dispatch: Dispatch) -> None:
    """A city that lists no vehicle types keeps the overlap rule for trucks too."""
    dispatch.service.ctx.config = dispatch.service.config.model_copy(update={"merge_by_plate": []})
    t0 = datetime.now(UTC)
    first = post(dispatch, truck(None, t0))
    assert post(dispatch, truck(plate(), t0 + timedelta(minutes=1)))["case_id"] == first["case_id"]
    assert detail(dispatch, first["case_id"])["plate_text"] == "苏E12345"  # the first reading names it


# ------------------------------------------------------------------ searching
def test_search_finds_a_case_by_full_partial_or_spelled_plate(dispatch: Dispatch) -> None:
    t0 = datetime.now(UTC)
    named = post(dispatch, truck(plate("苏E12345"), t0))["case_id"]
    other = post(dispatch, truck(plate("京AD12345", colour="green", rows=1), t0))["case_id"]
    post(dispatch, truck(None, t0))
    post(dispatch, case_report(detected_at=t0))

    def api(**params: str) -> list[int]:
        r = dispatch.client.get("/api/v1/cases", params=params, headers=dispatch.auth("reviewer"))
        assert r.status_code == 200, r.text
        return sorted(c["id"] for c in r.json()["items"])

    for q in ["苏E12345", "苏E·12345", "苏e12345", " 苏e-123 ", "E123", "ｅ１２３"]:  # full width folds too
        assert api(q=q) == [named], q
        assert api(plate=q) == [named], q
    assert api(q="12345") == sorted([named, other])
    assert api(plate="AD") == [other]
    assert api(plate="苏E99999") == []
    items = dispatch.client.get("/api/v1/cases", params={"q": "苏E12345"}, headers=dispatch.auth("admin")).json()
    assert items["items"][0]["plate_colour"] == "yellow"

    ui_login(dispatch)
    queue = dispatch.client.get("/ui/", params={"q": "苏e·12345"}).text
    assert re.findall(r'data-case="(\d+)"', queue) == [str(named)]
    rows = dispatch.client.get("/ui/cases", params={"q": "E123"}).text
    assert re.findall(r'<tr id="row-(\d+)"', rows) == [str(named)]


@pytest.mark.parametrize("plate_param", ["苏E!", "x" * 40, "苏\x00E1", "A", "路"])
def test_a_malformed_plate_filter_is_422(dispatch: Dispatch, plate_param: str) -> None:
    r = dispatch.client.get("/api/v1/cases", params={"plate": plate_param}, headers=dispatch.auth("admin"))
    assert r.status_code == 422, r.text


@pytest.mark.parametrize("q", ["²", "#²", "!!", "苏E" * 30, "%_\\"])
def test_odd_searches_are_answered_not_500(dispatch: Dispatch, q: str) -> None:
    post(dispatch, truck(plate(), datetime.now(UTC)))
    r = dispatch.client.get("/api/v1/cases", params={"q": q}, headers=dispatch.auth("admin"))
    assert r.status_code == 200 and r.json()["total"] == 0, r.text
    ui_login(dispatch)
    assert dispatch.client.get("/ui/cases", params={"q": q}).status_code == 200
    assert (
        dispatch.client.get("/api/v1/cases", params={"q": "x\x00"}, headers=dispatch.auth("admin")).status_code == 422
    )
    assert dispatch.client.get("/ui/", params={"q": "x" * 101}).status_code == 422


# ------------------------------------------------------------------ telling others
def test_case_json_carries_the_plate(dispatch: Dispatch) -> None:
    cid = post(dispatch, truck(plate("苏E12345", 0.93), datetime.now(UTC)))["case_id"]
    case = detail(dispatch, cid)
    assert {k: case[k] for k in ("plate_text", "plate_colour", "plate_confidence", "plate_rows")} == {
        "plate_text": "苏E12345",
        "plate_colour": "yellow",
        "plate_confidence": 0.93,
        "plate_rows": 2,
    }
    assert case["occurrences"][0]["idempotency_key"]
    vending = detail(dispatch, post(dispatch, case_report())["case_id"])
    assert vending["plate_text"] is None and vending["plate_colour"] is None


def test_open311_shows_the_plate_only_where_the_city_publishes_plates(dispatch: Dispatch) -> None:
    named = post(dispatch, truck(plate(), datetime.now(UTC)))["case_id"]
    unread = post(dispatch, truck(None, datetime.now(UTC)))["case_id"]
    for cid in (named, unread):
        assert dispatch.act(cid, "accept").status_code == 200

    def request(cid: int) -> dict[str, Any]:
        r = dispatch.client.get(f"/open311/v2/requests/{cid}.json")
        assert r.status_code == 200, r.text
        (req,) = r.json()
        return req

    assert request(named)["extended_attributes"] is None  # by default a plate stays internal
    assert "苏E12345" not in dispatch.client.get("/open311/v2/requests.json").text
    publish = dispatch.service.config.open311.publish.model_copy(update={"plates": True})
    open311 = dispatch.service.config.open311.model_copy(update={"publish": publish})
    dispatch.service.ctx.config = dispatch.service.config.model_copy(update={"open311": open311})
    assert request(named)["extended_attributes"] == {"plate": "苏E12345", "plate_colour": "yellow"}
    assert request(unread)["extended_attributes"] is None
    listed = {r["service_request_id"]: r for r in dispatch.client.get("/open311/v2/requests.json").json()}
    assert listed[str(named)]["extended_attributes"]["plate"] == "苏E12345"


class Recorder:
    """A notification sink that keeps what it was sent."""

    def __init__(self) -> None:
        self.events: list[Any] = []

    def send(self, event: Any) -> None:
        self.events.append(event)

    def close(self) -> None:
        pass


@pytest.fixture
def recorded(tmp_path: Path, db_url: str, fast_passwords: None) -> Iterator[tuple[Dispatch, Recorder]]:
    from vision.dispatch.notify import Notifier

    sink = Recorder()
    d = build_dispatch(tmp_path, db_url, notifier=Notifier([sink]))
    with d.client:
        yield d, sink
    d.service.close()


def test_notifications_carry_the_plate(recorded: tuple[Dispatch, Recorder]) -> None:
    import json

    d, sink = recorded
    t0 = datetime.now(UTC)
    cid = post(d, truck(plate(), t0))["case_id"]
    post(d, truck(plate(), t0 + timedelta(minutes=1), bbox=ELSEWHERE))
    d.act(cid, "accept", "reviewer")
    post(d, case_report(detected_at=t0))
    d.service.notifier.flush()
    payloads = [json.loads(e.payload()) for e in sink.events]
    assert [(p["type"], p["plate"], p["plate_colour"]) for p in payloads] == [
        ("new", "苏E12345", "yellow"),
        ("occurrence", "苏E12345", "yellow"),
        ("state", "苏E12345", "yellow"),
        ("new", None, None),
    ]


# ------------------------------------------------------------------ the review UI
def test_pages_show_the_plate_in_its_colour(dispatch: Dispatch) -> None:
    t0 = datetime.now(UTC)
    crop = make_jpeg(120, 40, seed=3)
    ev = {"snapshot.jpg": ("snapshot", "image/jpeg", make_jpeg()), "plate.jpg": ("plate_crop", "image/jpeg", crop)}
    named = post(dispatch, truck(plate("苏E12345", 0.93), t0, evidence=ev), ev)["case_id"]
    blue = post(dispatch, truck(plate("沪A12345", 0.7, "blue", 1), t0, camera_id="cam-02"))["case_id"]
    unread = post(dispatch, truck(None, t0))["case_id"]
    vending = post(dispatch, case_report(detected_at=t0))["case_id"]
    ui_login(dispatch)

    page = dispatch.client.get(f"/ui/cases/{named}").text
    panel = page.split('id="plate"')[1].split("</div>")[0]
    assert 'class="plate plate-yellow rows-2 big" data-plate="苏E12345"' in panel
    assert "<span>苏E</span><span>12345</span>" in panel  # the lorry's double-row plate, in two rows
    assert "黄牌" in panel and "双层车牌" in panel and "置信度 0.93" in panel
    assert 'class="ev-plate_crop' in panel and page.count("ev-plate_crop") == 1  # beside the plate, not twice
    assert 'class="plate plate-blue big" data-plate="沪A12345"' in dispatch.client.get(f"/ui/cases/{blue}").text
    assert "沪A·12345" in dispatch.client.get(f"/ui/cases/{blue}").text
    assert "未识别车牌" in dispatch.client.get(f"/ui/cases/{unread}").text
    vending_page = dispatch.client.get(f"/ui/cases/{vending}").text
    assert 'id="plate"' not in vending_page and "未识别车牌" not in vending_page

    queue = dispatch.client.get("/ui/").text
    card = lambda cid: queue.split(f'id="case-{cid}"')[1].split("</article>")[0]  # noqa: E731
    assert 'data-plate="苏E12345"' in card(named) and "未识别车牌" in card(unread)
    assert "data-plate" not in card(vending) and "未识别车牌" not in card(vending)
    rows = dispatch.client.get("/ui/cases").text
    row = lambda cid: rows.split(f'id="row-{cid}"')[1].split("</tr>")[0]  # noqa: E731
    assert "<th>车牌</th>" in rows and 'data-plate="沪A12345"' in row(blue) and "未识别车牌" in row(unread)
    assert 'class="plate-cell"></td>' in row(vending)

    dispatch.client.get("/ui/lang/en")
    english = dispatch.client.get(f"/ui/cases/{named}").text
    assert "Yellow plate" in english and "double-row" in english and "车牌" not in english


# ------------------------------------------------------------------ the migration
@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_migration_adds_the_plate_to_existing_cases(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """A center upgraded from 0001 keeps its cases (without a plate) and can go back."""
    from alembic import command
    from sqlalchemy import inspect, text

    from vision.dispatch.db import alembic_config, for_writes, make_engine, migrate

    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'upgrade.db'}"
    else:
        pg = request.getfixturevalue("pg_server")
        pg._admin("DROP DATABASE IF EXISTS sv_plate_upgrade")
        pg._admin("CREATE DATABASE sv_plate_upgrade")
        url = pg.url("sv_plate_upgrade")
    engine = make_engine(url)
    try:
        migrate(engine, "0001")
        now = datetime.now(UTC).replace(tzinfo=None)
        with for_writes(engine).begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO cases (source, status, violation, event_name, crs, object_count, classes,"
                    " first_detected_at, last_detected_at, occurrence_count, deadline_working_hours,"
                    " created_at, updated_at) VALUES ('edge', 'suspected', 'muddy_truck', '渣土车', 'WGS84', 1,"
                    " '[]', :t, :t, 1, 8, :t, :t)"
                ),
                {"t": now},
            )
        migrate(engine)
        with engine.connect() as conn:
            row = conn.execute(text("SELECT violation, plate_text, plate_rows FROM cases")).one()
        assert tuple(row) == ("muddy_truck", None, None)
        assert "ix_cases_plate_text" in {ix["name"] for ix in inspect(engine).get_indexes("cases")}
        command.downgrade(alembic_config(for_writes(engine)), "0001")
        assert "plate_text" not in {c["name"] for c in inspect(engine).get_columns("cases")}
    finally:
        engine.dispose()
        if backend == "postgresql":
            request.getfixturevalue("pg_server").drop(url)

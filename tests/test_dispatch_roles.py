"""The rest of the workflow (issue 12): department accounts (处置部门) that see and handle only
their own department's cases, field inspectors (核查员) who verify with a photo or send back,
挂账 (parked off the deadline clock) and 督办 (urged by a supervisor), the department scores,
and the migration that adds them; on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from tests.support_dispatch import PASSWORD, Dispatch, build_dispatch, case_report, make_jpeg

SH = timezone(timedelta(hours=8))


def add_user(d: Dispatch, name: str, role: str, department: str | None = None) -> dict[str, str]:
    d.service.create_operator(name, PASSWORD, role, department=department)
    return {"Authorization": f"Bearer {d.service.login(name, PASSWORD)[0]}"}


def new_case(d: Dispatch, violation: str = "exposed_garbage", snapshot: bytes | None = None) -> int:
    ev = {"snapshot.jpg": ("snapshot", "image/jpeg", snapshot)} if snapshot else None
    report = case_report(ev, violation=violation, camera_id=f"cam-{uuid.uuid4().hex[:8]}")
    r = d.post_case(report, ev)
    assert r.status_code == 201, r.text
    return int(r.json()["case_id"])


def dispatched(d: Dispatch, violation: str = "exposed_garbage", department: str | None = None, **kw: Any) -> int:
    cid = new_case(d, violation, **kw)
    assert d.act(cid, "accept", "reviewer").status_code == 200
    r = d.act(cid, "dispatch", "dispatcher", **({"department": department} if department else {}))
    assert r.status_code == 200, r.text
    return cid


def handle(d: Dispatch, cid: int, headers: dict[str, str], photo: bytes | None = None) -> Any:
    return d.client.post(
        f"/api/v1/cases/{cid}/handle",
        headers=headers,
        files={"after_photo": ("after.jpg", photo or make_jpeg(seed=4), "image/jpeg")},
        data={"reason": "cleared"},
    )


def refused(r: Any, code: int, words: str) -> None:
    """A refusal with its status and a detail that says why (never a 500)."""
    assert r.status_code == code, r.text
    assert words in r.json()["detail"], r.json()


# ------------------------------------------------------------------ department accounts
def test_a_department_sees_and_handles_only_its_own_cases(dispatch: Dispatch, snapshot_jpeg: bytes) -> None:
    sanitation = add_user(dispatch, "huanwei", "department", "sanitation")
    own = dispatched(dispatch, "exposed_garbage", snapshot=snapshot_jpeg)  # → sanitation by assignment
    other = dispatched(dispatch, "street_vending", snapshot=snapshot_jpeg)  # → urban_mgmt
    waiting = new_case(dispatch)  # suspected: no department yet

    listed = dispatch.client.get("/api/v1/cases", headers=sanitation).json()
    assert listed["total"] == 1 and [c["id"] for c in listed["items"]] == [own]
    assert dispatch.client.get("/api/v1/cases?department=urban_mgmt", headers=sanitation).json()["total"] == 1
    for cid in (other, waiting):  # another department's case does not exist for it: 404, not 403
        refused(dispatch.client.get(f"/api/v1/cases/{cid}", headers=sanitation), 404, "does not exist")
        refused(handle(dispatch, cid, sanitation), 404, "does not exist")
    other_ev = dispatch.client.get(f"/api/v1/cases/{other}", headers=dispatch.auth("admin")).json()["evidence"][0]
    refused(dispatch.client.get(other_ev["url"], headers=sanitation), 404, "not found")
    own_case = dispatch.client.get(f"/api/v1/cases/{own}", headers=sanitation).json()
    assert own_case["available_actions"] == ["handle"]
    assert dispatch.client.get(own_case["evidence"][0]["url"], headers=sanitation).status_code == 200

    # the department may not do the command center's work: 403 with the reason
    refused(
        dispatch.client.post(
            f"/api/v1/cases/{own}/transitions", json={"action": "send_back", "reason": "x"}, headers=sanitation
        ),
        403,
        "role 'department' may not send_back",
    )
    refused(
        dispatch.client.post(
            f"/api/v1/cases/{own}/transitions",
            json={"action": "extend", "reason": "x", "extend_hours": 4},
            headers=sanitation,
        ),
        403,
        "may not extend",
    )

    r = handle(dispatch, own, sanitation, make_jpeg(seed=11))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "handled" and [e["stage"] for e in body["evidence"]] == ["report", "after"]
    assert body["transitions"][-1]["actor"] == "huanwei" and body["transitions"][-1]["action"] == "handle"
    refused(
        dispatch.client.post(
            f"/api/v1/cases/{own}/verify",
            headers=sanitation,
            files={"photo": ("v.jpg", make_jpeg(seed=2), "image/jpeg")},
        ),
        403,
        "may not verify",
    )
    # the dispatcher keeps handling for handling reported by phone
    assert handle(dispatch, other, dispatch.auth("dispatcher")).status_code == 200


def test_department_pages_show_only_its_cases(dispatch: Dispatch) -> None:
    dispatch.service.create_operator("jiedao", PASSWORD, "department", department="street_office")
    monday = datetime(2026, 11, 16, 9, 0, tzinfo=SH)
    dispatch.service.clock = lambda: monday
    own = dispatched(dispatch, "non_motor_parking")  # → street_office, 4 working hours: Mon 14:30
    other = dispatched(dispatch, "exposed_garbage")  # → sanitation
    c = dispatch.client
    r = c.post("/ui/login", data={"username": "jiedao", "password": PASSWORD, "next": "/ui/"}, follow_redirects=False)
    assert r.status_code == 303
    r = c.get("/ui/", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/ui/workspace"
    ws = c.get("/ui/workspace").text
    assert f'id="row-{own}"' in ws and f'id="row-{other}"' not in ws and "街道办事处" in ws
    later = dispatched(dispatch, "non_motor_parking")
    sooner = dispatched(dispatch, "non_motor_parking")
    dispatch.act(later, "extend", "dispatcher", reason="waiting for the owner", extend_hours=40)
    dispatch.service.clock = lambda: monday + timedelta(hours=6)  # 15:00: two of them overdue
    ws = c.get("/ui/workspace").text
    assert [int(x) for x in re.findall(r'data-case="(\d+)"', ws)] == [own, sooner, later]  # deadline first
    assert ws.count('class="overdue"') == 2 and f'<tr id="row-{later}" class=""' in ws
    listed = c.get("/ui/cases").text
    assert f'id="row-{own}"' in listed and f'id="row-{other}"' not in listed
    assert c.get(f"/ui/cases/{other}").status_code == 404
    assert c.get(f"/ui/cases/{own}").status_code == 200
    for path in ("/ui/stats", "/ui/stats/departments.png", "/ui/export.zip"):  # every department's cases
        assert c.get(path).status_code == 403, path


# ------------------------------------------------------------------ accounts
def test_department_accounts_name_a_configured_department(dispatch: Dispatch) -> None:
    admin = dispatch.auth("admin")
    ok = dispatch.client.post(
        "/api/v1/operators",
        headers=admin,
        json={"username": "cg1", "password": PASSWORD, "role": "department", "department": "construction"},
    )
    assert ok.status_code == 201 and ok.json()["department"] == "construction"
    me = dispatch.client.get(
        "/api/v1/me", headers={"Authorization": f"Bearer {dispatch.service.login('cg1', PASSWORD)[0]}"}
    )
    assert me.json()["role"] == "department" and me.json()["department"] == "construction"
    for body, words in [
        ({"role": "department", "department": "ghosts"}, "unknown department 'ghosts'"),
        ({"role": "department"}, "needs one"),
        ({"role": "reviewer", "department": "sanitation"}, "only a department account"),
    ]:
        r = dispatch.client.post(
            "/api/v1/operators", headers=admin, json={"username": "x1", "password": PASSWORD, **body}
        )
        refused(r, 422, words)
    r = dispatch.client.post(
        "/api/v1/operators",
        headers=admin,
        json={"username": "x2", "password": PASSWORD, "role": "department", "department": "d" * 40},
    )
    assert r.status_code == 422


def test_the_cli_adds_a_department_account_and_refuses_an_unknown_department(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, fast_passwords: None
) -> None:
    from vision.cli import main

    data = str(tmp_path / "data")
    monkeypatch.setenv("SV_PW", PASSWORD)
    args = ["dispatch", "add-user", "--data-dir", data, "--password-env", "SV_PW", "--role", "department"]
    assert main([*args, "hw", "--department", "sanitation"]) == 0
    assert "hw (department, department sanitation)" in capsys.readouterr().out
    assert main([*args, "ghost", "--department", "nope"]) == 1
    err = capsys.readouterr().err
    assert "unknown department 'nope'" in err and "sanitation" in err and "Traceback" not in err
    assert main([*args, "nodept"]) == 1
    assert "needs one" in capsys.readouterr().err


# ------------------------------------------------------------------ field inspector
def test_the_inspector_verifies_with_a_photo_or_sends_back(dispatch: Dispatch) -> None:
    inspector = add_user(dispatch, "hecha", "inspector")
    first = dispatched(dispatch)
    second = dispatched(dispatch)
    for cid in (first, second):
        assert handle(dispatch, cid, dispatch.auth("dispatcher")).status_code == 200

    refused(dispatch.client.post(f"/api/v1/cases/{first}/verify", headers=inspector), 422, "after_photo")
    refused(
        dispatch.client.post(f"/api/v1/cases/{first}/transitions", json={"action": "verify"}, headers=inspector),
        422,
        "photo of the verified site",
    )
    r = dispatch.client.post(
        f"/api/v1/cases/{first}/verify",
        headers=inspector,
        files={"photo": ("v.jpg", make_jpeg(seed=21), "image/jpeg")},
        data={"reason": "pavement clean"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "verified"
    assert [e["stage"] for e in r.json()["evidence"]] == ["after", "verify"]
    verify_ev = r.json()["evidence"][1]
    assert dispatch.client.get(verify_ev["url"], headers=inspector).headers["content-type"] == "image/jpeg"
    assert r.json()["transitions"][-1]["actor"] == "hecha"

    no_reason = dispatch.client.post(
        f"/api/v1/cases/{second}/transitions", json={"action": "send_back"}, headers=inspector
    )
    refused(no_reason, 422, "reason")
    r = dispatch.client.post(
        f"/api/v1/cases/{second}/transitions",
        json={"action": "send_back", "reason": "garbage still there"},
        headers=inspector,
    )
    assert r.status_code == 200 and r.json()["status"] == "dispatched"
    # a dispatched case (wrong department?) is the dispatcher's to send back, not the inspector's
    refused(
        dispatch.client.post(
            f"/api/v1/cases/{second}/transitions", json={"action": "send_back", "reason": "x"}, headers=inspector
        ),
        403,
        "may not send_back a dispatched case",
    )
    refused(handle(dispatch, second, inspector), 403, "role 'inspector' may not handle")
    # the reviewer still verifies from the office without a photo
    assert handle(dispatch, second, dispatch.auth("dispatcher")).status_code == 200
    assert dispatch.act(second, "verify", "reviewer").json()["status"] == "verified"


def test_an_oversized_or_bad_photo_is_refused_not_a_500(tmp_path: Path, db_url: str, fast_passwords: None) -> None:
    d = build_dispatch(tmp_path, db_url, max_evidence_bytes=20_000)
    with d.client:
        inspector = add_user(d, "hecha", "inspector")
        sanitation = add_user(d, "huanwei", "department", "sanitation")
        cid = dispatched(d)
        big = make_jpeg(1600, 1200, seed=3) + b"\0" * 30_000
        r = handle(d, cid, sanitation, big)
        assert r.status_code in (413, 422) and "after_photo" in r.text
        r = d.client.post(
            f"/api/v1/cases/{cid}/handle",
            headers=sanitation,
            files={"after_photo": ("a.txt", b"not an image", "text/plain")},
        )
        refused(r, 422, "JPEG or PNG")
        assert handle(d, cid, sanitation).status_code == 200
        r = d.client.post(
            f"/api/v1/cases/{cid}/verify", headers=inspector, files={"photo": ("v.jpg", big, "image/jpeg")}
        )
        assert r.status_code in (413, 422) and "after_photo" in r.text
        assert d.service.get_case(cid).status.value == "handled"
        assert [e.stage for e in d.service.get_case(cid).evidence] == ["after"]
    d.service.close()


def _ui_login(d: Dispatch, user: str) -> str:
    """Logs the test client in to the UI as `user`; the CSRF token of its forms."""
    r = d.client.post("/ui/login", data={"username": user, "password": PASSWORD, "next": "/ui/cases"})
    assert r.status_code == 200, r.text
    return re.search(r'name="csrf" value="([0-9a-f]+)"', r.text).group(1)  # type: ignore[union-attr]


def test_ui_forms_of_the_inspector_park_and_urge(dispatch: Dispatch) -> None:
    dispatch.service.create_operator("hecha", PASSWORD, "inspector")
    handled = dispatched(dispatch)
    assert handle(dispatch, handled, dispatch.auth("dispatcher")).status_code == 200
    open_case = dispatched(dispatch, "street_vending")
    c = dispatch.client

    csrf = _ui_login(dispatch, "hecha")
    ws = c.get("/ui/workspace").text
    assert f'id="row-{handled}"' in ws and f'id="row-{open_case}"' not in ws  # the handled cases to verify
    page = c.get(f"/ui/cases/{handled}").text
    assert 'id="verify-photo"' in page and re.search(r'id="verify-photo"[^>]*required', page)
    r = c.post(f"/ui/cases/{handled}/action", data={"action": "verify", "csrf": csrf})
    assert 'id="error"' in r.text and 'data-status="handled"' in r.text  # no photo: refused, shown
    r = c.post(
        f"/ui/cases/{handled}/action",
        data={"action": "verify", "csrf": csrf},
        files={"after_photo": ("v.jpg", make_jpeg(seed=8), "image/jpeg")},
    )
    assert 'data-status="verified"' in r.text and "stage-verify" in r.text and "核查时" in r.text

    csrf = _ui_login(dispatch, "dispatcher")
    r = c.post(
        f"/ui/cases/{open_case}/action",
        data={"action": "park", "csrf": csrf, "reason": "x", "parked_until": "31/12/2027"},
    )
    assert r.status_code == 200 and "挂账须填写预计处置日期" in r.text and 'data-status="dispatched"' in r.text
    r = c.post(
        f"/ui/cases/{open_case}/action",
        data={"action": "park", "csrf": csrf, "reason": "", "parked_until": "2027-12-31"},
    )
    assert "此操作需要填写理由" in r.text and 'data-status="dispatched"' in r.text
    r = c.post(
        f"/ui/cases/{open_case}/action",
        data={"action": "park", "csrf": csrf, "reason": "待道路改造", "parked_until": "2027-12-31"},
    )
    assert 'data-status="parked"' in r.text and 'id="parked-banner"' in r.text and "待道路改造" in r.text
    assert 'data-action="unpark"' in r.text
    r = c.post(f"/ui/cases/{open_case}/action", data={"action": "unpark", "csrf": csrf})
    assert 'data-status="dispatched"' in r.text

    csrf = _ui_login(dispatch, "reviewer")
    r = c.post(f"/ui/cases/{open_case}/action", data={"action": "urge", "csrf": csrf, "reason": "限期整改"})
    assert 'id="urged-tag"' in r.text and "限期整改" in r.text and 'data-status="dispatched"' in r.text
    listed = c.get("/ui/cases").text
    assert re.search(rf'id="row-{open_case}".*?督办', listed, re.S)


# ------------------------------------------------------------------ 挂账
def test_parking_leaves_the_deadline_clock_and_unparking_gives_the_hours_back(dispatch: Dispatch) -> None:
    monday = datetime(2026, 11, 16, 9, 0, tzinfo=SH)
    cid = new_case(dispatch)  # exposed garbage: 4 working hours
    dispatch.service.clock = lambda: monday
    dispatch.act(cid, "accept", "reviewer")
    dispatch.act(cid, "dispatch", "dispatcher")
    dispatch.service.clock = lambda: monday + timedelta(hours=1)  # 10:00: 3 working hours left
    refused(dispatch.act(cid, "park", "dispatcher", parked_until="2027-06-30"), 422, "reason")
    refused(dispatch.act(cid, "park", "dispatcher", reason="road works"), 422, "parked_until")
    refused(
        dispatch.act(cid, "park", "dispatcher", reason="road works", parked_until="2026-01-01"), 422, "parked_until"
    )
    refused(dispatch.act(cid, "park", "reviewer", reason="x", parked_until="2027-06-30"), 403, "may not park")
    r = dispatch.act(cid, "park", "dispatcher", reason="needs the sewer rebuilt", parked_until="2027-06-30")
    assert r.status_code == 200, r.text
    parked = r.json()
    assert parked["status"] == "parked" and parked["parked_from"] == "dispatched"
    assert parked["parked_until"] == "2027-06-30" and parked["park_reason"] == "needs the sewer rebuilt"
    assert parked["transitions"][-1]["details"]["hours_left"] == pytest.approx(3.0)

    tuesday = datetime(2026, 11, 17, 16, 0, tzinfo=SH)  # long past the 14:30 deadline
    dispatch.service.clock = lambda: tuesday
    case = dispatch.service.get_case(cid)
    assert not case.overdue and not dispatch.service.is_overdue(case)
    assert cid not in [c.id for c in dispatch.service.list_cases(overdue=True).items]
    assert dispatch.client.get("/api/v1/cases?overdue=true", headers=dispatch.auth("admin")).json()["total"] == 0
    refused(handle(dispatch, cid, dispatch.auth("dispatcher")), 409, "cannot handle a case that is parked")
    refused(dispatch.act(cid, "unpark", "reviewer"), 403, "may not unpark")

    r = dispatch.act(cid, "unpark", "dispatcher")  # Tue 16:00 + 3 working hours = Wed 10:00
    assert r.status_code == 200, r.text
    back = r.json()
    assert back["status"] == "dispatched" and back["parked_from"] is None and back["parked_until"] is None
    assert datetime.fromisoformat(back["deadline_at"]) == datetime(2026, 11, 18, 10, 0, tzinfo=SH)
    assert [t["action"] for t in back["transitions"]][-2:] == ["park", "unpark"]
    assert back["transitions"][-2]["reason"] == "needs the sewer rebuilt"
    assert back["transitions"][-1]["actor"] == "dispatcher"

    accepted = new_case(dispatch)  # parked before dispatch: back to accepted
    dispatch.act(accepted, "accept", "reviewer")
    assert dispatch.act(accepted, "park", "admin", reason="x", parked_until="2027-01-01").json()["status"] == "parked"
    assert dispatch.act(accepted, "unpark", "admin").json()["status"] == "accepted"


# ------------------------------------------------------------------ 督办
def test_urging_is_a_counted_audited_flag_the_department_sees(dispatch: Dispatch) -> None:
    sanitation = add_user(dispatch, "huanwei", "department", "sanitation")
    cid = dispatched(dispatch)
    refused(dispatch.act(cid, "urge", "reviewer"), 422, "reason")
    refused(dispatch.act(cid, "urge", "dispatcher", reason="x"), 403, "role 'dispatcher' may not urge")
    refused(
        dispatch.client.post(
            f"/api/v1/cases/{cid}/transitions", json={"action": "urge", "reason": "x"}, headers=sanitation
        ),
        403,
        "may not urge",
    )
    r = dispatch.act(cid, "urge", "reviewer", reason="residents complained twice")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "dispatched" and r.json()["urge_count"] == 1
    r = dispatch.act(cid, "urge", "admin", reason="mayor's hotline")
    seen = dispatch.client.get(f"/api/v1/cases/{cid}", headers=sanitation).json()
    assert seen["urge_count"] == 2 and seen["urge_note"] == "mayor's hotline" and seen["status"] == "dispatched"
    urges = [
        (t["actor"], t["reason"], t["details"]["urge_count"]) for t in seen["transitions"] if t["action"] == "urge"
    ]
    assert urges == [("reviewer", "residents complained twice", 1), ("admin", "mayor's hotline", 2)]
    assert dispatch.client.get("/api/v1/cases", headers=sanitation).json()["items"][0]["urge_count"] == 2
    assert handle(dispatch, cid, sanitation).status_code == 200
    refused(dispatch.act(cid, "urge", "reviewer", reason="late"), 409, "cannot urge a case that is handled")
    assert dispatch.service.get_case(cid).urge_count == 2  # the record stays on the case


# ------------------------------------------------------------------ department scores
def test_department_scores_from_a_constructed_history(dispatch: Dispatch) -> None:
    """Sanitation, week 47: three cases dispatched and handled; one late (6 working hours),
    one sent back after handling, one parked two days (its parked time left out): on time
    2/3, rework 1/3, (1 + 6 + 2) / 3 = 3.0 working hours, one urged. Urban management: one
    dispatched, none handled. Street office, week 48: one, on time, half an hour."""
    from vision.dispatch import stats

    s = dispatch.service
    sanitation = add_user(dispatch, "huanwei", "department", "sanitation")
    inspector = add_user(dispatch, "hecha", "inspector")
    c1, c2, c3 = new_case(dispatch), new_case(dispatch), new_case(dispatch)
    c4, c5 = new_case(dispatch, "street_vending"), new_case(dispatch)

    def at(day: int, hour: int, minute: int = 0) -> None:
        moment = datetime(2026, 11, day, hour, minute, tzinfo=SH)
        s.clock = lambda: moment

    at(16, 9)
    for cid in (c1, c2, c3, c4):
        dispatch.act(cid, "accept", "reviewer")
        dispatch.act(cid, "dispatch", "dispatcher")
    at(16, 10)
    assert handle(dispatch, c1, sanitation).status_code == 200  # 1 h, on time
    assert dispatch.act(c3, "park", "dispatcher", reason="works", parked_until="2026-12-31").status_code == 200
    at(16, 14)
    assert dispatch.act(c2, "urge", "reviewer", reason="hurry").status_code == 200
    at(16, 16, 30)
    assert handle(dispatch, c2, sanitation).status_code == 200  # 6 h, late (deadline 14:30)
    at(16, 17)
    r = dispatch.client.post(
        f"/api/v1/cases/{c2}/transitions", json={"action": "send_back", "reason": "still dirty"}, headers=inspector
    )
    assert r.status_code == 200
    at(17, 9)
    assert handle(dispatch, c2, sanitation).status_code == 200  # the redo: not a second handling
    at(18, 9)
    assert dispatch.act(c3, "unpark", "dispatcher").status_code == 200
    at(18, 10)
    assert handle(dispatch, c3, sanitation).status_code == 200  # 16 h since dispatch, 14 of them parked
    at(23, 9)
    dispatch.act(c5, "accept", "reviewer")
    dispatch.act(c5, "dispatch", "dispatcher", department="street_office")
    at(23, 9, 30)
    assert handle(dispatch, c5, dispatch.auth("admin")).status_code == 200

    st = stats.compute(s)
    rows = {(r.week, r.department): r for r in st.scores}
    assert [(r.week, r.department) for r in st.scores] == [
        ("2026-W48", "street_office"),
        ("2026-W47", "sanitation"),
        ("2026-W47", "urban_mgmt"),
    ]
    san = rows[("2026-W47", "sanitation")]
    assert (san.dispatched, san.handled, san.on_time, san.reworked, san.urged) == (3, 3, 2, 1, 1)
    assert san.on_time_rate == pytest.approx(2 / 3) and san.rework_rate == pytest.approx(1 / 3)
    assert san.avg_handling_hours == pytest.approx(3.0)
    urban = rows[("2026-W47", "urban_mgmt")]
    assert (urban.dispatched, urban.handled, urban.on_time_rate, urban.avg_handling_hours) == (1, 0, None, None)
    street = rows[("2026-W48", "street_office")]
    assert (street.dispatched, street.on_time, street.avg_handling_hours) == (1, 1, pytest.approx(0.5))
    assert st.urges == 1 and st.parked == 0

    c = dispatch.client
    c.post("/ui/login", data={"username": "admin", "password": PASSWORD, "next": "/ui/stats"})
    page = c.get("/ui/stats").text
    row = re.search(r'<tr data-department="sanitation" data-week="2026-W47">(.*?)</tr>', page, re.S).group(1)
    assert '<td class="on-time">67%</td>' in row and '<td class="rework">33%</td>' in row
    assert '<td class="hours">3.0</td>' in row and '<td class="urged">1</td>' in row and "环卫所" in row
    png = c.get("/ui/stats/departments.png")
    assert png.status_code == 200 and png.content.startswith(b"\x89PNG")


# ------------------------------------------------------------------ the migration
@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_migration_0004_upgrades_a_0003_database_in_place(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """A center at 0003 keeps its operators and cases; they come out unparked, never urged,
    operators bound to no department; and it can go back."""
    from alembic import command
    from sqlalchemy import inspect, text

    from vision.dispatch.db import alembic_config, for_writes, make_engine, migrate

    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'upgrade.db'}"
    else:
        pg = request.getfixturevalue("pg_server")
        pg._admin("DROP DATABASE IF EXISTS sv_roles_upgrade")
        pg._admin("CREATE DATABASE sv_roles_upgrade")
        url = pg.url("sv_roles_upgrade")
    engine = make_engine(url)
    try:
        migrate(engine, "0003")
        now = datetime.now(UTC).replace(tzinfo=None)
        with for_writes(engine).begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO operators (username, password_hash, role, active, created_at)"
                    " VALUES ('old-disp', 'x', 'dispatcher', :yes, :t)"
                ),
                {"t": now, "yes": True},
            )
            conn.execute(
                text(
                    "INSERT INTO cases (source, status, violation, event_name, crs, object_count, classes,"
                    " first_detected_at, last_detected_at, occurrence_count, deadline_working_hours,"
                    " created_at, updated_at, department, camera_suggests_verify) VALUES ('edge', 'dispatched',"
                    " 'exposed_garbage', '暴露垃圾', 'WGS84', 1, '[]', :t, :t, 1, 4, :t, :t, 'sanitation', :no)"
                ),
                {"t": now, "no": False},
            )
        migrate(engine)
        with engine.connect() as conn:
            case = conn.execute(
                text("SELECT status, department, urge_count, parked_from, parked_until FROM cases")
            ).one()
            op = conn.execute(text("SELECT username, role, department FROM operators")).one()
        assert tuple(case) == ("dispatched", "sanitation", 0, None, None)
        assert tuple(op) == ("old-disp", "dispatcher", None)
        command.downgrade(alembic_config(for_writes(engine)), "0003")
        assert "urge_count" not in {c["name"] for c in inspect(engine).get_columns("cases")}
        assert "department" not in {c["name"] for c in inspect(engine).get_columns("operators")}
        with engine.connect() as conn:
            assert conn.execute(text("SELECT status FROM cases")).scalar() == "dispatched"
    finally:
        engine.dispose()
        if backend == "postgresql":
            request.getfixturevalue("pg_server").drop(url)


def test_parked_until_date_is_a_date(dispatch: Dispatch) -> None:
    cid = dispatched(dispatch)
    r = dispatch.act(cid, "park", "dispatcher", reason="x", parked_until="not-a-date")
    assert r.status_code == 422
    assert date.fromisoformat(
        dispatch.act(cid, "park", "dispatcher", reason="x", parked_until="2030-01-01").json()["parked_until"]
    ) == date(2030, 1, 1)

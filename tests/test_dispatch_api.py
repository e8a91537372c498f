"""Intake, replay, occurrence merging, workflow, auth and evidence over HTTP,
on SQLite and on a real PostgreSQL (the `dispatch` fixture is parametrized)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest

from tests.support_dispatch import Dispatch, case_report, make_jpeg


@pytest.fixture
def evidence(snapshot_jpeg: bytes, clip_mp4: bytes) -> dict[str, tuple[str, str, bytes]]:
    return {"snapshot.jpg": ("snapshot", "image/jpeg", snapshot_jpeg), "clip.mp4": ("clip", "video/mp4", clip_mp4)}


def test_intake_creates_case_and_replay_returns_it(dispatch: Dispatch, evidence) -> None:
    report = case_report(evidence)
    r = dispatch.post_case(report, evidence)
    assert r.status_code == 201, r.text
    first = r.json()
    assert first["created"] is True and first["merged"] is False and first["status"] == "suspected"
    again = dispatch.post_case(report, evidence)
    assert again.status_code == 200, again.text
    assert again.json()["case_id"] == first["case_id"]
    assert again.json()["occurrence_id"] == first["occurrence_id"]
    listing = dispatch.client.get("/api/v1/cases", headers=dispatch.auth("reviewer")).json()
    assert listing["total"] == 1
    detail = dispatch.client.get(f"/api/v1/cases/{first['case_id']}", headers=dispatch.auth("reviewer")).json()
    assert detail["occurrence_count"] == 1 and len(detail["occurrences"]) == 1
    assert {e["name"] for e in detail["evidence"]} == {"snapshot.jpg", "clip.mp4"}
    assert detail["department"] == "urban_mgmt"
    assert detail["transitions"][0]["action"] == "report" and detail["transitions"][0]["actor"] == "edge-01"
    assert detail["available_actions"] == ["accept", "reject"]
    for ev in detail["evidence"]:
        got = dispatch.client.get(ev["url"], headers=dispatch.auth("reviewer"))
        assert got.status_code == 200
        assert got.headers["content-type"] == ev["content_type"]
        assert hashlib.sha256(got.content).hexdigest() == ev["sha256"]


def test_intake_bad_evidence_is_refused(dispatch: Dispatch, evidence, snapshot_jpeg: bytes) -> None:
    report = case_report(evidence)
    bad = dict(evidence)
    bad["snapshot.jpg"] = ("snapshot", "image/jpeg", snapshot_jpeg + b"x")
    r = dispatch.post_case(report, bad)
    assert r.status_code == 422 and "snapshot.jpg" in r.text
    missing = {"snapshot.jpg": evidence["snapshot.jpg"]}
    r = dispatch.post_case(report, missing)
    assert r.status_code == 422 and "clip.mp4" in r.text and "missing" in r.text
    extra = dict(evidence, **{"other.jpg": ("snapshot", "image/jpeg", snapshot_jpeg)})
    r = dispatch.post_case(report, extra)
    assert r.status_code == 422 and "other.jpg" in r.text
    # nothing was stored as a case
    assert dispatch.client.get("/api/v1/cases", headers=dispatch.auth("admin")).json()["total"] == 0


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        "{}",
        '{"idempotency_key": "x"}',
        "[1, 2]",
    ],
)
def test_intake_malformed_case_is_422(dispatch: Dispatch, body: str) -> None:
    r = dispatch.client.post("/api/v1/cases", headers=dispatch.device, files=[("case", (None, body, None))])
    assert r.status_code == 422


def test_intake_bad_box_and_naive_time_name_the_field(dispatch: Dispatch) -> None:
    r = dispatch.post_case(case_report(bbox=(0.5, 0.5, 0.4, 0.6)))
    assert r.status_code == 422 and "bbox" in r.text
    report = case_report()
    report["detected_at"] = "2026-11-28T10:00:00"
    r = dispatch.post_case(report)
    assert r.status_code == 422 and "detected_at" in r.text


def test_intake_needs_device_credential(dispatch: Dispatch) -> None:
    report = case_report()
    assert dispatch.post_case(report, headers={}).status_code == 401
    assert dispatch.post_case(report, headers={"Authorization": "Bearer svd_wrong"}).status_code == 401
    # an operator token is not a device token
    assert dispatch.post_case(report, headers=dispatch.auth("admin")).status_code == 401
    # a device of another site may not report for site-a
    _, other = dispatch.service.create_client("edge-b", "device", "site-b")
    assert dispatch.post_case(report, headers={"Authorization": f"Bearer {other}"}).status_code == 403
    # the same key from another device is a conflict, not a silent replay
    _, any_site = dispatch.service.create_client("edge-any", "device", None, site_less=True)
    assert dispatch.post_case(report).status_code == 201
    assert dispatch.post_case(report, headers={"Authorization": f"Bearer {any_site}"}).status_code == 409


def test_overlapping_report_in_window_joins_open_case(dispatch: Dispatch) -> None:
    t0 = datetime.now(UTC)
    first = dispatch.post_case(case_report(detected_at=t0)).json()
    same = dispatch.post_case(case_report(detected_at=t0 + timedelta(minutes=5), bbox=(0.3, 0.35, 0.5, 0.7)))
    assert same.status_code == 200 and same.json()["merged"] is True
    assert same.json()["case_id"] == first["case_id"]
    # no overlap, other camera, other type, outside the window: new cases
    cases = {first["case_id"]}
    for report in [
        case_report(detected_at=t0 + timedelta(minutes=6), bbox=(0.6, 0.6, 0.9, 0.9)),
        case_report(detected_at=t0 + timedelta(minutes=6), camera_id="cam-02"),
        case_report(detected_at=t0 + timedelta(minutes=6), violation="exposed_garbage"),
        case_report(detected_at=t0 + timedelta(hours=2)),
    ]:
        r = dispatch.post_case(report)
        assert r.status_code == 201, r.text
        cases.add(r.json()["case_id"])
    assert len(cases) == 5
    detail = dispatch.client.get(f"/api/v1/cases/{first['case_id']}", headers=dispatch.auth("admin")).json()
    assert detail["occurrence_count"] == 2 and len(detail["occurrences"]) == 2
    assert detail["bbox"] == [0.3, 0.35, 0.5, 0.7]  # the latest box
    assert [t["action"] for t in detail["transitions"]] == ["report", "recur"]


def test_report_after_rejection_opens_a_new_case(dispatch: Dispatch) -> None:
    t0 = datetime.now(UTC)
    first = dispatch.post_case(case_report(detected_at=t0)).json()["case_id"]
    assert dispatch.act(first, "reject", "reviewer", reason="shadow").status_code == 200
    r = dispatch.post_case(case_report(detected_at=t0 + timedelta(minutes=1)))
    assert r.status_code == 201 and r.json()["case_id"] != first


def test_full_workflow_is_audited(dispatch: Dispatch, snapshot_jpeg: bytes) -> None:
    cid = dispatch.post_case(case_report()).json()["case_id"]
    r = dispatch.act(cid, "accept", "reviewer")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "accepted" and r.json()["deadline_at"] is not None
    r = dispatch.act(cid, "dispatch", "dispatcher", department="street_office")
    assert r.status_code == 200 and r.json()["department"] == "street_office"
    r = dispatch.act(cid, "send_back", "dispatcher", reason="wrong department")
    assert r.json()["status"] == "accepted"
    r = dispatch.act(cid, "dispatch", "dispatcher")
    assert r.json()["department"] == "street_office"
    before = datetime.fromisoformat(r.json()["deadline_at"])
    r = dispatch.act(cid, "extend", "dispatcher", reason="vendor licence check", extend_hours=8)
    assert r.status_code == 200 and datetime.fromisoformat(r.json()["deadline_at"]) > before
    r = dispatch.client.post(
        f"/api/v1/cases/{cid}/handle",
        headers=dispatch.auth("dispatcher"),
        files={"after_photo": ("after.jpg", make_jpeg(seed=3), "image/jpeg")},
        data={"reason": "stall removed"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "handled"
    assert [e["stage"] for e in r.json()["evidence"]] == ["after"]
    assert dispatch.act(cid, "verify", "reviewer").json()["status"] == "verified"
    final = dispatch.act(cid, "close", "reviewer").json()
    assert final["status"] == "closed" and final["closed_at"]
    trail = [(t["action"], t["from_status"], t["to_status"], t["actor"]) for t in final["transitions"]]
    assert trail == [
        ("report", None, "suspected", "edge-01"),
        ("accept", "suspected", "accepted", "reviewer"),
        ("dispatch", "accepted", "dispatched", "dispatcher"),
        ("send_back", "dispatched", "accepted", "dispatcher"),
        ("dispatch", "accepted", "dispatched", "dispatcher"),
        ("extend", "dispatched", "dispatched", "dispatcher"),
        ("handle", "dispatched", "handled", "dispatcher"),
        ("verify", "handled", "verified", "reviewer"),
        ("close", "verified", "closed", "reviewer"),
    ]
    assert final["transitions"][3]["reason"] == "wrong department"
    assert all(t["at"] for t in final["transitions"])


@pytest.mark.parametrize(
    "setup, action, role",
    [
        ([], "dispatch", "admin"),
        ([], "close", "admin"),
        ([], "verify", "admin"),
        (["accept"], "accept", "admin"),
        (["accept"], "reject", "admin"),
        (["reject"], "accept", "admin"),
        (["accept", "dispatch"], "close", "admin"),
    ],
)
def test_illegal_transitions_are_409(dispatch: Dispatch, setup: list[str], action: str, role: str) -> None:
    cid = dispatch.post_case(case_report()).json()["case_id"]
    for step in setup:
        assert dispatch.act(cid, step, "admin", reason="r").status_code == 200
    r = dispatch.act(cid, action, role, reason="r")
    assert r.status_code == 409, r.text
    assert "cannot" in r.json()["detail"]


def test_roles_and_credentials_on_writes(dispatch: Dispatch) -> None:
    cid = dispatch.post_case(case_report()).json()["case_id"]
    url = f"/api/v1/cases/{cid}/transitions"
    assert dispatch.client.post(url, json={"action": "accept"}).status_code == 401
    assert (
        dispatch.client.post(url, json={"action": "accept"}, headers={"Authorization": "Bearer nope"}).status_code
        == 401
    )
    assert dispatch.client.post(url, json={"action": "accept"}, headers=dispatch.device).status_code == 401
    assert dispatch.act(cid, "accept", "dispatcher").status_code == 403
    assert dispatch.client.get("/api/v1/cases").status_code == 401
    assert dispatch.client.get(f"/api/v1/cases/{cid}", headers=dispatch.device).status_code == 401
    # admin-only management
    body = {"username": "new.reviewer", "password": "long-enough-pw", "role": "reviewer"}
    assert dispatch.client.post("/api/v1/operators", json=body, headers=dispatch.auth("reviewer")).status_code == 403
    assert dispatch.client.post("/api/v1/operators", json=body).status_code == 401
    assert dispatch.client.post("/api/v1/operators", json=body, headers=dispatch.auth("admin")).status_code == 201
    assert dispatch.client.post("/api/v1/operators", json=body, headers=dispatch.auth("admin")).status_code == 409
    r = dispatch.client.post(
        "/api/v1/clients", json={"name": "edge-09", "site_id": "site-a"}, headers=dispatch.auth("admin")
    )
    assert r.status_code == 201
    assert (
        dispatch.post_case(
            case_report(camera_id="cam-77"), headers={"Authorization": f"Bearer {r.json()['token']}"}
        ).status_code
        == 201
    )
    # login
    ok = dispatch.client.post("/api/v1/auth/login", json={"username": "new.reviewer", "password": "long-enough-pw"})
    assert ok.status_code == 200 and ok.json()["role"] == "reviewer"
    bad = dispatch.client.post("/api/v1/auth/login", json={"username": "new.reviewer", "password": "wrong-password"})
    assert bad.status_code == 401
    assert dispatch.client.post("/api/v1/auth/login", json={"username": "ghost", "password": "x"}).status_code == 401
    mine = {"Authorization": f"Bearer {ok.json()['access_token']}"}
    assert dispatch.client.get("/api/v1/me", headers=mine).json()["username"] == "new.reviewer"
    assert dispatch.client.post("/api/v1/auth/logout", headers=mine).status_code == 204
    assert dispatch.client.get("/api/v1/me", headers=mine).status_code == 401


@pytest.mark.parametrize(
    "body, field",
    [
        ({"action": "reject"}, "reason"),
        ({"action": "fly"}, "action"),
        ({"action": "accept", "extra": 1}, "extra"),
        ({"action": "extend", "reason": "x", "extend_hours": -1}, "extend_hours"),
    ],
)
def test_malformed_transition_is_422(dispatch: Dispatch, body: dict, field: str) -> None:
    cid = dispatch.post_case(case_report()).json()["case_id"]
    r = dispatch.client.post(f"/api/v1/cases/{cid}/transitions", json=body, headers=dispatch.auth("admin"))
    assert r.status_code == 422 and field in r.text


def test_unknown_department_and_missing_photo(dispatch: Dispatch) -> None:
    cid = dispatch.post_case(case_report()).json()["case_id"]
    dispatch.act(cid, "accept")
    r = dispatch.act(cid, "dispatch", department="no_such_dept")
    assert r.status_code == 422 and "department" in r.text
    dispatch.act(cid, "dispatch")
    assert dispatch.act(cid, "handle").status_code == 422
    r = dispatch.client.post(
        f"/api/v1/cases/{cid}/handle",
        headers=dispatch.auth("admin"),
        files={"after_photo": ("x.jpg", b"not an image", "image/jpeg")},
    )
    assert r.status_code == 422 and "after_photo" in r.text
    assert dispatch.client.get(f"/api/v1/cases/{cid}", headers=dispatch.auth("admin")).json()["status"] == "dispatched"
    assert dispatch.act(999999, "accept").status_code == 404


def test_overdue_flag_follows_the_clock(dispatch: Dispatch) -> None:
    cid = dispatch.post_case(case_report()).json()["case_id"]
    dispatch.act(cid, "accept")
    detail = dispatch.client.get(f"/api/v1/cases/{cid}", headers=dispatch.auth("admin")).json()
    assert detail["overdue"] is False
    dispatch.clock_holder["offset"] = timedelta(days=10)  # type: ignore[attr-defined]
    assert dispatch.client.get(f"/api/v1/cases/{cid}", headers=dispatch.auth("admin")).status_code == 401  # expired
    dispatch.tokens["admin"] = dispatch.service.login("admin", "correct-horse-battery")[0]
    detail = dispatch.client.get(f"/api/v1/cases/{cid}", headers=dispatch.auth("admin")).json()
    assert detail["overdue"] is True
    listing = dispatch.client.get("/api/v1/cases", params={"overdue": "true"}, headers=dispatch.auth("admin")).json()
    assert [c["id"] for c in listing["items"]] == [cid]
    listing = dispatch.client.get("/api/v1/cases", params={"overdue": "false"}, headers=dispatch.auth("admin")).json()
    assert listing["total"] == 0


def test_list_filters(dispatch: Dispatch) -> None:
    a = dispatch.post_case(case_report(camera_id="cam-01")).json()["case_id"]
    b = dispatch.post_case(case_report(camera_id="cam-02", violation="exposed_garbage")).json()["case_id"]
    dispatch.act(a, "accept")
    h = dispatch.auth("reviewer")
    get = lambda **p: [c["id"] for c in dispatch.client.get("/api/v1/cases", params=p, headers=h).json()["items"]]  # noqa: E731
    assert get(status="accepted") == [a]
    assert sorted(get(status=["accepted", "suspected"])) == sorted([a, b])
    assert get(violation="exposed_garbage") == [b]
    assert get(camera_id="cam-01") == [a]
    assert dispatch.client.get("/api/v1/cases", params={"status": "bogus"}, headers=h).status_code == 422
    assert dispatch.client.get("/api/v1/cases", params={"limit": 0}, headers=h).status_code == 422


@pytest.mark.parametrize("name", ["..", ".", "..."])
def test_dot_only_evidence_names_are_refused(dispatch: Dispatch, name: str, snapshot_jpeg: bytes) -> None:
    ev = {name: ("snapshot", "image/jpeg", snapshot_jpeg)}
    r = dispatch.post_case(case_report(ev), ev)
    assert r.status_code == 422 and "evidence" in r.text, r.text


@pytest.mark.parametrize("name", ["..jpg", "snap.shot.jpg"])
def test_evidence_names_never_become_paths(dispatch: Dispatch, name: str, snapshot_jpeg: bytes) -> None:
    ev = {name: ("snapshot", "image/jpeg", snapshot_jpeg)}
    r = dispatch.post_case(case_report(ev), ev)
    assert r.status_code == 201, r.text
    detail = dispatch.client.get(f"/api/v1/cases/{r.json()['case_id']}", headers=dispatch.auth("admin")).json()
    got = dispatch.client.get(detail["evidence"][0]["url"], headers=dispatch.auth("admin"))
    assert got.content == snapshot_jpeg
    root = dispatch.settings.evidence_dir.resolve()
    assert all(p.resolve().is_relative_to(root) for p in root.rglob("*"))
    assert not (dispatch.settings.data_dir.parent / "snapshot.jpg").exists()


def test_evidence_path_escape_attempts_are_refused(dispatch: Dispatch, evidence) -> None:
    report = case_report(evidence)
    cid = dispatch.post_case(report, evidence).json()["case_id"]
    other = dispatch.post_case(case_report(camera_id="cam-09")).json()["case_id"]
    h = dispatch.auth("admin")
    for url in [
        f"/api/v1/cases/{cid}/evidence/..%2F..%2F..%2Fetc%2Fpasswd",
        f"/api/v1/cases/{cid}/evidence/../../../etc/passwd",
        f"/api/v1/cases/{cid}/evidence/%2e%2e%2fdispatch.db",
        f"/api/v1/cases/{cid}/evidence/-1",
        f"/api/v1/cases/{other}/evidence/1",  # evidence of another case
        "/static/..%2F..%2Fservice.py",
        "/static/../service.py",
    ]:
        r = dispatch.client.get(url, headers=h)
        assert r.status_code in (404, 422), (url, r.status_code)
        assert b"root:" not in r.content and b"SQLite" not in r.content and b"import" not in r.content
    # multipart file names with path parts are ignored: the part name must be declared and
    # the storage key is our own hash
    rep = case_report({"a.jpg": ("snapshot", "image/jpeg", b"\xff\xd8\xff")}, camera_id="cam-10")
    r = dispatch.client.post(
        "/api/v1/cases",
        headers=dispatch.device,
        files=[
            ("case", (None, __import__("json").dumps(rep), None)),
            ("a.jpg", ("../../../../tmp/evil.jpg", b"\xff\xd8\xff", "image/jpeg")),
        ],
    )
    assert r.status_code == 201
    assert not __import__("pathlib").Path("/tmp/evil.jpg").exists()


def test_store_refuses_keys_and_symlinks_outside(tmp_path) -> None:
    from vision.dispatch.storage import EvidenceStore, StorageError

    store = EvidenceStore(tmp_path / "ev")
    for key in ["../../etc/passwd", "AB" * 32, "0" * 63, "/etc/passwd", "", "0" * 64 + "/.."]:
        with pytest.raises(StorageError):
            store.path_for(key)
    outside = tmp_path / "secret"
    outside.write_text("x")
    sha = "ab" * 32
    (store.root / "ab").mkdir()
    (store.root / "ab" / sha).symlink_to(outside)
    with pytest.raises(StorageError):
        store.open_path(sha)
    f = store.put_bytes(b"hello")
    assert store.open_path(f.sha256).read_bytes() == b"hello"
    with pytest.raises(StorageError):
        store.put(__import__("io").BytesIO(b"hello"), 100, expect_sha256="0" * 64)
    assert not list(store.root.glob(".upload-*"))


def test_healthz_and_departments(dispatch: Dispatch) -> None:
    assert dispatch.client.get("/healthz").json() == {"status": "ok"}
    deps = dispatch.client.get("/api/v1/departments", headers=dispatch.auth("reviewer")).json()
    assert {d["id"] for d in deps} >= {"sanitation", "urban_mgmt"}


def test_evidence_content_must_match_its_type(dispatch: Dispatch, snapshot_jpeg: bytes, clip_mp4: bytes) -> None:
    for name, ctype, data in [
        ("s.jpg", "image/jpeg", b"<html><script>alert(1)</script>"),
        ("c.mp4", "video/mp4", snapshot_jpeg),
        ("p.png", "image/png", snapshot_jpeg),
    ]:
        ev = {name: ("snapshot" if ctype != "video/mp4" else "clip", ctype, data)}
        r = dispatch.post_case(case_report(ev), ev)
        assert r.status_code == 422 and f"content is not {ctype}" in r.text


def test_concurrent_replays_and_reports_make_one_case(dispatch: Dispatch) -> None:
    """Edge boxes retry on timeouts: the same report may arrive twice at once, and two
    reports of one stall may race. Either way there must be one case."""
    from concurrent.futures import ThreadPoolExecutor

    from vision.core.cases import CaseReport
    from vision.dispatch.service import ClientPrincipal

    cid = dispatch.service.authenticate_client(dispatch.device_token, "device")
    assert isinstance(cid, ClientPrincipal)
    same = CaseReport.model_validate(case_report())
    t0 = datetime.now(UTC)
    racing = [
        CaseReport.model_validate(case_report(camera_id="cam-race", detected_at=t0 + timedelta(seconds=i)))
        for i in range(4)
    ]
    with ThreadPoolExecutor(4) as pool:
        replays = list(pool.map(lambda r: dispatch.service.intake(cid, r, {}), [same] * 4))
        merged = list(pool.map(lambda r: dispatch.service.intake(cid, r, {}), racing))
    assert len({r.case_id for r in replays}) == 1 and sum(r.created for r in replays) == 1
    assert len({r.occurrence_id for r in replays}) == 1
    assert len({r.case_id for r in merged}) == 1 and sum(r.created for r in merged) == 1
    detail = dispatch.client.get(f"/api/v1/cases/{merged[0].case_id}", headers=dispatch.auth("admin")).json()
    assert detail["occurrence_count"] == 4 and len(detail["occurrences"]) == 4

"""自动核查 at the dispatch center (issue 12 item 5), on SQLite and on a real PostgreSQL: the
camera's `cleared` / `resumed` events (POST /api/v1/lifecycle) attach to their case exactly
once; by the type's policy a handled case is verified by the camera with its snapshot as proof
(or a person is asked to), a case cleared before dispatch is marked gone by itself, and a
violation that comes back reopens a verified or closed case."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support_dispatch import PASSWORD, Dispatch, build_dispatch, case_report, make_jpeg

SNAPSHOT = make_jpeg(seed=11)  # the empty place


def event(
    case_key: str,
    kind: str = "cleared",
    at: datetime | None = None,
    snapshot: bytes | None = SNAPSHOT,
    key: str | None = None,
    **extra: Any,
) -> tuple[dict[str, Any], dict[str, bytes]]:
    """A CaseLifecycle as a JSON-able dict and its file parts."""
    files = {"empty.jpg": snapshot} if snapshot is not None else {}
    body = {
        "idempotency_key": key or str(uuid.uuid4()),
        "case_key": case_key,
        "site_id": "site-a",
        "camera_id": "cam-01",
        "kind": kind,
        "observed_at": (at or datetime.now(UTC)).isoformat(),
        "evidence": [
            {
                "name": n,
                "kind": "snapshot",
                "content_type": "image/jpeg",
                "sha256": hashlib.sha256(data).hexdigest(),
                "size_bytes": len(data),
            }
            for n, data in files.items()
        ],
        **extra,
    }
    return body, files


def send(d: Dispatch, body: dict[str, Any] | str, files: dict[str, bytes] | None = None) -> Any:
    parts: list[tuple[str, tuple[str | None, Any, str | None]]] = [
        ("event", (None, body if isinstance(body, str) else json.dumps(body), None))
    ]
    parts += [(n, (n, data, "image/jpeg")) for n, data in (files or {}).items()]
    return d.client.post("/api/v1/lifecycle", headers=d.device, files=parts)


def report(d: Dispatch, **kw: Any) -> tuple[int, str]:
    """Posts a case; returns its id and the report's idempotency key."""
    body = case_report(**kw)
    r = d.post_case(body)
    assert r.status_code in (200, 201), r.text
    return r.json()["case_id"], body["idempotency_key"]


def detail(d: Dispatch, cid: int) -> dict[str, Any]:
    r = d.client.get(f"/api/v1/cases/{cid}", headers=d.auth("admin"))
    assert r.status_code == 200, r.text
    return r.json()


def handle(d: Dispatch, cid: int) -> dict[str, Any]:
    r = d.client.post(
        f"/api/v1/cases/{cid}/handle",
        headers=d.auth("dispatcher"),
        files={"after_photo": ("after.jpg", make_jpeg(seed=3), "image/jpeg")},
    )
    assert r.status_code == 200, r.text
    return r.json()


def to(d: Dispatch, cid: int, status: str) -> None:
    """Moves a suspected case forward to `status` as the operators would."""
    path = ["accepted", "dispatched", "handled", "verified", "closed"]
    acts = {"accepted": "accept", "dispatched": "dispatch", "verified": "verify", "closed": "close"}
    for step in path[: path.index(status) + 1]:
        if step == "handled":
            handle(d, cid)
        else:
            assert d.act(cid, acts[step]).status_code == 200


def configured(tmp_path: Path, policy: dict[str, str]) -> Path:
    from vision.dispatch.config import DEFAULT_DISPATCH_CONFIG

    data = yaml.safe_load(DEFAULT_DISPATCH_CONFIG.read_text(encoding="utf-8"))
    data["camera_verification"] = policy
    if data.get("map", {}).get("grids"):  # a path relative to the config file: name the shipped one
        data["map"]["grids"] = str(DEFAULT_DISPATCH_CONFIG.parent / data["map"]["grids"])
    path = tmp_path / "dispatch.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


class Recorder:
    def __init__(self) -> None:
        self.events: list[Any] = []

    def send(self, event: Any) -> None:
        self.events.append(event)

    def close(self) -> None:
        pass


@pytest.fixture
def suggesting(tmp_path: Path, db_url: str, fast_passwords: None) -> Iterator[Dispatch]:
    d = build_dispatch(tmp_path, db_url, config_path=configured(tmp_path, {"street_vending": "suggest"}))
    with d.client:
        yield d
    d.service.close()


@pytest.fixture
def recorded(tmp_path: Path, db_url: str, fast_passwords: None) -> Iterator[tuple[Dispatch, Recorder]]:
    from vision.dispatch.notify import Notifier

    sink = Recorder()
    d = build_dispatch(tmp_path, db_url, notifier=Notifier([sink]))
    with d.client:
        yield d, sink
    d.service.close()


# ------------------------------------------------------------------ verification by the camera
def test_a_handled_case_cleared_is_verified_by_the_camera_with_its_snapshot(dispatch: Dispatch) -> None:
    cid, key = report(dispatch)
    to(dispatch, cid, "handled")
    body, files = event(key)
    r = send(dispatch, body, files)
    assert r.status_code == 201, r.text
    answer = r.json()
    assert answer["case_id"] == cid and answer["outcome"] == "verified"
    assert answer["idempotency_key"] == body["idempotency_key"]

    case = detail(dispatch, cid)
    assert case["status"] == "verified" and case["camera_state"] == "cleared" and case["camera_verified_at"]
    assert [e["stage"] for e in case["evidence"]] == ["after"]  # the snapshot is the camera's, not the report's
    (ev_row,) = case["camera_events"]
    assert ev_row["kind"] == "cleared" and ev_row["id"] == answer["event_id"]
    (snap,) = ev_row["evidence"]
    assert snap["stage"] == "camera" and snap["sha256"] == hashlib.sha256(SNAPSHOT).hexdigest()
    assert dispatch.client.get(snap["url"], headers=dispatch.auth("reviewer")).content == SNAPSHOT
    last = case["transitions"][-1]
    assert (last["action"], last["from_status"], last["to_status"]) == ("verify", "handled", "verified")
    assert (last["actor"], last["actor_kind"]) == ("cam-01", "camera")
    assert body["idempotency_key"] in last["reason"] and last["details"]["evidence"] == [snap["id"]]
    # the case goes on as any verified one
    assert dispatch.act(cid, "close", "reviewer").json()["status"] == "closed"


def test_suggest_policy_shows_a_suggestion_and_a_person_verifies(suggesting: Dispatch) -> None:
    d = suggesting
    cid, key = report(d)
    to(d, cid, "handled")
    r = send(d, *event(key))
    assert r.status_code == 201 and r.json()["outcome"] == "suggested"
    case = detail(d, cid)
    assert case["status"] == "handled" and case["camera_suggests_verify"] is True
    assert [t["actor_kind"] for t in case["transitions"]].count("camera") == 0
    d.client.post("/ui/login", data={"username": "admin", "password": PASSWORD})
    page = d.client.get(f"/ui/cases/{cid}").text
    assert 'id="camera-suggestion"' in page and "摄像头核查" in page and 'class="ev-snapshot stage-camera' in page
    after = d.act(cid, "verify", "reviewer").json()
    assert after["status"] == "verified" and after["camera_suggests_verify"] is False
    assert after["transitions"][-1]["actor_kind"] == "operator" and after["camera_verified_at"] is None


def test_cleared_while_dispatched_verifies_right_after_handling(recorded: tuple[Dispatch, Recorder]) -> None:
    d, sink = recorded
    cid, key = report(d)
    to(d, cid, "dispatched")
    r = send(d, *event(key))
    assert r.status_code == 201 and r.json()["outcome"] == "pending"
    assert detail(d, cid)["status"] == "dispatched"
    case = handle(d, cid)
    assert case["status"] == "verified"
    handled, verified = case["transitions"][-2:]
    assert (handled["action"], handled["actor_kind"]) == ("handle", "operator")
    assert (verified["action"], verified["actor_kind"], verified["actor"]) == ("verify", "camera", "cam-01")
    d.service.notifier.flush()
    states = [json.loads(e.payload()) for e in sink.events if e.type == "state"]
    assert [(p["action"], p["actor"]) for p in states][-2:] == [("handle", "dispatcher"), ("verify", "cam-01")]


def test_cleared_before_the_dispatch_it_followed_does_not_verify(dispatch: Dispatch) -> None:
    """Cleared, then sent back and dispatched again: the handling is not the camera's to verify."""
    cid, key = report(dispatch)
    to(dispatch, cid, "dispatched")
    assert send(dispatch, *event(key, at=datetime.now(UTC) - timedelta(minutes=5))).status_code == 201
    assert dispatch.act(cid, "send_back", reason="wrong department").status_code == 200
    assert dispatch.act(cid, "dispatch").status_code == 200
    assert handle(dispatch, cid)["status"] == "handled"


@pytest.mark.parametrize("status", ["suspected", "accepted"])
def test_cleared_before_dispatch_is_marked_gone_by_itself(dispatch: Dispatch, status: str) -> None:
    cid, key = report(dispatch)
    if status == "accepted":
        to(dispatch, cid, "accepted")
    before = len(detail(dispatch, cid)["transitions"])
    r = send(dispatch, *event(key))
    assert r.status_code == 201 and r.json()["outcome"] == "cleared_itself"
    case = detail(dispatch, cid)
    assert case["status"] == status and case["cleared_itself_at"] and len(case["transitions"]) == before
    listed = dispatch.client.get("/api/v1/cases", params={"camera_state": "cleared"}, headers=dispatch.auth("admin"))
    assert [c["id"] for c in listed.json()["items"]] == [cid]
    assert dispatch.service.camera_counts().cleared_itself == 1
    dispatch.client.post("/ui/login", data={"username": "admin", "password": PASSWORD})
    rows = dispatch.client.get("/ui/cases").text
    assert 'data-camera="cleared_itself"' in rows.split(f'id="row-{cid}"')[1].split("</tr>")[0]
    assert 'data-count="cleared_itself"><th>自行消失</th><td>1</td>' in dispatch.client.get("/ui/stats").text


@pytest.mark.parametrize("status", ["verified", "closed"])
def test_a_violation_back_after_verification_reopens_the_case(dispatch: Dispatch, status: str) -> None:
    cid, key = report(dispatch)
    to(dispatch, cid, status)
    r = send(dispatch, *event(key, "resumed", snapshot=None))
    assert r.status_code == 201 and r.json()["outcome"] == "reopened"
    case = detail(dispatch, cid)
    assert case["status"] == "dispatched" and case["camera_state"] == "present"
    assert case["closed_at"] is None and case["handled_at"] is None
    last = case["transitions"][-1]
    assert (last["action"], last["from_status"], last["actor_kind"]) == ("reopen", status, "camera")
    # a fresh deadline, counted from the reopening: not overdue at once
    assert datetime.fromisoformat(case["deadline_at"]) > datetime.now(UTC) and not case["overdue"]
    assert dispatch.service.camera_counts().reopened == 1
    # the department handles it again; the camera may verify it again
    handle(dispatch, cid)
    assert send(dispatch, *event(key)).json()["outcome"] == "verified"
    dispatch.client.post("/ui/login", data={"username": "admin", "password": PASSWORD})
    page = dispatch.client.get(f"/ui/cases/{cid}").text
    timeline = page.split('id="timeline"')[1]
    assert timeline.count("摄像头") == 2 and "违规再次出现" in timeline


def test_more_objects_joining_raise_the_case_count_and_show_in_chinese(dispatch: Dispatch) -> None:
    cid, key = report(dispatch, violation="non_motor_parking")
    to(dispatch, cid, "dispatched")
    before = detail(dispatch, cid)
    assert before["object_count"] == 1
    now = datetime.now(UTC)
    r = send(dispatch, *event(key, "grew", at=now, object_count=3, bbox=[0.4, 0.5, 0.45, 0.6]))
    assert r.status_code == 201 and r.json()["outcome"] == "recorded", r.text
    # a late grew (older than the state known) still raises the count, never lowers it
    late = send(dispatch, *event(key, "grew", at=now - timedelta(minutes=1), object_count=2, snapshot=None))
    assert late.json()["outcome"] == "stale"
    case = detail(dispatch, cid)
    assert case["object_count"] == 3 and case["status"] == "dispatched" and case["camera_state"] == "present"
    assert [(e["kind"], e["object_count"]) for e in case["camera_events"]] == [("grew", 3), ("grew", 2)]
    assert case["transitions"][-1]["action"] == "dispatch", "no transition: the case is being handled"
    dispatch.client.post("/ui/login", data={"username": "admin", "password": PASSWORD})
    page = dispatch.client.get(f"/ui/cases/{cid}").text
    events = page.split('id="camera-events"')[1].split("</ol>")[0]
    assert "新增违规物体" in events and "现共 3 个" in events, events
    assert '<span id="object-count">3 个物体</span>' in page, "the case's facts show the count too"


def test_a_grew_event_without_its_count_is_422(dispatch: Dispatch) -> None:
    cid, key = report(dispatch, violation="non_motor_parking")
    assert send(dispatch, *event(key, "grew", snapshot=None)).status_code == 422
    assert detail(dispatch, cid)["camera_events"] == []


def test_an_operator_cannot_reopen(dispatch: Dispatch) -> None:
    cid, _key = report(dispatch)
    to(dispatch, cid, "closed")
    assert dispatch.act(cid, "reopen").status_code == 403


# ------------------------------------------------------------------ the contract
def test_a_replay_is_answered_200_and_stored_once(dispatch: Dispatch) -> None:
    cid, key = report(dispatch)
    to(dispatch, cid, "handled")
    body, files = event(key)
    first = send(dispatch, body, files)
    again = send(dispatch, body, files)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    case = detail(dispatch, cid)
    assert len(case["camera_events"]) == 1 and [t["action"] for t in case["transitions"]].count("verify") == 1


def test_concurrent_posts_of_one_event_store_it_once(dispatch: Dispatch) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from vision.core.cases import CaseLifecycle
    from vision.dispatch.accounts import ClientPrincipal

    cid, key = report(dispatch)
    to(dispatch, cid, "accepted")
    body, _files = event(key, snapshot=None)
    parsed = CaseLifecycle.model_validate(body)
    device = dispatch.service.authenticate_client(dispatch.device_token, "device")
    assert isinstance(device, ClientPrincipal)
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _i: dispatch.service.record_lifecycle(device, parsed, {}), range(4)))
    assert sorted(created for _r, created in answers) == [False, False, False, True]
    assert len({r.event_id for r, _c in answers}) == 1
    assert len(detail(dispatch, cid)["camera_events"]) == 1


def test_an_unknown_case_key_is_404_for_the_edge_to_retry(dispatch: Dispatch) -> None:
    r = send(dispatch, *event(str(uuid.uuid4())))
    assert r.status_code == 404, r.text


def test_an_event_for_a_merged_occurrence_attaches_to_its_case(dispatch: Dispatch) -> None:
    t0 = datetime.now(UTC)
    cid, _first = report(dispatch, detected_at=t0)
    merged, second = report(dispatch, detected_at=t0 + timedelta(minutes=2))
    assert merged == cid
    to(dispatch, cid, "handled")
    r = send(dispatch, *event(second))
    assert r.status_code == 201 and r.json()["case_id"] == cid
    assert detail(dispatch, cid)["status"] == "verified"


def test_off_policy_records_only(dispatch: Dispatch) -> None:
    cid, key = report(dispatch, violation="muddy_truck", classes=["truck"])
    to(dispatch, cid, "handled")
    r = send(dispatch, *event(key))
    assert r.status_code == 201 and r.json()["outcome"] == "recorded"
    case = detail(dispatch, cid)
    assert case["status"] == "handled" and not case["camera_suggests_verify"] and case["camera_state"] == "cleared"
    assert len(case["camera_events"]) == 1


def test_an_older_observation_is_kept_but_not_applied(dispatch: Dispatch) -> None:
    cid, key = report(dispatch)
    to(dispatch, cid, "dispatched")
    now = datetime.now(UTC)
    assert send(dispatch, *event(key, at=now)).json()["outcome"] == "pending"
    assert send(dispatch, *event(key, "resumed", at=now - timedelta(minutes=1), snapshot=None)).json()["outcome"] == (
        "stale"
    )
    assert detail(dispatch, cid)["camera_state"] == "cleared"


def _sha_mismatch(key: str) -> tuple[Any, Any]:
    body, files = event(key)
    body["evidence"][0]["sha256"] = "0" * 64
    return body, files


def _undeclared(key: str) -> tuple[Any, Any]:
    body, files = event(key, snapshot=None)
    return body, {"extra.jpg": SNAPSHOT}


def _missing_part(key: str) -> tuple[Any, Any]:
    body, _files = event(key)
    return body, {}


def _not_a_jpeg(key: str) -> tuple[Any, Any]:
    body, _files = event(key)
    data = b"GIF89a" + b"\0" * 100
    body["evidence"][0].update(sha256=hashlib.sha256(data).hexdigest(), size_bytes=len(data))
    return body, {"empty.jpg": data}


def _bad_kind(key: str) -> tuple[Any, Any]:
    body, files = event(key)
    body["kind"] = "vanished"
    return body, files


def _nul(key: str) -> tuple[Any, Any]:
    body, files = event(key)
    body["camera_id"] = "cam\x00-01"
    return body, files


def _year_one(key: str) -> tuple[Any, Any]:
    body, files = event(key)
    body["observed_at"] = "0001-01-01T00:00:00+00:00"
    return body, files


@pytest.mark.parametrize(
    "bad", [_sha_mismatch, _undeclared, _missing_part, _not_a_jpeg, _bad_kind, _nul, _year_one, "{not json", "[]"]
)
def test_malformed_events_and_mismatched_evidence_are_422(dispatch: Dispatch, bad: Any) -> None:
    cid, key = report(dispatch)
    to(dispatch, cid, "handled")
    body, files = (bad, {}) if isinstance(bad, str) else bad(key)
    r = send(dispatch, body, files)
    assert r.status_code == 422, r.text
    case = detail(dispatch, cid)
    assert case["status"] == "handled" and case["camera_events"] == []


def test_an_event_of_another_camera_is_409_and_needs_a_device(dispatch: Dispatch) -> None:
    cid, key = report(dispatch)
    r = send(dispatch, *event(key, camera_id="cam-99"))
    assert r.status_code == 409, r.text
    body, files = event(key)
    r = dispatch.client.post(
        "/api/v1/lifecycle",
        headers=dispatch.auth("admin"),
        files=[("event", (None, json.dumps(body), None))] + [(n, (n, v, "image/jpeg")) for n, v in files.items()],
    )
    assert r.status_code in (401, 403)
    assert detail(dispatch, cid)["camera_events"] == []


def test_a_body_over_the_limit_is_413(tmp_path: Path, fast_passwords: None) -> None:
    d = build_dispatch(tmp_path, f"sqlite:///{tmp_path / 'd.db'}", max_evidence_bytes=16 * 1024)
    with d.client:
        cid, key = report(d)
        r = send(d, *event(key, snapshot=make_jpeg(seed=5) + b"\0" * (d.settings.body_limit_bytes + 1)))
        assert r.status_code == 413
    d.service.close()


def test_a_policy_value_outside_the_three_names_the_field(tmp_path: Path) -> None:
    from vision.dispatch.config import ConfigError, load_dispatch_config

    with pytest.raises(ConfigError, match=r"camera_verification\.street_vending"):
        load_dispatch_config(configured(tmp_path, {"street_vending": "sometimes"}))
    assert load_dispatch_config().camera_policy("muddy_truck") == "off"

"""Evidence committed with its rows, and collection (Hardening issue), on SQLite and
PostgreSQL: a transaction that fails after its files reached the store leaves no
orphan (and keeps a file another case names); at start and on a schedule, stale
staged uploads and files no row names are removed, while a file a row names and
a fresh (in-flight) staged upload are kept."""

from __future__ import annotations

import io
import os
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from tests.support_dispatch import Dispatch, build_dispatch, case_report, make_jpeg

HOUR = 3600.0


@pytest.fixture
def evidence(snapshot_jpeg: bytes, clip_mp4: bytes) -> dict[str, tuple[str, str, bytes]]:
    return {"snapshot.jpg": ("snapshot", "image/jpeg", snapshot_jpeg), "clip.mp4": ("clip", "video/mp4", clip_mp4)}


class FailingCommit:
    """While `on`, the first commit after a file was moved into the store fails, as a full
    disk would make it (the session is rolled back, as SQLAlchemy does on a failed commit)."""

    def __init__(self) -> None:
        self.on = True
        self.armed = False
        self.failed = 0


@pytest.fixture
def failing_commit(monkeypatch: pytest.MonkeyPatch) -> FailingCommit:
    from vision.dispatch.storage import EvidenceStore

    state = FailingCommit()
    promote, commit = EvidenceStore.promote, Session.commit

    def promote_and_arm(self: EvidenceStore, staged: Any) -> bool:
        state.armed = state.on
        return promote(self, staged)

    def commit_or_fail(self: Session) -> None:
        if state.armed:
            state.armed = False
            state.failed += 1
            self.rollback()
            raise OperationalError("COMMIT", {}, Exception("disk I/O error"))
        commit(self)

    monkeypatch.setattr(EvidenceStore, "promote", promote_and_arm)
    monkeypatch.setattr(Session, "commit", commit_or_fail)
    return state


def _intake(d: Dispatch, evidence: dict[str, tuple[str, str, bytes]], **report: Any) -> Any:
    from vision.core.cases import CaseReport
    from vision.dispatch.service import Upload

    device = d.service.authenticate_client(d.device_token, "device")
    files = {name: Upload(io.BytesIO(data), ctype) for name, (_kind, ctype, data) in evidence.items()}
    return d.service.intake(device, CaseReport.model_validate(case_report(evidence, **report)), files)


def _stored(d: Dispatch) -> set[str]:
    return {sha for sha, _ in d.service.store.stored_files()}


def _staged(d: Dispatch) -> list[Path]:
    return [p for p, _ in d.service.store.staged_files()]


def _sha(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def _age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


# ------------------------------------------------------------ committed with the row
def test_a_failed_intake_transaction_leaves_no_orphan(
    dispatch: Dispatch, evidence: dict[str, tuple[str, str, bytes]], failing_commit: FailingCommit
) -> None:
    with pytest.raises(OperationalError):
        _intake(dispatch, evidence)
    assert failing_commit.failed == 1
    assert _stored(dispatch) == set() and _staged(dispatch) == []
    assert dispatch.service.list_cases().total == 0
    failing_commit.on = False
    assert _intake(dispatch, evidence).created  # the edge box's retry goes through, files and all
    assert _stored(dispatch) == {_sha(data) for _k, _c, data in evidence.values()}


def test_a_failed_transaction_keeps_a_file_another_case_names(
    dispatch: Dispatch, evidence: dict[str, tuple[str, str, bytes]], failing_commit: FailingCommit
) -> None:
    failing_commit.on = False
    first = _intake(dispatch, {"snapshot.jpg": evidence["snapshot.jpg"]})
    failing_commit.on = True
    with pytest.raises(OperationalError):
        _intake(dispatch, evidence, camera_id="cam-02")  # the same snapshot and a new clip
    snapshot, clip = (_sha(evidence[n][2]) for n in ("snapshot.jpg", "clip.mp4"))
    assert _stored(dispatch) == {snapshot}, "the clip is taken back, the snapshot the first case names stays"
    detail = dispatch.client.get(f"/api/v1/cases/{first.case_id}", headers=dispatch.auth("admin")).json()
    assert dispatch.client.get(detail["evidence"][0]["url"], headers=dispatch.auth("admin")).status_code == 200
    assert clip not in _stored(dispatch)


def test_a_failed_handling_leaves_no_after_photo(dispatch: Dispatch, failing_commit: FailingCommit) -> None:
    failing_commit.on = False
    cid = dispatch.post_case(case_report()).json()["case_id"]
    for action, role in [("accept", "reviewer"), ("dispatch", "dispatcher")]:
        assert dispatch.act(cid, action, role).status_code == 200
    failing_commit.on = True
    from vision.dispatch.service import Upload

    op = dispatch.service.authenticate_operator(dispatch.tokens["dispatcher"])
    with pytest.raises(OperationalError):
        dispatch.service.transition(op, cid, "handle", after_photo=Upload(io.BytesIO(make_jpeg(seed=5))))
    assert _stored(dispatch) == set() and _staged(dispatch) == []
    case = dispatch.client.get(f"/api/v1/cases/{cid}", headers=dispatch.auth("admin")).json()
    assert case["status"] == "dispatched" and case["evidence"] == []


def test_a_refused_report_leaves_nothing_staged(
    dispatch: Dispatch, evidence: dict[str, tuple[str, str, bytes]]
) -> None:
    """The first file is staged, the second does not match its declaration: neither stays."""
    from vision.dispatch.errors import InvalidInput

    bad = {**evidence, "clip.mp4": ("clip", "video/mp4", evidence["clip.mp4"][2])}
    report = case_report(bad)
    report["evidence"][1]["sha256"] = "0" * 64
    from vision.core.cases import CaseReport
    from vision.dispatch.service import Upload

    device = dispatch.service.authenticate_client(dispatch.device_token, "device")
    files = {name: Upload(io.BytesIO(data), ctype) for name, (_kind, ctype, data) in bad.items()}
    with pytest.raises(InvalidInput, match="sha256"):
        dispatch.service.intake(device, CaseReport.model_validate(report), files)
    assert _stored(dispatch) == set() and _staged(dispatch) == []


# ------------------------------------------------------------ collection
def _plant(d: Dispatch, evidence: dict[str, tuple[str, str, bytes]]) -> dict[str, Path]:
    """Stale and fresh staged uploads, an old and a fresh orphan, and an old file a row names."""
    store = d.service.store
    named = _intake(d, {"snapshot.jpg": evidence["snapshot.jpg"]})
    assert named.created
    files = {
        "stale upload": store.root / ".upload-crashed",
        "fresh upload": store.root / ".upload-in-flight",
        "old orphan": store.path_for(store.put_bytes(b"orphan from before").sha256),
        "fresh orphan": store.path_for(store.put_bytes(b"stored a moment ago").sha256),
        "named": store.path_for(_sha(evidence["snapshot.jpg"][2])),
    }
    files["stale upload"].write_bytes(b"half an upload")
    files["fresh upload"].write_bytes(b"being written")
    for name in ("stale upload", "old orphan", "named"):
        _age(files[name], 2 * HOUR)
    return files


def test_collection_at_start_removes_stale_uploads_and_orphans_only(
    dispatch: Dispatch, evidence: dict[str, tuple[str, str, bytes]]
) -> None:
    from fastapi.testclient import TestClient

    from vision.dispatch.app import create_app

    files = _plant(dispatch, evidence)
    assert dispatch.service.settings.evidence_grace_s == HOUR
    with TestClient(create_app(service=dispatch.service)):  # a server (re)starting over this store
        gone = {name for name, path in files.items() if not path.exists()}
    assert gone == {"stale upload", "old orphan"}
    assert dispatch.service.collect_evidence().orphans == 0  # nothing left to do


def test_collection_runs_on_a_schedule(
    tmp_path: Path, db_url: str, fast_passwords: None, evidence: dict[str, tuple[str, str, bytes]]
) -> None:
    d = build_dispatch(tmp_path, db_url, collect_interval_s=0.2)
    try:
        with d.client:
            files = _plant(d, evidence)  # after the collection at start
            deadline = time.monotonic() + 10
            while files["old orphan"].exists() and time.monotonic() < deadline:
                time.sleep(0.05)
            gone = {name for name, path in files.items() if not path.exists()}
        assert gone == {"stale upload", "old orphan"}
    finally:
        d.service.close()


def test_collection_spares_whatever_is_younger_than_the_grace_period(
    dispatch: Dispatch, evidence: dict[str, tuple[str, str, bytes]]
) -> None:
    files = _plant(dispatch, evidence)
    collected = dispatch.service.collect_evidence(now=time.time() - 3 * HOUR)  # as if three hours ago
    assert (collected.stale_uploads, collected.orphans) == (0, 0)
    assert all(path.exists() for path in files.values())


def test_on_postgresql_every_content_of_a_batch_is_locked_until_its_transaction_ends(pg_server: Any) -> None:
    """The advisory locks that keep the collector from deleting a file between another request's
    move and its commit: all of a batch's contents, taken in one statement, held to the end."""
    from sqlalchemy import create_engine, text

    from vision.dispatch.staging import lock_contents

    url = pg_server.fresh_database()
    engine = create_engine(url)
    shas = [_sha(b"one"), _sha(b"two"), _sha(b"three")]

    def free(sha: str) -> bool:
        with engine.connect() as other:
            return bool(
                other.execute(
                    text("SELECT pg_try_advisory_xact_lock(hashtextextended(:k, 0))"), {"k": f"evidence/{sha}"}
                ).scalar_one()
            )

    try:
        with Session(engine) as s:
            lock_contents(s, shas[:2] + shas[:1])  # a repeated content is locked once
            assert not free(shas[0]) and not free(shas[1])
            assert free(shas[2])
            s.rollback()
        assert free(shas[0]) and free(shas[1])
    finally:
        engine.dispose()
        pg_server.drop(url)

"""SQLite units of work (Hardening issue): reads are deferred transactions (WAL
snapshots) that answer while another connection holds the write lock; writing
units take the lock at BEGIN and wait for it, so writes still serialise; a read
unit that tries to write is refused loudly."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support_dispatch import Dispatch, build_dispatch, case_report

# Far below SQLite's 30 s busy timeout: a read that waited for the writer would miss it.
PROMPT_S = 5.0


@pytest.fixture
def sqlite_dispatch(tmp_path: Path, fast_passwords: None) -> Iterator[Dispatch]:
    d = build_dispatch(tmp_path, f"sqlite:///{tmp_path / 'dispatch.db'}")
    with d.client:
        yield d
    d.service.close()


@pytest.fixture
def writer(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    """Another connection to the database, holding the write lock (BEGIN IMMEDIATE) until released."""
    conn = sqlite3.connect(tmp_path / "dispatch.db", isolation_level=None, timeout=1)
    conn.execute("BEGIN IMMEDIATE")
    yield conn
    if conn.in_transaction:
        conn.rollback()
    conn.close()


def _timed_get(d: Dispatch, url: str, **kw: Any) -> tuple[int, float]:
    t0 = time.monotonic()
    r = d.client.get(url, **kw)
    return r.status_code, time.monotonic() - t0


def test_sqlite_runs_in_wal_mode(sqlite_dispatch: Dispatch, tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "dispatch.db")
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        conn.close()


def test_reads_answer_while_another_connection_holds_the_write_lock(sqlite_dispatch: Dispatch, tmp_path: Path) -> None:
    d = sqlite_dispatch
    cid = d.post_case(case_report()).json()["case_id"]
    assert d.act(cid, "accept", "reviewer").status_code == 200  # published on Open311 from here
    conn = sqlite3.connect(tmp_path / "dispatch.db", isolation_level=None, timeout=1)
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("UPDATE cases SET address = 'being written' WHERE id = ?", (cid,))
    try:
        for url, kw in [
            ("/api/v1/cases", {"headers": d.auth("reviewer")}),
            (f"/api/v1/cases/{cid}", {"headers": d.auth("reviewer")}),
            ("/open311/v2/requests.json", {}),
            (f"/open311/v2/requests/{cid}.json", {}),
            ("/healthz", {}),
        ]:
            status, took = _timed_get(d, url, **kw)
            assert status == 200 and took < PROMPT_S, (url, status, took)
        # the snapshot is the last committed state, not the writer's uncommitted change
        assert d.client.get(f"/api/v1/cases/{cid}", headers=d.auth("reviewer")).json()["address"] != "being written"
    finally:
        conn.rollback()
        conn.close()


def test_a_write_waits_for_the_lock_then_succeeds(sqlite_dispatch: Dispatch, writer: sqlite3.Connection) -> None:
    d = sqlite_dispatch
    writer.rollback()  # let the case in first
    cid = d.post_case(case_report()).json()["case_id"]
    writer.execute("BEGIN IMMEDIATE")
    result: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: result.update(r=d.act(cid, "accept", "reviewer")))
    thread.start()
    time.sleep(0.5)
    assert thread.is_alive(), "the write did not wait for the lock"
    writer.rollback()
    thread.join(timeout=30)
    assert result["r"].status_code == 200 and result["r"].json()["status"] == "accepted"


def test_a_read_unit_may_not_write(sqlite_dispatch: Dispatch) -> None:
    from vision.dispatch import models as m
    from vision.dispatch.context import WriteInReadUnit

    with sqlite_dispatch.service.ctx.read() as s, pytest.raises(WriteInReadUnit):
        s.add(m.Operator(username="sneaky", password_hash="x", role="reviewer"))
        s.flush()
    assert "sneaky" not in [op.username for op in sqlite_dispatch.service.list_operators()]

"""Outbox and sender against a real HTTP server on 127.0.0.1 that refuses, stalls and fails."""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest

from tests.support_edge import Receiver, free_port, make_case, make_evidence, wait_for
from vision.core.backoff import backoff_delay
from vision.edge.delivery.outbox import Outbox
from vision.edge.delivery.sender import Sender

REPO = Path(__file__).resolve().parent.parent


def queue(outbox: Outbox, n: int, size: int = 500) -> list[str]:
    keys = []
    for _ in range(n):
        case = make_case()
        key = str(case.idempotency_key)
        files = [
            make_evidence(outbox.staging(key), "snapshot.jpg", size),
            make_evidence(outbox.staging(key), "clip.mp4", size, "clip"),
        ]
        keys.append(outbox.put(case, files))
    return keys


def test_put_is_durable_and_resumes_after_reopen(tmp_path):
    ob = Outbox(tmp_path / "ob")
    keys = queue(ob, 3)
    ob.close()
    ob = Outbox(tmp_path / "ob")
    assert ob.counts() == {"queued": 3, "sent": 0, "failed": 0}
    item = ob.next_due()
    assert item.key == keys[0] and {f.name for f in item.files} == {"snapshot.jpg", "clip.mp4"}
    case = json.loads(item.case_json)
    assert case["idempotency_key"] == keys[0] and len(case["evidence"]) == 2
    assert all(f.path.parent.name == keys[0] for f in item.files)
    assert not any((tmp_path / "ob" / "evidence" / ".staging").iterdir())
    with closing(sqlite3.connect(ob.db_path)) as db:  # WAL is a property of the file: every opener sees it
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_each_case_can_be_read_where_it_stands(tmp_path):
    ob = Outbox(tmp_path / "ob")
    sent, failed, queued = queue(ob, 3)
    ob.mark_sent(sent, 201, "42")
    ob.mark_failed(failed, 422, "HTTP 422: bad case")
    assert [r.key for r in ob.records()] == [sent, failed, queued]
    assert [r.key for r in ob.records("failed")] == [failed]
    done = ob.record(sent)
    assert (done.state, done.attempts, done.last_status, done.remote_id, done.last_error) == (
        "sent",
        1,
        201,
        "42",
        None,
    )
    assert done.sent_at is not None and done.camera_id == "cam1"
    assert (ob.record(failed).state, ob.record(failed).last_error) == ("failed", "HTTP 422: bad case")
    assert ob.record(queued).attempts == 0 and ob.record(queued).sent_at is None
    assert ob.record("no-such-key") is None and ob.get("no-such-key") is None
    item = ob.get(sent)  # a delivered case still reads as it was posted
    assert item.key == sent and str(item.report().idempotency_key) == sent
    assert {f.name for f in item.files} == {"snapshot.jpg", "clip.mp4"}
    assert ob.cases("failed") == [
        {
            "key": failed,
            "kind": "case",
            "state": "failed",
            "attempts": 1,
            "last_status": 422,
            "last_error": "HTTP 422: bad case",
            "camera_id": "cam1",
            "rule": ob.record(failed).rule,
            "created_at": ob.record(failed).created_at,
            "sent_at": None,
            "follows": None,
        }
    ]


def test_orphan_evidence_of_a_crash_before_commit_is_removed(tmp_path):
    ob = Outbox(tmp_path / "ob")
    make_evidence(ob.staging("half-written"), "snapshot.jpg", 100)
    (tmp_path / "ob" / "evidence" / "no-row").mkdir()
    ob.close()
    Outbox(tmp_path / "ob")
    assert not (tmp_path / "ob" / "evidence" / "no-row").exists()
    assert not (tmp_path / "ob" / "evidence" / ".staging" / "half-written").exists()


def test_evidence_bound_prunes_oldest_files_never_cases(tmp_path, caplog):
    ob = Outbox(tmp_path / "ob", max_evidence_bytes=5000)
    keys = queue(ob, 8, size=1000)  # 16 000 bytes of evidence against a 5 000 byte bound
    assert ob.evidence_bytes() <= 5000
    assert ob.counts()["queued"] == 8, "case records are never dropped"
    assert ob.pruned_files == 11
    assert "pruned" in caplog.text and "stays queued" in caplog.text
    first = ob.next_due()
    assert first.key == keys[0] and first.files == []
    assert json.loads(first.case_json)["evidence"] == [], "the case no longer lists the pruned files"
    assert not (tmp_path / "ob" / "evidence" / keys[0] / "snapshot.jpg").exists()
    newest = [i for i in ob.cases() if i["key"] == keys[-1]]
    assert newest and len(list((tmp_path / "ob" / "evidence" / keys[-1]).iterdir())) == 2


def test_sent_evidence_is_pruned_before_unsent(tmp_path, receiver, caplog):
    ob = Outbox(tmp_path / "ob", max_evidence_bytes=4000)
    sent = queue(ob, 2, size=1000)
    Sender(ob, receiver.url, "t").drain()
    assert ob.counts()["sent"] == 2
    caplog.clear()
    new = queue(ob, 1, size=1000)
    assert ob.evidence_bytes() <= 4000
    assert len(list((tmp_path / "ob" / "evidence" / new[0]).iterdir())) == 2
    assert "unsent" not in caplog.text, "pruning sent evidence is routine, not a warning"
    assert not (tmp_path / "ob" / "evidence" / sent[0] / "snapshot.jpg").exists()


def test_backoff_grows_with_jitter_and_cap():
    rng = random.Random(1)
    delays = [backoff_delay(a, 1.0, 30.0, rng) for a in range(1, 10)]
    for a, d in enumerate(delays, start=1):
        ceiling = min(30.0, 2 ** (a - 1))
        assert ceiling / 2 <= d <= ceiling
    assert len({round(backoff_delay(3, 1.0, 30.0, rng), 6) for _ in range(20)}) > 10, "jittered"


@pytest.mark.slow
def test_refused_stalled_and_5xx_then_every_case_arrives_exactly_once(tmp_path):
    port = free_port()
    ob = Outbox(tmp_path / "ob")
    keys = queue(ob, 5)
    sender = Sender(
        ob, f"http://127.0.0.1:{port}", "device-token", timeout_s=0.5, backoff_initial_s=0.05, backoff_max_s=0.2
    )
    sender.start()
    try:
        # 1. nothing listens: connection refused
        assert wait_for(lambda: sender.stats.retries >= 3)
        assert ob.counts()["queued"] == 5
        # 2. a server that stalls past the client timeout (it stores the case but answers too late)
        receiver = _receiver_on(port)
        # 10x the client's timeout: on a loaded 2-core CI box a sender thread not scheduled for a
        # second found a 1.5 s stall's late 201 already waiting, and counted the case sent
        receiver.mode, receiver.stall_s = "stall", 5.0
        assert wait_for(lambda: receiver.requests >= 2)
        # 3. 5xx
        receiver.mode = "5xx"
        r0 = receiver.requests
        assert wait_for(lambda: receiver.requests >= r0 + 3)
        assert ob.counts()["sent"] == 0
        # 4. recovery
        receiver.mode = "ok"
        assert wait_for(lambda: ob.counts()["sent"] == 5, timeout=30)
    finally:
        sender.stop()
    assert set(receiver.cases) == set(keys), "every case arrived"
    assert len(receiver.cases) == 5, "exactly once at the receiver (dedup by idempotency key)"
    stalled_first = keys[0]
    assert receiver.deliveries[stalled_first] >= 2, "the stalled case was resent and deduplicated"
    assert all(a == "Bearer device-token" for a in receiver.auth)
    for key in keys:
        assert set(receiver.files[key]) == {"snapshot.jpg", "clip.mp4"}
    assert sender.stats.retries >= 6 and sender.stats.permanent_failures == 0
    receiver.close()


def _receiver_on(port: int) -> Receiver:
    """A Receiver bound to a given port (the sender already points there)."""
    import threading
    from http.server import ThreadingHTTPServer

    r = Receiver()
    r.server.shutdown()
    r.server.server_close()
    handler = r.server.RequestHandlerClass
    r.server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    r.server.daemon_threads = True
    r.port, r.url = port, f"http://127.0.0.1:{port}"
    r._thread = threading.Thread(target=r.server.serve_forever, daemon=True)
    r._thread.start()
    return r


def test_permanent_4xx_marks_failed_and_does_not_block(tmp_path, receiver, caplog):
    ob = Outbox(tmp_path / "ob")
    keys = queue(ob, 2)
    receiver.mode = "400"
    sender = Sender(ob, receiver.url, "t")
    sender.drain()
    assert ob.counts() == {"queued": 0, "sent": 0, "failed": 2}
    assert sender.stats.permanent_failures == 2
    assert "REFUSED" in caplog.text and keys[0] in caplog.text
    failed = ob.cases("failed")
    assert failed[0]["last_status"] == 400 and "bad case" in failed[0]["last_error"]
    receiver.mode = "ok"
    assert ob.requeue_failed() == 2
    sender.drain()
    assert ob.counts()["sent"] == 2 and set(receiver.cases) == set(keys)


@pytest.mark.slow
def test_kill_9_between_queueing_and_sending_loses_and_duplicates_nothing(tmp_path, receiver):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    script = str(REPO / "tests" / "edge_sender_proc.py")
    # receiver down (stall): the process queues 4 cases, its first POST is stored by the receiver
    # but never answered before we kill it
    receiver.mode, receiver.stall_s = "stall", 30
    proc = subprocess.Popen(
        [sys.executable, script, str(tmp_path / "ob"), receiver.url, "4"], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        keys = json.loads(proc.stdout.readline())["queued"]
        assert wait_for(lambda: receiver.requests >= 1, timeout=30)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    assert proc.returncode == -signal.SIGKILL
    assert len(receiver.cases) == 1, "the in-flight case reached the receiver, the process never heard back"
    # restart: a fresh process (queueing nothing new) resumes the queue
    receiver.mode = "ok"
    out = subprocess.run(
        [sys.executable, script, str(tmp_path / "ob"), receiver.url, "0"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    done = json.loads(out.stdout.strip().splitlines()[-1])
    assert done["counts"] == {"queued": 0, "sent": 4, "failed": 0}
    assert set(receiver.cases) == set(keys), "nothing lost"
    assert len(receiver.cases) == 4, "nothing duplicated"
    assert receiver.deliveries[keys[0]] == 2 and all(receiver.deliveries[k] == 1 for k in keys[1:])


def test_outbox_cli_status_and_retry_failed(tmp_path, receiver, capsys):
    from vision.cli import main

    ob = Outbox(tmp_path / "ob")
    keys = queue(ob, 2)
    receiver.mode = "400"
    Sender(ob, receiver.url, "t").drain()
    ob.close()
    assert main(["outbox", "status", "--path", str(tmp_path / "ob")]) == 0
    out = capsys.readouterr().out
    assert "failed 2" in out and keys[0] in out and "HTTP 400" in out
    assert main(["outbox", "status", "--path", str(tmp_path / "ob"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["counts"] == {"queued": 0, "sent": 0, "failed": 2}
    assert main(["outbox", "retry-failed", "--path", str(tmp_path / "ob")]) == 0
    assert "requeued 2" in capsys.readouterr().out
    assert Outbox(tmp_path / "ob", owner=False).counts()["queued"] == 2
    assert main(["outbox", "status", "--path", str(tmp_path / "missing")]) == 1
    assert "no outbox" in capsys.readouterr().err


def _pending_case(ob: Outbox):
    """A case written as the case writer does when a violation opens: stills + case.json."""
    case = make_case(violation="muddy_truck", rule="muddy-trucks")
    key = str(case.idempotency_key)
    files = [
        make_evidence(ob.pending(key), "snapshot.jpg", 300),
        make_evidence(ob.pending(key), "annotated.jpg", 200, "annotated"),
    ]
    ob.put_pending(_with_files(case, files))
    return case, files


def _with_files(case, files):
    from vision.core.cases import EvidenceItem

    items = [
        EvidenceItem(name=f.name, kind=f.kind, content_type=f.content_type, sha256=f.sha256, size_bytes=f.size_bytes)
        for f in files
    ]
    return case.model_copy(update={"evidence": items})


def test_a_pending_case_left_by_a_crash_is_queued_at_the_next_open_without_its_clip(tmp_path, caplog):
    ob = Outbox(tmp_path / "ob")
    case, files = _pending_case(ob)
    key = str(case.idempotency_key)
    assert ob.counts()["queued"] == 0, "pending is not queued yet"
    ob.close()  # the process dies here: the clip was never finished

    ob = Outbox(tmp_path / "ob")
    assert ob.recovered == [key]
    assert ob.counts()["queued"] == 1
    item = ob.next_due()
    assert item.key == key and {f.name for f in item.files} == {"snapshot.jpg", "annotated.jpg"}
    sent = json.loads(item.case_json)
    assert sent["violation"] == "muddy_truck" and {e["name"] for e in sent["evidence"]} == {
        "snapshot.jpg",
        "annotated.jpg",
    }
    assert not (tmp_path / "ob" / "evidence" / ".pending" / key).exists()
    assert "waiting for its clip" in caplog.text
    ob.close()
    assert Outbox(tmp_path / "ob").recovered == [], "recovered once, not at every open"


def test_pending_case_completed_normally_is_queued_once_and_leaves_nothing_pending(tmp_path):
    ob = Outbox(tmp_path / "ob")
    case, files = _pending_case(ob)
    key = str(case.idempotency_key)
    clip = make_evidence(ob.pending(key), "clip.mp4", 400, "clip")
    ob.put(case, [*files, clip])
    assert not (tmp_path / "ob" / "evidence" / ".pending" / key).exists()
    ob.close()
    ob = Outbox(tmp_path / "ob")
    assert ob.recovered == [] and ob.counts()["queued"] == 1
    assert {f.name for f in ob.next_due().files} == {"snapshot.jpg", "annotated.jpg", "clip.mp4"}


def test_crash_inside_put_after_the_files_moved_still_recovers_the_case(tmp_path):
    ob = Outbox(tmp_path / "ob")
    case, files = _pending_case(ob)
    key = str(case.idempotency_key)
    final = tmp_path / "ob" / "evidence" / key
    final.mkdir()
    for f in files:  # put() moved the files, then the process died before the row was committed
        f.path.rename(final / f.name)
    ob.close()
    ob = Outbox(tmp_path / "ob")
    assert ob.recovered == [key]
    item = ob.next_due()
    assert {f.name for f in item.files} == {"snapshot.jpg", "annotated.jpg"}
    assert all(f.path.parent == final for f in item.files)

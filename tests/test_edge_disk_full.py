"""The edge on a full disk: the outbox on a real, tiny tmpfs (4 MiB), not a mock of ENOSPC.

A city box's disk fills up (a month of dispatch outage, a log gone wild). What must hold:
a case record that fits is never lost, evidence gives way first (sent cases' first, then
the clip of the case being written), a failed SQLite commit is rolled back on a fresh
connection, the daemon runs on (and restarts) while full, reports the disk on /healthz
and /metrics, and delivers everything once space and the dispatch center return.

Mounting needs root (as here and in CI); where it is refused the tests skip, saying so.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.support_edge import Receiver, free_port, make_case, make_evidence, wait_for
from vision.edge.delivery.outbox import Outbox, OutboxFullError, is_disk_full

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def tiny_fs(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs mounted for the test, unmounted after it."""
    mount_point = tmp_path / "tinyfs"
    mount_point.mkdir()
    try:
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount_point)], capture_output=True, text=True
        )
    except FileNotFoundError:
        pytest.skip("no mount command: cannot make a 4 MiB tmpfs for the disk-full tests")
    if done.returncode != 0:
        pytest.skip(f"mounting a 4 MiB tmpfs was refused (needs root): {done.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], capture_output=True)


def fill(directory: Path, leave: int = 0, name: str = "filler") -> Path:
    """Take the filesystem's free space down to about `leave` bytes with one file."""
    path = directory / name
    st = os.statvfs(directory)
    want = max(0, st.f_bavail * st.f_frsize - leave)
    chunk = b"\0" * (64 << 10)
    with open(path, "ab") as fh:
        try:
            while want > 0:
                fh.write(chunk[: min(len(chunk), want)])
                want -= len(chunk)
            fh.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    return path


def free(fs: Path) -> int:
    st = os.statvfs(fs)
    return st.f_bavail * st.f_frsize


# --- the outbox ------------------------------------------------------------------------------------


def test_put_pending_on_a_full_disk_leaves_no_partial_file_and_reports_full(tiny_fs):
    ob = Outbox(tiny_fs / "ob", min_free_bytes=0)
    filler = fill(tiny_fs)
    case = make_case()
    with pytest.raises(OSError) as raised:
        for _ in range(50):  # the pending area's case JSON, until not even a block is left
            ob.put_pending(make_case())
    assert is_disk_full(raised.value)
    assert not list(ob.pending_dir.glob("*/case.json.part")), "no partial file takes the space"
    assert ob.disk().level == "full" and ob.disk().write_errors >= 1
    filler.unlink()
    ob.put(case, [])
    assert ob.record(str(case.idempotency_key)) is not None
    assert ob.disk().level == "ok", "a good write clears the full state"
    ob.close()


def test_a_commit_that_does_not_fit_prunes_sent_evidence_first_and_keeps_the_new_case(tiny_fs):
    ob = Outbox(tiny_fs / "ob", min_free_bytes=0)
    sent = make_case()
    sent_key = str(sent.idempotency_key)
    ob.put(sent, [make_evidence(ob.staging(sent_key), "clip.mp4", 600_000, "clip")])
    ob.mark_sent(sent_key, 201, "1")
    unsent = make_case()
    unsent_key = str(unsent.idempotency_key)
    ob.put(unsent, [make_evidence(ob.staging(unsent_key), "snapshot.jpg", 300_000)])
    new = make_case()
    new_key = str(new.idempotency_key)
    files = [make_evidence(ob.staging(new_key), "snapshot.jpg", 20_000)]
    fill(tiny_fs)
    ob.put(new, files)  # the commit fails for space, is rolled back, room is made, and it fits
    assert ob.record(new_key) is not None and ob.record(new_key).state == "queued"
    assert ob.write_errors >= 1, "the commit really met a full disk"
    assert not (ob.evidence_dir / sent_key / "clip.mp4").exists(), "the sent case's evidence went first"
    assert (ob.evidence_dir / unsent_key / "snapshot.jpg").is_file(), "unsent evidence stays while sent frees enough"
    item = ob.get(new_key)
    assert [f.name for f in item.files] == ["snapshot.jpg"]
    assert ob.counts() == {"queued": 2, "sent": 1, "failed": 0}, "the connection works after the failed commit"
    ob.close()
    again = Outbox(tiny_fs / "ob", owner=False)
    assert {r.key for r in again.records()} == {sent_key, unsent_key, new_key}, "durable, nothing half-written"
    again.close()


def test_on_a_full_disk_the_case_goes_without_its_clip_then_is_held_and_never_half_written(tiny_fs):
    ob = Outbox(tiny_fs / "ob", min_free_bytes=0)
    case = make_case()
    key = str(case.idempotency_key)
    files = [
        make_evidence(ob.staging(key), "snapshot.jpg", 30_000),
        make_evidence(ob.staging(key), "clip.mp4", 200_000, "clip"),
    ]
    fill(tiny_fs)
    ob.put(case, files)  # nothing of others to prune: its own clip gives way, the record stays
    assert ob.record(key) is not None
    assert ob.evidence_dropped >= 1 and not (ob.evidence_dir / key / "clip.mp4").exists()
    assert "clip.mp4" not in {e.name for e in ob.get(key).report().evidence}

    bare = make_case()
    filler2 = fill(tiny_fs, name="filler2")
    for _ in range(40):  # fill even the last pages; rows keep going in until one does not fit
        try:
            ob.put(make_case(), [])
        except OutboxFullError:
            break
        filler2 = fill(tiny_fs, name=f"filler-{uuid.uuid4().hex}")
    with pytest.raises(OutboxFullError):
        ob.put(bare, [])
    assert ob.record(str(bare.idempotency_key)) is None, "rolled back: no half row"
    assert ob.disk().level == "full"
    for f in tiny_fs.glob("filler*"):
        f.unlink()
    assert filler2.parent == tiny_fs
    ob.put(bare, [])  # space is back: the same connection (reopened) takes it
    assert ob.record(str(bare.idempotency_key)) is not None
    ob.close()


def test_evidence_is_pruned_by_free_space_not_only_by_bytes(tiny_fs):
    ob = Outbox(tiny_fs / "ob", max_evidence_bytes=1 << 30, min_free_bytes=1 << 20)
    keys = []
    for _ in range(5):  # 4 MB of clips on a 4 MiB disk that keeps 1 MiB free
        case = make_case()
        key = str(case.idempotency_key)
        keys.append(ob.put(case, [make_evidence(ob.staging(key), "clip.mp4", 800_000, "clip")]))
        ob.mark_sent(key, 201, None)
    assert free(tiny_fs) >= 1 << 20, "pruned down to the floor, though far under the byte bound"
    assert ob.pruned_files >= 1
    assert (ob.evidence_dir / keys[-1] / "clip.mp4").is_file(), "the oldest went first"
    assert not (ob.evidence_dir / keys[0] / "clip.mp4").exists()
    assert len(ob.records()) == 5, "case records are never pruned"
    ob.close()


# --- the daemon as a process ------------------------------------------------------------------------


def test_outbox_status_shows_the_disk_with_the_sites_floor(tmp_path, tiny_fs, capsys):
    from vision.cli import main

    Outbox(tiny_fs / "ob").close()
    site = _site(tmp_path, tiny_fs / "ob", "http://127.0.0.1:9", 0, "status")
    assert main(["outbox", "status", "--config", str(site)]) == 0
    out = capsys.readouterr().out
    assert "disk ok" in out and "pruned below 0.3 MB" in out, out  # min_free_mb 0.25 from the site

    fill(tiny_fs, leave=64 << 10)  # under the site's 0.25 MiB floor
    assert main(["outbox", "status", "--config", str(site), "--json"]) == 0
    disk = json.loads(capsys.readouterr().out)["disk"]
    assert disk["level"] == "low" and disk["min_free_bytes"] == 256 << 10
    assert disk["free_bytes"] < 256 << 10 and 0 < disk["total_bytes"] <= 4 << 20


def _site(tmp_path: Path, outbox: Path, url: str, port: int, name: str) -> Path:
    from tests.test_daemon import daemon_site

    path = daemon_site(tmp_path, tmp_path / "short.mp4", url, port, name)
    data = yaml.safe_load(path.read_text())
    data["outbox"] = {"path": str(outbox), "max_evidence_mb": 64, "min_free_mb": 0.25}
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    return path


def _get_json(url: str) -> tuple[int, dict]:
    from tests.test_daemon import get

    status, body = get(url)
    return status, (json.loads(body) if body.startswith("{") else {})


def _recorded_keys(outbox: Path) -> set[str]:
    """Cases the outbox holds: rows, and cases made durable in the pending area (queued at the next open)."""
    ob = Outbox(outbox, owner=False)
    keys = {r.key for r in ob.records()}
    ob.close()
    return keys | {p.parent.name for p in (outbox / "evidence" / ".pending").glob("*/case.json")}


@pytest.mark.slow
def test_the_daemon_runs_on_a_full_disk_restarts_on_it_and_delivers_when_space_returns(tmp_path, tiny_fs):
    from tests.test_daemon import metric, short_clip

    short_clip(tmp_path / "short.mp4")
    receiver = Receiver()
    receiver.mode = "5xx"  # dispatch is down for the whole of run A
    env = dict(os.environ, PYTHONPATH=str(REPO))
    cli = [sys.executable, "-m", "vision", "run", "--loop", "--config"]
    outbox = tiny_fs / "outbox"
    Outbox(outbox).close()  # the database exists; then the disk is all but full
    filler = fill(tiny_fs, leave=48 << 10)  # room for case records, not for stills and clips
    log_a, log_b = tmp_path / "a.log", tmp_path / "b.log"
    try:
        port_a = free_port()
        with open(log_a, "w") as out:
            proc = subprocess.Popen(
                [*cli, str(_site(tmp_path, outbox, receiver.url, port_a, "a.yaml"))],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        try:
            assert wait_for(lambda: "opened" in log_a.read_text(), timeout=120), log_a.read_text()[-3000:]
            assert wait_for(lambda: _recorded_keys(outbox), timeout=60), "no case record kept on the full disk"
            status, health = _get_json(f"http://127.0.0.1:{port_a}/healthz")
            assert status == 200 and health["disk"]["level"] in ("low", "full"), health
            assert wait_for(lambda: "streetvision_outbox_disk_free_bytes" in _metrics(port_a), timeout=10)
            text = _metrics(port_a)
            assert metric(text, 'streetvision_outbox_disk_level{level="ok"}') == 0.0
            wait_for(lambda: proc.poll() is not None, timeout=5)  # it runs on: a few seconds more, still alive
            assert proc.poll() is None, "the daemon died on the full disk:\n" + log_a.read_text()[-3000:]
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
        keys_a = _recorded_keys(outbox)
        opened = _opened_ids(log_a.read_text())
        assert opened and opened <= keys_a, "every opened violation has its case record"

        # run B: a restart on the still-full disk runs; then space and the center return
        port_b = free_port()
        with open(log_b, "w") as out:
            proc = subprocess.Popen(
                [*cli, str(_site(tmp_path, outbox, receiver.url, port_b, "b.yaml"))],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        try:
            assert wait_for(lambda: _get_json(f"http://127.0.0.1:{port_b}/healthz")[0] == 200, timeout=90), (
                log_b.read_text()[-3000:]
            )
            assert proc.poll() is None, log_b.read_text()[-3000:]
            filler.unlink()
            receiver.mode = "ok"
            delivered = wait_for(lambda: keys_a <= set(receiver.cases), timeout=90)
            assert delivered, f"not delivered: {keys_a - set(receiver.cases)}\n" + log_b.read_text()[-3000:]
            status, health = _get_json(f"http://127.0.0.1:{port_b}/healthz")
            assert health["disk"]["free_bytes"] > 1 << 20
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
        out_b = log_b.read_text()
        assert proc.returncode == 0, out_b[-3000:]
        assert "Segmentation" not in out_b and "Segmentation" not in log_a.read_text()
        assert "removing evidence without a case row" not in out_b, "a case waiting for space keeps its files"
        assert all(receiver.deliveries[k] == 1 for k in keys_a), "nothing duplicated"
    finally:
        receiver.close()


def _metrics(port: int) -> str:
    from tests.test_daemon import get

    return get(f"http://127.0.0.1:{port}/metrics")[1]


def _opened_ids(log: str) -> set[str]:
    """Violation ids (the cases' idempotency keys) the daemon logged as opened."""
    ids = set()
    for line in log.splitlines():
        words = line.split()
        if "opened" in words and "violation" in words:
            ids.add(words[words.index("violation") + 1])
    return ids

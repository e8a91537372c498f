"""自动核查 from the edge's outbox to the dispatch center over real HTTP on 127.0.0.1: the case
is delivered and handled by the department, then the camera's `cleared` event (with the
snapshot of the empty place) is queued by an edge process that is killed -9 before it could
send; the next sender delivers it once, and the center verifies the case by camera."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support_dispatch import build_dispatch, case_report
from tests.support_edge import wait_for
from tests.test_dispatch_lifecycle import detail, to
from vision.core.cases import CaseReport
from vision.dispatch.app import create_app
from vision.dispatch.server import DispatchServer
from vision.edge.delivery.outbox import Outbox
from vision.edge.delivery.sender import Sender

REPO = Path(__file__).resolve().parent.parent

# Queues the cleared event of CASE_KEY in OUTBOX (center unreachable), says so, then waits to be killed.
_EDGE = """
import sys, time, uuid
from datetime import UTC, datetime
from pathlib import Path
import cv2, numpy as np
from vision.core.cases import CaseLifecycle
from vision.core.evidence_files import EvidenceFile
from vision.edge.delivery.outbox import Outbox
from vision.edge.delivery.sender import Sender

outbox = Outbox(sys.argv[1])
case_key = uuid.UUID(sys.argv[2])
event = CaseLifecycle(idempotency_key=uuid.uuid5(case_key, "cleared"), case_key=case_key, site_id="site-a",
                      camera_id="cam-01", kind="cleared", observed_at=datetime.now(UTC))
path = outbox.staging(str(event.idempotency_key)) / "cleared.jpg"
cv2.imwrite(str(path), np.full((240, 320, 3), 90, np.uint8))
outbox.put_lifecycle(event, [EvidenceFile.of("cleared.jpg", "snapshot", "image/jpeg", path)], rule="vending",
                     violation="street_vending")
Sender(outbox, sys.argv[3], "token", timeout_s=1.0, backoff_initial_s=0.05, backoff_max_s=0.2).start()
print("queued", event.idempotency_key, flush=True)
time.sleep(600)
"""


@pytest.mark.timeout(300)
def test_a_handled_case_is_verified_by_the_camera_across_a_kill_9(tmp_path: Path, fast_passwords: None) -> None:
    d = build_dispatch(tmp_path / "center", f"sqlite:///{tmp_path / 'dispatch.db'}")
    outbox = Outbox(tmp_path / "outbox")
    report = CaseReport.model_validate(case_report(camera_id="cam-01"))
    outbox.put(report, [])
    with DispatchServer(app=create_app(service=d.service)) as server:
        sender = Sender(outbox, server.url, d.device_token)
        assert sender.drain() == 1
        cid = int(outbox.record(str(report.idempotency_key)).remote_id or 0)
        to(d, cid, "handled")  # accepted, dispatched, handled with the after photo
        outbox.close()

        # the camera sees the place empty; the edge queues the event and dies before sending it
        dead = "http://127.0.0.1:9"  # the discard port: refused on loopback
        env = dict(os.environ, PYTHONPATH=str(REPO))
        proc = subprocess.Popen(
            [sys.executable, "-c", _EDGE, str(tmp_path / "outbox"), str(report.idempotency_key), dead],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("queued"), line + proc.stdout.read()
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        assert detail(d, cid)["status"] == "handled", "nothing reached the center"

        outbox = Outbox(tmp_path / "outbox")  # the restarted box
        (event_row,) = [r for r in outbox.records() if r.kind == "lifecycle"]
        assert event_row.state == "queued" and event_row.follows == str(report.idempotency_key)
        sender = Sender(outbox, server.url, d.device_token)
        # the killed box's sender failed against the dead address until the kill: its last failure set the
        # next attempt up to backoff_max_s (0.2 s) ahead, and a restart that quick finds nothing due yet
        assert wait_for(lambda: outbox.next_due() is not None, timeout=5.0)
        assert sender.drain() == 1 and sender.stats.replays == 0
        case = detail(d, cid)
        assert case["status"] == "verified" and case["camera_verified_at"]
        (event,) = case["camera_events"]
        assert event["kind"] == "cleared" and [e["stage"] for e in event["evidence"]] == ["camera"]
        assert case["transitions"][-1]["actor_kind"] == "camera"

        # a resend after a crash between "sent" and "marked sent" is a replay, not a second event
        item = outbox.get(event_row.key)
        assert item is not None and sender.send(item) == "sent" and sender.stats.replays == 1
        case = detail(d, cid)
        assert len(case["camera_events"]) == 1 and [t["action"] for t in case["transitions"]].count("verify") == 1
        sender.stop()
        outbox.close()
    d.service.close()

"""The sender against the real dispatch application (in-process, SQLite): the multipart
contract, 201 for a new case, 200 for a replay of its idempotency key, 4xx permanent."""

from __future__ import annotations

import hashlib

from tests.support_dispatch import build_dispatch, make_h264_mp4, make_jpeg
from tests.support_edge import make_case
from vision.core.evidence_files import EvidenceFile
from vision.edge.delivery.outbox import Outbox
from vision.edge.delivery.sender import Sender


def evidence(directory, name: str, kind: str, content_type: str, data: bytes) -> EvidenceFile:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_bytes(data)
    return EvidenceFile(name, kind, content_type, path, hashlib.sha256(data).hexdigest(), len(data))


def queue_case(outbox: Outbox, case) -> str:
    key = str(case.idempotency_key)
    stage = outbox.staging(key)
    files = [
        evidence(stage, "snapshot.jpg", "snapshot", "image/jpeg", make_jpeg(seed=1)),
        evidence(stage, "annotated.jpg", "annotated", "image/jpeg", make_jpeg(seed=2)),
        evidence(stage, "clip.mp4", "clip", "video/mp4", make_h264_mp4(1.0)),
    ]
    return outbox.put(case, files)


def test_sender_delivers_to_the_real_dispatch_center(tmp_path, fast_passwords):
    d = build_dispatch(tmp_path / "dispatch", f"sqlite:///{tmp_path / 'dispatch.db'}")
    with d.client:
        transport = d.client._transport  # the in-process ASGI app behind an httpx transport
        case = make_case(site_id="site-a")
        first = Outbox(tmp_path / "ob1")
        queue_case(first, case)
        sender = Sender(first, "http://testserver", d.device_token, transport=transport)
        assert sender.drain() == 1
        row = first.cases()[0]
        assert row["state"] == "sent" and row["last_status"] == 201
        assert sender.stats.sent == 1 and sender.stats.replays == 0
        remote_id = first.record(row["key"]).remote_id
        detail = d.client.get(f"/api/v1/cases/{remote_id}", headers=d.auth("admin")).json()
        assert detail["violation"] == "street_vending" and detail["site_id"] == "site-a"
        assert len(detail["evidence"]) == 3, "every evidence part accepted (names, sha256, sizes match)"

        # the same case again (as after a crash between the POST and marking it sent): a replay
        second = Outbox(tmp_path / "ob2")
        queue_case(second, case)
        replay = Sender(second, "http://testserver", d.device_token, transport=transport)
        assert replay.drain() == 1 and replay.stats.replays == 1
        (again,) = second.records()
        assert (again.remote_id, again.last_status) == (remote_id, 200)
        assert d.client.get("/api/v1/cases", headers=d.auth("admin")).json()["total"] == 1, "no duplicate case"

        # a wrong token is a permanent refusal: failed, kept, not retried
        third = Outbox(tmp_path / "ob3")
        queue_case(third, make_case(site_id="site-a"))
        bad = Sender(third, "http://testserver", "not-a-token", transport=transport)
        bad.drain()
        assert third.counts()["failed"] == 1 and bad.stats.permanent_failures == 1
    d.service.close()

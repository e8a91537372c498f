"""What the camera sees of a case afterwards (cleared, resumed) on the edge box: written with
a snapshot by the case writer, queued in the outbox behind its case and never sent before
it, failed with it, and kept across an outbox of the build before (schema 1)."""

from __future__ import annotations

import sqlite3
import uuid
from contextlib import closing
from datetime import UTC, datetime, timedelta

import cv2
import numpy as np
import pytest

from tests.support_edge import T0, make_case, make_evidence, wait_for
from tests.test_case_writer import hand_over, setup  # noqa: F401 - the writer fixture
from tests.test_evidence import violation
from vision.core.cases import CaseLifecycle
from vision.edge.delivery.outbox import SCHEMA_VERSION, Outbox
from vision.edge.rules import Violation


def lifecycle(case_key: uuid.UUID, kind: str = "cleared") -> CaseLifecycle:
    return CaseLifecycle(
        idempotency_key=uuid.uuid4(),
        case_key=case_key,
        site_id="site-a",
        camera_id="cam1",
        kind=kind,  # type: ignore[arg-type]
        observed_at=datetime(2026, 12, 5, 10, 0, tzinfo=UTC),
    )


def test_an_event_waits_for_its_case_to_be_sent(tmp_path):
    ob = Outbox(tmp_path / "ob")
    case = make_case()
    event = lifecycle(case.idempotency_key)
    # queued before its case (a case whose clip is still recording is only pending): not due
    event_key = ob.put_lifecycle(
        event,
        [make_evidence(ob.staging(str(event.idempotency_key)), "cleared.jpg", 300)],
        rule="bikes",
        violation="non_motor_parking",
    )
    assert ob.next_due() is None and ob.next_attempt_in() is None and ob.depth() == 1
    case_key = ob.put(case, [])
    assert ob.next_due().key == case_key, "the case goes first"
    ob.mark_sent(case_key, 201, "7")
    item = ob.next_due()
    assert item is not None and item.key == event_key and item.kind == "lifecycle"
    assert ob.next_attempt_in() == 0
    sent = item.lifecycle()
    assert sent.case_key == case.idempotency_key and sent.kind == "cleared"
    assert [(e.name, e.kind) for e in sent.evidence] == [("cleared.jpg", "snapshot")]
    assert {f.name for f in item.files} == {"cleared.jpg"}
    record = ob.record(event_key)
    assert (record.kind, record.follows, record.rule) == ("lifecycle", case_key, "bikes")


def test_an_event_fails_with_its_refused_case_and_comes_back_with_it(tmp_path):
    ob = Outbox(tmp_path / "ob")
    case = make_case()
    case_key = ob.put(case, [])
    event_key = ob.put_lifecycle(lifecycle(case.idempotency_key), [], rule="bikes", violation="non_motor_parking")
    other = ob.put(make_case(), [])
    ob.mark_failed(case_key, 422, "HTTP 422: bad case")
    assert ob.record(event_key).state == "failed" and case_key in (ob.record(event_key).last_error or "")
    assert ob.next_due().key == other, "a refused case's event never blocks the queue"
    assert ob.requeue_failed() == 2
    assert ob.next_due().key == case_key


def test_an_outbox_of_schema_1_keeps_its_cases(tmp_path):
    """The build before lifecycle events wrote schema 1: its queued cases are still sent."""
    ob = Outbox(tmp_path / "ob")
    key = ob.put(make_case(), [make_evidence(ob.staging("x"), "snapshot.jpg", 200)])
    ob.close()
    with closing(sqlite3.connect(tmp_path / "ob" / "outbox.sqlite3")) as db:  # back to schema 1
        db.execute("DROP INDEX cases_follows")
        db.execute("ALTER TABLE cases DROP COLUMN follows")
        db.execute("ALTER TABLE cases DROP COLUMN kind")
        db.execute("PRAGMA user_version=1")
        db.commit()
    ob = Outbox(tmp_path / "ob")
    item = ob.next_due()
    assert item is not None and item.key == key and item.kind == "case" and item.files
    with closing(sqlite3.connect(tmp_path / "ob" / "outbox.sqlite3")) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 2


def with_a_case(setup) -> tuple[Violation, list[CaseLifecycle]]:  # noqa: F811
    """A case handed to the writer; the lifecycle events the writer reports queued go in the list."""
    site, _outbox, writer, ring, _queued, _errors = setup
    events: list[CaseLifecycle] = []
    writer.on_lifecycle = events.append
    v = violation(onset_t=4.0, detected_t=5.0)
    hand_over(site, writer, ring, v)
    return v, events


def test_the_writer_queues_a_cleared_event_with_the_empty_place_behind_its_case(setup):  # noqa: F811
    site, outbox, writer, ring, queued, errors = setup
    v, events = with_a_case(setup)
    empty = np.full((576, 768, 3), 90, np.uint8)
    at = T0 + timedelta(seconds=40)
    writer.lifecycle(site.cameras[0], v, "cleared", empty, at)
    writer.lifecycle(site.cameras[0], v, "cleared", empty, at)  # the same moment again: the same event
    assert wait_for(lambda: len(events) == 2, timeout=20)
    writer.stop()
    assert errors == [] and len(queued) == 1
    rows = outbox.records()
    assert [r.kind for r in rows] == ["case", "lifecycle"], "one event row: a repeat is the same key"
    event = outbox.get(rows[1].key).lifecycle()
    assert event.case_key == v.id and event.observed_at == at.astimezone(UTC) and event.camera_id == "cam1"
    assert str(event.idempotency_key) == rows[1].key == str(uuid.uuid5(v.id, f"cleared@{at.isoformat()}"))
    files = {f.name: f.path for f in outbox.get(rows[1].key).files}
    assert set(files) == {"cleared.jpg", "cleared_annotated.jpg"}
    clean = cv2.imread(str(files["cleared.jpg"]))
    marked = cv2.imread(str(files["cleared_annotated.jpg"]))
    assert clean.shape == marked.shape == empty.shape
    assert np.abs(clean.astype(int) - 90).max() < 8, "the clean snapshot is the frame as seen"
    x1, y1, x2, y2 = (int(c) for c in v.box_px)
    assert marked[y1, (x1 + x2) // 2, 1] > 150, "the annotated one marks where the violation stood (green)"
    assert outbox.next_due().key == str(v.id), "the case is sent first"


def test_the_writer_queues_a_grew_event_with_the_new_count_and_the_joined_object_marked(setup):  # noqa: F811
    site, outbox, writer, ring, queued, errors = setup
    v, events = with_a_case(setup)
    frame = np.full((576, 768, 3), 90, np.uint8)
    joined = (500.0, 320.0, 560.0, 440.0)  # a second stall beside the first
    at = T0 + timedelta(seconds=60)
    writer.lifecycle(site.cameras[0], v, "grew", frame, at, object_count=2, joined_px=(joined,))
    assert wait_for(lambda: len(events) == 1, timeout=20)
    writer.stop()
    assert errors == []
    row = [r for r in outbox.records() if r.kind == "lifecycle"][0]
    event = outbox.get(row.key).lifecycle()
    assert event.kind == "grew" and event.object_count == 2 and event.case_key == v.id
    assert event.bbox == pytest.approx((500 / 768, 320 / 576, 560 / 768, 440 / 576))
    files = {f.name: f.path for f in outbox.get(row.key).files}
    assert set(files) == {"grew.jpg", "grew_annotated.jpg"}
    marked = cv2.imread(str(files["grew_annotated.jpg"]))
    b, g, r = (int(c) for c in marked[320, 530])
    assert r > 200 and 100 < g < 180 and b < 60, "the joined object is marked orange"
    x1, y1, x2, _ = (int(c) for c in v.box_px)
    assert marked[y1, (x1 + x2) // 2, 2] > 200, "and the case's place red, as for a resumed violation"


def test_a_grew_event_carries_its_count_and_no_other_kind_does():
    cleared = lifecycle(uuid.uuid4()).model_dump()
    grew = {**cleared, "kind": "grew", "object_count": 3, "bbox": (0.4, 0.5, 0.5, 0.6)}
    assert CaseLifecycle.model_validate(grew).object_count == 3
    with pytest.raises(ValueError, match="object_count"):
        CaseLifecycle.model_validate({**grew, "object_count": None})
    with pytest.raises(ValueError, match="object_count"):
        CaseLifecycle.model_validate({**cleared, "object_count": 3})
    with pytest.raises(ValueError, match="bbox"):
        CaseLifecycle.model_validate({**grew, "bbox": (0.5, 0.5, 0.4, 0.6)})

"""The case writer thread: stills durable at onset, the clip added when recorded, and a
failure costing at most the clip, never the case."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest

import vision.edge.casework.case_writer as case_writer
from tests.support_edge import T0, parse_site, site_dict, wait_for
from tests.test_evidence import violation
from vision.core.taxonomy import load_taxonomy
from vision.edge.casework.case_writer import CaseWriter
from vision.edge.casework.evidence import FrameRing
from vision.edge.delivery.outbox import Outbox

ZONE = {"name": "pavement", "kind": "no_vending", "polygon": [[0.1, 0.5], [0.9, 0.5], [0.9, 0.95], [0.1, 0.95]]}


@pytest.fixture
def setup(tmp_path):
    site = parse_site(
        site_dict([ZONE], [{"type": "street_vending", "dwell_s": 1}], evidence={"clip_before_s": 1, "clip_after_s": 1})
    )
    outbox = Outbox(tmp_path / "outbox")
    queued, errors = [], []
    writer = CaseWriter(
        site, load_taxonomy(site.taxonomy), outbox, on_queued=queued.append, on_error=lambda cam, v: errors.append(v.id)
    )
    writer.start()
    ring = FrameRing(max_seconds=60, max_bytes=64 << 20)
    rng = np.random.default_rng(1)
    for i in range(40):
        ring.add(i * 0.2, T0 + timedelta(seconds=i * 0.2), rng.integers(0, 255, (576, 768, 3), dtype=np.uint8))
    yield site, outbox, writer, ring, queued, errors
    writer.stop()
    outbox.close()


def hand_over(site, writer, ring, v):
    snapshot = ring.frames()[-1].image()
    writer.opened(site.cameras[0], v, snapshot, "coco-nanodet", "1.0.0")
    writer.finish(site.cameras[0], v, ring.window(v.onset_t_s - 1, v.onset_t_s + 1), 5.0)


def evidence_names(outbox: Outbox) -> set[str]:
    item = outbox.next_due()
    return {f.name for f in item.files}


def test_stills_are_durable_before_the_clip_and_the_case_is_queued_with_all(setup, tmp_path):
    site, outbox, writer, ring, queued, errors = setup
    v = violation(onset_t=4.0, detected_t=5.0)
    writer.opened(site.cameras[0], v, ring.frames()[-1].image(), "coco-nanodet", "1.0.0")
    pending = tmp_path / "outbox" / "evidence" / ".pending" / str(v.id)
    assert wait_for(lambda: (pending / "case.json").is_file(), timeout=10)
    assert {p.name for p in pending.iterdir()} == {"case.json", "snapshot.jpg", "annotated.jpg"}
    assert outbox.counts()["queued"] == 0
    writer.finish(site.cameras[0], v, ring.window(3.0, 5.0), 5.0)
    writer.stop()
    assert outbox.counts()["queued"] == 1 and evidence_names(outbox) == {"snapshot.jpg", "annotated.jpg", "clip.mp4"}
    assert len(queued) == 1 and queued[0].clip is not None and queued[0].clip.frames == 10
    assert errors == [] and not pending.exists()


def test_a_clip_that_cannot_be_encoded_costs_the_clip_not_the_case(setup, monkeypatch):
    site, outbox, writer, ring, queued, errors = setup

    def broken(*args, **kwargs):
        raise RuntimeError("encoder failed")

    monkeypatch.setattr(case_writer, "write_clip_file", broken)
    hand_over(site, writer, ring, violation(onset_t=4.0, detected_t=5.0))
    writer.stop()
    assert outbox.counts()["queued"] == 1 and evidence_names(outbox) == {"snapshot.jpg", "annotated.jpg"}
    assert errors == []


def test_stills_that_fail_once_are_written_again_when_the_clip_is_due(setup, monkeypatch):
    site, outbox, writer, ring, queued, errors = setup
    real = case_writer.write_images
    calls = []

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise OSError(28, "No space left on device")
        return real(*args, **kwargs)

    monkeypatch.setattr(case_writer, "write_images", flaky)
    hand_over(site, writer, ring, violation(onset_t=4.0, detected_t=5.0))
    writer.stop()
    assert len(calls) == 2
    assert outbox.counts()["queued"] == 1 and evidence_names(outbox) == {"snapshot.jpg", "annotated.jpg", "clip.mp4"}


def test_a_case_that_cannot_be_written_is_reported_and_the_next_one_still_goes_through(setup, monkeypatch):
    site, outbox, writer, ring, queued, errors = setup
    real = case_writer.write_images
    bad = violation(onset_t=4.0, detected_t=5.0)

    def fails_for_bad(v, *args, **kwargs):
        if v.id == bad.id:
            raise OSError(5, "I/O error")
        return real(v, *args, **kwargs)

    monkeypatch.setattr(case_writer, "write_images", fails_for_bad)
    hand_over(site, writer, ring, bad)
    good = violation(onset_t=5.0, detected_t=6.0)
    hand_over(site, writer, ring, good)
    writer.stop()
    assert errors == [bad.id]
    assert [q.violation.id for q in queued] == [good.id]
    assert outbox.counts()["queued"] == 1

"""The plate step of a case (vision/edge/casework/plate_step.py) with the real plate models:
a confident reading goes on the case, an unsure one only as a picture, none leaves the case
as it was, and a reader that fails costs the plate, never the case."""

from __future__ import annotations

from datetime import timedelta

import cv2
import numpy as np
import pytest

from tests.support_edge import T0, parse_site, site_dict, wait_for
from tests.test_evidence import violation
from vision.core.taxonomy import load_taxonomy
from vision.edge.casework.case_writer import CaseWriter
from vision.edge.casework.evidence import FrameRing
from vision.edge.casework.plate_step import PlateStep
from vision.edge.config import PlatesConfig
from vision.edge.delivery.outbox import Outbox
from vision.training.data.synth.plates import paste_plate, plate_aspect, plate_corners, render_plate


def truck_view(text: str | None, style: str = "yellow", width: float = 120.0, seed: int = 0) -> np.ndarray:
    """A grey truck body (a vehicle crop as the rule keeps it) with the plate on it, or none."""
    rng = np.random.default_rng(seed)
    image = np.full((300, 420, 3), (70, 80, 90), np.uint8)
    cv2.rectangle(image, (30, 40), (390, 250), (150, 150, 155), -1)
    image = np.clip(image.astype(np.int16) + rng.integers(-6, 7, image.shape), 0, 255).astype(np.uint8)
    if text is None:
        return image
    corners = plate_corners((210.0, 190.0), width, plate_aspect(style))  # type: ignore[arg-type]
    return paste_plate(image, render_plate(text, style), corners)  # type: ignore[arg-type]


def truck_violation(views: list[np.ndarray]):
    v = violation(onset_t=4.0, detected_t=5.0, plate_views=views)
    v.rule, v.violation_type, v.classes = "muddy-trucks", "muddy_truck", ["muddy_truck"]
    return v


@pytest.fixture(scope="module")
def step() -> PlateStep:
    return PlateStep.load(PlatesConfig())


def test_a_confident_reading_goes_on_the_case_with_the_rectified_plate(step: PlateStep) -> None:
    v = truck_violation([truck_view(None), truck_view("苏E12345"), truck_view("苏E12345", width=90.0, seed=1)])
    read_before = step.read
    step.apply(v)
    assert v.plate is not None
    assert (v.plate.text, v.plate.colour, v.plate.rows) == ("苏E12345", "yellow", 1)
    assert v.plate.confidence >= 0.8 and v.plate.frames >= 1
    crop = v.crops["plate_crop"]
    assert crop.shape[1] > crop.shape[0] * 2, "the plate pulled square: wider than high"
    assert v.plate_views == [], "the views are let go once read"
    assert step.read == read_before + 1


def test_a_truck_without_a_plate_leaves_the_case_as_it_was(step: PlateStep) -> None:
    v = truck_violation([truck_view(None, seed=s) for s in range(3)])
    unreadable_before = step.unreadable
    step.apply(v)
    assert v.plate is None and "plate_crop" not in v.crops
    assert step.unreadable == unreadable_before + 1


def test_an_unsure_reading_is_a_picture_for_the_reviewer_not_a_plate() -> None:
    strict = PlateStep.load(PlatesConfig(min_confidence=1.0))  # no reading is that sure
    v = truck_violation([truck_view("苏E12345")])
    strict.apply(v)
    assert v.plate is None, "below min_confidence: no text, so the center never merges on it"
    assert "plate_crop" in v.crops and strict.unreadable == 1 and strict.read == 0


@pytest.fixture
def writer_setup(tmp_path, step: PlateStep):
    zone = {"name": "exit", "kind": "site_exit", "polygon": [[0.5, 0.1], [0.5, 0.9]]}
    site = parse_site(site_dict([zone], [{"type": "muddy_truck"}], evidence={"clip_before_s": 1, "clip_after_s": 1}))
    outbox = Outbox(tmp_path / "outbox")
    errors: list[str] = []
    writer = CaseWriter(
        site, load_taxonomy(site.taxonomy), outbox, on_error=lambda cam, v: errors.append(v.id), plates=step
    )
    writer.start()
    ring = FrameRing(max_seconds=60, max_bytes=64 << 20)
    frame = np.full((576, 768, 3), 120, np.uint8)
    for i in range(40):
        ring.add(i * 0.2, T0 + timedelta(seconds=i * 0.2), frame)
    yield site, outbox, writer, ring, errors
    writer.stop()
    outbox.close()


def _hand_over(site, writer, ring, v) -> None:
    writer.opened(site.cameras[0], v, ring.frames()[-1].image(), "coco-city", "1.1.0")
    writer.finish(site.cameras[0], v, ring.window(3.0, 5.0), 5.0)


def test_the_queued_case_carries_the_plate_and_its_picture(writer_setup) -> None:
    site, outbox, writer, ring, errors = writer_setup
    _hand_over(site, writer, ring, truck_violation([truck_view("苏E12345")]))
    writer.stop()
    item = outbox.next_due()
    assert item is not None and errors == []
    report = item.report()
    assert report.plate is not None and report.plate.text == "苏E12345"
    assert "plate.jpg" in {f.name for f in item.files}
    # /metrics counts it (read at scrape time from the writer's plate step)
    from vision.edge.daemon.metrics import ScrapedParts, SiteMetrics

    metrics = SiteMetrics(ScrapedParts({}, outbox, {}, writer, None))
    read = metrics.registry.get_sample_value("streetvision_plates_total", {"outcome": "read"})
    assert read is not None and read >= 1 and read == writer.plates.read


def test_a_failing_reader_costs_the_plate_not_the_case(writer_setup, monkeypatch) -> None:
    site, outbox, writer, ring, errors = writer_setup

    def broken(images):
        raise RuntimeError("plate model crashed")

    monkeypatch.setattr(writer.plates.recognizer, "read_track", broken)
    _hand_over(site, writer, ring, truck_violation([truck_view("苏E12345")]))
    assert wait_for(lambda: outbox.counts()["queued"] == 1, timeout=20)
    item = outbox.next_due()
    assert item is not None and item.report().plate is None and errors == []
    assert "plate.jpg" not in {f.name for f in item.files}

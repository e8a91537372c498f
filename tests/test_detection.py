"""The pretrained NanoDet on the bundled real footage."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from vision.core.model_registry import load_card, sha256_file
from vision.edge.detection import DetectorError, open_detector

# Boxes drawn by hand on frame 0 of vtest.avi (read off a 20-px grid at 2-3x zoom).
HAND_BOXES_FRAME0 = [
    ("person", [254, 220, 281, 307]),
    ("person", [500, 157, 530, 233]),
    ("person", [639, 240, 684, 320]),
    ("vehicle", [652, 45, 722, 98]),  # the parked white van
]


def iou(a, b) -> float:
    ix1, iy1, ix2, iy2 = max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])
    inter = max(0, ix2 - ix1) * max(0, iy2 - iy1)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union else 0.0


@pytest.fixture(scope="module")
def detector():
    return open_detector("coco-nanodet", min_confidence=0.3)


@pytest.fixture(scope="module")
def frames(footage_path):
    cap = cv2.VideoCapture(str(footage_path))
    out = {}
    for i in range(0, 700):
        ok, frame = cap.read()
        assert ok, f"could not read frame {i}"
        if i % 50 == 0:
            out[i] = frame
    cap.release()
    return out


def test_card_matches_model_file():
    card = load_card("coco-nanodet")
    assert sha256_file(card.path) == card.sha256
    assert len(card.classes) == 80 and card.classes[0] == "person" and card.classes[7] == "truck"


def test_decoding_matches_hand_checked_boxes(detector, frames):
    dets = detector.detect(frames[0])
    for label, hand in HAND_BOXES_FRAME0:
        wanted = {"person"} if label == "person" else {"car", "truck", "bus"}
        best = max(
            (
                iou(hand, box)
                for box, name in zip(dets.xyxy.tolist(), dets.data["class_name"], strict=True)
                if name in wanted
            ),
            default=0.0,
        )
        assert best >= 0.75, f"{label} at {hand}: best IoU {best:.2f} among {list(dets.data['class_name'])}"


def test_output_is_one_typed_container(detector, frames):
    dets = detector.detect(frames[100])
    assert dets.xyxy.dtype == np.float32 and dets.xyxy.shape == (len(dets), 4)
    assert dets.confidence.shape == (len(dets),) and (dets.confidence >= 0.3).all()
    assert set(dets.data["class_name"]) <= set(detector.class_names)
    assert (dets.xyxy[:, 2] > dets.xyxy[:, 0]).all() and (dets.xyxy[:, 3] > dets.xyxy[:, 1]).all()
    assert dets.xyxy.min() >= 0 and dets.xyxy[:, 2].max() <= 768 and dets.xyxy[:, 3].max() <= 576


def test_walking_people_are_found(detector, frames):
    for index, frame in frames.items():
        dets = detector.detect(frame)
        people = dets[(dets.data["class_name"] == "person") & (dets.confidence >= 0.5)]
        assert len(people) >= 2, f"frame {index}: only {len(people)} confident people"


def test_parked_van_found_as_vehicle(detector, frames):
    van = [652, 45, 722, 98]
    hits = 0
    for frame in frames.values():
        dets = detector.detect(frame)
        vehicles = [
            b for b, n in zip(dets.xyxy.tolist(), dets.data["class_name"], strict=True) if n in ("car", "truck")
        ]
        hits += any(iou(van, b) >= 0.6 for b in vehicles)
    assert hits >= 0.9 * len(frames), f"van found in {hits}/{len(frames)} frames"


def test_empty_frame_gives_empty_detections(detector):
    dets = detector.detect(np.zeros((480, 640, 3), dtype=np.uint8))
    assert len(dets) == 0 and dets.data["class_name"].shape == (0,)


def test_batch_equals_single(detector, frames):
    imgs = [frames[0], frames[50]]
    batch = detector.detect_batch(imgs)
    for img, got in zip(imgs, batch, strict=True):
        single = detector.detect(img)
        np.testing.assert_allclose(got.xyxy, single.xyxy, atol=1e-3)


def test_unknown_model_names_what_exists():
    with pytest.raises(DetectorError, match="coco-nanodet"):
        open_detector("no-such-model")


def test_corrupt_model_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(DetectorError, match="broken.onnx"):
        open_detector(bad)


def test_tampered_model_refused(tmp_path, monkeypatch):
    import shutil

    src = load_card("coco-nanodet").directory
    dst = tmp_path / "coco-nanodet"
    shutil.copytree(src, dst)
    with open(dst / "model.onnx", "ab") as fh:
        fh.write(b"\0")
    monkeypatch.setenv("STREETVISION_MODELS", str(tmp_path))
    with pytest.raises(ValueError, match="sha256"):
        open_detector("coco-nanodet")

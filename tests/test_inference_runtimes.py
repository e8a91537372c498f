"""`detector.runtime`: OpenVINO runs the detectors' ONNX models with the same detections as
ONNX Runtime; the setting validates; a box that chose OpenVINO without it installed is told how."""

from __future__ import annotations

import copy
import importlib.util
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import get_args

import numpy as np
import pytest

from vision.edge.config import ConfigError, DetectorConfig, parse_site
from vision.edge.detection import RUNTIMES, DetectorError, open_detector

VALID = {
    "site_id": "box-1",
    "detector": {"model": "coco-nanodet"},
    "cameras": [
        {
            "id": "cam-1",
            "source": "datasets/footage/vtest.avi",
            "location": {"crs": "WGS84", "lat": 31.2304, "lon": 121.4737},
            "grid_code": "310101001001001",
            "zones": [{"name": "footpath", "kind": "no_parking", "polygon": [[0, 0.5], [1, 0.5], [1, 1], [0, 1]]}],
            "rules": ["bikes"],
        }
    ],
    "rules": [{"type": "non_motor_parking", "name": "bikes", "dwell_s": 60}],
}


@pytest.fixture(scope="module")
def street_frame(footage_path) -> np.ndarray:
    """A busy frame of the real footage (people on the plaza)."""
    import cv2

    cap = cv2.VideoCapture(str(footage_path))
    cap.set(cv2.CAP_PROP_POS_FRAMES, 120)
    ok, frame = cap.read()
    cap.release()
    assert ok
    return frame


def _same_detections(a, b, px: float = 0.5) -> None:
    assert len(a) == len(b) > 0
    order_a, order_b = np.lexsort(a.xyxy.T[::-1]), np.lexsort(b.xyxy.T[::-1])
    assert a.class_id[order_a].tolist() == b.class_id[order_b].tolist()
    assert np.abs(a.xyxy[order_a] - b.xyxy[order_b]).max() < px
    assert np.abs(a.confidence[order_a] - b.confidence[order_b]).max() < 1e-3


@pytest.mark.parametrize("model", ["city-v1", "coco-nanodet"])
def test_openvino_finds_what_onnxruntime_finds(model, street_frame):
    ort_det = open_detector(model, threads=1)
    ov_det = open_detector(model, threads=1, runtime="openvino", workers=1)
    assert type(ov_det.session).__name__ == "OpenVinoSession"
    _same_detections(ort_det.detect(street_frame), ov_det.detect(street_frame))


def test_openvino_serves_several_threads_at_once(street_frame):
    """The detector pool calls one detector from its workers at the same time."""
    det = open_detector("city-v1", threads=1, runtime="openvino", workers=2)
    alone = det.detect(street_frame)
    with ThreadPoolExecutor(2) as pool:
        together = list(pool.map(det.detect, [street_frame] * 4))
    for dets in together:
        _same_detections(alone, dets, px=1e-3)


def test_daemon_opens_its_detectors_on_the_configured_runtime():
    from vision.edge.daemon.detectors import open_site_detectors

    data = copy.deepcopy(VALID)
    data["detector"]["runtime"] = "openvino"
    (det,) = open_site_detectors(parse_site(data))
    assert type(det.session).__name__ == "OpenVinoSession"  # type: ignore[attr-defined]
    (det,) = open_site_detectors(parse_site(VALID))
    assert type(det.session).__name__ == "InferenceSession"  # type: ignore[attr-defined]


def test_runtime_defaults_to_onnxruntime_and_validates():
    assert DetectorConfig().runtime == "onnxruntime"
    # config.py keeps its own Literal (no detector import when a config is read): the same names
    assert get_args(DetectorConfig.model_fields["runtime"].annotation) == RUNTIMES
    data = copy.deepcopy(VALID)
    data["detector"]["runtime"] = "openvino"
    assert parse_site(data).detector.runtime == "openvino"
    data["detector"]["runtime"] = "tensorrt"
    with pytest.raises(ConfigError) as exc:
        parse_site(data)
    (loc, msg), *_ = exc.value.errors
    assert loc == "detector.runtime" and "onnxruntime" in msg and "openvino" in msg


def test_missing_openvino_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "openvino", None)  # `import openvino` raises ImportError
    with pytest.raises(DetectorError) as exc:
        open_detector("coco-nanodet", runtime="openvino")
    assert "pip install 'streetvision[openvino]'" in str(exc.value) and "detector.runtime" in str(exc.value)


def test_config_check_names_the_field_when_openvino_is_missing(monkeypatch):
    from vision.edge.config_check import check_site_files

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "openvino" else real(name, *a))
    data = copy.deepcopy(VALID)
    data["detector"]["runtime"] = "openvino"
    problems = dict(check_site_files(parse_site(data)))
    assert "streetvision[openvino]" in problems["detector.runtime"]
    data["detector"]["runtime"] = "onnxruntime"
    assert "detector.runtime" not in dict(check_site_files(parse_site(data)))


def test_unknown_runtime_and_torch_models_are_refused(tmp_path):
    with pytest.raises(DetectorError, match="unknown detector runtime"):
        open_detector("coco-nanodet", runtime="tensorrt")  # type: ignore[arg-type]
    with pytest.raises(DetectorError, match="ONNX models only"):
        open_detector(tmp_path / "best.pt", runtime="openvino")


def test_detect_cli_runs_on_openvino(footage_path):
    res = subprocess.run(
        [sys.executable, "-m", "vision", "detect", str(footage_path), "--max-frames", "2", "--runtime", "openvino"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr
    assert "on openvino" in res.stderr and "person" in res.stderr

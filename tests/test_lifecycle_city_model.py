"""Quality gate for the shipped model: `streetvision eval` on city-v1's held-out
split reproduces the metrics in its card, and the edge loader runs it."""

from __future__ import annotations

import json

import cv2
import pytest

from tests.support_offline import PYTHON, run_offline
from vision.core.model_registry import load_card, verify_card
from vision.training.data.layout import Dataset

pytestmark = pytest.mark.slow


def test_city_v1_card_metrics_reproduce(tmp_path, repo_root, monkeypatch):
    monkeypatch.setenv("STREETVISION_MODELS", str(repo_root / "models"))
    card = load_card("city-v1")
    verify_card(card)
    ds = Dataset.load(repo_root / card.metrics["dataset"])
    split = card.metrics["split"]
    assert split == "test" and ds.images(split), "held-out split of city-v1 missing"
    out = tmp_path / "eval"
    run = run_offline(
        [
            PYTHON,
            "-m",
            "vision",
            "eval",
            "--weights",
            str(card.path),
            "--data",
            str(ds.root),
            "--split",
            split,
            "--imgsz",
            str(card.input.width),
            "--out",
            str(out),
        ],
        tmp_path,
        env={"STREETVISION_ULTRALYTICS_DIR": str(tmp_path / "ul")},
        timeout=180,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.attempts == ""
    got = json.loads((out / "metrics.json").read_text())
    want = card.metrics["fp32"]
    assert got["map50"] == pytest.approx(want["map50"], abs=0.002)
    assert got["map50_95"] == pytest.approx(want["map50_95"], abs=0.002)
    for name, m in want["per_class"].items():
        assert got["per_class"][name]["map50"] == pytest.approx(m["map50"], abs=0.005), name

    from vision.edge.detection import open_detector

    det = open_detector("city-v1", min_confidence=0.3)
    assert det.class_names == card.classes and det.version == card.version
    frame = cv2.imread(str(ds.images(split)[0]))
    dets = det.detect(frame)
    assert "person" in set(dets.data["class_name"])  # the footage always has people in it

"""Model lifecycle end to end through the CLI: synth -> train -> eval -> export
-> load in the edge detector -> detections on a synth frame. Checks that every
stage works offline and its outputs are well formed, NOT accuracy (two epochs
from scratch give mAP 0)."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.support_offline import PYTHON, run_offline
from vision.training.data.layout import CITY_CLASSES, Dataset

pytestmark = pytest.mark.slow


def _sv(args: list[str], tmp: Path, offline: bool = True) -> str:
    env = {"STREETVISION_ULTRALYTICS_DIR": str(tmp / "ul"), "OMP_NUM_THREADS": "2"}
    if offline:
        run = run_offline([PYTHON, "-m", "vision", *args], tmp, env=env, timeout=120)
        assert run.attempts == "", f"network attempts in {args[0]}:\n{run.attempts}"
        assert run.returncode == 0, run.stderr[-3000:]
        return run.stdout
    proc = subprocess.run([PYTHON, "-m", "vision", *args], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_synth_train_eval_export_detect(tmp_path, monkeypatch):
    t0 = time.monotonic()
    ds_dir, runs, models = tmp_path / "ds", tmp_path / "runs", tmp_path / "models"
    _sv(["data", "synth", "--out", str(ds_dir), "--images", "12", "--seed", "2"], tmp_path, offline=False)
    ds = Dataset.load(ds_dir)
    assert all(ds.images(s) for s in ("train", "val", "test"))

    _sv(
        [
            "train",
            "--data",
            str(ds_dir),
            "--epochs",
            "2",
            "--imgsz",
            "160",
            "--batch",
            "4",
            "--name",
            "e2e",
            "--runs",
            str(runs),
        ],
        tmp_path,
    )
    run = runs / "e2e"
    assert (run / "weights" / "best.pt").is_file() and (run / "weights" / "last.pt").is_file()
    info = json.loads((run / "streetvision.json").read_text())
    assert info["epochs"] == 2 and len(info["dataset_sha256"]) == 64
    again = subprocess.run(
        [PYTHON, "-m", "vision", "train", "--data", str(ds_dir), "--name", "e2e", "--runs", str(runs), "--resume"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert again.returncode == 2 and "nothing to resume" in again.stderr  # not a silent new run

    out = _sv(
        [
            "eval",
            "--weights",
            str(run / "weights" / "best.pt"),
            "--data",
            str(ds_dir),
            "--split",
            "test",
            "--imgsz",
            "160",
            "--out",
            str(tmp_path / "eval"),
        ],
        tmp_path,
    )
    assert "mAP50" in out
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["split"] == "test" and 0.0 <= metrics["map50"] <= 1.0 and 0.0 <= metrics["map50_95"] <= 1.0
    assert set(metrics["per_class"]) <= set(CITY_CLASSES)
    assert (tmp_path / "eval" / "BoxPR_curve.png").is_file() and (tmp_path / "eval" / "confusion_matrix.png").is_file()

    _sv(["export", "--run", str(run), "--name", "e2e-v0", "--version", "0.0.1", "--models-dir", str(models)], tmp_path)
    from vision.core.model_registry import load_card, verify_card

    monkeypatch.setenv("STREETVISION_MODELS", str(models))
    card = load_card("e2e-v0")
    verify_card(card)
    assert card.backend == "yolo-onnx" and card.classes == CITY_CLASSES and card.input.width == 160
    assert {"fp32", "int8"} <= set(card.metrics) and card.latency["int8"]["median_ms"] > 0
    assert card.training["dataset_sha256"] == info["dataset_sha256"] and "GPL-2" in card.licence
    assert (models / "e2e-v0" / "model-int8.onnx").is_file()

    from vision.edge.detection import open_detector

    frame = cv2.imread(str(ds.images("test")[0]))
    for model in ("e2e-v0", str(models / "e2e-v0" / "model-int8.onnx")):
        det = open_detector(model, min_confidence=0.0001)
        assert det.class_names == CITY_CLASSES
        dets = det.detect(frame)
        assert dets.xyxy.shape[1] == 4 and len(dets.confidence) == len(dets) == len(dets.class_id)
        if len(dets):
            assert (dets.xyxy[:, 0] >= -1).all() and (dets.xyxy[:, 2] <= frame.shape[1] + 1).all()
            assert np.all((dets.confidence > 0) & (dets.confidence <= 1))
            assert set(dets.data["class_name"]) <= set(CITY_CLASSES)
    assert time.monotonic() - t0 < 150

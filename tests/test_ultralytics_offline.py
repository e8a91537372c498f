"""ultralytics must never reach the network: train, val, export and predict run
in a subprocess with non-loopback networking refused and every attempt logged."""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

import pytest

from tests.support_offline import PYTHON, run_offline
from vision.edge.detection.ultralytics_env import OFFLINE_SETTINGS, prepare_offline

SCRIPT = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    import cv2, numpy as np
    from vision.edge.detection.ultralytics_env import prepare_offline
    cfg = prepare_offline()          # before ultralytics is imported
    from vision.training.data.layout import Box, Dataset
    root = Path(sys.argv[1])
    ds = Dataset.create(root / "ds", ["thing"], ("train", "val"))
    rng = np.random.default_rng(0)
    for split, n in (("train", 4), ("val", 2)):
        for i in range(n):
            img = (rng.random((64, 64, 3)) * 60).astype(np.uint8)
            x, y = int(rng.integers(5, 30)), int(rng.integers(5, 30))
            cv2.rectangle(img, (x, y), (x + 25, y + 25), (255, 255, 255), -1)
            ds.write(split, f"{i}.jpg", img, [Box.from_xyxy(0, x, y, x + 26, y + 26, 64, 64)])
    from vision.training.adapter import TrainSpec, evaluate, export_onnx, train
    run = train(TrainSpec(ds.yaml_path, root / "runs" / "t", epochs=1, imgsz=64, batch=2))
    best = run / "weights" / "best.pt"
    evaluate(best, ds.yaml_path, "val", 64, root / "runs" / "val", batch=2)
    onnx = export_onnx(best, 64)
    from ultralytics import YOLO
    img = cv2.imread(str(ds.images("val")[0]))
    YOLO(str(best)).predict(img, imgsz=64, verbose=False)
    YOLO(str(onnx), task="detect").predict(img, imgsz=64, verbose=False)
    print("OK", onnx)
    """
)


def test_prepare_offline_sets_env_font_and_settings(tmp_path, monkeypatch):
    for var in ("YOLO_OFFLINE", "YOLO_AUTOINSTALL", "YOLO_CONFIG_DIR"):
        monkeypatch.delenv(var, raising=False)
    (tmp_path / "Ultralytics").mkdir()
    (tmp_path / "Ultralytics" / "settings.json").write_text(json.dumps({"sync": True, "runs_dir": "/x"}))
    out = prepare_offline(tmp_path)
    assert out == tmp_path
    assert os.environ["YOLO_OFFLINE"] == "1" and os.environ["YOLO_AUTOINSTALL"] == "0"
    assert os.environ["YOLO_CONFIG_DIR"] == str(tmp_path)
    font = tmp_path / "Ultralytics" / "Arial.ttf"
    assert font.read_bytes()[:4] == b"\x00\x01\x00\x00"  # a TrueType font
    settings = json.loads((tmp_path / "Ultralytics" / "settings.json").read_text())
    assert settings["sync"] is False and settings["runs_dir"] == "/x"  # user values kept
    assert all(settings[k] == v for k, v in OFFLINE_SETTINGS.items())
    assert prepare_offline(tmp_path) == tmp_path  # idempotent


@pytest.mark.slow
def test_train_val_export_predict_make_no_network_attempt(tmp_path: Path):
    env = {"STREETVISION_ULTRALYTICS_DIR": str(tmp_path / "cfg"), "OMP_NUM_THREADS": "2"}
    run = run_offline([PYTHON, "-c", SCRIPT, str(tmp_path)], tmp_path, env=env, timeout=240)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "OK" in run.stdout
    assert run.attempts == "", f"network attempts:\n{run.attempts}"
    assert (tmp_path / "cfg" / "Ultralytics" / "Arial.ttf").is_file()
    settings = json.loads((tmp_path / "cfg" / "Ultralytics" / "settings.json").read_text())
    assert settings["sync"] is False


def test_guard_sees_ultralytics_attempts_without_prepare(tmp_path: Path):
    """Control: the same guard does see ultralytics' probes and font download
    when prepare_offline() is not used, so the zero above means something."""
    env = {"YOLO_CONFIG_DIR": str(tmp_path / "bare"), "YOLO_OFFLINE": "", "YOLO_AUTOINSTALL": ""}
    code = "from ultralytics.utils.checks import check_font; check_font('Arial.ttf')"
    run = run_offline([PYTHON, "-c", code], tmp_path, env=env, timeout=120)
    assert run.attempts != ""

"""`streetvision train|eval|export` as a new engineer meets them: a data set
whose images are not in git, --help, the quantizer's noise and the export's
warnings, and the `train classifier` target. Everything here but the last test
runs without importing ultralytics or torch."""

from __future__ import annotations

import json
import logging
import re
import shutil
import subprocess
import sys
import types
from pathlib import Path

import pytest

from tests.support_offline import PYTHON, run_offline
from vision.cli import build_parser, main, train_cmd
from vision.core.paths import REPO_ROOT

FULL = REPO_ROOT / "datasets" / "city-v1-full"


def _copy_committed(name: str, dst_root: Path) -> Path:
    """What git keeps of a bundled set: data.yaml, meta.jsonl, cache/, the test split."""
    src, dst = REPO_ROOT / "datasets" / name, dst_root / name
    dst.mkdir(parents=True)
    for f in ("data.yaml", "meta.jsonl"):
        if (src / f).is_file():
            shutil.copyfile(src / f, dst / f)
    for sub in ("cache", "images/test", "labels/test"):
        if (src / sub).is_dir():
            shutil.copytree(src / sub, dst / sub, ignore=shutil.ignore_patterns("*.cache"))
    return dst


def _fresh_clone_sets(tmp_path: Path) -> Path:
    root = tmp_path / "datasets"
    for name in ("city-v1", "city-v1-bikes", "city-v1-full"):
        _copy_committed(name, root)
    return root


def _readme_commands() -> list[str]:
    text = (REPO_ROOT / "datasets" / "README.md").read_text(encoding="utf-8")
    return [
        line.strip()
        for line in text.splitlines()
        if line.strip().startswith(("streetvision data synth", "streetvision data merge"))
    ]


def _one_line(text: str) -> str:
    return re.sub(r"\s+", " ", text)


# --- 1. a data set without its train/val images --------------------------------------------------------------


def test_train_on_fresh_clone_names_missing_splits_and_regenerate_commands(tmp_path):
    _fresh_clone_sets(tmp_path)
    probe = (
        "import sys; from vision.cli import main; rc = main(sys.argv[1:]); "
        "print('heavy:', sorted(m for m in ('ultralytics', 'torch') if m in sys.modules)); sys.exit(rc)"
    )
    proc = subprocess.run(
        [PYTHON, "-c", probe, "train", "--data", "datasets/city-v1-full", "--runs", str(tmp_path / "runs")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    assert "heavy: []" in proc.stdout  # stopped before ultralytics (and torch) were imported
    assert not (tmp_path / "runs").exists()  # and before the run folder was made
    err = proc.stderr
    head = _one_line(err.split("\n    ")[0])
    assert head.startswith(
        "error: datasets/city-v1-full has no images for split 'train' (datasets/city-v1-full/images/train "
        "is missing) and 'val' (datasets/city-v1-full/images/val is missing)"
    )
    assert (
        "merged from city-v1 and city-v1-bikes" in head
        and "seed 1, 600 images" in head
        and "seed 2, 300 images" in head
    )
    commands = [line.strip() for line in err.splitlines() if line.startswith("    ")]
    scratch = (REPO_ROOT / "var" / "regen").as_posix()  # cwd is outside the repo: shown absolute
    # the commands of datasets/README.md, derived from the sets' own records, built under var/regen/
    want = [c.replace("datasets/", scratch + "/") for c in _readme_commands()]
    assert len(want) == 3 and commands[:3] == want
    assert commands[3:] == [
        f"cp -r {scratch}/city-v1-full/images/train {scratch}/city-v1-full/images/val datasets/city-v1-full/images/",
        f"cp -r {scratch}/city-v1-full/labels/train {scratch}/city-v1-full/labels/val datasets/city-v1-full/labels/",
    ]


def _tiny_set(
    root: Path, splits: dict[str, int], names=("thing",), extra_yaml: dict | None = None, meta: list | None = None
) -> Path:
    import numpy as np

    from vision.training.data.layout import Box, Dataset

    ds = Dataset.create(root, list(names), tuple(splits))
    for split, n in splits.items():
        for i in range(n):
            img = np.full((32, 32, 3), 40 * (i + 1), np.uint8)
            ds.write(split, f"{split}{i}.jpg", img, [Box(0, 0.5, 0.5, 0.4, 0.4)])
        if n == 0:
            shutil.rmtree(ds.image_dir(split))
    ds.save_yaml(extra_yaml)
    if meta:
        ds.rewrite_meta({m["image"]: m for m in meta})
    return root


def test_recipe_resolves_moved_inputs_and_its_copy_commands_work(tmp_path, monkeypatch, capsys):
    """merged_from holds the building machine's absolute paths; a clone finds the inputs beside the set.
    The synth options are read back from the record; the cp lines, run in a shell, fill the set."""
    sets = tmp_path / "sets"
    record = {
        "seed": 5,
        "images": 10,
        "sources": ["/elsewhere/datasets/footage/vtest.avi"],
        "config": {
            "images": 10,
            "seed": 5,
            "split": {"train": 0.5, "val": 0.25, "test": 0.25},
            "min_confidence": 0.5,
            "two_wheelers": 0.0,
            "quality": 80,
        },
    }
    _tiny_set(sets / "a", {"train": 0, "val": 0, "test": 0}, extra_yaml={"synth": record})
    _tiny_set(
        sets / "m",
        {"train": 0, "val": 0, "test": 1},
        meta=[{"image": "images/test/test0.jpg", "merged_from": "/nowhere/datasets/a", "source": "a/x"}],
    )
    scratch = tmp_path / "regen"
    monkeypatch.setattr(train_cmd, "_scratch_dir", lambda: scratch)
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--data", "sets/m", "--runs", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "sets/m has no images for split 'train' (sets/m/images/train is missing)" in err
    commands = [line.strip() for line in err.splitlines() if line.startswith("    ")]
    assert (
        commands[0]
        == "streetvision data synth --out regen/a --images 10 --seed 5 --confidence 0.5 --ratios train=0.5,val=0.25,test=0.25"
    )
    assert "quality=80" in _one_line(err)  # set by the record, no option for it: said, not hidden
    assert commands[1] == "streetvision data merge regen/a --out regen/m"
    # what the rebuild would leave in regen/m, then the printed copy commands, run as printed
    _tiny_set(scratch / "m", {"train": 2, "val": 1, "test": 1})
    for c in commands[2:]:
        assert c.startswith(("cp ", "mkdir ")), c
        subprocess.run(c, shell=True, check=True, cwd=tmp_path)
    from vision.training.data.layout import Dataset

    ds = Dataset.load(sets / "m")
    assert [len(ds.images(s)) for s in ("train", "val", "test")] == [2, 1, 1]
    assert (sets / "m" / "labels" / "train" / "train0.txt").is_file()


def test_set_without_a_recipe_says_so(tmp_path, monkeypatch, capsys):
    _tiny_set(tmp_path / "own", {"train": 3, "val": 0})
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--data", "own"]) == 2
    err = _one_line(capsys.readouterr().err)
    assert "own has no images for split 'val' (own/images/val is missing)" in err
    assert "streetvision data split --data own" in err  # the images are there, just not split


def test_eval_and_export_check_their_split_first(tmp_path, monkeypatch, capsys):
    root = _fresh_clone_sets(tmp_path)
    monkeypatch.chdir(tmp_path)
    weights = tmp_path / "w.onnx"
    weights.write_bytes(b"not read")
    assert main(["eval", "--weights", str(weights), "--data", "datasets/city-v1-full", "--split", "val"]) == 2
    err = capsys.readouterr().err
    assert "has no images for split 'val'" in err and "`streetvision eval --split val` needs it" in err
    assert "streetvision data merge" in err and "Traceback" not in err

    run = tmp_path / "runs" / "r"
    (run / "weights").mkdir(parents=True)
    (run / "weights" / "best.pt").write_bytes(b"not read")
    (run / "streetvision.json").write_text(json.dumps({"data": str(root / "city-v1-full"), "imgsz": 64}))
    models = tmp_path / "models"
    assert main(["export", "--run", str(run), "--name", "x", "--split", "val", "--models-dir", str(models)]) == 2
    err = capsys.readouterr().err
    assert "`streetvision export --split val` needs it" in err
    assert not models.exists()  # nothing made before the check


def test_train_without_data_and_with_a_missing_checkpoint(tmp_path, monkeypatch, capsys):
    assert main(["train"]) == 2
    assert "--data is required to train the detector" in capsys.readouterr().err
    _tiny_set(tmp_path / "ds", {"train": 1, "val": 1})
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--data", "ds", "--model", "runs/train/nope/weights/best.pt"]) == 2
    err = capsys.readouterr().err
    assert "--model runs/train/nope/weights/best.pt: no such checkpoint" in err
    assert not (tmp_path / "runs").exists()
    assert main(["train", "--data", "ds", "--model", "yolov8n"]) == 2
    assert "architecture YAML" in capsys.readouterr().err


def test_adapter_refuses_a_missing_checkpoint_before_ultralytics(tmp_path):
    from vision.training.adapter import TrainSpec, train

    with pytest.raises(FileNotFoundError, match="no such checkpoint"):
        train(TrainSpec(tmp_path / "data.yaml", tmp_path / "run", model=str(tmp_path / "best.pt")))


# --- 2. --help --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["train", "eval", "export"])
def test_help_lists_every_option_with_its_default(command, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "1000")  # no line breaks inside hyphenated defaults
    with pytest.raises(SystemExit) as done:
        build_parser().parse_args([command, "--help"])
    assert done.value.code == 0
    text = _one_line(capsys.readouterr().out)
    sub = build_parser()._subparsers._group_actions[0].choices[command]
    for action in sub._actions:
        if action.dest == "help":
            continue
        name = action.option_strings[-1] if action.option_strings else "{" + ",".join(action.choices) + "}"
        assert name in text, name
        entry = _one_line(action.help)
        assert entry in text, name
        if action.required:
            assert f"{entry} (required)" in text, name
        elif action.default not in (None, argparse_suppress()):
            assert f"{entry} (default: {action.default})" in text, name
        else:  # worked out at run time, or a flag forwarded to the global one: the help says it
            assert "default" in entry or "required for" in entry, name


def argparse_suppress():
    import argparse

    return argparse.SUPPRESS


def test_train_help_says_what_model_takes(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--help"])
    text = _one_line(capsys.readouterr().out)
    for words in (
        "yolov8n.yaml",
        "yolo11n.yaml",
        "random weights",
        ".pt checkpoint to fine-tune from",
        "runs/train/city-v1/weights/best.pt",
        "(default: yolov8n.yaml)",
        "(default: detector)",
    ):
        assert words in text, words


# --- 3. the quantizer's output and the export's warnings ---------------------------------------------------


def _tiny_onnx(path: Path) -> Path:
    onnx = pytest.importorskip("onnx")
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.random.default_rng(0).standard_normal((4, 3, 3, 3)).astype(np.float32), "w")
    m = numpy_helper.from_array(np.random.default_rng(1).standard_normal((4 * 6 * 6, 5)).astype(np.float32), "m")
    shape = numpy_helper.from_array(np.array([1, -1], np.int64), "shape")
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["images", "w"], ["c"]),
            helper.make_node("Relu", ["c"], ["r"]),
            helper.make_node("Reshape", ["r", "shape"], ["f"]),
            helper.make_node("MatMul", ["f", "m"], ["output0"]),
        ],
        "tiny",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, [1, 5])],
        [w, m, shape],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    model.metadata_props.add(key="names", value="{0: 'thing'}")
    onnx.save(model, str(path))
    return path


def test_quantizer_output_is_captured_unless_verbose(tmp_path, capfd, caplog):
    pytest.importorskip("onnxruntime.quantization")
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from vision.training.onnx_tools import quantize_int8

    src = _tiny_onnx(tmp_path / "tiny.onnx")
    caplog.set_level(logging.INFO)  # what the CLI's logging.basicConfig(level=INFO) lets through
    quantize_dynamic(str(src), str(tmp_path / "raw.onnx"), weight_type=QuantType.QUInt8)
    assert any("Quantization parameters" in r.getMessage() for r in caplog.records)  # there is noise to hide
    caplog.clear()
    capfd.readouterr()

    handlers = list(logging.getLogger().handlers)
    out = quantize_int8(src, tmp_path / "q.onnx")
    assert out.is_file() and caplog.records == []
    seen = capfd.readouterr()
    assert seen.out == "" and seen.err == ""
    assert {p.key: p.value for p in onnx.load(str(out)).metadata_props}["names"] == "{0: 'thing'}"
    assert logging.getLogger().handlers == handlers  # put back
    logging.getLogger("some.module").info("after")  # logging still reaches its handlers afterwards
    assert [r.getMessage() for r in caplog.records] == ["after"]

    caplog.clear()
    quantize_int8(src, tmp_path / "q2.onnx", verbose=True)
    assert any("Quantization parameters" in r.getMessage() for r in caplog.records)


def test_export_notes_decision():
    from vision.training.card import export_notes

    def lat(f: float, i: float) -> dict:
        return {
            "fp32": {"median_ms": f, "threads": 1, "imgsz": 320},
            "int8": {"median_ms": i},
            "int8_file": "model-int8.onnx",
        }

    good = {"split": "test", "dataset": "datasets/city-v1-full", "map50": 0.68}
    assert export_notes(good, lat(22.87, 20.0)) == []
    assert export_notes(good, lat(22.87, 22.87)) == []  # equal is not slower
    (note,) = export_notes(good, lat(22.87, 23.19))
    assert (
        note.startswith("int8 variant is slower than fp32") and "23.19 ms vs 22.87 ms median, 1 thread, 320 px" in note
    )
    assert export_notes({**good, "map50": 0.05}, lat(1, 1)) == []
    (note,) = export_notes({**good, "map50": 0.049}, lat(1, 1))
    assert note == (
        "mAP50 0.049 on the test split of datasets/city-v1-full: this model finds almost nothing; do not roll it out"
    )
    both = export_notes({"fp32": {"map50": 0.0}}, lat(2.0, 4.7))  # map50 read from fp32 when not at the top
    assert len(both) == 2 and "4.70 ms vs 2.00 ms" in both[0] and "the evaluation split" in both[1]
    assert export_notes({}, {}) == []


def test_export_warns_on_stderr_and_in_the_card_without_quantizer_noise(tmp_path, monkeypatch, capfd):
    """The export handler with ultralytics' parts replaced: a real int8 quantisation of a tiny
    ONNX, given latencies (int8 slower) and a near-zero mAP."""
    pytest.importorskip("onnxruntime.quantization")
    from vision.training import adapter, onnx_tools

    ds = _tiny_set(tmp_path / "ds", {"train": 1, "val": 1, "test": 1})
    run = tmp_path / "runs" / "r"
    (run / "weights").mkdir(parents=True)
    (run / "weights" / "best.pt").write_bytes(b"not read")
    (run / "streetvision.json").write_text(
        json.dumps({"data": str(ds), "imgsz": 8, "model": "yolov8n.yaml", "epochs": 1})
    )
    onnx_file = _tiny_onnx(tmp_path / "best.onnx")
    monkeypatch.setattr(adapter, "export_onnx", lambda weights, imgsz: onnx_file)
    monkeypatch.setattr(
        adapter,
        "evaluate",
        lambda path, *a, **k: adapter.EvalResult(0.01, 0.003, {"thing": {"map50": 0.01}}, tmp_path / "ev", [], {}),
    )
    monkeypatch.setattr(
        onnx_tools,
        "latency_ms",
        lambda path, imgsz, threads=1: {
            "median_ms": 4.0 if "int8" in Path(path).name else 2.0,
            "p90_ms": 5.0,
            "threads": threads,
            "imgsz": imgsz,
            "runs": 20,
        },
    )
    root = logging.getLogger()
    level, to_stderr = root.level, logging.StreamHandler(sys.stderr)  # what the CLI's logging.basicConfig sets up
    root.setLevel(logging.INFO)
    root.addHandler(to_stderr)
    try:
        rc = main(["export", "--run", str(run), "--name", "tiny", "--models-dir", str(tmp_path / "models")])
    finally:
        root.removeHandler(to_stderr)
        root.setLevel(level)
    seen = capfd.readouterr()
    assert rc == 0, seen.err
    assert "Quantization" not in seen.out + seen.err and "pre-processing" not in seen.out + seen.err
    warnings = [line for line in seen.err.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 2
    assert warnings[0].startswith("warning: int8 variant is slower than fp32") and "4.00 ms vs 2.00 ms" in warnings[0]
    assert warnings[1].endswith("this model finds almost nothing; do not roll it out")
    from vision.core.model_registry import load_card

    card = load_card(tmp_path / "models" / "tiny")
    assert card.metrics["notes"] == [w.removeprefix("warning: ") for w in warnings]


@pytest.mark.slow
def test_real_tiny_export_is_quiet_and_warns(tmp_path):
    """One real train (1 epoch, 64 px, 6 images) + export through the CLI, offline."""
    import cv2
    import numpy as np

    from vision.training.data.layout import Box, Dataset

    ds = Dataset.create(tmp_path / "ds", ["thing"])
    rng = np.random.default_rng(0)
    for split, n in (("train", 3), ("val", 2), ("test", 1)):
        for i in range(n):
            img = (rng.random((64, 64, 3)) * 60).astype(np.uint8)
            x, y = int(rng.integers(5, 30)), int(rng.integers(5, 30))
            cv2.rectangle(img, (x, y), (x + 25, y + 25), (255, 255, 255), -1)
            ds.write(split, f"{i}.jpg", img, [Box.from_xyxy(0, x, y, x + 26, y + 26, 64, 64)])
    env = {"STREETVISION_ULTRALYTICS_DIR": str(tmp_path / "ul"), "OMP_NUM_THREADS": "2"}
    sv = [PYTHON, "-m", "vision"]
    trained = run_offline(
        [
            *sv,
            "train",
            "--data",
            str(ds.root),
            "--epochs",
            "1",
            "--imgsz",
            "64",
            "--batch",
            "3",
            "--runs",
            str(tmp_path / "runs"),
            "--name",
            "t",
        ],
        tmp_path,
        env=env,
        timeout=240,
    )
    assert trained.returncode == 0 and trained.attempts == "", trained.stderr[-2000:]
    exported = run_offline(
        [
            *sv,
            "export",
            "--run",
            str(tmp_path / "runs" / "t"),
            "--name",
            "tiny",
            "--models-dir",
            str(tmp_path / "models"),
        ],
        tmp_path,
        env=env,
        timeout=240,
    )
    assert exported.returncode == 0 and exported.attempts == "", exported.stderr[-2000:]
    everything = exported.stdout + exported.stderr
    assert "Quantization parameters" not in everything and "pre-processing before quantization" not in everything
    from vision.core.model_registry import load_card

    card = load_card(tmp_path / "models" / "tiny")
    notes = card.metrics.get("notes", [])
    warned = [line.removeprefix("warning: ") for line in exported.stderr.splitlines() if line.startswith("warning: ")]
    assert warned == notes
    assert card.metrics["map50"] < 0.05 and any("do not roll it out" in n for n in notes)  # 1 epoch finds nothing
    slower = card.latency["int8"]["median_ms"] > card.latency["fp32"]["median_ms"]
    assert slower == any(n.startswith("int8 variant is slower") for n in notes)


# --- 4. `train classifier` ------------------------------------------------------------------------------------


def test_train_classifier_routes_to_crop_classifier(monkeypatch):
    got = []
    fake = types.ModuleType("vision.training.crop_classifier")
    fake.main = lambda args: got.append(args) or 0
    monkeypatch.setitem(sys.modules, "vision.training.crop_classifier", fake)
    assert main(["train", "classifier"]) == 0  # no --data needed at the argparse level
    assert len(got) == 1 and got[0].target == "classifier" and got[0].data is None
    fake.main = lambda args: 3
    assert main(["train", "classifier"]) == 3


def test_train_classifier_missing_module(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "vision.training.crop_classifier", None)  # import fails as if absent
    assert main(["train", "classifier"]) == 2
    assert capsys.readouterr().err.strip() == "train classifier: not available in this build"


def test_train_classifier_broken_dependency_is_not_hidden(monkeypatch):
    import importlib

    def broken(name, *a, **k):
        raise ModuleNotFoundError("No module named 'some_dep'", name="some_dep")

    monkeypatch.setattr(importlib, "import_module", broken)
    with pytest.raises(ModuleNotFoundError, match="some_dep"):
        main(["train", "classifier"])


def test_detector_is_the_default_target():
    args = build_parser().parse_args(["train", "--data", "x"])
    assert args.target == "detector"
    assert build_parser().parse_args(["train", "detector", "--data", "x"]).target == "detector"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "segmenter"])

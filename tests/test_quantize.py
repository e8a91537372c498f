"""`streetvision quantize`: a static int8 variant of a NanoDet detector, and the shipped one."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from vision.cli import main
from vision.core.model_registry import load_card, sha256_file, verify_card
from vision.core.paths import REPO_ROOT
from vision.edge.detection.nanodet import NanoDetDetector
from vision.training import int8_variant as iv

pytest.importorskip("onnx", reason="quantize needs the train extra (onnx)")

FOOTAGE = REPO_ROOT / "datasets" / "footage" / "vtest.avi"
BICYCLES = REPO_ROOT / "datasets" / "photos" / "leuven-parked-bicycles.jpg"


@pytest.fixture(scope="module")
def variant(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("models")
    argv = ["quantize", str(REPO_ROOT / "models" / "coco-nanodet"), "--name", "nanodet-q", "--models-dir", str(out)]
    argv += ["--calibration", str(FOOTAGE), "--frames-per-video", "6"]
    assert main(argv) == 0
    return out / "nanodet-q", "nanodet-q"


def test_the_variant_is_a_model_of_its_own_with_its_measurements(variant: tuple[Path, str]) -> None:
    folder, name = variant
    card = load_card(folder)
    verify_card(card)  # the card's sha256 is the int8 file's
    source = load_card("coco-nanodet")
    assert card.name == name and card.version == source.version and card.backend == "nanodet-onnx"
    assert card.classes == source.classes and card.input == source.input
    assert sha256_file(card.path) != source.sha256
    assert source.sha256[:12] in card.source
    agreed = card.metrics["agreement_with_fp32"]
    assert isinstance(agreed, dict) and agreed["frames"] == 3 and agreed["boxes_fp32"] > 0
    assert agreed["share_kept"] >= 0.8  # the walkers of the footage, at most a few lost to int8
    assert {"fp32", "int8"} <= set(card.latency)


def test_the_variant_still_finds_real_bicycles_it_was_not_calibrated_on(variant: tuple[Path, str]) -> None:
    folder, _ = variant
    image = cv2.imread(str(BICYCLES))
    fp32 = NanoDetDetector(load_card("coco-nanodet"), threads=1).detect(image)
    int8 = NanoDetDetector(load_card(folder), threads=1).detect(image)
    names = load_card(folder).classes
    bikes = [i for i in range(len(int8)) if names[int(int8.class_id[i])] == "bicycle"]
    fp32_bikes = [i for i in range(len(fp32)) if names[int(fp32.class_id[i])] == "bicycle"]
    assert fp32_bikes and len(bikes) >= len(fp32_bikes) - 1


def test_an_existing_variant_is_kept_without_force(
    variant: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    folder, name = variant
    before = (folder / "card.yaml").read_bytes()
    argv = ["quantize", str(REPO_ROOT / "models" / "coco-nanodet"), "--name", name, "--models-dir", str(folder.parent)]
    assert main(argv) == 2
    assert "--force" in capsys.readouterr().err
    assert (folder / "card.yaml").read_bytes() == before


def test_a_yolo_model_is_refused_naming_what_quantizes_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["quantize", str(REPO_ROOT / "models" / "city-v1"), "--name", "x", "--models-dir", str(tmp_path)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "yolo-onnx" in err and "streetvision export" in err
    assert not (tmp_path / "x").exists()


def test_a_missing_calibration_source_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["quantize", str(REPO_ROOT / "models" / "coco-nanodet"), "--name", "x", "--models-dir", str(tmp_path)]
    assert main([*argv, "--calibration", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert "--calibration" in err and "nope" in err
    assert not (tmp_path / "x").exists()


def test_a_held_out_background_is_refused_as_calibration(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    held = REPO_ROOT / "datasets" / "backgrounds" / "rome-colosseum-road.webp"
    copy = tmp_path / "street.webp"  # a copy under another name is found by its content
    copy.write_bytes(held.read_bytes())
    for source in (held, copy):
        argv = ["quantize", str(REPO_ROOT / "models" / "coco-nanodet"), "--name", "x", "--models-dir", str(tmp_path)]
        assert main([*argv, "--calibration", str(FOOTAGE), "--calibration", str(source)]) == 2
        assert "held-out background" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_default_calibration_is_the_training_split_only() -> None:
    manifest = (REPO_ROOT / "datasets" / "backgrounds" / "MANIFEST.tsv").read_text(encoding="utf-8").splitlines()
    heldout = {line.split("\t")[0] for line in manifest[1:] if line.split("\t")[1] == "heldout"}
    sources = iv.training_sources()
    assert sources and FOOTAGE.resolve() in sources
    assert heldout and not {p.name for p in sources} & {Path(h).name for h in heldout}


def test_calibration_frames_are_kept_apart_from_the_check_frames() -> None:
    frames = [np.full((8, 8, 3), i * 20, np.uint8) for i in range(6)]
    calibrate, check = iv.split_frames(frames)
    assert [int(f[0, 0, 0]) for f in check] == [20, 60, 100]
    assert len(calibrate) == 6 and int(calibrate[4][0, 0, 0]) == round(40 * iv.DUSK_GAIN)


def test_the_shipped_int8_variant_is_made_from_the_shipped_float_model() -> None:
    variant, source = load_card("coco-city-int8"), load_card("coco-city")
    verify_card(variant)
    assert variant.classes == source.classes and variant.heads == source.heads and variant.input == source.input
    assert f"{source.name} {source.version} ({source.sha256[:12]})" in variant.source
    raw = yaml.safe_load((REPO_ROOT / "models" / "coco-city-int8" / "card.yaml").read_text(encoding="utf-8"))
    assert raw["metrics"]["agreement_with_fp32"]["share_kept"] >= 0.95


@pytest.mark.parametrize(
    ("photo", "wanted"),
    [("leuven-parked-bicycles.jpg", "bicycle"), ("skimage-motorcycle-right.png", "motorcycle")],
)
def test_the_shipped_int8_variant_finds_the_real_two_wheelers_the_float_model_finds(photo: str, wanted: str) -> None:
    image = cv2.imread(str(REPO_ROOT / "datasets" / "photos" / photo))
    found = {}
    for name in ("coco-city", "coco-city-int8"):
        card = load_card(name)
        dets = NanoDetDetector(card, threads=1).detect(image)
        found[name] = sum(card.classes[int(c)] == wanted for c in dets.class_id)
    assert found["coco-city"] >= 1 and found["coco-city-int8"] >= found["coco-city"] - 1

"""The city head on the pretrained COCO detector: graph surgery, training targets and tiles,
torch and ONNX agreeing, the edge decoding two heads, and `streetvision train head` end to end."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

onnx = pytest.importorskip("onnx")  # the train extra; the suite installs it
torch = pytest.importorskip("torch")

from vision.core.model_registry import load_card, sha256_file  # noqa: E402
from vision.core.paths import REPO_ROOT  # noqa: E402
from vision.edge.detection import open_detector  # noqa: E402
from vision.training.city_head.features import FeatureTap  # noqa: E402
from vision.training.city_head.model import CityHead  # noqa: E402
from vision.training.city_head.nanodet_graph import (  # noqa: E402
    LevelWeights,
    graft_head,
    head_levels,
    output_names,
)
from vision.training.city_head.targets import IGNORE, LabelledBox, assign  # noqa: E402
from vision.training.city_head.tiles import MAX_ZOOM, Tile, mirrored, sample_tiles  # noqa: E402

BASE = load_card("coco-nanodet")
PHOTOS = REPO_ROOT / "datasets" / "photos"
BICYCLE, TRUCK = 1, 7  # COCO indices
CLI = [sys.executable, "-c", "import sys; from vision.cli import main; sys.exit(main(sys.argv[1:]))"]


@pytest.fixture(scope="module")
def base_model():  # type: ignore[no-untyped-def]
    return onnx.load(str(BASE.path))


@pytest.fixture(scope="module")
def levels(base_model):  # type: ignore[no-untyped-def]
    return head_levels(base_model)


def test_head_levels_of_the_shipped_nanodet(levels) -> None:  # type: ignore[no-untyped-def]
    assert [(lv.stride, lv.side) for lv in levels] == [(8, 52), (16, 26), (32, 13)]
    for lv in levels:
        assert lv.n_classes == 80
        assert lv.conv3_w.shape == (lv.channels, lv.channels, 3, 3)
        assert lv.out_w.shape == (80 + 44, lv.channels)


def _coco_rows_as_city_head(levels, rows: list[int]) -> list[LevelWeights]:  # type: ignore[no-untyped-def]
    """A "city" head that is the COCO head restricted to some classes: its outputs must equal COCO's."""
    return [
        LevelWeights(
            lv.conv3_w,
            lv.conv3_b,
            np.concatenate([lv.out_w[rows], lv.box_w]),
            np.concatenate([lv.out_b[rows], lv.box_b]),
        )
        for lv in levels
    ]


@pytest.fixture(scope="module")
def identity_model(tmp_path_factory, base_model, levels):  # type: ignore[no-untyped-def]
    """coco-nanodet with a grafted head copying COCO's bicycle and truck rows, as a model folder."""
    folder = tmp_path_factory.mktemp("identity-head")
    grafted = graft_head(base_model, levels, _coco_rows_as_city_head(levels, [BICYCLE, TRUCK]), 2)
    onnx.save(grafted, str(folder / "model.onnx"))
    card = BASE.model_dump(exclude={"directory"})
    card.update(
        name="identity-head",
        sha256=sha256_file(folder / "model.onnx"),
        classes=list(BASE.classes) + ["bicycle", "truck"],
        heads=[
            {
                "classes": list(BASE.classes),
                "scores": [lv.scores for lv in levels],
                "boxes": [lv.boxes for lv in levels],
            },
            {
                "classes": ["bicycle", "truck"],
                "scores": [output_names(lv.stride)[0] for lv in levels],
                "boxes": [output_names(lv.stride)[1] for lv in levels],
            },
        ],
    )
    (folder / "card.yaml").write_text(yaml.safe_dump(card, sort_keys=False), encoding="utf-8")
    return folder


def test_grafted_head_reads_the_same_neck_and_leaves_coco_untouched(identity_model, levels) -> None:  # type: ignore[no-untyped-def]
    import onnxruntime as ort

    image = cv2.imread(str(PHOTOS / "leuven-parked-bicycles.jpg"))
    blob = open_detector("coco-nanodet").preprocess(image)  # type: ignore[attr-defined]
    base = ort.InferenceSession(str(BASE.path), providers=["CPUExecutionProvider"])
    grafted = ort.InferenceSession(str(identity_model / "model.onnx"), providers=["CPUExecutionProvider"])
    name = base.get_inputs()[0].name
    for lv in levels:
        scores, boxes = output_names(lv.stride)
        b_scores, b_boxes = base.run([lv.scores, lv.boxes], {name: blob})
        g_scores, g_boxes, c_scores, c_boxes = grafted.run([lv.scores, lv.boxes, scores, boxes], {name: blob})
        assert np.array_equal(b_scores, g_scores) and np.array_equal(b_boxes, g_boxes)  # COCO outputs bit for bit
        np.testing.assert_allclose(c_scores[0], b_scores[0][:, [BICYCLE, TRUCK]], atol=1e-5)
        np.testing.assert_allclose(c_boxes, b_boxes, atol=1e-4)


def test_torch_head_computes_what_the_grafted_onnx_computes(base_model, levels, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Training (torch) and the edge (ONNX Runtime) must be the same function of the neck."""
    import onnxruntime as ort

    torch.manual_seed(0)
    head = CityHead(levels, 3)
    with torch.no_grad():  # move every weight off its initial value, so nothing agrees by accident
        for p in head.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    path = tmp_path / "m.onnx"
    onnx.save(graft_head(base_model, levels, head.weights(), 3), str(path))
    tap = FeatureTap("coco-nanodet")
    image = cv2.resize(cv2.imread(str(PHOTOS / "leuven-parked-bicycles.jpg")), (416, 416))
    necks = tap.necks(image)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    blob = tap.detector.preprocess(image)
    for i, lv in enumerate(levels):
        onnx_scores, onnx_boxes = session.run(list(output_names(lv.stride)), {session.get_inputs()[0].name: blob})
        with torch.no_grad():
            logits, dist = head(i, torch.from_numpy(necks[i][None]))
        np.testing.assert_allclose(torch.sigmoid(logits).numpy(), onnx_scores, atol=2e-4)
        np.testing.assert_allclose(dist.numpy(), onnx_boxes, atol=2e-3)


def test_edge_decodes_both_heads_and_merges_a_class_both_serve(identity_model) -> None:  # type: ignore[no-untyped-def]
    """The grafted head repeats COCO's bicycle: the detector must report each bicycle once, not twice."""
    image = cv2.imread(str(PHOTOS / "leuven-parked-bicycles.jpg"))
    coco = open_detector("coco-nanodet", min_confidence=0.3).detect(image)
    both = open_detector(identity_model, min_confidence=0.3).detect(image)
    coco_bikes = int((np.asarray(coco.data["class_name"]) == "bicycle").sum())
    both_bikes = int((np.asarray(both.data["class_name"]) == "bicycle").sum())
    assert coco_bikes >= 1
    assert both_bikes == coco_bikes
    assert len(both) == len(coco)
    assert set(both.class_id.tolist()) <= set(range(80))  # a duplicated class reports COCO's index


def test_card_heads_must_cover_the_classes(identity_model) -> None:  # type: ignore[no-untyped-def]
    from pydantic import ValidationError

    from vision.core.model_registry import ModelCard

    data = yaml.safe_load((identity_model / "card.yaml").read_text())
    data["classes"] = data["classes"][:-1]
    with pytest.raises(ValidationError, match="heads' classes"):
        ModelCard.model_validate(data)


def test_targets_positives_at_the_box_size_level_ignored_next_door() -> None:
    grids = [(52, 8), (26, 16), (13, 32)]
    small = LabelledBox(0, 100, 100, 124, 124)  # 24 px: stride 8
    big = LabelledBox(1, 200, 40, 400, 240)  # 200 px: stride 32
    t = assign([small, big], grids, 2)
    assert t[0].positive.any() and not (t[0].classes[:, 1] == 1).any()
    assert (t[2].classes[:, 1] == 1).any() and not (t[2].classes[:, 0] == 1).any()
    # the small box's neighbour level ignores its cells rather than calling them background
    assert (t[1].classes[:, 0] == IGNORE).any() and not (t[1].classes[:, 0] == 1).any()
    # a positive cell learns its box
    k = int(np.flatnonzero(t[0].positive)[0])
    assert tuple(t[0].boxes[k]) == (100, 100, 124, 124)
    # a box far smaller than a cell still gets the cell nearest its centre
    tiny = assign([LabelledBox(0, 50, 50, 53, 53)], grids, 2)
    assert tiny[0].positive.sum() == 1
    # an ignored box (cut off by the tile) teaches nothing either way
    cut = assign([LabelledBox(0, 100, 100, 124, 124, ignore=True)], grids, 2)
    assert not any(lv.positive.any() for lv in cut) and (cut[0].classes[:, 0] == IGNORE).any()


def test_tiles_carry_their_boxes_into_tile_pixels() -> None:
    image = np.full((600, 1000, 3), 90, np.uint8)
    cv2.rectangle(image, (500, 300), (540, 340), (0, 0, 255), -1)  # a red square labelled garbage
    labels = [("garbage", 500.0, 300.0, 540.0, 340.0), ("person", 10.0, 10.0, 30.0, 60.0)]
    tiles = sample_tiles(image, labels, ["garbage"], np.random.default_rng(0), 20, 416, object_share=1.0)
    seen = 0
    for tile in tiles:
        for b in tile.boxes:
            assert b.cls == 0  # people are not a head class: never a label
            if b.ignore:
                continue
            seen += 1
            x1, y1, x2, y2 = (int(round(v)) for v in (b.x1, b.y1, b.x2, b.y2))
            red = tile.image[:, :, 2].astype(int) - tile.image[:, :, 1].astype(int) > 60
            inner = red[y1 + 2 : y2 - 2, x1 + 2 : x2 - 2]
            if inner.size:  # relight may dim it, never move it
                assert inner.mean() > 0.5
    assert seen >= 10
    # a far object stays small: tiles magnify no more than the daemon's zoom does
    tiny = sample_tiles(
        image, [("garbage", 100.0, 100.0, 104.0, 104.0)], ["garbage"], np.random.default_rng(1), 20, 416
    )
    sizes = [b.size for t in tiny for b in t.boxes if not b.ignore]
    assert sizes and max(sizes) <= 4 * MAX_ZOOM + 1
    flipped = mirrored(Tile(np.zeros((416, 416, 3), np.uint8), [LabelledBox(0, 10, 20, 50, 60)]), 416)
    assert (flipped.boxes[0].x1, flipped.boxes[0].x2) == (366, 406)


def _synth(out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    cmd = [*CLI, "data", "synth", "--out", str(out), *extra]
    return subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)


def _train_head(*args: str) -> subprocess.CompletedProcess[str]:
    cmd = [*CLI, "train", "head", *args]
    return subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_train_head_end_to_end_and_evaluation_sets_are_never_trained_on(tmp_path) -> None:
    bg = REPO_ROOT / "datasets" / "backgrounds"
    train_bg = str(bg / "trier-basilica-parking.webp")
    held_bg = str(bg / "leuven-beguinage-lane.jpg")
    # three backgrounds: the split goes by background, so validation gets a scene training never saw
    more_bg = [str(bg / n) for n in ("road-pavement-barrier.jpg", "hotel-forecourt-lawn.jpg")]
    r = _synth(tmp_path / "train", "--images", "30", "--seed", "3", "--assets", "training", train_bg, *more_bg)
    assert r.returncode == 0, r.stderr
    # a held-out background is refused for training, accepted for an evaluation-only set
    r = _synth(tmp_path / "bad", "--images", "4", held_bg)
    assert r.returncode != 0 and "held-out" in r.stderr
    r = _synth(tmp_path / "eval", "--images", "6", "--seed", "4", "--evaluation", held_bg)
    assert r.returncode == 0, r.stderr
    assert yaml.safe_load((tmp_path / "eval" / "data.yaml").read_text())["purpose"] == "evaluation"
    r = _synth(tmp_path / "bad2", "--images", "4", "--assets", "heldout", train_bg)
    assert r.returncode != 0 and "evaluation sets only" in r.stderr
    r = _train_head("--data", str(tmp_path / "eval"), "--out", str(tmp_path / "nope"), "--epochs", "1")
    assert r.returncode == 2 and "evaluation-only" in r.stderr
    out = tmp_path / "coco-city-test"
    data = ["--data", str(tmp_path / "train"), "--eval-data", str(tmp_path / "eval"), "--out", str(out)]
    r = _train_head(*data, "--epochs", "1", "--compare", "coco-nanodet", "--version", "0.0.1")
    assert r.returncode == 0, r.stderr
    assert "head epoch 1/1" in r.stderr  # progress is shown
    card = load_card(out)
    assert card.version == "0.0.1" and [len(h.classes) for h in card.heads] == [80, 5]
    assert set(card.metrics) >= {"validation", "plots"} and any(k.startswith("evaluation:") for k in card.metrics)
    assert all((out / p).is_file() for p in card.metrics["plots"])  # type: ignore[union-attr]
    # measured again without training (new evaluation sets): the card's metrics are rewritten, the model kept
    model_bytes = (out / "model.onnx").read_bytes()
    (out / "pr.png").unlink()
    r = _train_head("--measure-only", *data, "--compare", "coco-nanodet")
    assert r.returncode == 0, r.stderr
    assert "head epoch" not in r.stderr and (out / "model.onnx").read_bytes() == model_bytes
    card = load_card(out)
    evaluation = next(v for k, v in card.metrics.items() if k.startswith("evaluation:"))
    assert len(evaluation["sha256"]) == 64 and (out / "pr.png").is_file()  # type: ignore[index]
    det = open_detector(out, min_confidence=0.01)
    assert det.class_names[-5:] == ["vendor_stall", "garbage", "muddy_truck", "bicycle", "motorcycle"]
    dets = det.detect(cv2.imread(str(PHOTOS / "leuven-parked-bicycles.jpg")))
    assert len(dets) > 0

"""Data set formats, splits, checks, merge and stats, on small hand-made sets."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from vision.training.data.check import check_dataset
from vision.training.data.formats import export_coco, export_yolo, import_coco, import_yolo
from vision.training.data.layout import Box, Dataset, DatasetError, content_hash, label_path_for, parse_label_file
from vision.training.data.merge import merge_datasets
from vision.training.data.split import plan_split, split_dataset
from vision.training.data.stats import dataset_stats, plot_box_sizes

NAMES = ["person", "truck", "garbage"]


def _img(seed: int, w: int = 64, h: int = 48) -> np.ndarray:
    return (np.random.default_rng(seed).random((h, w, 3)) * 255).astype(np.uint8)


def make_set(root: Path, groups: dict[str, int], names=NAMES) -> Dataset:
    """One image per frame, `n` frames per scene group, a box or two each."""
    ds = Dataset.create(root, names, ("train",))
    k = 0
    for g, n in groups.items():
        for i in range(n):
            boxes = [Box.from_xyxy(k % len(names), 4, 6, 30, 40, 64, 48)]
            if i % 2:
                boxes.append(Box.from_xyxy(0, 40, 10, 60, 46, 64, 48))
            ds.write("train", f"{g}_{i}.png", _img(k), boxes, {"source": g, "seed": 0})
            k += 1
    return ds


def test_box_roundtrip_xyxy():
    b = Box.from_xyxy(2, 10, 20, 50, 60, 100, 80)
    assert b.xyxy(100, 80) == pytest.approx((10, 20, 50, 60))
    assert b.line().split()[0] == "2"


@pytest.mark.parametrize(
    "text, n_boxes, n_problems",
    [
        ("", 0, 0),
        ("0 0.5 0.5 0.2 0.2\n", 1, 0),
        ("0 0.5 0.5 0.2\n", 0, 1),
        ("x 0.5 0.5 0.2 0.2\n", 0, 1),
        ("1.5 0.5 0.5 0.2 0.2\n", 0, 1),
        ("0 0.5 0.5 0.2 0.2\n\n1 0.1 0.1 0.1 0.1\n", 2, 0),
    ],
)
def test_parse_label_file(tmp_path, text, n_boxes, n_problems):
    p = tmp_path / "a.txt"
    p.write_text(text)
    boxes, problems = parse_label_file(p)
    assert (len(boxes), len(problems)) == (n_boxes, n_problems)


def test_label_path_rule():
    assert label_path_for(Path("/d/images/train/x.jpg")) == Path("/d/labels/train/x.txt")
    with pytest.raises(DatasetError, match="images"):
        label_path_for(Path("/d/pics/x.jpg"))


def test_load_errors_name_the_field(tmp_path):
    with pytest.raises(DatasetError, match="no data.yaml"):
        Dataset.load(tmp_path)
    (tmp_path / "data.yaml").write_text("train: images/train\n")
    with pytest.raises(DatasetError, match="'names'"):
        Dataset.load(tmp_path)
    (tmp_path / "data.yaml").write_text("names: [a]\n")
    with pytest.raises(DatasetError, match="'train', 'val', 'test'"):
        Dataset.load(tmp_path)


def test_coco_roundtrip(tmp_path):
    ds = make_set(tmp_path / "a", {"s1": 3, "s2": 2})
    doc = export_coco(ds, tmp_path / "coco.json")
    assert len(doc["images"]) == 5 and len(doc["annotations"]) == 7
    ann = doc["annotations"][0]
    assert ann["bbox"] == pytest.approx([4, 6, 26, 34], abs=0.01)
    back = Dataset.create(tmp_path / "b", NAMES, ("train",))
    assert import_coco(tmp_path / "coco.json", ds.root, back, "train") == 5
    orig = {p.name: ds.labels(p) for p in ds.images()}
    for p in back.images():
        got = back.labels(p)
        want = orig[p.name.split("__")[-1]]
        assert [b.cls for b in got] == [b.cls for b in want]
        for g, w in zip(got, want, strict=True):
            assert (g.cx, g.cy, g.w, g.h) == pytest.approx((w.cx, w.cy, w.w, w.h), abs=1e-4)


def test_coco_import_maps_categories_by_name(tmp_path):
    cv2.imwrite(str(tmp_path / "f.png"), _img(1))
    doc = {
        "images": [{"id": 7, "file_name": "f.png", "width": 64, "height": 48}],
        "categories": [{"id": 1, "name": "person"}, {"id": 8, "name": "truck"}, {"id": 3, "name": "car"}],
        "annotations": [
            {"id": 1, "image_id": 7, "category_id": 8, "bbox": [0, 0, 32, 24]},
            {"id": 2, "image_id": 7, "category_id": 3, "bbox": [0, 0, 10, 10]},
        ],
    }
    (tmp_path / "c.json").write_text(json.dumps(doc))
    out = Dataset.create(tmp_path / "o", NAMES, ("train",))
    import_coco(tmp_path / "c.json", tmp_path, out, "train")
    boxes = out.labels(out.images()[0])
    assert [b.cls for b in boxes] == [1]  # truck kept, car (not a class here) dropped
    assert (boxes[0].cx, boxes[0].w) == pytest.approx((0.25, 0.5))


def test_coco_import_bad_file(tmp_path):
    (tmp_path / "c.json").write_text("{}")
    out = Dataset.create(tmp_path / "o", NAMES, ("train",))
    with pytest.raises(DatasetError, match="'images' must be a list"):
        import_coco(tmp_path / "c.json", tmp_path, out, "train")


def test_yolo_export_and_import_remap(tmp_path):
    ds = make_set(tmp_path / "a", {"s1": 2})
    copy = export_yolo(ds, tmp_path / "copy")
    assert content_hash(copy) == content_hash(ds)
    other = Dataset.create(tmp_path / "o", ["garbage", "person"], ("train",))
    import_yolo(copy.root, other, "train")
    classes = sorted(b.cls for p in other.images() for b in other.labels(p))
    assert classes == [1, 1]  # 'person' -> 1 twice; 'truck' dropped (not in target)


def test_plan_split_is_seeded_and_keeps_groups():
    groups = {f"g{i}": 5 + i % 3 for i in range(20)}
    a = plan_split(groups, {"train": 0.7, "val": 0.15, "test": 0.15}, seed=1)
    b = plan_split(groups, {"train": 0.7, "val": 0.15, "test": 0.15}, seed=1)
    c = plan_split(groups, {"train": 0.7, "val": 0.15, "test": 0.15}, seed=2)
    assert a == b and a != c
    assert set(a) == set(groups)
    n = {s: sum(groups[g] for g, t in a.items() if t == s) for s in ("train", "val", "test")}
    total = sum(groups.values())
    assert abs(n["train"] / total - 0.7) < 0.12 and n["val"] > 0 and n["test"] > 0


def test_plan_split_edge_cases():
    assert plan_split({}, {"train": 1.0}, 0) == {}
    assert plan_split({"only": 3}, {"train": 0.8, "val": 0.2}, 0) in ({"only": "train"}, {"only": "val"})
    with pytest.raises(DatasetError):
        plan_split({"a": 1}, {"train": -1.0}, 0)


def test_split_dataset_moves_files_without_leaking_scenes(tmp_path):
    ds = make_set(tmp_path / "a", {f"clip{i}": 4 for i in range(8)})
    rep = split_dataset(ds, {"train": 0.6, "val": 0.2, "test": 0.2}, seed=0)
    assert sum(rep.images.values()) == 32
    ds2 = Dataset.load(tmp_path / "a")
    meta = ds2.read_meta()
    seen: dict[str, set] = {}
    for p in ds2.images():
        seen.setdefault(ds2.source_of(p, meta), set()).add(ds2.split_of(p))
        assert label_path_for(p).is_file()
    assert all(len(v) == 1 for v in seen.values())  # every scene in exactly one split
    assert {s for v in seen.values() for s in v} == {"train", "val", "test"}


def test_check_finds_problems(tmp_path):
    ds = make_set(tmp_path / "a", {"s": 2})
    imgs = ds.images()
    label_path_for(imgs[0]).write_text("0 0.5 0.5 0.2\n7 0.5 0.5 0.1 0.1\n0 0.95 0.5 0.3 0.2\n")
    dup = ds.image_dir("train") / "copy.png"
    dup.write_bytes(imgs[1].read_bytes())
    (ds.root / "labels" / "train" / "orphan.txt").write_text("")
    (ds.image_dir("train") / "broken.png").write_bytes(b"not an image")
    rep = check_dataset(ds)
    text = "\n".join(rep.problems)
    assert "expected 5 fields" in text
    assert "class 7 not in names" in text
    assert "outside the image" in text
    assert "label file without an image" in text
    assert "cannot read image" in text
    assert any(len(g) == 2 for g in rep.duplicates)
    assert not rep.ok


def test_check_clean_set(tmp_path):
    rep = check_dataset(make_set(tmp_path / "a", {"s": 3}))
    assert rep.ok and rep.images == 3 and rep.boxes == 4


def test_merge_remaps_classes(tmp_path):
    a = make_set(tmp_path / "a", {"s": 2}, names=["person", "truck"])
    b = make_set(tmp_path / "b", {"s": 2}, names=["garbage", "person"])
    m = merge_datasets([a, b], tmp_path / "m")
    assert m.names == ["person", "truck", "garbage"]
    assert len(m.images()) == 4
    by_name = {p.name: [m.names[x.cls] for x in m.labels(p)] for p in m.images()}
    assert by_name["a__s_1.png"] == ["truck", "person"]
    assert by_name["b__s_0.png"] == ["garbage"] and by_name["b__s_1.png"] == ["person", "garbage"]
    meta = m.read_meta()
    assert {m.source_of(p, meta) for p in m.images()} == {"a/s", "b/s"}


def test_stats_and_histogram(tmp_path):
    ds = make_set(tmp_path / "a", {"s": 4})
    st = dataset_stats(ds)
    assert st.counts["train"] == {"person": 4, "truck": 1, "garbage": 1}
    out = plot_box_sizes(st, tmp_path / "h.png")
    assert cv2.imread(str(out)) is not None


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vision", *args], capture_output=True, text=True, timeout=60)


def test_cli_check_and_bad_input(tmp_path):
    ds = make_set(tmp_path / "a", {"s": 2})
    ok = _cli("data", "check", "--data", str(ds.root))
    assert ok.returncode == 0, ok.stderr
    assert "2 images, 3 boxes, 0 problem(s)" in ok.stdout
    missing = _cli("data", "stats", "--data", str(tmp_path / "nope"))
    assert missing.returncode == 2 and "no data.yaml" in missing.stderr and "Traceback" not in missing.stderr
    bad = _cli("data", "split", "--data", str(ds.root), "--ratios", "train=0.5,holdout=0.5")
    assert bad.returncode == 2 and "unknown split 'holdout'" in bad.stderr


def test_cli_pseudo_label_footage(tmp_path, footage_path):
    out = tmp_path / "pl"
    res = _cli("data", "pseudo-label", str(footage_path), "--out", str(out), "--every", "300", "--confidence", "0.4")
    assert res.returncode == 0, res.stderr[-2000:]
    ds = Dataset.load(out)
    imgs = ds.images("train")
    assert [p.name for p in imgs] == ["vtest__000000.jpg", "vtest__000300.jpg", "vtest__000600.jpg"]
    classes = {ds.names[b.cls] for p in imgs for b in ds.labels(p)}
    assert "person" in classes and classes <= {"person", "bicycle", "motorcycle", "car", "truck"}
    meta = ds.read_meta()
    assert {m["source"] for m in meta.values()} == {"vtest.avi#clip000", "vtest.avi#clip003", "vtest.avi#clip006"}
    assert check_dataset(ds).ok


def _dispatch_export(root: Path, frame: np.ndarray) -> Path:
    """A folder shaped like `streetvision dispatch export-labels` output."""
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    recs = []
    for cid, outcome in ((1, "accepted"), (2, "rejected")):
        stem = f"case{cid:06d}_e{cid}"
        cv2.imwrite(str(root / "images" / f"{stem}.jpg"), frame)
        (root / "labels" / f"{stem}.txt").write_text(
            "0 0.100000 0.800000 0.100000 0.100000\n" if outcome == "accepted" else ""
        )
        recs.append(
            {
                "case_id": cid,
                "image": f"images/{stem}.jpg",
                "label": f"labels/{stem}.txt",
                "outcome": outcome,
                "class": "garbage" if outcome == "accepted" else None,
                "camera_id": "cam-1",
                "model_version": "1.0.0",
                "reason": None if outcome == "accepted" else "误报",
            }
        )
    (root / "manifest.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in recs))
    (root / "data.yaml").write_text("train: images\nval: images\nnames: {0: garbage}\n")
    return root


def test_import_dispatch_feedback_adds_base_classes(tmp_path, footage_path):
    from vision.edge.detection import open_detector
    from vision.training.data.feedback import import_dispatch
    from vision.training.data.layout import CITY_CLASSES
    from vision.training.data.synth.scene import read_video_frames

    frame = read_video_frames(footage_path, [400])[400]
    src = _dispatch_export(tmp_path / "export", frame)
    out = Dataset.create(tmp_path / "fb", CITY_CLASSES, ("train",))
    summary = import_dispatch(src, out, "train", open_detector("coco-nanodet", min_confidence=0.3), 0.4)
    assert (summary.positives, summary.negatives, summary.skipped) == (1, 1, [])
    meta = out.read_meta()
    by_case = {m["case_id"]: out.root / k for k, m in meta.items()}
    acc = [CITY_CLASSES[b.cls] for b in out.labels(by_case[1])]
    rej = [CITY_CLASSES[b.cls] for b in out.labels(by_case[2])]
    assert acc.count("garbage") == 1 and "person" in acc  # case box kept, people not left as background
    assert "garbage" not in rej and "person" in rej  # hard negative: no garbage, people still labelled
    assert {m["source"] for m in meta.values()} == {"camera:cam-1"}
    bad = tmp_path / "bad"
    bad.mkdir()
    with pytest.raises(DatasetError, match="manifest.jsonl"):
        import_dispatch(bad, out, "train")

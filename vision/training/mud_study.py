"""Mud: a detector class (muddy_truck next to truck) or a classifier on truck crops?

Runs both on the same synth data set and prints comparable numbers: on every
held-out ground-truth truck, is "muddy or clean" decided correctly?
- detector: the exported city model; a GT truck counts as found if a truck or
  muddy_truck detection overlaps it with IoU >= 0.5, and correct if the class matches;
- classifier: ultralytics classify (yolov8n-cls.yaml, from scratch) on GT crops, exported to ONNX.

    python -m vision.training.mud_study --data datasets/city-v1 --model models/city-v1/model.onnx --out runs/mud
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import TypedDict

import cv2
import numpy as np

from vision.core.geometry import box_iou
from vision.training.data.layout import Dataset, DatasetError

CLASSES = {"truck": "clean", "muddy_truck": "muddy"}


class DetectorStudy(TypedDict):
    gt_trucks: int
    found: int
    recall: float
    mud_accuracy_of_found: float
    mud_accuracy_end_to_end: float
    confusion: dict[str, int]  # "truth->predicted" -> trucks
    detect_ms_median: float | None


class ClassifierStudy(TypedDict):
    test_crops: int
    accuracy: float
    confusion: dict[str, int]  # "truth->predicted" -> crops
    train_seconds: float
    epochs: int
    imgsz: int
    onnx: str
    classify_ms_median: float | None


def _read_image(path: Path) -> np.ndarray:
    img = cv2.imread(str(path))
    if img is None:
        raise DatasetError(f"{path}: cannot read image")
    return img


def build_crops(ds: Dataset, out: Path, pad: float = 0.1, min_side: int = 12) -> dict[str, dict[str, int]]:
    """ImageNet-style folders out/<train|val|test>/<clean|muddy>/*.jpg from GT truck boxes."""
    counts: dict[str, dict[str, int]] = {}
    for split in ds.splits:
        target = "val" if split == "val" else split
        counts[target] = {"clean": 0, "muddy": 0}
        for img_path in ds.images(split):
            boxes = [b for b in ds.labels(img_path) if ds.names[b.cls] in CLASSES]
            if not boxes:
                continue
            img = _read_image(img_path)
            H, W = img.shape[:2]
            for k, b in enumerate(boxes):
                x1, y1, x2, y2 = b.xyxy(W, H)
                if min(x2 - x1, y2 - y1) < min_side:
                    continue
                px, py = (x2 - x1) * pad, (y2 - y1) * pad
                crop = img[max(0, int(y1 - py)) : min(H, int(y2 + py)), max(0, int(x1 - px)) : min(W, int(x2 + px))]
                label = CLASSES[ds.names[b.cls]]
                d = out / target / label
                d.mkdir(parents=True, exist_ok=True)
                cv2.imwrite(str(d / f"{img_path.stem}_{k}.jpg"), crop)
                counts[target][label] += 1
    return counts


def detector_study(
    ds: Dataset, model: Path, split: str, min_confidence: float = 0.25, min_side: int = 12
) -> DetectorStudy:
    from vision.edge.detection import open_detector

    det = open_detector(str(model), min_confidence=min_confidence)
    n = found = correct = 0
    confusion = {"clean->clean": 0, "clean->muddy": 0, "muddy->muddy": 0, "muddy->clean": 0}
    times = []
    for img_path in ds.images(split):
        gts = [b for b in ds.labels(img_path) if ds.names[b.cls] in CLASSES]
        if not gts:
            continue
        img = _read_image(img_path)
        H, W = img.shape[:2]
        t0 = time.perf_counter()
        dets = det.detect(img)
        times.append((time.perf_counter() - t0) * 1000)
        cand = [(xy, str(nm)) for xy, nm in zip(dets.xyxy, dets.data["class_name"], strict=True) if str(nm) in CLASSES]
        for b in gts:
            xyxy = b.xyxy(W, H)
            if min(xyxy[2] - xyxy[0], xyxy[3] - xyxy[1]) < min_side:
                continue
            n += 1
            best = max(cand, key=lambda c: box_iou(c[0], xyxy)[0, 0], default=None)
            if best is None or box_iou(best[0], xyxy)[0, 0] < 0.5:
                continue
            found += 1
            gt, pr = CLASSES[ds.names[b.cls]], CLASSES[best[1]]
            confusion[f"{gt}->{pr}"] += 1
            correct += gt == pr
    return {
        "gt_trucks": n,
        "found": found,
        "recall": round(found / max(n, 1), 4),
        "mud_accuracy_of_found": round(correct / max(found, 1), 4),
        "mud_accuracy_end_to_end": round(correct / max(n, 1), 4),
        "confusion": confusion,
        "detect_ms_median": round(float(np.median(times)), 1) if times else None,
    }


def classifier_study(crops: Path, run_dir: Path, epochs: int, imgsz: int, seed: int = 0) -> ClassifierStudy:
    from vision.training.adapter import _yolo, train_classifier

    t0 = time.perf_counter()
    train_classifier(crops, run_dir, epochs=epochs, imgsz=imgsz, seed=seed)
    train_s = time.perf_counter() - t0
    best = run_dir / "weights" / "best.pt"
    onnx = Path(_yolo(best, task="classify").export(format="onnx", imgsz=imgsz, simplify=True, device="cpu"))
    import onnxruntime as ort

    sess = ort.InferenceSession(str(onnx), providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    labels = ["clean", "muddy"]  # ultralytics sorts class folders alphabetically
    n = correct = 0
    confusion = {"clean->clean": 0, "clean->muddy": 0, "muddy->muddy": 0, "muddy->clean": 0}
    times = []
    for gt in labels:
        for p in sorted((crops / "test" / gt).glob("*.jpg")):
            img = cv2.cvtColor(_read_image(p), cv2.COLOR_BGR2RGB)
            h, w = img.shape[:2]
            s = imgsz / min(h, w)  # ultralytics classify: resize short side, centre crop
            img = cv2.resize(img, (max(imgsz, round(w * s)), max(imgsz, round(h * s))))
            y0, x0 = (img.shape[0] - imgsz) // 2, (img.shape[1] - imgsz) // 2
            x = img[y0 : y0 + imgsz, x0 : x0 + imgsz].transpose(2, 0, 1)[None].astype(np.float32) / 255.0
            t = time.perf_counter()
            prob = sess.run(None, {name: x})[0][0]
            times.append((time.perf_counter() - t) * 1000)
            pr = labels[int(np.argmax(prob))]
            confusion[f"{gt}->{pr}"] += 1
            n += 1
            correct += pr == gt
    return {
        "test_crops": n,
        "accuracy": round(correct / max(n, 1), 4),
        "confusion": confusion,
        "train_seconds": round(train_s, 1),
        "epochs": epochs,
        "imgsz": imgsz,
        "onnx": str(onnx),
        "classify_ms_median": round(float(np.median(times)), 2) if times else None,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--model", required=True, help="exported detector with truck and muddy_truck classes")
    ap.add_argument("--out", default="runs/mud")
    ap.add_argument("--split", default="test")
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--imgsz", type=int, default=96)
    args = ap.parse_args(argv)
    ds = Dataset.load(args.data)
    out = Path(args.out)
    crops = out / "crops"
    counts = build_crops(ds, crops) if not crops.is_dir() else {}
    result = {
        "crops": counts,
        "detector": detector_study(ds, Path(args.model), args.split),
        "classifier": classifier_study(crops, out / "cls", args.epochs, args.imgsz),
    }
    (out / "mud_study.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

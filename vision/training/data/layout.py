"""A data set on disk in ultralytics' YOLO layout, plus a provenance sidecar.

    <root>/data.yaml              names, train/val/test image folders (relative to the YAML)
    <root>/images/<split>/*.jpg
    <root>/labels/<split>/*.txt   one `class cx cy w h` line per box, normalised 0..1
    <root>/meta.jsonl             one JSON object per image: source (video, background
                                  or scene group), seed, generator, ... (optional)

The `source` in meta.jsonl is what `split` groups by, so frames of one scene
never land on both sides of a train/held-out split.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:  # numpy only for the annotation of Dataset.write; cv2 loads it when an array is written
    import numpy as np

CITY_CLASSES = ["person", "bicycle", "motorcycle", "car", "truck", "vendor_stall", "garbage", "muddy_truck"]
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
SPLITS = ("train", "val", "test")

# One meta.jsonl line: free-form provenance (image, source, seed, generator, ...) as JSON.
MetaRecord = dict[str, Any]
# How place_example moves a file: shutil.copyfile (the default), shutil.move, ...
FileTransfer = Callable[[Path, Path], object]


class DatasetError(ValueError):
    """A data set that cannot be read, with the file and field at fault."""


@dataclass(frozen=True)
class Box:
    """One YOLO box: class index and normalised centre/size."""

    cls: int
    cx: float
    cy: float
    w: float
    h: float

    def xyxy(self, width: int, height: int) -> tuple[float, float, float, float]:
        return (
            (self.cx - self.w / 2) * width,
            (self.cy - self.h / 2) * height,
            (self.cx + self.w / 2) * width,
            (self.cy + self.h / 2) * height,
        )

    @classmethod
    def from_xyxy(cls, cls_id: int, x1: float, y1: float, x2: float, y2: float, width: int, height: int) -> Box:
        return cls(
            int(cls_id),
            (x1 + x2) / 2 / width,
            (y1 + y2) / 2 / height,
            (x2 - x1) / width,
            (y2 - y1) / height,
        )

    def line(self) -> str:
        return f"{self.cls} {self.cx:.6f} {self.cy:.6f} {self.w:.6f} {self.h:.6f}"


@dataclass
class ImageLabels:
    image: Path
    boxes: list[Box] = field(default_factory=list)


def label_path_for(image: Path) -> Path:
    """ultralytics' rule: the last `images` folder in the path becomes `labels`, suffix .txt."""
    parts = list(image.parts)
    for i in range(len(parts) - 1, -1, -1):
        if parts[i] == "images":
            parts[i] = "labels"
            return Path(*parts).with_suffix(".txt")
    raise DatasetError(f"{image}: image is not under an 'images' folder")


def place_example(image: Path, target: Path, transfer: FileTransfer | None = None) -> None:
    """Put an image and its label file (when it has one) at `target`; copies unless
    `transfer` (e.g. shutil.move) says otherwise."""
    import shutil

    transfer = transfer or shutil.copyfile
    target.parent.mkdir(parents=True, exist_ok=True)
    transfer(image, target)
    label = label_path_for(image)
    if label.is_file():
        label_path_for(target).parent.mkdir(parents=True, exist_ok=True)
        transfer(label, label_path_for(target))


def parse_label_file(path: Path) -> tuple[list[Box], list[str]]:
    """Boxes and a list of problems (line number and why) for one label file."""
    boxes: list[Box] = []
    problems: list[str] = []
    if not path.is_file():
        return boxes, problems
    for n, raw in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        line = raw.strip()
        if not line:
            continue
        fields = line.split()
        if len(fields) != 5:
            problems.append(f"{path}:{n}: expected 5 fields 'class cx cy w h', got {len(fields)}")
            continue
        try:
            cls_f = float(fields[0])
            vals = [float(v) for v in fields[1:]]
        except ValueError:
            problems.append(f"{path}:{n}: non-numeric field in {line!r}")
            continue
        if cls_f != int(cls_f) or cls_f < 0:
            problems.append(f"{path}:{n}: class {fields[0]!r} is not a non-negative integer")
            continue
        boxes.append(Box(int(cls_f), *vals))
    return boxes, problems


def write_label_file(path: Path, boxes: list[Box]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(b.line() + "\n" for b in boxes), encoding="utf-8")


# what a data set is for: "evaluation" sets (held-out backgrounds or cut-outs) are never trained on
PURPOSES = ("training", "evaluation")


@dataclass
class Dataset:
    """A YOLO-layout data set rooted at `root` (the folder of data.yaml)."""

    root: Path
    names: list[str]
    splits: dict[str, str]  # split -> image folder relative to root
    purpose: str = "training"  # or "evaluation": built on held-out backgrounds or cut-outs, never trained on

    @property
    def yaml_path(self) -> Path:
        return self.root / "data.yaml"

    def refuse_training(self) -> None:
        """Raise for an evaluation-only set: training on it would make its figures meaningless."""
        if self.purpose == "evaluation":
            raise DatasetError(
                f"{self.yaml_path}: an evaluation-only data set (held-out backgrounds or cut-outs): never train on it"
            )

    @classmethod
    def create(cls, root: Path, names: list[str], splits: tuple[str, ...] = SPLITS) -> Dataset:
        root = Path(root)
        ds = cls(root, list(names), {s: f"images/{s}" for s in splits})
        for s in splits:
            (root / "images" / s).mkdir(parents=True, exist_ok=True)
            (root / "labels" / s).mkdir(parents=True, exist_ok=True)
        ds.save_yaml()
        return ds

    @classmethod
    def load(cls, path: Path | str) -> Dataset:
        path = Path(path)
        yaml_path = path / "data.yaml" if path.is_dir() else path
        if not yaml_path.is_file():
            raise DatasetError(f"{yaml_path}: no data.yaml (a data set is a folder holding data.yaml)")
        try:
            data = yaml.safe_load(yaml_path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise DatasetError(f"{yaml_path}: not valid YAML: {exc}") from None
        names = data.get("names")
        if isinstance(names, dict):
            names = [names[k] for k in sorted(names)]
        if not isinstance(names, list) or not names:
            raise DatasetError(f"{yaml_path}: field 'names' must be a non-empty list or dict of class names")
        base = yaml_path.parent / data["path"] if data.get("path") else yaml_path.parent
        splits = {s: str(data[s]) for s in SPLITS if data.get(s)}
        if not splits:
            raise DatasetError(f"{yaml_path}: none of the fields 'train', 'val', 'test' is set")
        if data.get("purpose", "training") not in PURPOSES:
            raise DatasetError(f"{yaml_path}: field 'purpose' must be training or evaluation, not {data['purpose']!r}")
        return cls(base.resolve(), [str(n) for n in names], splits, str(data.get("purpose", "training")))

    def save_yaml(self, extra: dict[str, Any] | None = None) -> Path:
        data: dict[str, Any] = {**self.splits, "nc": len(self.names), "names": dict(enumerate(self.names))}
        if self.purpose != "training":
            data["purpose"] = self.purpose
        if extra:
            data.update(extra)
        header = "# YOLO data set (ultralytics layout); folders are relative to this file.\n"
        self.yaml_path.parent.mkdir(parents=True, exist_ok=True)
        self.yaml_path.write_text(header + yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
        return self.yaml_path

    def image_dir(self, split: str) -> Path:
        if split not in self.splits:
            raise DatasetError(f"{self.yaml_path}: no split '{split}' (has {', '.join(self.splits)})")
        return self.root / self.splits[split]

    def images(self, split: str | None = None) -> list[Path]:
        """Images of one split (or all splits), sorted."""
        splits = [split] if split else list(self.splits)
        out: list[Path] = []
        for s in splits:
            d = self.image_dir(s)
            if d.is_dir():
                out.extend(sorted(p for p in d.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES))
        return out

    def split_of(self, image: Path) -> str:
        for s in self.splits:
            try:
                image.relative_to(self.image_dir(s))
                return s
            except ValueError:
                continue
        raise DatasetError(f"{image} is in no split of {self.yaml_path}")

    def labels(self, image: Path) -> list[Box]:
        boxes, problems = parse_label_file(label_path_for(image))
        if problems:
            raise DatasetError(problems[0])
        return boxes

    def write(
        self,
        split: str,
        name: str,
        image: np.ndarray | str | Path,
        boxes: list[Box],
        meta: MetaRecord | None = None,
        quality: int = 92,
    ) -> Path:
        """Write one image (BGR array or existing file path) with its labels and meta."""
        import shutil

        import cv2

        target = self.image_dir(split) / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(image, (str, Path)):
            shutil.copyfile(image, target)
        elif not cv2.imwrite(
            str(target),
            image,
            [cv2.IMWRITE_JPEG_QUALITY, quality] if target.suffix.lower() in (".jpg", ".jpeg") else [],
        ):
            raise DatasetError(f"cannot write image {target}")
        write_label_file(label_path_for(target), boxes)
        if meta is not None:
            self.append_meta([{"image": target.relative_to(self.root).as_posix(), **meta}])
        return target

    # provenance sidecar ---------------------------------------------------
    @property
    def meta_path(self) -> Path:
        return self.root / "meta.jsonl"

    def read_meta(self) -> dict[str, MetaRecord]:
        """image path relative to root -> meta record."""
        out: dict[str, MetaRecord] = {}
        if self.meta_path.is_file():
            for n, line in enumerate(self.meta_path.read_text(encoding="utf-8").splitlines(), 1):
                if line.strip():
                    try:
                        rec = json.loads(line)
                    except ValueError:
                        raise DatasetError(f"{self.meta_path}:{n}: not JSON") from None
                    out[rec["image"]] = rec
        return out

    def append_meta(self, records: list[MetaRecord]) -> None:
        with open(self.meta_path, "a", encoding="utf-8") as fh:
            for rec in records:
                fh.write(json.dumps(rec, sort_keys=True) + "\n")

    def rewrite_meta(self, records: dict[str, MetaRecord]) -> None:
        with open(self.meta_path, "w", encoding="utf-8") as fh:
            for key in sorted(records):
                fh.write(json.dumps({**records[key], "image": key}, sort_keys=True) + "\n")

    def source_of(self, image: Path, meta: dict[str, MetaRecord] | None = None) -> str:
        """The scene group of an image: meta 'source', else the stem before '__', else the stem."""
        meta = self.read_meta() if meta is None else meta
        rel = image.relative_to(self.root).as_posix()
        rec = meta.get(rel)
        if rec and rec.get("source"):
            return str(rec["source"])
        return image.stem.split("__")[0]


def content_hash(ds: Dataset) -> str:
    """sha256 over every image and label (paths and bytes): the data set's identity in a model card."""
    import hashlib

    digest = hashlib.sha256()
    for img in ds.images():
        rel = img.relative_to(ds.root).as_posix()
        digest.update(rel.encode())
        digest.update(hashlib.sha256(img.read_bytes()).digest())
        lbl = label_path_for(img)
        if lbl.is_file():
            digest.update(lbl.read_bytes())
    digest.update(json.dumps(ds.names).encode())
    return digest.hexdigest()

"""Move labels between our YOLO layout and COCO JSON (and other YOLO folders).

COCO boxes are absolute `[x, y, w, h]` from the top-left; YOLO boxes are
normalised centre/size. Category ids are mapped by *name*, so a COCO file
whose ids differ from ours (COCO's own person=1, truck=8) still lands right.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, TypedDict

from vision.training.data.layout import (
    IMAGE_SUFFIXES,
    Box,
    Dataset,
    DatasetError,
    label_path_for,
    parse_label_file,
    place_example,
)


class CocoImage(TypedDict):
    id: int
    file_name: str
    width: int
    height: int


class CocoAnnotation(TypedDict):
    id: int
    image_id: int
    category_id: int
    bbox: list[float]
    area: float
    iscrowd: int


class CocoCategory(TypedDict):
    id: int
    name: str
    supercategory: str


class CocoDocument(TypedDict):
    """The COCO detection JSON export_coco writes (and returns)."""

    images: list[CocoImage]
    annotations: list[CocoAnnotation]
    categories: list[CocoCategory]


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) without decoding the pixels."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            return im.size
    except Exception as exc:  # PIL raises several types for unreadable files
        raise DatasetError(f"{path}: cannot read image ({exc})") from None


def export_coco(ds: Dataset, out: Path, split: str | None = None) -> CocoDocument:
    """Write a COCO detection JSON; file_name is relative to the data set root."""
    images: list[CocoImage] = []
    annotations: list[CocoAnnotation] = []
    categories: list[CocoCategory] = [
        {"id": i + 1, "name": n, "supercategory": "object"} for i, n in enumerate(ds.names)
    ]
    for img_id, img in enumerate(ds.images(split), 1):
        w, h = image_size(img)
        images.append({"id": img_id, "file_name": img.relative_to(ds.root).as_posix(), "width": w, "height": h})
        for b in ds.labels(img):
            x1, y1, x2, y2 = b.xyxy(w, h)
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": img_id,
                    "category_id": b.cls + 1,
                    "bbox": [round(x1, 2), round(y1, 2), round(x2 - x1, 2), round(y2 - y1, 2)],
                    "area": round((x2 - x1) * (y2 - y1), 2),
                    "iscrowd": 0,
                }
            )
    doc: CocoDocument = {"images": images, "annotations": annotations, "categories": categories}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=1), encoding="utf-8")
    return doc


def import_coco(
    coco_json: Path, images_root: Path, out: Dataset, split: str, names_map: dict[str, str] | None = None
) -> int:
    """Add a COCO file's images and boxes to `out`'s split. Categories whose
    (mapped) name is not one of out's classes are dropped. Returns images added."""
    try:
        doc = json.loads(Path(coco_json).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{coco_json}: cannot read COCO JSON ({exc})") from None
    for key in ("images", "annotations", "categories"):
        if not isinstance(doc.get(key), list):
            raise DatasetError(f"{coco_json}: field '{key}' must be a list")
    names_map = names_map or {}
    cat_to_cls: dict[int, int] = {}
    for cat in doc["categories"]:
        name = names_map.get(cat["name"], cat["name"])
        if name in out.names:
            cat_to_cls[int(cat["id"])] = out.names.index(name)
    by_image: dict[int, list[dict[str, Any]]] = {}
    for ann in doc["annotations"]:
        by_image.setdefault(int(ann["image_id"]), []).append(ann)
    added = 0
    for im in doc["images"]:
        src = Path(images_root) / im["file_name"]
        if not src.is_file():
            raise DatasetError(f"{coco_json}: image {im['file_name']!r} not found under {images_root}")
        w, h = int(im.get("width") or 0), int(im.get("height") or 0)
        if not w or not h:
            w, h = image_size(src)
        boxes = []
        for ann in by_image.get(int(im["id"]), []):
            cls = cat_to_cls.get(int(ann["category_id"]))
            if cls is None or ann.get("iscrowd"):
                continue
            x, y, bw, bh = (float(v) for v in ann["bbox"])
            boxes.append(Box.from_xyxy(cls, x, y, x + bw, y + bh, w, h))
        name = Path(im["file_name"]).as_posix().replace("/", "__")
        out.write(split, name, src, boxes)
        added += 1
    return added


def import_yolo(src: Path, out: Dataset, split: str, src_names: list[str] | None = None) -> int:
    """Add a YOLO folder (a data set with data.yaml, or images/ + labels/ with
    --names) to `out`'s split, remapping classes by name."""
    src = Path(src)
    if (src / "data.yaml").is_file() or src.suffix in (".yaml", ".yml"):
        sds = Dataset.load(src)
        images, names = sds.images(), sds.names
    else:
        if not src_names:
            raise DatasetError(f"{src}: no data.yaml; give the class names (--names a,b,c or a classes.txt)")
        images = sorted(p for p in (src / "images").rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        names = src_names
    added = 0
    for img in images:
        boxes, problems = parse_label_file(label_path_for(img))
        if problems:
            raise DatasetError(problems[0])
        mapped = []
        for b in boxes:
            if b.cls >= len(names):
                raise DatasetError(f"{label_path_for(img)}: class {b.cls} but only {len(names)} names")
            if names[b.cls] in out.names:
                mapped.append(Box(out.names.index(names[b.cls]), b.cx, b.cy, b.w, b.h))
        out.write(split, img.name, img, mapped)
        added += 1
    return added


def export_yolo(ds: Dataset, out_dir: Path) -> Dataset:
    """A standalone copy of `ds` (images, labels, data.yaml, meta)."""
    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()):
        raise DatasetError(f"{out_dir}: output folder exists and is not empty")
    new = Dataset.create(out_dir, ds.names, tuple(ds.splits))
    for img in ds.images():
        split = ds.split_of(img)
        rel = img.relative_to(ds.image_dir(split))
        place_example(img, new.image_dir(split) / rel)
    if ds.meta_path.is_file():
        shutil.copyfile(ds.meta_path, new.meta_path)
    return new

"""Find what breaks training or inflates metrics: bad label lines, boxes
outside the image, unknown classes, unreadable images, duplicate images
(same bytes, possibly in different splits: a leak)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from vision.training.data.formats import image_size
from vision.training.data.layout import Dataset, DatasetError, label_path_for, parse_label_file

EPS = 1e-3  # tolerance for rounding in normalised coordinates


@dataclass
class CheckReport:
    problems: list[str] = field(default_factory=list)
    duplicates: list[list[str]] = field(default_factory=list)
    images: int = 0
    boxes: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems and not self.duplicates


def check_dataset(ds: Dataset, progress: bool = False) -> CheckReport:
    from tqdm import tqdm

    rep = CheckReport()
    by_hash: dict[str, list[str]] = {}
    images = ds.images()
    for img in tqdm(images, desc="check", unit="img", disable=not progress):
        rep.images += 1
        rel = img.relative_to(ds.root).as_posix()
        try:
            image_size(img)
        except DatasetError as exc:
            rep.problems.append(str(exc))
        by_hash.setdefault(hashlib.sha256(img.read_bytes()).hexdigest(), []).append(rel)
        lbl = label_path_for(img)
        boxes, problems = parse_label_file(lbl)
        rep.problems.extend(problems)
        for b in boxes:
            rep.boxes += 1
            where = f"{lbl.relative_to(ds.root).as_posix()}: box {b.line()!r}"
            if b.cls >= len(ds.names):
                rep.problems.append(f"{where}: class {b.cls} not in names (0..{len(ds.names) - 1})")
            if b.w <= 0 or b.h <= 0:
                rep.problems.append(f"{where}: zero or negative size")
            x1, y1, x2, y2 = b.cx - b.w / 2, b.cy - b.h / 2, b.cx + b.w / 2, b.cy + b.h / 2
            if x1 < -EPS or y1 < -EPS or x2 > 1 + EPS or y2 > 1 + EPS:
                rep.problems.append(f"{where}: outside the image (x {x1:.3f}..{x2:.3f}, y {y1:.3f}..{y2:.3f})")
    labels_root = ds.root / "labels"
    if labels_root.is_dir():
        for lbl in sorted(labels_root.rglob("*.txt")):
            stem_dir = lbl.parent.relative_to(labels_root)
            if not any(
                (ds.root / "images" / stem_dir / (lbl.stem + s)).exists()
                for s in (".jpg", ".jpeg", ".png", ".bmp", ".webp")
            ):
                rep.problems.append(f"{lbl.relative_to(ds.root).as_posix()}: label file without an image")
    rep.duplicates = [sorted(v) for v in by_hash.values() if len(v) > 1]
    return rep

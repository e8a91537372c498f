"""Merge data sets into one, remapping classes by name and keeping splits.

Used for the feedback loop too: reviewers' label exports (accepted cases as
positives, rejected as hard negatives with empty labels) become a data set that
is merged into the next training set.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from vision.training.data.layout import Box, Dataset, DatasetError, label_path_for


def merge_datasets(sources: list[Dataset], out_dir: Path, names: list[str] | None = None) -> Dataset:
    names = names or _union_names(sources)
    out = Dataset.create(out_dir, names, tuple(dict.fromkeys(s for ds in sources for s in ds.splits)))
    meta_out = out.read_meta()
    for ds in sources:
        prefix = ds.root.name
        meta = ds.read_meta()
        for img in ds.images():
            split = ds.split_of(img)
            name = f"{prefix}__{img.relative_to(ds.image_dir(split)).as_posix().replace('/', '__')}"
            target = out.image_dir(split) / name
            if target.exists():
                raise DatasetError(f"{target}: two inputs give the same file name; rename one data set folder")
            shutil.copyfile(img, target)
            boxes = [
                Box(names.index(ds.names[b.cls]), b.cx, b.cy, b.w, b.h)
                for b in ds.labels(img)
                if ds.names[b.cls] in names
            ]
            from vision.training.data.layout import write_label_file

            write_label_file(label_path_for(target), boxes)
            rec = dict(meta.get(img.relative_to(ds.root).as_posix(), {}))
            rec["source"] = f"{prefix}/{ds.source_of(img, meta)}"
            rec["merged_from"] = str(ds.root)
            meta_out[target.relative_to(out.root).as_posix()] = rec
    out.rewrite_meta(meta_out)
    return out


def _union_names(sources: list[Dataset]) -> list[str]:
    names: list[str] = []
    for ds in sources:
        for n in ds.names:
            if n not in names:
                names.append(n)
    return names

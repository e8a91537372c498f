"""Seeded train/val/test split by scene group, never by single frame.

Frames of one video clip (or synth images built on one background clip) are
near-duplicates; if some land in train and others in val, validation measures
memory, not generalisation. So whole groups (meta.jsonl `source`) are assigned.
"""

from __future__ import annotations

import random
import shutil
from dataclasses import dataclass
from pathlib import Path

from vision.training.data.layout import Dataset, DatasetError, place_example


@dataclass
class SplitReport:
    images: dict[str, int]
    groups: dict[str, list[str]]


def plan_split(group_sizes: dict[str, int], ratios: dict[str, float], seed: int) -> dict[str, str]:
    """group -> split. Groups are shuffled with `seed`, then each goes to the split
    furthest below its share of images; every split with a ratio > 0 gets at
    least one group when there are enough groups."""
    if not group_sizes:
        return {}
    if any(r < 0 for r in ratios.values()) or sum(ratios.values()) <= 0:
        raise DatasetError(f"split ratios must be >= 0 and not all 0, got {ratios}")
    total_r = sum(ratios.values())
    shares = {s: r / total_r for s, r in ratios.items() if r > 0}
    groups = sorted(group_sizes)
    random.Random(seed).shuffle(groups)
    assign: dict[str, str] = {}
    counts = dict.fromkeys(shares, 0)
    # seed each split (smallest share first) with one group
    if len(groups) >= len(shares):
        for s in sorted(shares, key=lambda k: shares[k]):
            g = groups.pop()
            assign[g] = s
            counts[s] += group_sizes[g]
    total = sum(group_sizes.values())
    for g in groups:
        s = max(shares, key=lambda k: shares[k] * total - counts[k])
        assign[g] = s
        counts[s] += group_sizes[g]
    return assign


def split_dataset(ds: Dataset, ratios: dict[str, float], seed: int) -> SplitReport:
    """Re-split every image of `ds` in place (files move between split folders)."""
    meta = ds.read_meta()
    images = ds.images()
    groups: dict[str, list[Path]] = {}
    for img in images:
        groups.setdefault(ds.source_of(img, meta), []).append(img)
    plan = plan_split({g: len(v) for g, v in groups.items()}, ratios, seed)
    for s in ratios:
        if s not in ds.splits:
            ds.splits[s] = f"images/{s}"
    new_meta = dict(meta)
    counts = dict.fromkeys(ratios, 0)
    by_split: dict[str, list[str]] = {s: [] for s in ratios}
    for g, imgs in groups.items():
        split = plan[g]
        by_split[split].append(g)
        for img in imgs:
            counts[split] += 1
            old_split = ds.split_of(img)
            if old_split == split:
                continue
            target = ds.image_dir(split) / img.relative_to(ds.image_dir(old_split))
            if target.exists():
                raise DatasetError(f"{target}: exists already, cannot move {img} there")
            place_example(img, target, shutil.move)
            old_rel = img.relative_to(ds.root).as_posix()
            rec = new_meta.pop(old_rel, {"source": g})
            new_meta[target.relative_to(ds.root).as_posix()] = rec
    ds.splits = {s: ds.splits[s] for s in ratios if s in ds.splits}
    for s in ds.splits:
        ds.image_dir(s).mkdir(parents=True, exist_ok=True)
    ds.save_yaml()
    if new_meta:
        ds.rewrite_meta(new_meta)
    return SplitReport(counts, {s: sorted(v) for s, v in by_split.items()})

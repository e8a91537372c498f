"""Per-class box counts per split and a box-size histogram image: the first
look at whether a data set can teach what the rules need."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vision.training.data.formats import image_size
from vision.training.data.layout import Dataset


@dataclass
class Stats:
    counts: dict[str, dict[str, int]] = field(default_factory=dict)  # split -> class -> boxes
    images: dict[str, int] = field(default_factory=dict)
    empty_images: dict[str, int] = field(default_factory=dict)
    box_sizes: dict[str, list[float]] = field(default_factory=dict)  # class -> sqrt(area) in px


def dataset_stats(ds: Dataset) -> Stats:
    st = Stats()
    for split in ds.splits:
        counts = dict.fromkeys(ds.names, 0)
        imgs = ds.images(split)
        st.images[split] = len(imgs)
        st.empty_images[split] = 0
        for img in imgs:
            boxes = ds.labels(img)
            if not boxes:
                st.empty_images[split] += 1
                continue
            w, h = image_size(img)
            for b in boxes:
                name = ds.names[b.cls] if b.cls < len(ds.names) else f"#{b.cls}"
                counts[name] = counts.get(name, 0) + 1
                st.box_sizes.setdefault(name, []).append(float(np.sqrt(max(b.w * w * b.h * h, 0.0))))
        st.counts[split] = counts
    return st


def plot_box_sizes(st: Stats, out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [n for n, v in st.box_sizes.items() if v]
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=100)
    if names:
        top = max(max(v) for v in st.box_sizes.values() if v)
        bins: list[float] = np.linspace(0, max(top, 1.0), 30).tolist()
        for n in names:
            ax.hist(st.box_sizes[n], bins=bins, histtype="step", linewidth=1.5, label=f"{n} ({len(st.box_sizes[n])})")
        ax.legend(fontsize=8)
    ax.set_xlabel("box size, sqrt(w*h) in pixels")
    ax.set_ylabel("boxes")
    ax.set_title("Box sizes per class")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out


def format_stats(st: Stats) -> str:
    splits = list(st.counts)
    names = list(dict.fromkeys(n for c in st.counts.values() for n in c))
    width = max([len(n) for n in names] + [8])
    lines = ["class".ljust(width) + "".join(s.rjust(9) for s in splits)]
    for n in names:
        lines.append(n.ljust(width) + "".join(str(st.counts[s].get(n, 0)).rjust(9) for s in splits))
    lines.append("images".ljust(width) + "".join(str(st.images[s]).rjust(9) for s in splits))
    lines.append("no boxes".ljust(width) + "".join(str(st.empty_images[s]).rjust(9) for s in splits))
    return "\n".join(lines)

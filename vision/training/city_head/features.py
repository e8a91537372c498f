"""The frozen part, run once: the neck features of every training tile.

The neck never changes while the head trains, so each tile goes through the
pretrained network once (ONNX Runtime, the edge's own preprocessing) and its
padded neck tensors are kept as float16 in memory-mapped files; the head's
epochs then cost only the head. About 1 MB per tile on disk.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from vision.training.city_head.nanodet_graph import HeadLevel, head_levels, with_outputs
from vision.training.city_head.targets import LabelledBox
from vision.training.city_head.tiles import Labelled, Tile, sample_tiles
from vision.training.data.layout import Dataset

log = logging.getLogger(__name__)


def frame_labels(ds: Dataset, image: Path, width: int, height: int) -> list[Labelled]:
    return [(ds.names[b.cls], *b.xyxy(width, height)) for b in ds.labels(image)]


def dataset_frames(sets: Iterable[tuple[Dataset, str]]) -> list[tuple[Dataset, Path]]:
    """(data set, image) for every image of the given (data set, split) pairs."""
    return [(ds, img) for ds, split in sets if split in ds.splits for img in ds.images(split)]


@dataclass
class TileFeatures:
    """Neck features of N tiles (one array per level, (N, C, side + 2, side + 2)) and their boxes."""

    levels: list[np.ndarray]
    boxes: list[list[LabelledBox]]
    sources: list[str]  # the frame each tile was cut from (repo-relative where possible)

    def __len__(self) -> int:
        return len(self.boxes)

    def save_index(self, folder: Path) -> None:
        index = {
            "boxes": [[[b.cls, b.x1, b.y1, b.x2, b.y2, b.ignore] for b in bs] for bs in self.boxes],
            "sources": self.sources,
            "shapes": [list(a.shape) for a in self.levels],
        }
        (folder / "index.json").write_text(json.dumps(index), encoding="utf-8")

    @classmethod
    def open(cls, folder: Path) -> TileFeatures:
        index = json.loads((folder / "index.json").read_text(encoding="utf-8"))
        levels = [np.lib.format.open_memmap(folder / f"level{i}.npy", mode="r") for i in range(len(index["shapes"]))]
        boxes = [
            [LabelledBox(int(c), x1, y1, x2, y2, bool(ig)) for c, x1, y1, x2, y2, ig in bs] for bs in index["boxes"]
        ]
        return cls([a[: len(boxes)] for a in levels], boxes, index["sources"])


class FeatureTap:
    """The pretrained detector with its neck tensors as extra outputs."""

    def __init__(self, base_model: str = "coco-nanodet", threads: int = 0) -> None:
        import onnx

        from vision.core.model_registry import load_card
        from vision.edge.detection.base import ort_session
        from vision.edge.detection.nanodet import NanoDetDetector

        card = load_card(base_model)
        self.card = card
        self.detector = NanoDetDetector(card, threads=threads)  # its preprocessing is the edge's, exactly
        model = onnx.load(str(card.path))
        self.levels: list[HeadLevel] = head_levels(model)
        tapped = with_outputs(model, [lv.neck for lv in self.levels])
        tmp = Path(card.path).with_suffix(".tap.onnx")
        try:  # ORT takes bytes too, but a path keeps its error messages readable
            onnx.save(tapped, str(tmp))
            self.session = ort_session(tmp, threads)
        finally:
            tmp.unlink(missing_ok=True)
        self.input_name = self.session.get_inputs()[0].name
        self.size = card.input.width

    def necks(self, image: np.ndarray) -> list[np.ndarray]:
        """Padded neck tensors of one model-sized image, finest stride first, (C, side + 2, side + 2)."""
        blob = self.detector.preprocess(image)
        outs = self.session.run([lv.neck for lv in self.levels], {self.input_name: blob})
        return [o[0] for o in outs]


def tiles_of(
    frames: list[tuple[Dataset, Path]], classes: list[str], per_frame: int, size: int, seed: int
) -> Iterator[tuple[str, Tile]]:
    rng = np.random.default_rng(seed)
    for ds, path in frames:
        image = cv2.imread(str(path))
        if image is None:
            log.warning("skipping unreadable image %s", path)
            continue
        h, w = image.shape[:2]
        for tile in sample_tiles(image, frame_labels(ds, path, w, h), classes, rng, per_frame, size):
            yield str(path), tile


def extract(
    tap: FeatureTap,
    frames: list[tuple[Dataset, Path]],
    classes: list[str],
    folder: Path,
    per_frame: int = 2,
    seed: int = 0,
    progress: bool = True,
    desc: str = "features",
) -> TileFeatures:
    """Cut tiles from the frames and keep their neck features in `folder` (memory-mapped)."""
    from tqdm import tqdm

    folder.mkdir(parents=True, exist_ok=True)
    n = len(frames) * per_frame
    shapes = [(n, lv.channels, lv.side + 2, lv.side + 2) for lv in tap.levels]
    arrays = [
        np.lib.format.open_memmap(folder / f"level{i}.npy", mode="w+", dtype=np.float16, shape=s)
        for i, s in enumerate(shapes)
    ]
    boxes: list[list[LabelledBox]] = []
    sources: list[str] = []
    with tqdm(total=n, desc=desc, unit="tile", disable=not progress) as bar:
        for k, (source, tile) in enumerate(tiles_of(frames, classes, per_frame, tap.size, seed)):
            for arr, neck in zip(arrays, tap.necks(tile.image), strict=True):
                arr[k] = neck
            boxes.append(tile.boxes)
            sources.append(source)
            bar.update(1)
    used = len(boxes)
    for a in arrays:
        a.flush()
    feats = TileFeatures([a[:used] for a in arrays], boxes, sources)
    feats.save_index(folder)
    return feats

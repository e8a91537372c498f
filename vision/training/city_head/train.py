"""`streetvision train head`: the city classes as a second head on the pretrained COCO detector.

The steps, each its own module: tiles of the labelled frames (`tiles`), their
neck features through the frozen network once (`features`), the head trained on
them in torch (`model`, `targets`), grafted into the ONNX file beside the COCO
head (`nanodet_graph`), and measured through the edge's detector on tiles of
the validation split and of evaluation-only data sets (held-out backgrounds),
next to the detectors it replaces (`evaluate`). The model folder gets
`model.onnx`, `card.yaml` (heads, metrics, data hashes) and `pr.png`.
"""

from __future__ import annotations

import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from vision.core.paths import repo_relative
from vision.training.city_head.evaluate import ClassResult, evaluate, plot_pr
from vision.training.city_head.features import FeatureTap, TileFeatures, dataset_frames, extract, tiles_of
from vision.training.city_head.nanodet_graph import graft_head, output_names
from vision.training.city_head.targets import assign
from vision.training.data.layout import Dataset, DatasetError, content_hash

CITY_HEAD_CLASSES = ["vendor_stall", "garbage", "muddy_truck", "bicycle", "motorcycle"]
EVAL_CONFIDENCE = 0.05  # detections this low still count on the precision-recall curve


@dataclass
class HeadTrainConfig:
    data: list[Path]  # YOLO data sets: their train split teaches, their val split measures
    out: Path  # model folder (models/<name>)
    name: str = "coco-city"
    version: str = "1.0.0"
    base: str = "coco-nanodet"
    classes: list[str] = field(default_factory=lambda: list(CITY_HEAD_CLASSES))
    eval_data: list[Path] = field(default_factory=list)  # evaluation-only sets (held-out backgrounds): measured only
    compare: list[str] = field(default_factory=lambda: ["coco-nanodet", "city-v1"])  # measured on the same tiles
    tiles_per_image: int = 2
    eval_tiles_per_image: int = 2
    epochs: int = 10
    batch: int = 32
    lr: float = 1e-3
    seed: int = 0
    work: Path | None = None  # feature cache (default: OUT/../.<name>-features, removed afterwards)
    threads: int = 0
    progress: bool = True


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def train_head(feats: TileFeatures, tap: FeatureTap, cfg: HeadTrainConfig):  # type: ignore[no-untyped-def]
    """The head fitted to the cached features: AdamW, one-cycle learning rate, a progress bar per epoch."""
    import torch
    from tqdm import tqdm

    from vision.training.city_head.model import CityHead, focal_loss, giou_loss

    torch.manual_seed(cfg.seed)
    head = CityHead(tap.levels, len(cfg.classes))
    grids = [(lv.side, lv.stride) for lv in tap.levels]
    targets = [assign(boxes, grids, len(cfg.classes)) for boxes in feats.boxes]
    n = len(feats)
    steps = cfg.epochs * max(1, (n + cfg.batch - 1) // cfg.batch)
    opt = torch.optim.AdamW(head.parameters(), lr=cfg.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=steps)
    rng = np.random.default_rng(cfg.seed)
    history = []
    for epoch in range(cfg.epochs):
        order = rng.permutation(n)
        sums = np.zeros(3)
        bar = tqdm(
            range(0, n, cfg.batch), desc=f"head epoch {epoch + 1}/{cfg.epochs}", unit="batch", disable=not cfg.progress
        )
        for start in bar:
            idx = np.sort(order[start : start + cfg.batch])
            loss_cls = torch.zeros(())
            loss_box = torch.zeros(())
            positives = 0
            for lv in range(len(grids)):
                neck = torch.from_numpy(np.asarray(feats.levels[lv][idx], dtype=np.float32))
                cls_t = torch.from_numpy(np.stack([targets[i][lv].classes for i in idx]))
                box_t = torch.from_numpy(np.stack([targets[i][lv].boxes for i in idx]))
                pos = torch.from_numpy(np.stack([targets[i][lv].positive for i in idx]))
                logits, dist = head(lv, neck)
                loss_cls = loss_cls + focal_loss(logits, cls_t)
                if bool(pos.any()):
                    loss_box = loss_box + 2.0 * giou_loss(head.boxes(lv, dist)[pos], box_t[pos])
                    positives += int(pos.sum())
            loss = (loss_cls + loss_box) / max(positives, 1)
            opt.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            opt.step()
            sched.step()
            sums += (float(loss_cls.detach()), float(loss_box.detach()), positives)
            bar.set_postfix(cls=f"{sums[0] / max(sums[2], 1):.3f}", box=f"{sums[1] / max(sums[2], 1):.3f}")
        history.append(
            {
                "epoch": epoch + 1,
                "cls": round(float(sums[0] / max(sums[2], 1)), 4),
                "box": round(float(sums[1] / max(sums[2], 1)), 4),
            }
        )
    return head, history


def write_model(tap: FeatureTap, head: Any, cfg: HeadTrainConfig) -> Path:
    """model.onnx: the base network with the trained head grafted on; the COCO outputs unchanged."""
    import onnx

    model = onnx.load(str(tap.card.path))
    grafted = graft_head(model, tap.levels, head.weights(), len(cfg.classes))
    cfg.out.mkdir(parents=True, exist_ok=True)
    path = cfg.out / "model.onnx"
    onnx.save(grafted, str(path))
    return path


def card_dict(tap: FeatureTap, cfg: HeadTrainConfig, model_path: Path, training: dict[str, Any]) -> dict[str, Any]:
    from vision.core.model_registry import sha256_file

    base = tap.card
    coco = {
        "classes": list(base.classes),
        "scores": [lv.scores for lv in tap.levels],
        "boxes": [lv.boxes for lv in tap.levels],
    }
    city = {
        "classes": list(cfg.classes),
        "scores": [output_names(lv.stride)[0] for lv in tap.levels],
        "boxes": [output_names(lv.stride)[1] for lv in tap.levels],
    }
    return {
        "name": cfg.name,
        "version": cfg.version,
        "backend": "nanodet-onnx",
        "file": model_path.name,
        "sha256": sha256_file(model_path),
        "classes": coco["classes"] + city["classes"],
        "heads": [coco, city],
        "input": base.input.model_dump(),
        "source": f"{base.name} {base.version} (frozen) + a city head trained by `streetvision train head`",
        "licence": f"network: {base.licence}; city head: trained on composites of the project's training backgrounds "
        "and cut-outs (datasets/backgrounds/NOTICE.md, datasets/assets/objects/NOTICE.md: GPL-2 cut-outs, "
        "so treat the head's weights as GPL-2 compatible)",
        "description": "The pretrained COCO NanoDet with a second head for the city classes on its frozen neck: "
        "real-image features under every class, one forward pass for COCO and city classes.",
        "training": training,
    }


def _measure(tiles: list[Any], detectors: dict[str, Any], classes: list[str]) -> dict[str, dict[str, ClassResult]]:
    return {name: evaluate(det, tiles, classes) for name, det in detectors.items()}


def _table(results: dict[str, dict[str, ClassResult]], classes: list[str]) -> str:
    lines = [f"  {'detector':16s} " + " ".join(f"{c:>14s}" for c in classes) + "   (AP50, tiles)"]
    for name, per in results.items():
        cells = [f"{per[c].ap50:14.3f}" if per[c].truths else f"{'-':>14s}" for c in classes]
        lines.append(f"  {name:16s} " + " ".join(cells))
    lines.append(f"  {'truths':16s} " + " ".join(f"{next(iter(results.values()))[c].truths:14d}" for c in classes))
    return "\n".join(lines)


def run(cfg: HeadTrainConfig) -> dict[str, Any]:
    """Train, graft, write the card and measure; returns the card as written."""
    for p in cfg.eval_data:
        if p in cfg.data:
            raise DatasetError(f"{p} is given both to train on and to evaluate on")
    sets = [Dataset.load(p) for p in cfg.data]
    for ds in sets:
        ds.refuse_training()
    eval_sets = [Dataset.load(p) for p in cfg.eval_data]
    t0 = time.monotonic()
    tap = FeatureTap(cfg.base, threads=cfg.threads)
    train_frames = dataset_frames([(ds, "train") for ds in sets])
    if not train_frames:
        raise DatasetError("no training images: the data sets have no images in their train split")
    work = cfg.work or cfg.out.parent / f".{cfg.name}-features"
    _say(
        f"train head: {len(train_frames)} frames x {cfg.tiles_per_image} tiles from {', '.join(str(d.root) for d in sets)}"
    )
    try:
        feats = extract(
            tap, train_frames, cfg.classes, work, cfg.tiles_per_image, cfg.seed, cfg.progress, "neck features"
        )
        head, history = train_head(feats, tap, cfg)
        n_tiles = len(feats)
    finally:
        if cfg.work is None:
            shutil.rmtree(work, ignore_errors=True)
    model_path = write_model(tap, head, cfg)
    training = {
        "command": "streetvision " + " ".join(sys.argv[1:]) if sys.argv and "streetvision" in sys.argv[0] else "",
        "base": f"{tap.card.name} {tap.card.version} (neck frozen)",
        "data": [{"path": repo_relative(ds.root), "sha256": content_hash(ds)} for ds in sets],
        "tiles": n_tiles,
        "epochs": cfg.epochs,
        "batch": cfg.batch,
        "lr": cfg.lr,
        "seed": cfg.seed,
        "loss": history,
        "seconds": round(time.monotonic() - t0, 1),
    }
    card = card_dict(tap, cfg, model_path, training)
    card_path = cfg.out / "card.yaml"
    card_path.write_text(yaml.safe_dump(card, sort_keys=False, allow_unicode=True), encoding="utf-8")
    card = measure(cfg, sets, eval_sets, tap.size)
    _say(f"{cfg.name} {cfg.version}: {n_tiles} tiles, {cfg.epochs} epochs, {time.monotonic() - t0:.0f} s -> {cfg.out}")
    return card


def remeasure(cfg: HeadTrainConfig) -> dict[str, Any]:
    """Measure the model already in cfg.out again (new evaluation sets, other comparisons), without training."""
    from vision.core.model_registry import load_card

    if not (cfg.out / "card.yaml").is_file():
        raise FileNotFoundError(f"{cfg.out}: no card.yaml to measure (train the head first)")
    card = load_card(cfg.out)
    sets = [Dataset.load(p) for p in cfg.data]
    return measure(cfg, sets, [Dataset.load(p) for p in cfg.eval_data], card.input.width)


def measure(cfg: HeadTrainConfig, sets: list[Dataset], eval_sets: list[Dataset], size: int) -> dict[str, Any]:
    """Tile AP50 per class of the model in cfg.out (through the edge's detector, on the file as written)
    on the val split of `sets` and on every evaluation set, next to cfg.compare; written into its card."""
    from vision.edge.detection import open_detector

    card_path = cfg.out / "card.yaml"
    card: dict[str, Any] = yaml.safe_load(card_path.read_text(encoding="utf-8"))
    detectors: dict[str, Any] = {cfg.name: open_detector(cfg.out, min_confidence=EVAL_CONFIDENCE)}
    for other in cfg.compare:
        try:
            detectors[other] = open_detector(other, min_confidence=EVAL_CONFIDENCE)
        except Exception as exc:  # a comparison model missing here is not a reason to lose the training
            _say(f"train head: not comparing with {other}: {exc}")
    metrics: dict[str, Any] = {"iou": 0.5, "confidence_floor": EVAL_CONFIDENCE}
    plots: list[str] = []
    measured: list[tuple[str, list[tuple[Dataset, Path]], Dataset | None]] = [
        ("validation", dataset_frames([(ds, "val") for ds in sets]), None)
    ] + [(f"evaluation:{repo_relative(ds.root)}", dataset_frames([(ds, s) for s in ds.splits]), ds) for ds in eval_sets]
    for label, frames, eval_set in measured:
        if not frames:
            continue
        tiles = [t for _, t in tiles_of(frames, cfg.classes, cfg.eval_tiles_per_image, size, cfg.seed + 1)]
        results = _measure(tiles, detectors, cfg.classes)
        _say(f"{label}: {len(tiles)} tiles of {len(frames)} frames\n" + _table(results, cfg.classes))
        metrics[label] = {
            "frames": len(frames),
            "tiles": len(tiles),
            "per_class": {name: {c: r.summary() for c, r in per.items() if r.truths} for name, per in results.items()},
        }
        if eval_set is not None:
            metrics[label]["sha256"] = content_hash(eval_set)
        plot = cfg.out / ("pr.png" if label == "validation" else f"pr-{len(plots)}.png")
        plot_pr(
            results,
            plot,
            f"{card.get('name', cfg.name)} {card.get('version', cfg.version)}: {label} ({len(tiles)} tiles)",
        )
        plots.append(plot.name)
    metrics["plots"] = plots
    card["metrics"] = metrics
    card_path.write_text(yaml.safe_dump(card, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return card

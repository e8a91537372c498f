"""`streetvision data import|export|split|stats|check|merge|pseudo-label|synth`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vision.edge.detection import Detector
    from vision.training.data.layout import Dataset

Handler = Callable[[argparse.Namespace], int]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("data", help="build, convert, split and check training data sets")
    d = p.add_subparsers(dest="data_command", required=True, metavar="ACTION")

    imp = d.add_parser("import", help="add YOLO or COCO JSON labels to a data set (created if missing)")
    imp.add_argument(
        "--format",
        choices=["yolo", "coco", "dispatch"],
        required=True,
        help="dispatch: the dispatch center's label export (accepted cases + rejected as hard negatives)",
    )
    imp.add_argument(
        "--src",
        required=True,
        help="COCO JSON file, YOLO folder (data.yaml, or images/ + labels/), or dispatch export folder",
    )
    imp.add_argument("--images", help="COCO: folder the file_names are relative to (default: the JSON's folder)")
    imp.add_argument("--names", help="YOLO without data.yaml: class names, comma separated")
    imp.add_argument("--out", required=True, help="data set folder")
    imp.add_argument("--split", default="train")
    imp.add_argument(
        "--model", default="coco-nanodet", help="dispatch: base model adding person/vehicle labels ('none' to skip)"
    )
    imp.add_argument("--confidence", type=float, default=0.4)
    imp.set_defaults(handler=_import)

    exp = d.add_parser("export", help="write a data set as COCO JSON or as a standalone YOLO copy")
    exp.add_argument("--data", required=True)
    exp.add_argument("--format", choices=["yolo", "coco"], required=True)
    exp.add_argument("--out", required=True, help="COCO: a .json file; YOLO: an empty folder")
    exp.add_argument("--split", help="COCO: only this split")
    exp.set_defaults(handler=_export)

    sp = d.add_parser("split", help="seeded split by scene (video clip/background), frames of a scene stay together")
    sp.add_argument("--data", required=True)
    sp.add_argument("--ratios", default="train=0.7,val=0.15,test=0.15")
    sp.add_argument("--seed", type=int, default=0)
    sp.set_defaults(handler=_split)

    st = d.add_parser("stats", help="boxes per class and split, box-size histogram image")
    st.add_argument("--data", required=True)
    st.add_argument("--plot", help="PNG path (default <data>/stats_box_sizes.png)")
    st.set_defaults(handler=_stats)

    ck = d.add_parser("check", help="broken labels, boxes outside images, duplicate images; exit 1 on problems")
    ck.add_argument("--data", required=True)
    ck.set_defaults(handler=_check)

    mg = d.add_parser("merge", help="merge data sets (classes mapped by name, splits kept)")
    mg.add_argument("inputs", nargs="+", help="data set folders")
    mg.add_argument("--out", required=True)
    mg.add_argument("--names", help="class list of the result, comma separated (default: union)")
    mg.set_defaults(handler=_merge)

    pl = d.add_parser(
        "pseudo-label", help="label real frames with the COCO base model (person, bicycle, motorcycle, car, truck)"
    )
    pl.add_argument("sources", nargs="+", help="videos or image folders")
    pl.add_argument("--out", required=True)
    pl.add_argument("--model", default="coco-nanodet")
    pl.add_argument("--confidence", type=float, default=0.4)
    pl.add_argument("--every", type=int, default=10, help="video: take every Nth frame")
    pl.add_argument("--split", default="train")
    pl.set_defaults(handler=_pseudo)

    sy = d.add_parser("synth", help="composite stalls, garbage and (muddy) trucks onto real frames, exact labels")
    sy.add_argument("sources", nargs="*", help="background videos or image folders (default: the bundled footage)")
    sy.add_argument("--out", required=True)
    sy.add_argument("--images", type=int, default=200)
    sy.add_argument("--seed", type=int, default=0)
    sy.add_argument("--model", default="coco-nanodet", help="base model for people/vehicles in the frames")
    sy.add_argument("--confidence", type=float, default=0.35)
    sy.add_argument("--ratios", default="train=0.7,val=0.15,test=0.15")
    sy.add_argument(
        "--two-wheelers",
        type=float,
        default=0.0,
        metavar="P",
        help="chance per image of a row of parked bicycles/e-bikes/motorcycles (default 0)",
    )
    sy.add_argument(
        "--assets",
        choices=["original", "training", "heldout"],
        default=None,
        help="cut-outs to draw (datasets/assets/objects/MANIFEST.tsv): original (the set older data sets were built "
        "from, so their commands rebuild them byte for byte), training (original + the training cut-outs added "
        "since), heldout (cut-outs no model trains on; only with --evaluation). Default: original, or heldout "
        "with --evaluation",
    )
    sy.add_argument(
        "--evaluation",
        action="store_true",
        help="build an evaluation-only set: held-out backgrounds allowed, every image in the `test` split, "
        "data.yaml marked `purpose: evaluation` (training commands refuse it)",
    )
    sy.set_defaults(handler=_synth)


def _fail(msg: str) -> int:
    print(f"error: {msg}", file=sys.stderr)
    return 2


def _ratios(text: str) -> dict[str, float]:
    from vision.training.data.layout import SPLITS, DatasetError

    out = {}
    for part in text.split(","):
        key, _, val = part.partition("=")
        key = key.strip()
        if key not in SPLITS:
            raise DatasetError(f"--ratios: unknown split {key!r} (use {', '.join(SPLITS)})")
        try:
            out[key] = float(val)
        except ValueError:
            raise DatasetError(f"--ratios: {part!r} is not split=number") from None
    return out


def _open_or_create(path: str) -> Dataset:
    from vision.training.data.layout import CITY_CLASSES, Dataset

    p = Path(path)
    return Dataset.load(p) if (p / "data.yaml").is_file() else Dataset.create(p, CITY_CLASSES)


def _guard(fn: Handler) -> Handler:
    """The handler, with data set errors (and missing files) printed as `error: ...` and exit status 2."""

    def run(args: argparse.Namespace) -> int:
        from vision.training.data.layout import DatasetError

        try:
            return fn(args)
        except (DatasetError, FileNotFoundError) as exc:
            return _fail(str(exc))

    return run


@_guard
def _import(args: argparse.Namespace) -> int:
    from vision.training.data.formats import import_coco, import_yolo

    ds = _open_or_create(args.out)
    if args.split not in ds.splits:
        ds.splits[args.split] = f"images/{args.split}"
        ds.save_yaml()
    if args.format == "coco":
        src = Path(args.src)
        n = import_coco(src, Path(args.images) if args.images else src.parent, ds, args.split)
    elif args.format == "dispatch":
        from vision.training.data.feedback import import_dispatch

        det = None if args.model == "none" else _detector(args.model, args.confidence)
        summary = import_dispatch(Path(args.src), ds, args.split, det, args.confidence)
        for why in summary.skipped:
            print(f"skipped: {why}", file=sys.stderr)
        n = summary.positives + summary.negatives
        print(f"{summary.positives} accepted case(s), {summary.negatives} rejected (hard negatives)")
    else:
        names = args.names.split(",") if args.names else None
        n = import_yolo(Path(args.src), ds, args.split, names)
    print(f"imported {n} image(s) into {ds.root} ({args.split})")
    return 0


@_guard
def _export(args: argparse.Namespace) -> int:
    from vision.training.data.formats import export_coco, export_yolo
    from vision.training.data.layout import Dataset

    ds = Dataset.load(args.data)
    if args.format == "coco":
        doc = export_coco(ds, Path(args.out), args.split)
        print(f"{args.out}: {len(doc['images'])} images, {len(doc['annotations'])} boxes")
    else:
        export_yolo(ds, Path(args.out))
        print(f"{args.out}: copied")
    return 0


@_guard
def _split(args: argparse.Namespace) -> int:
    from vision.training.data.layout import Dataset
    from vision.training.data.split import split_dataset

    ds = Dataset.load(args.data)
    rep = split_dataset(ds, _ratios(args.ratios), args.seed)
    for s, n in rep.images.items():
        print(f"{s:6} {n:6d} images from {len(rep.groups[s])} scene group(s)")
    return 0


@_guard
def _stats(args: argparse.Namespace) -> int:
    from vision.training.data.layout import Dataset
    from vision.training.data.stats import dataset_stats, format_stats, plot_box_sizes

    ds = Dataset.load(args.data)
    st = dataset_stats(ds)
    print(format_stats(st))
    out = plot_box_sizes(st, Path(args.plot) if args.plot else ds.root / "stats_box_sizes.png")
    print(f"box-size histogram: {out}")
    return 0


@_guard
def _check(args: argparse.Namespace) -> int:
    from vision.training.data.check import check_dataset
    from vision.training.data.layout import Dataset

    ds = Dataset.load(args.data)
    rep = check_dataset(ds, progress=sys.stderr.isatty())
    for p in rep.problems:
        print(p)
    for group in rep.duplicates:
        print("duplicate images: " + ", ".join(group))
    print(
        f"{rep.images} images, {rep.boxes} boxes, {len(rep.problems)} problem(s), {len(rep.duplicates)} duplicate group(s)"
    )
    return 0 if rep.ok else 1


@_guard
def _merge(args: argparse.Namespace) -> int:
    from vision.training.data.layout import Dataset
    from vision.training.data.merge import merge_datasets

    out = Path(args.out)
    if out.exists() and any(out.iterdir()):
        return _fail(f"--out {out} exists and is not empty")
    merged = merge_datasets([Dataset.load(p) for p in args.inputs], out, args.names.split(",") if args.names else None)
    print(f"merged {len(args.inputs)} data sets into {merged.root}: {len(merged.images())} images")
    return 0


def _detector(name: str, confidence: float) -> Detector:
    from vision.edge.detection import open_detector

    return open_detector(name, min_confidence=min(confidence, 0.3))


@_guard
def _pseudo(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from vision.training.data.pseudo_label import detect_base, to_boxes
    from vision.training.data.synth.scene import SceneSource

    if args.every < 1:
        return _fail("--every must be >= 1")
    det = _detector(args.model, args.confidence)
    ds = _open_or_create(args.out)
    if args.split not in ds.splits:
        ds.splits[args.split] = f"images/{args.split}"
        ds.save_yaml()
    n = 0
    for src in args.sources:
        scene = SceneSource(Path(src), det, args.confidence)
        step = args.every if scene.is_video else 1
        for i in tqdm(range(0, scene.length, step), desc=f"pseudo-label {Path(src).name}", unit="frame"):
            frame = scene.frames([i])
            if not frame:
                continue
            img = frame[0].image
            h, w = img.shape[:2]
            boxes = to_boxes(detect_base(det, img, args.confidence), w, h, ds.names)
            ds.write(
                args.split,
                f"{Path(src).stem}__{i:06d}.jpg",
                img,
                boxes,
                {"source": scene.group(i), "frame": i, "generator": f"pseudo-label {args.model} >= {args.confidence}"},
            )
            n += 1
    print(f"labelled {n} frame(s) into {ds.root}")
    return 0


@_guard
def _synth(args: argparse.Namespace) -> int:
    from vision.core.paths import REPO_ROOT
    from vision.training.data.synth.generator import SynthConfig, generate

    sources = [Path(s) for s in args.sources] or [REPO_ROOT / "datasets" / "footage" / "vtest.avi"]
    for s in sources:
        if not s.exists():
            return _fail(f"source not found: {s}")
    cfg = SynthConfig(
        out=Path(args.out),
        sources=sources,
        images=args.images,
        seed=args.seed,
        split=_ratios(args.ratios),
        min_confidence=args.confidence,
        two_wheelers=args.two_wheelers,
        assets=args.assets or ("heldout" if args.evaluation else "original"),
        purpose="evaluation" if args.evaluation else "training",
    )
    if args.evaluation:
        cfg.split = {"test": 1.0}
    ds = generate(cfg, _detector(args.model, args.confidence), progress=True)
    counts = {s: len(ds.images(s)) for s in ds.splits}
    print(f"synth set {ds.root}: " + ", ".join(f"{s} {n}" for s, n in counts.items()) + f" (seed {args.seed})")
    return 0

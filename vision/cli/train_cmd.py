"""`streetvision train|eval|export`: the model lifecycle after the data set.

Heavy imports (torch via ultralytics) stay inside the handlers.
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

from vision.cli.help_format import DefaultsHelpFormatter
from vision.core.paths import repo_relative

if TYPE_CHECKING:
    from vision.training.adapter import EvalResult
    from vision.training.data.layout import Dataset

    # A `data merge` input when rebuilding: a complete data set, or (folder, class names) of one rebuilt there.
    MergeSource = Dataset | tuple[Path, list[str]]

RUN_INFO = "streetvision.json"


class RunInfo(TypedDict, total=False):
    """A run folder's streetvision.json: how `train` made it (read back by `export`)."""

    command: str
    data: str  # the data set folder, repo-relative where possible
    dataset_sha256: str
    model: str  # the architecture YAML or the .pt fine-tuned from
    epochs: int
    imgsz: int
    batch: int
    seed: int
    classes: list[str]
    parent: RunInfo  # the run fine-tuned from, when it has a record


class EvalSummary(TypedDict):
    """What metrics.json and the card's metrics keep of an evaluation."""

    map50: float
    map50_95: float
    per_class: dict[str, dict[str, float]]
    speed_ms: dict[str, float]


TARGETS = ("detector", "classifier", "head")
DEFAULTS = {"detector": {"epochs": 50, "batch": 8}, "head": {"epochs": 12, "batch": 32}}
SCRATCH = "var/regen"  # under the repository root; /var/ is git-ignored


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    t = sub.add_parser(
        "train",
        help="train a detector on a data set (ultralytics, CPU, offline)",
        formatter_class=DefaultsHelpFormatter,
        description="Train the YOLO detector on a YOLO-layout data set with ultralytics, on the CPU and offline. "
        "The run folder RUNS/NAME gets weights/best.pt, weights/last.pt and streetvision.json (the command, "
        "the data set's content hash and, when fine-tuning, the parent run's record).",
    )
    t.add_argument(
        "target",
        nargs="?",
        choices=TARGETS,
        default="detector",
        help="what to train: the detector (YOLO from scratch or a checkpoint), the crop classifier "
        "(vision.training.crop_classifier), or the city head on the pretrained COCO detector (vision.training.city_head)",
    )
    t.add_argument(
        "--data", default=None, help="data set folder (holding data.yaml) or the YAML; required for the detector"
    )
    t.add_argument(
        "--model",
        default="yolov8n.yaml",
        help="what to start from: an architecture YAML (yolov8n.yaml or yolo11n.yaml: random weights, "
        "trained from scratch) or a .pt checkpoint to fine-tune from, e.g. "
        "runs/train/city-v1/weights/best.pt (its weights are loaded where layer shapes match; the "
        "classes come from --data; nothing is downloaded)",
    )
    t.add_argument(
        "--epochs", type=int, default=None, help="epochs to train (default: 50 for the detector, 12 for the head)"
    )
    t.add_argument("--imgsz", type=int, default=320, help="square input size in pixels (export uses the same)")
    t.add_argument(
        "--batch", type=int, default=None, help="images (tiles for the head) per batch (default: 8 detector, 32 head)"
    )
    t.add_argument("--seed", type=int, default=0, help="random seed (training is deterministic for a seed)")
    t.add_argument("--patience", type=int, default=100, help="stop after this many epochs without a better val mAP")
    t.add_argument("--name", default="city", help="run name: the run goes to RUNS/NAME")
    t.add_argument("--runs", default="runs/train", help="folder holding runs")
    t.add_argument("--resume", action="store_true", help="continue RUNS/NAME from its weights/last.pt")
    c = t.add_argument_group(
        "crop classifier (`train classifier`)",
        "The verifier's head over EfficientNet-Lite0 features: crops of reviewed cases (accepted = their class, "
        "rejected = a negative) plus synthetic crops; writes head.npz, card.yaml (per-class precision/recall) and "
        "confusion.png into --out. --name names the model (the detector's default 'city' means crop-verifier); "
        "--seed is used too.",
    )
    c.add_argument(
        "--export",
        action="append",
        default=[],
        metavar="DIR",
        help="a `streetvision dispatch export-labels` folder; repeat for several",
    )
    c.add_argument(
        "--synthetic",
        type=int,
        default=120,
        metavar="N",
        help="synthetic crops per label on the training backgrounds; 0 = review crops only",
    )
    c.add_argument(
        "--far-fraction",
        type=float,
        default=0.35,
        metavar="F",
        help="share of crops shrunk to a far object's 10-40 px before training, so the head learns what far "
        "stalls, bags, bikes and trucks look like once enlarged",
    )
    c.add_argument(
        "--neighbour-fraction",
        type=float,
        default=0.0,
        metavar="F",
        help="share of the pavement objects' synthetic crops with a second object (a bin, a stall, a bike) standing "
        "beside them, partly in the crop; the label stays the first object's and garbage is never the neighbour, "
        "so the head reads a bag left beside a bin as garbage (models/crop-verifier-garbage)",
    )
    c.add_argument("--out", default=None, help="output folder (default: models/NAME, where the daemon picks it up)")
    c.add_argument("--version", default=None, help="card version (default: 1.0.<unix time>)")
    c.add_argument(
        "--val-fraction", type=float, default=0.25, help="share of crop groups held out for the card's metrics"
    )
    c.add_argument("--backbone", default="effnet-lite0-imagenet", help="feature model under models/")
    h = t.add_argument_group(
        "city head (`train head`)",
        "A second head for the city classes on the pretrained COCO NanoDet's frozen neck: tiles of the --data set's "
        "train split, their neck features computed once, the head trained in torch on the CPU and grafted into one "
        "ONNX file beside the COCO head (one forward pass for both). Measured through the edge's detector on tiles "
        "of the val split and of every --eval-data set, next to the --compare models; writes model.onnx, card.yaml and "
        "pr*.png into --out (default models/NAME; --name defaults to coco-city here). Uses --data, --epochs, --batch, "
        "--seed, --version too.",
    )
    h.add_argument(
        "--eval-data",
        action="append",
        default=[],
        metavar="DIR",
        help="an evaluation-only data set (`data synth --evaluation`: held-out backgrounds or cut-outs); repeat",
    )
    h.add_argument("--base", default="coco-nanodet", help="the pretrained nanodet-onnx model the head is grafted on")
    h.add_argument("--tiles", type=int, default=2, help="training tiles cut from each frame")
    h.add_argument("--lr", type=float, default=1e-3, help="peak learning rate (one-cycle schedule)")
    h.add_argument(
        "--compare",
        action="append",
        default=None,
        metavar="MODEL",
        help="models measured on the same tiles for the card (default: coco-nanodet and city-v1); repeat",
    )
    h.add_argument("--features", default=None, help="keep the tile features in this folder (default: a temporary one)")
    h.add_argument(
        "--measure-only",
        action="store_true",
        help="do not train: measure the model already in --out again on --data's val split and the --eval-data "
        "sets, and rewrite its card's metrics and plots",
    )
    t.set_defaults(handler=_train_target)

    e = sub.add_parser(
        "eval",
        help="mAP50 and mAP50-95 per class on a held-out split, PR curve and confusion matrix",
        formatter_class=DefaultsHelpFormatter,
        description="Evaluate a trained (.pt) or exported (.onnx) detector on one split with ultralytics' validator; "
        "writes plots and metrics.json to --out.",
    )
    e.add_argument(
        "--weights",
        required=True,
        help=".pt from a run (runs/train/NAME/weights/best.pt) or an exported .onnx (models/NAME/model.onnx)",
    )
    e.add_argument("--data", required=True, help="data set folder (holding data.yaml) or the YAML")
    e.add_argument("--split", default="test", help="split to evaluate on: a held-out one, never used in training")
    e.add_argument("--imgsz", type=int, default=320, help="input size; use the one the model was trained at")
    e.add_argument("--batch", type=int, default=8, help="images per batch")
    e.add_argument("--out", default="runs/eval/latest", help="folder for plots and metrics.json")
    e.set_defaults(handler=_eval)

    x = sub.add_parser(
        "export",
        help="ONNX + int8 variant + model card into models/<name>/",
        formatter_class=DefaultsHelpFormatter,
        description="Export a run's weights/best.pt to ONNX (model.onnx) and a dynamic int8 variant (model-int8.onnx), "
        "measure mAP on --split and onnxruntime latency of both, and write card.yaml. Warns (stderr and "
        "the card's metrics.notes) when int8 is slower than fp32 or when mAP50 is below 0.05.",
    )
    x.add_argument("--run", required=True, help="training run folder (runs/train/NAME)")
    x.add_argument("--name", required=True, help="model name, e.g. city-v1: the model goes to MODELS_DIR/NAME")
    x.add_argument("--version", default="1.0.0", help="model version written to the card and stamped on cases")
    x.add_argument(
        "--data",
        default=None,
        help="data set for measuring accuracy (default: the one the run was trained on, from its streetvision.json)",
    )
    x.add_argument("--split", default="test", help="split of --data to measure mAP on")
    x.add_argument(
        "--models-dir",
        default=None,
        help="folder of models (default: $STREETVISION_MODELS, else models/ of this repository)",
    )
    x.add_argument("--threads", type=int, default=1, help="onnxruntime threads for the latency measurement")
    x.add_argument("--force", action="store_true", help="replace an existing MODELS_DIR/NAME")
    x.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        default=argparse.SUPPRESS,
        help="also show the int8 quantizer's log (hidden by default; same as `streetvision -v export`)",
    )
    x.set_defaults(handler=_export)


def _data_yaml(arg: str) -> Path:
    from vision.training.data.layout import Dataset

    return Dataset.load(arg).yaml_path


def _fail(msg: str) -> int:
    print(f"error: {msg}", file=sys.stderr)
    return 2


def _train_target(args: argparse.Namespace) -> int:
    for name, value in DEFAULTS.get(args.target, {}).items():
        if getattr(args, name, None) is None:
            setattr(args, name, value)
    if args.target == "classifier":
        return _train_classifier(args)
    if args.target == "head":
        return _train_head(args)
    return _train(args)


def _train_head(args: argparse.Namespace) -> int:
    """`train head`: vision.training.city_head.train.run, imported only here (torch)."""
    from vision.core.model_registry import models_dir
    from vision.training.city_head.nanodet_graph import GraphError
    from vision.training.city_head.train import HeadTrainConfig, remeasure, run
    from vision.training.data.layout import DatasetError

    if not args.data:
        return _fail("--data is required to train the head: a data set folder holding data.yaml (e.g. from data synth)")
    for field in ("epochs", "batch", "tiles"):
        if getattr(args, field) < 1:
            return _fail(f"--{field} must be >= 1")
    name = "coco-city" if args.name == "city" else args.name
    cfg = HeadTrainConfig(
        data=[Path(args.data)],
        out=Path(args.out) if args.out else models_dir() / name,
        name=name,
        version=args.version or "1.0.0",
        base=args.base,
        eval_data=[Path(p) for p in args.eval_data],
        compare=args.compare if args.compare is not None else ["coco-nanodet", "city-v1"],
        tiles_per_image=args.tiles,
        epochs=args.epochs,
        batch=args.batch,
        lr=args.lr,
        seed=args.seed,
        work=Path(args.features) if args.features else None,
    )
    try:
        remeasure(cfg) if args.measure_only else run(cfg)
    except (DatasetError, GraphError, FileNotFoundError) as exc:
        return _fail(f"train head: {exc}")
    return 0


def _train_classifier(args: argparse.Namespace) -> int:
    """`train classifier`: vision.training.crop_classifier.main(args), imported only here."""
    import importlib

    try:
        module = importlib.import_module("vision.training.crop_classifier")
    except ModuleNotFoundError as exc:
        if exc.name not in ("vision.training.crop_classifier", "vision.training"):
            raise  # the module is there but one of its own imports is missing: show that
        print("train classifier: not available in this build", file=sys.stderr)
        return 2
    return int(module.main(args) or 0)


def _check_model_arg(model: str) -> str | None:
    """Why --model cannot be trained from, or None. Runs before ultralytics is imported."""
    if model.endswith(".pt"):
        if not Path(model).is_file():
            return (
                f"--model {model}: no such checkpoint. A .pt is fine-tuned from (e.g. "
                "runs/train/<name>/weights/best.pt); nothing is downloaded, so it must exist here"
            )
        return None
    if model.endswith(".yaml"):
        return None
    return (
        f"--model {model}: give an architecture YAML (yolov8n.yaml, yolo11n.yaml) or a .pt checkpoint to fine-tune from"
    )


def _train(args: argparse.Namespace) -> int:
    from vision.training.data.layout import Dataset, DatasetError, content_hash

    if not args.data:
        return _fail("--data is required to train the detector: a data set folder holding data.yaml, or the YAML")
    run_dir = Path(args.runs) / args.name
    try:
        ds = Dataset.load(args.data)
        ds.refuse_training()
    except DatasetError as exc:
        return _fail(str(exc))
    if "train" not in ds.splits or "val" not in ds.splits:
        return _fail(f"{ds.yaml_path}: needs 'train' and 'val' splits (run `streetvision data split`)")
    missing = _missing_splits_error(ds, ("train", "val"), "train")
    if missing:
        return _fail(missing)
    for field in ("epochs", "imgsz", "batch"):
        if getattr(args, field) < 1:
            return _fail(f"--{field} must be >= 1")
    if not args.resume and (why := _check_model_arg(args.model)):
        return _fail(why)
    from vision.training.adapter import TrainSpec, train

    spec = TrainSpec(
        ds.yaml_path, run_dir, args.model, args.epochs, args.imgsz, args.batch, args.seed, patience=args.patience
    )
    if not args.resume:
        run_dir.mkdir(parents=True, exist_ok=True)
        info: RunInfo = {
            "command": "streetvision train " + shlex.join(_argv_of(args)),
            "data": repo_relative(ds.root),
            "dataset_sha256": content_hash(ds),
            "model": args.model,
            "epochs": args.epochs,
            "imgsz": args.imgsz,
            "batch": args.batch,
            "seed": args.seed,
            "classes": ds.names,
        }
        parent = Path(args.model).parent.parent / RUN_INFO  # fine-tuning from runs/train/<x>/weights/best.pt
        if args.model.endswith(".pt") and parent.is_file():
            info["parent"] = json.loads(parent.read_text())
        (run_dir / RUN_INFO).write_text(json.dumps(info, indent=2))
    try:
        train(spec, resume=args.resume)
    except (FileNotFoundError, ValueError) as exc:
        return _fail(str(exc))
    best = run_dir / "weights" / "best.pt"
    print(f"trained: {best}")
    return 0


def _argv_of(args: argparse.Namespace) -> list[str]:
    out = [
        "--data",
        str(args.data),
        "--model",
        args.model,
        "--epochs",
        str(args.epochs),
        "--imgsz",
        str(args.imgsz),
        "--batch",
        str(args.batch),
        "--seed",
        str(args.seed),
        "--name",
        args.name,
    ]
    if args.runs != "runs/train":
        out += ["--runs", args.runs]
    return out


def _print_eval(res: EvalResult) -> None:
    print(f"{'class':14}{'mAP50':>8}{'mAP50-95':>10}{'P':>7}{'R':>7}{'n':>6}")
    for name, m in res.per_class.items():
        print(
            f"{name:14}{m['map50']:8.3f}{m['map50_95']:10.3f}{m['precision']:7.3f}{m['recall']:7.3f}{m['instances']:6d}"
        )
    print(f"{'all':14}{res.map50:8.3f}{res.map50_95:10.3f}")


def _eval_json(res: EvalResult) -> EvalSummary:
    return {"map50": res.map50, "map50_95": res.map50_95, "per_class": res.per_class, "speed_ms": res.speed_ms}


def _eval(args: argparse.Namespace) -> int:
    from vision.training.data.layout import Dataset, DatasetError

    weights = Path(args.weights)
    if not weights.is_file():
        return _fail(f"--weights: no such file {weights}")
    try:
        ds = Dataset.load(args.data)
        ds.image_dir(args.split)
    except DatasetError as exc:
        return _fail(str(exc))
    missing = _missing_splits_error(ds, (args.split,), f"eval --split {args.split}")
    if missing:
        return _fail(missing)
    from vision.training.adapter import evaluate

    out = Path(args.out)
    res = evaluate(weights, ds.yaml_path, args.split, args.imgsz, out, batch=args.batch)
    _print_eval(res)
    (res.save_dir / "metrics.json").write_text(
        json.dumps({"split": args.split, "weights": str(weights), **_eval_json(res)}, indent=2)
    )
    print(f"plots and metrics.json: {res.save_dir}")
    return 0


def _total_epochs(info: RunInfo) -> int:
    total = 0
    node: RunInfo | None = info
    while node:
        total += int(node.get("epochs") or 0)
        node = node.get("parent")
    return total


def _export(args: argparse.Namespace) -> int:
    from vision.core.model_registry import models_dir
    from vision.training.adapter import evaluate, export_onnx
    from vision.training.card import build_card, export_notes, write_card
    from vision.training.data.layout import Dataset, DatasetError, content_hash
    from vision.training.onnx_tools import latency_ms, quantize_int8

    run = Path(args.run)
    best = run / "weights" / "best.pt"
    if not best.is_file():
        return _fail(f"--run: {best} not found (train first)")
    info: RunInfo = json.loads((run / RUN_INFO).read_text()) if (run / RUN_INFO).is_file() else {}
    try:
        ds = Dataset.load(args.data or info.get("data") or "")
        ds.image_dir(args.split)
    except DatasetError as exc:
        return _fail(f"--data: {exc}")
    missing = _missing_splits_error(ds, (args.split,), f"export --split {args.split}")
    if missing:
        return _fail(missing)
    verbose = bool(getattr(args, "verbose", False))
    imgsz = int(info.get("imgsz") or 320)
    target = Path(args.models_dir) if args.models_dir else models_dir()
    target = target / args.name
    if target.exists() and any(target.iterdir()) and not args.force:
        return _fail(f"{target} exists; pass --force to replace it")
    target.mkdir(parents=True, exist_ok=True)
    onnx_path = export_onnx(best, imgsz)
    fp32 = target / "model.onnx"
    shutil.copyfile(onnx_path, fp32)
    int8 = quantize_int8(fp32, target / "model-int8.onnx", verbose=verbose)
    metrics: dict[str, Any] = {"split": args.split, "dataset": repo_relative(ds.root)}
    latency: dict[str, Any] = {}  # fp32/int8 -> latency_ms() figures, int8_file
    for label, path in (("fp32", fp32), ("int8", int8)):
        res = evaluate(
            path, ds.yaml_path, args.split, imgsz, run / "export_eval" / f"{args.name}-{label}", plots=label == "fp32"
        )
        metrics[label] = _eval_json(res)
        latency[label] = latency_ms(path, imgsz, threads=args.threads)
        print(f"{label}: mAP50 {res.map50:.3f} mAP50-95 {res.map50_95:.3f}, {latency[label]['median_ms']} ms median")
    metrics["map50"], metrics["map50_95"] = metrics["fp32"]["map50"], metrics["fp32"]["map50_95"]
    latency["int8_file"] = int8.name
    notes = export_notes(metrics, latency)
    for note in notes:
        print(f"warning: {note}", file=sys.stderr)
    lineage: list[str] = []
    node: RunInfo | None = info
    architecture = info.get("model", "")
    while node:
        lineage.insert(0, node.get("command", ""))
        architecture = node.get("model", architecture)
        node = node.get("parent")
    training = {
        "command": " && ".join(lineage),
        "total_epochs": _total_epochs(info),
        "dataset": repo_relative(info.get("data") or ds.root),
        "dataset_sha256": info.get("dataset_sha256") or content_hash(ds),
        "architecture": architecture,
        "fine_tuned_from": info.get("model") if info.get("parent") else None,
        "epochs": info.get("epochs"),
        "imgsz": imgsz,
        "batch": info.get("batch"),
        "seed": info.get("seed"),
        "export_command": "streetvision " + shlex.join(sys.argv[1:]) if sys.argv[1:2] == ["export"] else "",
    }
    card = build_card(
        args.name,
        args.version,
        fp32,
        ds.names,
        imgsz,
        metrics=metrics,
        latency=latency,
        training=training,
        description=f"YOLO ({architecture}) trained from scratch on synthetic composites over real footage.",
        notes=notes,
    )
    print(f"model card: {write_card(card, target)}")
    return 0


# --- a data set whose images are not there: what is missing, and how to make it again ---------------------------


def _show(path: str | Path) -> str:
    """A path as the user would type it: relative to the working folder when inside it."""
    p = Path(path).resolve()
    try:
        return p.relative_to(Path.cwd().resolve()).as_posix() or "."
    except ValueError:
        return str(p)


def _split_state(ds: Dataset, split: str) -> str | None:
    """None when the split has images, else 'missing' (no folder) or 'empty'."""
    folder = ds.image_dir(split)
    if not folder.is_dir():
        return "missing"
    return None if ds.images(split) else "empty"


def _missing_splits_error(ds: Dataset, needed: Iterable[str], command: str) -> str | None:
    """One paragraph (plus the commands) when a split `command` needs has no images, else None."""
    bad = [(s, state) for s in needed if (state := _split_state(ds, s))]
    if not bad:
        return None
    which = " and ".join(f"'{s}' ({_show(ds.image_dir(s))} is {state})" for s, state in bad)
    text = (
        f"{_show(ds.root)} has no images for split {which}; `streetvision {command}` needs "
        f"{'them' if len(bad) > 1 else 'it'}."
    )
    scratch = _scratch_dir()
    try:
        recipe = _recipe(ds, scratch / ds.root.name)
    except Exception:  # a damaged record must not hide the real message
        recipe = None
    if recipe:
        commands, notes = recipe
        missing = [s for s in ds.splits if _split_state(ds, s)]
        commands += _copy_back(ds, scratch / ds.root.name, missing)
        leftover = (
            " (remove what an earlier attempt left there first)" if scratch.is_dir() and any(scratch.iterdir()) else ""
        )
        return (
            text + " Git keeps only a bundled set's data.yaml, meta.jsonl, detection caches and test split; the "
            "rest is made again by the (deterministic) commands that built it. "
            + " ".join(notes)
            + f" `data synth` and `data merge` refuse an --out that is not empty, so rebuild under "
            f"{_show(scratch)}/{leftover} and copy the missing splits in:\n" + "\n".join("    " + c for c in commands)
        )
    merged = [name for name, _ in _merge_inputs(ds)]
    if merged:
        return (
            text + f" Its meta.jsonl says it was merged from {', '.join(merged)} ('merged_from'), but those data "
            f"sets are not found beside it or under datasets/ with a recorded way to rebuild them; rebuild them "
            f"(see datasets/README.md), then `streetvision data merge ... --out NEW_FOLDER`."
        )
    if ds.images():
        return (
            text + f" Its other splits have images: `streetvision data split --data {shlex.quote(_show(ds.root))}` "
            "divides them by scene."
        )
    return (
        text + f" {_show(ds.yaml_path)} records no way to rebuild it (no 'synth' in data.yaml, no 'merged_from' in "
        "meta.jsonl): put the images and labels in place (see datasets/README.md)."
    )


def _scratch_dir() -> Path:
    from vision.core.paths import REPO_ROOT

    return REPO_ROOT / SCRATCH


def _raw_yaml(ds: Dataset) -> dict[str, Any]:
    import yaml

    data = yaml.safe_load(ds.yaml_path.read_text(encoding="utf-8")) or {}
    return data if isinstance(data, dict) else {}


def _complete(ds: Dataset) -> bool:
    return all(_split_state(ds, s) is None for s in ds.splits)


def _recipe(ds: Dataset, out: Path, depth: int = 0) -> tuple[list[str], list[str]] | None:
    """The commands that build `ds` again into the empty folder `out`, and sentences saying
    where they come from; None when the data set does not record how it was made."""
    synth = _raw_yaml(ds).get("synth")
    if isinstance(synth, dict) and synth.get("images"):
        command, caveat = _synth_command(synth, out)
        return [command], [
            f"{ds.root.name} was made by `data synth` (seed {synth.get('seed', 0)}, {synth['images']} "
            f"images: its data.yaml 'synth'){caveat}."
        ]
    inputs = _merge_inputs(ds)
    if not inputs or depth > 3:
        return None
    from vision.training.data.layout import Dataset

    commands: list[str] = []
    notes: list[str] = []
    sources: list[MergeSource] = []
    for name, recorded in inputs:
        sub = _find_input(ds, name, recorded)
        if sub is None:
            return None
        if _complete(sub):
            sources.append(sub)
            notes.append(f"{_show(sub.root)} is complete and is used as it is.")
            continue
        steps = _recipe(sub, out.parent / name, depth + 1)
        if steps is None:
            return None
        commands += steps[0]
        notes += steps[1]
        sources.append((out.parent / name, sub.names))
    order, same_classes = _merge_order(sources, ds.names)
    paths = [s.root if isinstance(s, Dataset) else s[0] for s in order]
    merge = ["streetvision", "data", "merge", *map(_show, paths), "--out", _show(out)]
    if not same_classes:
        merge += ["--names", ",".join(ds.names)]
    commands.append(shlex.join(merge))
    names = [name for name, _ in inputs]
    listed = ", ".join(names[:-1]) + " and " + names[-1] if len(names) > 1 else names[0]
    notes.insert(0, f"{ds.root.name} was merged from {listed} (its meta.jsonl 'merged_from').")
    return commands, notes


def _names_of(source: MergeSource) -> list[str]:
    from vision.training.data.layout import Dataset

    return list(source.names) if isinstance(source, Dataset) else list(source[1])


def _union(name_lists: list[list[str]]) -> list[str]:
    out: list[str] = []
    for names in name_lists:
        out += [n for n in names if n not in out]
    return out


def _merge_order(sources: list[MergeSource], names: list[str]) -> tuple[list[MergeSource], bool]:
    """`data merge` orders classes by input order: the input order that gives `names` (and True),
    else the order given and False (the command then needs --names)."""
    import itertools

    if len(sources) <= 6:
        for perm in itertools.permutations(sources):
            if _union([_names_of(s) for s in perm]) == list(names):
                return list(perm), True
    return sources, False


def _merge_inputs(ds: Dataset) -> list[tuple[str, str]]:
    """(folder name, recorded path) of each data set `data merge` took images from, by name."""
    found: dict[str, str] = {}
    try:
        meta = ds.read_meta()
    except Exception:
        return []
    for rec in meta.values():
        src = rec.get("merged_from")
        if src:
            found.setdefault(Path(src).name, src)
    return sorted(found.items())


def _find_input(ds: Dataset, name: str, recorded: str) -> Dataset | None:
    """A merge input where it was recorded, beside the merged set, or under datasets/ (the
    record holds the building machine's absolute path)."""
    from vision.core.paths import REPO_ROOT
    from vision.training.data.layout import Dataset, DatasetError

    for candidate in (Path(recorded), ds.root.parent / name, REPO_ROOT / "datasets" / name):
        if (candidate / "data.yaml").is_file():
            try:
                return Dataset.load(candidate)
            except DatasetError:
                continue
    return None


def _relocate(recorded: str) -> Path:
    """A recorded source path; the same file under this repository when it has one (the recorded
    path may be another clone's, still present on this machine)."""
    from vision.core.paths import REPO_ROOT

    p = Path(recorded)
    if "datasets" not in p.parts:
        return p
    i = len(p.parts) - 1 - p.parts[::-1].index("datasets")
    moved = REPO_ROOT.joinpath(*p.parts[i:])
    return moved if moved.exists() else p


def _synth_defaults() -> dict[str, Any]:
    """`streetvision data synth`'s option defaults, read from its own parser."""
    from vision.cli import data_cmd

    parser = argparse.ArgumentParser()
    data_cmd.register(parser.add_subparsers(dest="command"))
    return vars(parser.parse_args(["data", "synth", "--out", "x"]))


def _synth_command(synth: dict[str, Any], out: Path) -> tuple[str, str]:
    """The `data synth` command line a data.yaml 'synth' record was made by, and a caveat
    when the record sets something the command has no option for."""
    from vision.core.paths import REPO_ROOT

    defaults = _synth_defaults()
    cfg = synth.get("config") or {}
    parts = ["streetvision", "data", "synth"]
    sources = [_relocate(s) for s in synth.get("sources") or []]
    bundled = (REPO_ROOT / "datasets" / "footage" / "vtest.avi").resolve()
    if sources and [p.resolve() for p in sources] != [bundled]:
        parts += [_show(p) if p.exists() else str(p) for p in sources]
    parts += [
        "--out",
        _show(out),
        "--images",
        str(synth["images"]),
        "--seed",
        str(synth.get("seed", cfg.get("seed", 0))),
    ]
    conf = cfg.get("min_confidence")
    if conf is not None and float(conf) != float(defaults["confidence"]):
        parts += ["--confidence", f"{float(conf):g}"]
    split = cfg.get("split")
    if isinstance(split, dict) and split:
        ratios = ",".join(f"{k}={float(v):g}" for k, v in split.items())
        default = ",".join(f"{k}={float(v):g}" for k, v in (p.split("=") for p in defaults["ratios"].split(",")))
        if ratios != default:
            parts += ["--ratios", ratios]
    wheels = cfg.get("two_wheelers")
    if wheels and float(wheels) != float(defaults["two_wheelers"]):
        parts += ["--two-wheelers", f"{float(wheels):g}"]
    caveat = ""
    try:
        import dataclasses

        from vision.training.data.synth.generator import SynthConfig

        cli = {"out", "sources", "images", "seed", "split", "min_confidence", "two_wheelers"}
        base = {f.name: f.default for f in dataclasses.fields(SynthConfig) if f.default is not dataclasses.MISSING}
        odd = [f"{k}={v}" for k, v in cfg.items() if k not in cli and k in base and v != base[k]]
        if odd:
            caveat = (
                f"; it also set {', '.join(odd)}, which `data synth` has no option for (the command uses "
                "today's defaults, so the images will differ)"
            )
    except Exception:
        pass
    return shlex.join(parts), caveat


def _copy_back(ds: Dataset, built: Path, splits: list[str]) -> list[str]:
    """cp commands putting the rebuilt set's `splits` (images and labels) into `ds`."""
    from vision.training.data.layout import label_path_for

    if not splits:
        return []
    mkdir: list[Path] = []
    grouped: dict[Path, list[Path]] = {}
    single: list[tuple[Path, Path]] = []
    for s in splits:
        img_dst = ds.image_dir(s)
        lbl_dst = label_path_for(img_dst / "x.jpg").parent
        for src, dst in ((built / "images" / s, img_dst), (built / "labels" / s, lbl_dst)):
            if dst.name == s:
                grouped.setdefault(dst.parent, []).append(src)
                if not dst.parent.is_dir():
                    mkdir.append(dst.parent)
            else:
                single.append((src, dst))
                mkdir.append(dst)
    out = [shlex.join(["mkdir", "-p", *dict.fromkeys(_show(p) for p in mkdir)])] if mkdir else []
    for dst, srcs in grouped.items():
        out.append(shlex.join(["cp", "-r", *(_show(p) for p in srcs), _show(dst) + "/"]))
    for src, dst in single:
        out.append(shlex.join(["cp", "-r", _show(src) + "/.", _show(dst) + "/"]))
    return out

"""`streetvision train|eval|export`: the model lifecycle after the data set.

Heavy imports (torch via ultralytics) stay inside the handlers.
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import sys
from pathlib import Path

RUN_INFO = "streetvision.json"


def register(sub: argparse._SubParsersAction) -> None:
    t = sub.add_parser("train", help="train a detector on a data set (ultralytics, CPU, offline)")
    t.add_argument("--data", required=True, help="data set folder (holding data.yaml) or the YAML")
    t.add_argument("--model", default="yolov8n.yaml", help="architecture: yolov8n.yaml or yolo11n.yaml (no pretrained weights)")
    t.add_argument("--epochs", type=int, default=50)
    t.add_argument("--imgsz", type=int, default=320)
    t.add_argument("--batch", type=int, default=8)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--patience", type=int, default=100)
    t.add_argument("--name", default="city", help="run name: runs/train/<name>")
    t.add_argument("--runs", default="runs/train", help="folder holding runs")
    t.add_argument("--resume", action="store_true", help="continue runs/train/<name> from weights/last.pt")
    t.set_defaults(handler=_train)

    e = sub.add_parser("eval", help="mAP50 and mAP50-95 per class on a held-out split, PR curve and confusion matrix")
    e.add_argument("--weights", required=True, help=".pt from a run, or an exported .onnx")
    e.add_argument("--data", required=True)
    e.add_argument("--split", default="test", help="held-out split never used in training (default test)")
    e.add_argument("--imgsz", type=int, default=320)
    e.add_argument("--batch", type=int, default=8)
    e.add_argument("--out", default="runs/eval/latest", help="folder for plots and metrics.json")
    e.set_defaults(handler=_eval)

    x = sub.add_parser("export", help="ONNX + int8 variant + model card into models/<name>/")
    x.add_argument("--run", required=True, help="training run folder (runs/train/<name>)")
    x.add_argument("--name", required=True, help="model name, e.g. city-v1")
    x.add_argument("--version", default="1.0.0")
    x.add_argument("--data", help="data set for measuring accuracy (default: the one trained on)")
    x.add_argument("--split", default="test")
    x.add_argument("--models-dir", default=None, help="default: models/ (STREETVISION_MODELS)")
    x.add_argument("--threads", type=int, default=1, help="onnxruntime threads for the latency measurement")
    x.add_argument("--force", action="store_true", help="replace an existing models/<name>/")
    x.set_defaults(handler=_export)


def _data_yaml(arg: str) -> Path:
    from vision.data.layout import Dataset

    return Dataset.load(arg).yaml_path


def _rel(path) -> str:
    """Repo-relative where possible, so cards and run info do not carry this machine's paths."""
    from vision import REPO_ROOT

    p = Path(path).resolve()
    try:
        return p.relative_to(REPO_ROOT).as_posix()
    except ValueError:
        return str(p)


def _fail(msg: str) -> int:
    print(f"error: {msg}", file=sys.stderr)
    return 2


def _train(args: argparse.Namespace) -> int:
    from vision.data.layout import Dataset, DatasetError, content_hash
    from vision.training.adapter import TrainSpec, train

    run_dir = Path(args.runs) / args.name
    try:
        ds = Dataset.load(args.data)
    except DatasetError as exc:
        return _fail(str(exc))
    if "train" not in ds.splits or "val" not in ds.splits:
        return _fail(f"{ds.yaml_path}: needs 'train' and 'val' splits (run `streetvision data split`)")
    for field in ("epochs", "imgsz", "batch"):
        if getattr(args, field) < 1:
            return _fail(f"--{field} must be >= 1")
    spec = TrainSpec(ds.yaml_path, run_dir, args.model, args.epochs, args.imgsz, args.batch, args.seed, patience=args.patience)
    if not args.resume:
        run_dir.mkdir(parents=True, exist_ok=True)
        info = {
            "command": "streetvision train " + shlex.join(_argv_of(args)),
            "data": _rel(ds.root),
            "dataset_sha256": content_hash(ds),
            "model": args.model, "epochs": args.epochs, "imgsz": args.imgsz, "batch": args.batch, "seed": args.seed,
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
    out = ["--data", str(args.data), "--model", args.model, "--epochs", str(args.epochs), "--imgsz", str(args.imgsz),
           "--batch", str(args.batch), "--seed", str(args.seed), "--name", args.name]
    if args.runs != "runs/train":
        out += ["--runs", args.runs]
    return out


def _print_eval(res) -> None:
    print(f"{'class':14}{'mAP50':>8}{'mAP50-95':>10}{'P':>7}{'R':>7}{'n':>6}")
    for name, m in res.per_class.items():
        print(f"{name:14}{m['map50']:8.3f}{m['map50_95']:10.3f}{m['precision']:7.3f}{m['recall']:7.3f}{m['instances']:6d}")
    print(f"{'all':14}{res.map50:8.3f}{res.map50_95:10.3f}")


def _eval_json(res) -> dict:
    return {"map50": res.map50, "map50_95": res.map50_95, "per_class": res.per_class, "speed_ms": res.speed_ms}


def _eval(args: argparse.Namespace) -> int:
    from vision.data.layout import Dataset, DatasetError
    from vision.training.adapter import evaluate

    weights = Path(args.weights)
    if not weights.is_file():
        return _fail(f"--weights: no such file {weights}")
    try:
        ds = Dataset.load(args.data)
        ds.image_dir(args.split)
    except DatasetError as exc:
        return _fail(str(exc))
    if not ds.images(args.split):
        return _fail(f"--split {args.split}: no images in {ds.image_dir(args.split)}")
    out = Path(args.out)
    res = evaluate(weights, ds.yaml_path, args.split, args.imgsz, out, batch=args.batch)
    _print_eval(res)
    (res.save_dir / "metrics.json").write_text(json.dumps({"split": args.split, "weights": str(weights), **_eval_json(res)}, indent=2))
    print(f"plots and metrics.json: {res.save_dir}")
    return 0


def _total_epochs(info: dict) -> int:
    total = 0
    while info:
        total += int(info.get("epochs") or 0)
        info = info.get("parent")
    return total


def _export(args: argparse.Namespace) -> int:
    from vision.data.layout import Dataset, DatasetError, content_hash
    from vision.model_registry import models_dir
    from vision.training.adapter import evaluate, export_onnx
    from vision.training.card import build_card, write_card
    from vision.training.onnx_tools import latency_ms, quantize_int8

    run = Path(args.run)
    best = run / "weights" / "best.pt"
    if not best.is_file():
        return _fail(f"--run: {best} not found (train first)")
    info = json.loads((run / RUN_INFO).read_text()) if (run / RUN_INFO).is_file() else {}
    try:
        ds = Dataset.load(args.data or info.get("data") or "")
    except DatasetError as exc:
        return _fail(f"--data: {exc}")
    imgsz = int(info.get("imgsz") or 320)
    target = Path(args.models_dir) if args.models_dir else models_dir()
    target = target / args.name
    if target.exists() and any(target.iterdir()) and not args.force:
        return _fail(f"{target} exists; pass --force to replace it")
    target.mkdir(parents=True, exist_ok=True)
    onnx_path = export_onnx(best, imgsz)
    fp32 = target / "model.onnx"
    shutil.copyfile(onnx_path, fp32)
    int8 = quantize_int8(fp32, target / "model-int8.onnx")
    metrics, latency = {"split": args.split, "dataset": _rel(ds.root)}, {}
    for label, path in (("fp32", fp32), ("int8", int8)):
        res = evaluate(path, ds.yaml_path, args.split, imgsz, run / "export_eval" / f"{args.name}-{label}", plots=label == "fp32")
        metrics[label] = _eval_json(res)
        latency[label] = latency_ms(path, imgsz, threads=args.threads)
        print(f"{label}: mAP50 {res.map50:.3f} mAP50-95 {res.map50_95:.3f}, {latency[label]['median_ms']} ms median")
    metrics["map50"], metrics["map50_95"] = metrics["fp32"]["map50"], metrics["fp32"]["map50_95"]
    latency["int8_file"] = int8.name
    lineage, node, architecture = [], info, info.get("model", "")
    while node:
        lineage.insert(0, node.get("command", ""))
        architecture = node.get("model", architecture)
        node = node.get("parent")
    training = {
        "command": " && ".join(lineage),
        "total_epochs": _total_epochs(info),
        "dataset": _rel(info.get("data") or ds.root),
        "dataset_sha256": info.get("dataset_sha256") or content_hash(ds),
        "architecture": architecture,
        "fine_tuned_from": info.get("model") if info.get("parent") else None,
        "epochs": info.get("epochs"), "imgsz": imgsz, "batch": info.get("batch"), "seed": info.get("seed"),
        "export_command": "streetvision " + shlex.join(sys.argv[1:]) if sys.argv[1:2] == ["export"] else "",
    }
    card = build_card(args.name, args.version, fp32, ds.names, imgsz, metrics=metrics, latency=latency, training=training,
                      description=f"YOLO ({architecture}) trained from scratch on synthetic composites over real footage.")
    print(f"model card: {write_card(card, target)}")
    return 0

"""The one module that talks to ultralytics (train, val, ONNX export).

Why an adapter: ultralytics has import-time side effects (network probes,
settings files, thread counts), run-time pip installs and large, shifting
APIs. Everything else in StreetVision sees plain dataclasses and paths, and
the edge never imports it (it runs the exported ONNX on onnxruntime).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vision.edge.detection.ultralytics_env import prepare_offline

if TYPE_CHECKING:
    from ultralytics.models import YOLO

ARCHITECTURES = ("yolov8n.yaml", "yolo11n.yaml")


@dataclass
class TrainSpec:
    data_yaml: Path
    run_dir: Path  # <project>/<name>
    model: str = "yolov8n.yaml"
    epochs: int = 50
    imgsz: int = 320
    batch: int = 8
    seed: int = 0
    workers: int = 0
    patience: int = 100
    extra: dict[str, Any] = field(default_factory=dict)  # more keyword arguments for ultralytics' train()


@dataclass
class EvalResult:
    map50: float
    map50_95: float
    per_class: dict[str, dict[str, float]]  # class -> {map50, map50_95, precision, recall, instances}
    save_dir: Path
    plots: list[Path]
    speed_ms: dict[str, float]


def _yolo(weights_or_cfg: str | Path, task: str = "detect") -> YOLO:
    prepare_offline()
    from ultralytics.models import YOLO

    return YOLO(str(weights_or_cfg), task=task)


def train(spec: TrainSpec, resume: bool = False) -> Path:
    """Train (or resume) and return the run folder holding weights/best.pt."""
    if spec.model not in ARCHITECTURES and not str(spec.model).endswith((".yaml", ".pt")):
        raise ValueError(
            f"model must be an architecture YAML ({', '.join(ARCHITECTURES)}: random weights) "
            f"or a .pt checkpoint to fine-tune from, got {spec.model!r}"
        )
    if not resume and str(spec.model).endswith(".pt") and not Path(spec.model).is_file():
        # ultralytics would try to download a .pt it does not find (yolov8n.pt, ...)
        raise FileNotFoundError(
            f"model {spec.model}: no such checkpoint (no pretrained weights are downloaded here; "
            "fine-tune from a run's weights/best.pt)"
        )
    last = spec.run_dir / "weights" / "last.pt"
    if resume:
        if not last.is_file():
            raise FileNotFoundError(f"nothing to resume: {last} does not exist")
        if not _resumable(last):
            # ultralytics 8.4 would silently start a new 100-epoch run elsewhere
            raise ValueError(f"nothing to resume: {spec.run_dir} finished (its last.pt has no optimizer state)")
        # ultralytics 8.4 replaces the checkpoint's data with its default (coco8.yaml,
        # a download) unless data is given again
        try:
            _yolo(last).train(resume=True, data=str(spec.data_yaml), device="cpu", workers=int(spec.workers))
        except AssertionError as exc:  # "training to N epochs is finished, nothing to resume"
            raise ValueError(f"cannot resume {spec.run_dir}: {str(exc).splitlines()[0]}") from None
        return spec.run_dir
    model = _yolo(spec.model)
    model.train(
        data=str(spec.data_yaml),
        epochs=int(spec.epochs),
        imgsz=int(spec.imgsz),
        batch=int(spec.batch),
        seed=int(spec.seed),
        deterministic=True,
        workers=int(spec.workers),
        patience=int(spec.patience),
        device="cpu",
        project=str(spec.run_dir.parent.resolve()),
        name=spec.run_dir.name,
        exist_ok=True,
        pretrained=str(spec.model).endswith(".pt"),  # a .pt is fine-tuned from its weights; a YAML starts from scratch
        amp=False,
        plots=True,
        verbose=False,
        **spec.extra,
    )
    return spec.run_dir


def _resumable(last: Path) -> bool:
    """An unfinished run's last.pt carries the epoch and optimizer state; a finished one is stripped."""
    prepare_offline()
    import torch

    try:
        ckpt = torch.load(str(last), map_location="cpu", weights_only=False)
    except Exception as exc:  # torch raises RuntimeError/EOFError/UnpicklingError for damaged files
        raise ValueError(
            f"cannot resume from {last}: unreadable ({str(exc).splitlines()[0]}); "
            "it was probably interrupted while saving"
        ) from None
    return isinstance(ckpt, dict) and ckpt.get("optimizer") is not None and int(ckpt.get("epoch", -1)) >= 0


def evaluate(
    weights: Path, data_yaml: Path, split: str, imgsz: int, out_dir: Path, batch: int = 8, plots: bool = True
) -> EvalResult:
    """mAP on one split with ultralytics' validator; works for .pt and .onnx."""
    model = _yolo(weights)
    res = model.val(
        data=str(data_yaml),
        split=split,
        imgsz=int(imgsz),
        batch=int(batch),
        device="cpu",
        plots=plots,
        project=str(out_dir.parent.resolve()),
        name=out_dir.name,
        exist_ok=True,
        verbose=False,
        workers=0,
    )
    names = res.names
    per_class: dict[str, dict[str, float]] = {}
    nt = getattr(res, "nt_per_class", None)
    for i, c in enumerate(res.box.ap_class_index):
        p, r, ap50, ap = res.box.class_result(i)
        per_class[names[int(c)]] = {
            "map50": round(float(ap50), 4),
            "map50_95": round(float(ap), 4),
            "precision": round(float(p), 4),
            "recall": round(float(r), 4),
            "instances": int(nt[int(c)]) if nt is not None else -1,
        }
    save_dir = Path(res.save_dir)
    return EvalResult(
        map50=round(float(res.box.map50), 4),
        map50_95=round(float(res.box.map), 4),
        per_class=per_class,
        save_dir=save_dir,
        plots=sorted(save_dir.glob("*.png")),
        speed_ms={k: round(float(v), 2) for k, v in (res.speed or {}).items()},
    )


def export_onnx(weights: Path, imgsz: int, opset: int | None = None) -> Path:
    """ONNX with ultralytics' metadata (names, imgsz, stride); output (1, 4+nc, N)."""
    model = _yolo(weights)
    kwargs = {"format": "onnx", "imgsz": int(imgsz), "dynamic": False, "simplify": True, "device": "cpu"}
    if opset:
        kwargs["opset"] = int(opset)
    return Path(model.export(**kwargs))


def train_classifier(data_dir: Path, run_dir: Path, epochs: int, imgsz: int, batch: int = 16, seed: int = 0) -> Path:
    """Image classifier (folders train/<class>, val/<class>) from yolov8n-cls.yaml."""
    model = _yolo("yolov8n-cls.yaml", task="classify")
    model.train(
        data=str(data_dir),
        epochs=int(epochs),
        imgsz=int(imgsz),
        batch=int(batch),
        seed=int(seed),
        workers=0,
        device="cpu",
        project=str(run_dir.parent.resolve()),
        name=run_dir.name,
        exist_ok=True,
        pretrained=False,
        amp=False,
        plots=False,
        verbose=False,
    )
    return run_dir

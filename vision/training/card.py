"""Model card for an exported detector, validated by vision.core.model_registry's schema."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from vision.core.model_registry import InputSpec, ModelCard, sha256_file

DATA_LICENCE = (
    "Training images: footage datasets/footage/vtest.avi (Debian opencv-doc, Apache-2.0 AND BSD-3-Clause) "
    "composited with photo cut-outs and textures from Debian tuxpaint-stamps-default/tuxpaint-data (GPL-2) "
    "and gimp-data(-extras) (GPL-2+/GPL-3+), see datasets/assets/objects/NOTICE.md; the model is a derivative "
    "of that data: treat it as GPL-2 compatible."
)


NEAR_ZERO_MAP50 = 0.05


def export_notes(metrics: dict[str, Any], latency: dict[str, Any]) -> list[str]:
    """Warnings about an export from its own measurements: the int8 variant
    slower than fp32 (median session.run), or an fp32 mAP50 below
    NEAR_ZERO_MAP50 on the evaluation split. One sentence each."""
    notes: list[str] = []
    fp32, int8 = latency.get("fp32") or {}, latency.get("int8") or {}
    f_ms, i_ms = fp32.get("median_ms"), int8.get("median_ms")
    if f_ms is not None and i_ms is not None and float(i_ms) > float(f_ms):
        threads = fp32.get("threads")
        setup = ", ".join(
            filter(
                None,
                [
                    f"{threads} thread{'s' if threads != 1 else ''}" if threads else "",
                    f"{fp32['imgsz']} px" if fp32.get("imgsz") else "",
                ],
            )
        )
        notes.append(
            f"int8 variant is slower than fp32 in this export's latency measurement ({float(i_ms):.2f} ms vs "
            f"{float(f_ms):.2f} ms median{', ' + setup if setup else ''}): "
            f"{latency.get('int8_file', 'model-int8.onnx')} gains nothing here; run the fp32 model"
        )
    map50 = metrics.get("map50", (metrics.get("fp32") or {}).get("map50"))
    if map50 is not None and float(map50) < NEAR_ZERO_MAP50:
        where = f"the {metrics['split']} split" if metrics.get("split") else "the evaluation split"
        if metrics.get("dataset"):
            where += f" of {metrics['dataset']}"
        notes.append(f"mAP50 {float(map50):.3f} on {where}: this model finds almost nothing; do not roll it out")
    return notes


def build_card(
    name: str,
    version: str,
    model_file: Path,
    classes: list[str],
    imgsz: int,
    *,
    metrics: dict[str, Any],
    latency: dict[str, Any],
    training: dict[str, Any],
    description: str = "",
    source: str = "",
    notes: list[str] | None = None,
) -> ModelCard:
    """`notes` (warnings from `export_notes`) go to `metrics.notes`: the card
    schema (vision.core.model_registry.ModelCard) has no top-level notes field."""
    if notes:
        metrics = {**metrics, "notes": list(notes)}
    return ModelCard(
        name=name,
        version=version,
        backend="yolo-onnx",
        file=model_file.name,
        sha256=sha256_file(model_file),
        classes=list(classes),
        input=InputSpec(
            width=imgsz,
            height=imgsz,
            layout="NCHW",
            color="RGB",
            resize="letterbox",
            mean=(0.0, 0.0, 0.0),
            std=(255.0, 255.0, 255.0),
        ),
        source=source
        or "trained by `streetvision train` (ultralytics, from scratch) and exported by `streetvision export`",
        licence=DATA_LICENCE,
        description=description,
        metrics=metrics,
        latency=latency,
        training=training,
    )


def write_card(card: ModelCard, directory: Path) -> Path:
    data = card.model_dump(mode="json", exclude={"directory"})
    path = directory / "card.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=120), encoding="utf-8")
    return path

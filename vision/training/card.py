"""Model card for an exported detector, validated by vision.model_registry's schema."""

from __future__ import annotations

from pathlib import Path

import yaml

from vision.model_registry import InputSpec, ModelCard, sha256_file

DATA_LICENCE = (
    "Training images: footage datasets/footage/vtest.avi (Debian opencv-doc, Apache-2.0 AND BSD-3-Clause) "
    "composited with photo cut-outs and textures from Debian tuxpaint-stamps-default/tuxpaint-data (GPL-2) "
    "and gimp-data(-extras) (GPL-2+/GPL-3+), see datasets/assets/objects/NOTICE.md; the model is a derivative "
    "of that data: treat it as GPL-2 compatible."
)


def build_card(name: str, version: str, model_file: Path, classes: list[str], imgsz: int, *, metrics: dict, latency: dict,
               training: dict, description: str = "", source: str = "") -> ModelCard:
    return ModelCard(
        name=name,
        version=version,
        backend="yolo-onnx",
        file=model_file.name,
        sha256=sha256_file(model_file),
        classes=list(classes),
        input=InputSpec(width=imgsz, height=imgsz, layout="NCHW", color="RGB", resize="letterbox",
                        mean=(0.0, 0.0, 0.0), std=(255.0, 255.0, 255.0)),
        source=source or "trained by `streetvision train` (ultralytics, from scratch) and exported by `streetvision export`",
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

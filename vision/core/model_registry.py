"""Models by name: `models/<name>/card.yaml` says which file, backend and classes.

The edge daemon and every command load a model through here, so the name and
version stamped on a case are the ones in the card that was loaded.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from vision.core.paths import REPO_ROOT

Backend = Literal[
    "nanodet-onnx", "yolo-onnx", "ultralytics", "embedder-onnx", "plate-detector-onnx", "plate-reader-onnx"
]


def models_dir() -> Path:
    return Path(os.environ.get("STREETVISION_MODELS", REPO_ROOT / "models"))


class InputSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    width: int = Field(gt=0)
    height: int = Field(gt=0)
    layout: Literal["NCHW", "NHWC"] = "NCHW"
    color: Literal["BGR", "RGB"] = "BGR"
    resize: Literal["stretch", "letterbox"] = "stretch"
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)


class HeadSpec(BaseModel):
    """One class head of a detector with several (nanodet-onnx): the COCO head and a
    head trained for the city classes on the same network. Outputs per stride, finest first."""

    model_config = ConfigDict(extra="forbid")
    classes: list[str] = Field(min_length=1)
    scores: list[str] = Field(min_length=1, description="[1, cells, len(classes)] outputs, sigmoid applied")
    boxes: list[str] = Field(min_length=1, description="[1, cells, 4 x bins] box distribution outputs")

    @model_validator(mode="after")
    def _one_box_per_score(self) -> HeadSpec:
        if len(self.scores) != len(self.boxes):
            raise ValueError(f"heads: {len(self.scores)} score outputs but {len(self.boxes)} box outputs")
        return self


class ModelCard(BaseModel):
    """What a model is, where it came from and how it measured."""

    model_config = ConfigDict(extra="forbid")
    name: str
    version: str
    backend: Backend
    file: str = Field(description="Model file, relative to the card.")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    classes: list[str] = Field(min_length=1)
    input: InputSpec
    source: str = ""
    licence: str = ""
    description: str = ""
    metrics: dict[str, object] = Field(default_factory=dict)
    latency: dict[str, object] = Field(default_factory=dict)
    training: dict[str, object] = Field(default_factory=dict)
    heads: list[HeadSpec] = Field(
        default_factory=list, description="nanodet-onnx with several class heads; empty: one head, found by shape"
    )

    # set when loaded from disk
    directory: Path | None = Field(default=None, exclude=True)

    @model_validator(mode="after")
    def _heads_cover_classes(self) -> ModelCard:
        if self.heads and [c for h in self.heads for c in h.classes] != self.classes:
            raise ValueError("classes must be the heads' classes in order (heads[0].classes + heads[1].classes ...)")
        return self

    @property
    def path(self) -> Path:
        base = self.directory or models_dir() / self.name
        return base / self.file


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class ModelNotFound(LookupError):
    pass


def card_dir(name_or_dir: str | Path) -> Path:
    """Where a model's card lives: a directory holding card.yaml, or models/<name>."""
    candidate = Path(name_or_dir)
    return candidate if (candidate / "card.yaml").is_file() else models_dir() / str(name_or_dir)


def load_card(name_or_dir: str | Path) -> ModelCard:
    """A card by model name (under models/) or by a directory holding card.yaml."""
    directory = card_dir(name_or_dir)
    card_file = directory / "card.yaml"
    if not card_file.is_file():
        known = ", ".join(available_models()) or "none"
        raise ModelNotFound(f"no model '{name_or_dir}' (looked for {card_file}; available: {known})")
    card = ModelCard.model_validate(yaml.safe_load(card_file.read_text(encoding="utf-8")))
    card.directory = directory
    return card


def available_models() -> list[str]:
    root = models_dir()
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / "card.yaml").is_file())


def verify_card(card: ModelCard) -> None:
    """Refuse a model file whose bytes are not the ones the card describes."""
    actual = sha256_file(card.path)
    if actual != card.sha256:
        raise ValueError(f"model {card.name}: {card.path} has sha256 {actual}, card says {card.sha256}")

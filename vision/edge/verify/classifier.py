"""The crop classifier: a linear head over the pretrained backbone's features.

Why linear: the backbone already separates real objects well; a softmax head
over its 1280 features trains on CPU in seconds from a few hundred crops
(reviewed cases plus synthetic ones) and cannot memorise a background the way
a detector trained from scratch does. The head lives in `head.npz` next to its
`card.yaml` (labels, backbone and its sha256, metrics), and rolls out like a
detector: a new version in `models/<name>/` is picked up by the daemon.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field

from vision.core.model_registry import ModelNotFound, card_dir, models_dir, sha256_file
from vision.edge.verify.embedder import CropEmbedder

# What the classifier names a crop. Violation labels first, then the negatives.
LABELS = [
    "vendor_stall",
    "garbage",
    "bicycle",
    "motorcycle",
    "muddy_truck",
    "truck",
    "bus",
    "car",
    "bin",
    "person",
    "background",
]

# ImageNet classes grouped into what the verifier can use zero-shot (objects no crop of ours showed).
IMAGENET_GROUPS: dict[str, list[str]] = {
    "bus": ["school bus", "trolleybus", "minibus", "passenger car", "streetcar"],
    "car": [
        "sports car",
        "convertible",
        "cab",
        "limousine",
        "minivan",
        "jeep",
        "beach wagon",
        "racer",
        "Model T",
        "police van",
        "ambulance",
        "car wheel",
        "grille",
    ],
    "truck": [
        "garbage truck",
        "trailer truck",
        "tow truck",
        "pickup",
        "moving van",
        "fire engine",
        "tractor",
        "harvester",
        "forklift",
        "half track",
        "snowplow",
        "thresher",
    ],
    "two_wheeler": ["mountain bike", "bicycle-built-for-two", "tricycle", "unicycle", "moped", "motor scooter"],
    "bin": ["ashcan", "rain barrel", "barrel", "bucket", "milk can"],
}

DEFAULT_CLASSIFIER = "crop-verifier"


class ClassifierCard(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    version: str
    kind: str = "crop-classifier"
    file: str = "head.npz"
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    labels: list[str] = Field(min_length=2)
    backbone: str
    backbone_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    context: float = Field(default=0.15, ge=0, le=1, description="Box widened by this much before cropping.")
    description: str = ""
    metrics: dict[str, object] = Field(default_factory=dict)
    training: dict[str, object] = Field(default_factory=dict)
    directory: Path | None = Field(default=None, exclude=True)

    @property
    def path(self) -> Path:
        return (self.directory or models_dir() / self.name) / self.file


def load_classifier_card(name_or_dir: str | Path) -> ClassifierCard:
    directory = card_dir(name_or_dir)
    card_file = directory / "card.yaml"
    if not card_file.is_file():
        raise ModelNotFound(f"no crop classifier '{name_or_dir}' (looked for {card_file})")
    card = ClassifierCard.model_validate(yaml.safe_load(card_file.read_text(encoding="utf-8")))
    card.directory = directory
    actual = sha256_file(card.path)
    if actual != card.sha256:
        raise ValueError(f"classifier {card.name}: {card.path} has sha256 {actual}, card says {card.sha256}")
    return card


@dataclass(frozen=True)
class CropVerdict:
    label: str
    score: float  # probability of `label`
    probs: dict[str, float]
    imagenet: dict[str, float] = field(default_factory=dict)  # IMAGENET_GROUPS -> summed probability


@dataclass
class LinearHead:
    """softmax(W @ standardised(l2-normalised features) + b)."""

    labels: list[str]
    weight: np.ndarray  # (C, D)
    bias: np.ndarray  # (C,)
    mean: np.ndarray  # (D,)
    scale: np.ndarray  # (D,)

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        z = self.transform(features) @ self.weight.T + self.bias
        z -= z.max(axis=1, keepdims=True)
        e = np.exp(z)
        probabilities: np.ndarray = e / e.sum(axis=1, keepdims=True)
        return probabilities

    def transform(self, features: np.ndarray) -> np.ndarray:
        f = features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-9)
        standardised: np.ndarray = (f - self.mean) / self.scale
        return standardised

    def save(self, path: Path) -> None:
        np.savez(
            path, labels=np.asarray(self.labels), weight=self.weight, bias=self.bias, mean=self.mean, scale=self.scale
        )

    @classmethod
    def load(cls, path: Path) -> LinearHead:
        with np.load(path, allow_pickle=False) as z:
            return cls([str(x) for x in z["labels"]], z["weight"], z["bias"], z["mean"], z["scale"])


class CropClassifier:
    """Names boxes of a frame: one `CropVerdict` per box."""

    thread_safe = True

    def __init__(self, card: ClassifierCard, embedder: CropEmbedder | None = None, *, threads: int = 1):
        self.card = card
        self.name, self.version = card.name, card.version
        self.embedder = embedder or CropEmbedder(card.backbone, threads=threads)
        if self.embedder.card.sha256 != card.backbone_sha256:
            raise ValueError(
                f"classifier {card.name} was trained on backbone sha256 {card.backbone_sha256[:12]}…, "
                f"but {self.embedder.card.name} is {self.embedder.card.sha256[:12]}…"
            )
        self.head = LinearHead.load(card.path)
        names = self.embedder.imagenet_classes
        self._groups = {g: [names.index(n) for n in members if n in names] for g, members in IMAGENET_GROUPS.items()}

    def classify(self, image: np.ndarray, boxes_xyxy: np.ndarray) -> list[CropVerdict]:
        feats, imagenet = self.embedder.embed(image, boxes_xyxy, self.card.context)
        return self.verdicts(feats, imagenet)

    def verdicts(self, feats: np.ndarray, imagenet: np.ndarray) -> list[CropVerdict]:
        if len(feats) == 0:
            return []
        probs = self.head.probabilities(feats)
        out = []
        for p, q in zip(probs, imagenet, strict=True):
            k = int(np.argmax(p))
            groups = {g: float(q[idx].sum()) for g, idx in self._groups.items()}
            out.append(
                CropVerdict(
                    self.head.labels[k], float(p[k]), dict(zip(self.head.labels, map(float, p), strict=True)), groups
                )
            )
        return out


def load_classifier(name: str | Path = DEFAULT_CLASSIFIER, *, threads: int = 1) -> CropClassifier:
    return CropClassifier(load_classifier_card(name), threads=threads)

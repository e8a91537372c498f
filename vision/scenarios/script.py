"""A scenario: real footage (or a still picture filmed as footage) plus objects that
appear, stay, move and leave on a timeline, in daylight, at dusk or in the rain.

The same script drives the one-command demo and the scenario benchmark, and
says which violations a correct system should report (the ground truth) and
which objects are distractors that must never become cases.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from vision.core.paths import REPO_ROOT
from vision.core.plates import is_plate, normalise_plate
from vision.edge.config import RelPoint, ViolationType
from vision.training.data.layout import IMAGE_SUFFIXES
from vision.training.data.synth.plates import PlateStyle
from vision.training.data.synth.scene import VIDEO_SUFFIXES

# Paths may start and end off-screen (a truck driving in and out of view).
PathPoint = tuple[Annotated[float, Field(ge=-0.5, le=1.5)], Annotated[float, Field(ge=-0.5, le=1.5)]]

Condition = Literal["day", "dusk", "rain"]
ObjectKind = Literal["vendor_stall", "garbage", "bikes", "muddy_truck", "clean_truck", "moving_bike", "bin"]

# What each kind, if it stays long enough in the right zone, should be reported as.
VIOLATION_OF: dict[str, ViolationType | None] = {
    "vendor_stall": "street_vending",
    "garbage": "exposed_garbage",
    "bikes": "non_motor_parking",
    "muddy_truck": "muddy_truck",
    "clean_truck": None,
    "moving_bike": None,
    "bin": None,
}


class ScriptedObject(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: ObjectKind
    start_s: float = Field(ge=0, description="Scenario second at which it appears.")
    end_s: float | None = Field(default=None, description="Second at which it leaves; None = stays to the end.")
    at: RelPoint | None = Field(
        default=None, description="Foot point (bottom centre), relative 0-1, for objects that stand."
    )
    path: list[PathPoint] | None = Field(
        default=None, description="From and to foot points for objects that move (straight line, start_s to end_s)."
    )
    count: int = Field(default=1, ge=1, le=12, description="Bikes in the row.")
    spacing: float = Field(default=0.035, gt=0, description="Relative x distance between bikes in a row.")
    seed: int = 0
    plate: str | None = Field(
        default=None, description="A truck's plate number, painted large on its body as lorries carry it (放大号)."
    )
    plate_style: PlateStyle = Field(default="yellow", description="The plate's colour and layout.")
    plate_width_m: float = Field(default=1.5, gt=0.2, le=3.0, description="Width of the painted plate, metres.")

    @model_validator(mode="after")
    def _where(self) -> ScriptedObject:
        moving = self.kind in ("muddy_truck", "clean_truck", "moving_bike")
        if moving and (self.path is None or len(self.path) != 2 or self.end_s is None):
            raise ValueError(f"{self.kind}: a moving object needs path: [from, to] and end_s")
        if not moving and self.at is None:
            raise ValueError(f"{self.kind}: a standing object needs at: [x, y]")
        if self.end_s is not None and self.end_s <= self.start_s:
            raise ValueError("end_s must be after start_s")
        if self.plate is not None:
            if self.kind not in ("muddy_truck", "clean_truck"):
                raise ValueError(f"{self.kind}: only trucks carry a plate")
            if not is_plate(normalise_plate(self.plate)):
                raise ValueError(f"plate {self.plate!r} is no Chinese plate number (province, letter, 5 or 6 symbols)")
            self.plate = normalise_plate(self.plate)
        return self

    @property
    def violation(self) -> ViolationType | None:
        return VIOLATION_OF[self.kind]

    def active(self, t: float) -> bool:
        return t >= self.start_s and (self.end_s is None or t < self.end_s)


class Scenario(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    description: str = ""
    background: str = Field(
        default="datasets/footage/vtest.avi",
        description="Real footage or a still picture (datasets/backgrounds), relative to the repo. A still becomes "
        "footage of duration_s with per-frame sensor noise and a slow brightness drift.",
    )
    duration_s: float = Field(gt=0)
    fps: float | None = Field(
        default=None,
        gt=0,
        description="Video frame rate; default the footage's (10 for a still). Lower renders faster (every n-th frame).",
    )
    condition: Condition = Field(
        default="day", description="Light and weather applied to every frame after compositing."
    )
    seed: int = Field(default=0, description="Seed of the sensor noise, drift and condition (rain streaks, dusk cast).")
    site: str | None = Field(
        default=None,
        description="Site config the scenario is meant for (zones, dwell times); the suite scores it there.",
    )
    objects: list[ScriptedObject] = Field(default_factory=list)

    @model_validator(mode="after")
    def _background_kind(self) -> Scenario:
        suffix = Path(self.background).suffix.lower()
        if suffix not in VIDEO_SUFFIXES and suffix not in IMAGE_SUFFIXES:
            raise ValueError(
                f"background '{self.background}' is neither a video ({', '.join(VIDEO_SUFFIXES)}) "
                f"nor a picture ({', '.join(IMAGE_SUFFIXES)})"
            )
        return self

    @property
    def still(self) -> bool:
        return Path(self.background).suffix.lower() in IMAGE_SUFFIXES

    @property
    def background_path(self) -> Path:
        p = Path(self.background)
        return p if p.is_absolute() else REPO_ROOT / p


def load_scenario(path: str | Path) -> Scenario:
    return Scenario.model_validate(yaml.safe_load(Path(path).read_text(encoding="utf-8")))

"""Render a scenario to a video plus its ground truth.

Objects are composited with the data set builder's compositor (perspective
scale at their foot, colour matched to the spot, contact shadow, real people
walking in front pasted back over them), so the demo and the benchmark show
the system the same kind of picture its model was trained on. The background is
real footage or a still picture; the scenario's condition (day, dusk, rain) and,
for a still, the sensor of a camera filming it are applied to every frame after
compositing (`vision/training/data/synth/conditions.py`).
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from vision.core.paths import REPO_ROOT
from vision.edge.casework.video_writer import Mp4Writer
from vision.scenarios.script import Scenario, ScriptedObject
from vision.training.data.synth import bikes, sprites
from vision.training.data.synth.compose import composite
from vision.training.data.synth.conditions import FrameLook
from vision.training.data.synth.plates import paint_plate
from vision.training.data.synth.scene import SceneSource
from vision.training.data.synth.sprites import Sprite

if TYPE_CHECKING:
    from vision.edge.detection import Detector

log = logging.getLogger(__name__)
CACHE_DIR = REPO_ROOT / "var" / "cache"
CHUNK = 50  # background frames read (and people detected) at a time
STILL_FPS = 10.0  # frame rate of a still background when the scenario sets none


@dataclass
class TruthEvent:
    """One object of the script as a correct system should see it."""

    kind: str
    violation: str | None
    onset_s: float
    end_s: float | None
    count: int
    boxes_rel: list[list[float]] = field(default_factory=list)  # visible boxes, relative, of the first frame seen
    visible_s: float | None = None  # first second any part of it is on screen (moving objects enter from outside)
    last_visible_s: float | None = None  # last second it is on screen


@dataclass
class GroundTruth:
    scenario: str
    video: str
    fps: float
    frames: int
    duration_s: float
    width: int
    height: int
    events: list[TruthEvent]

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=2, ensure_ascii=False))

    @classmethod
    def load(cls, path: Path) -> GroundTruth:
        data = json.loads(Path(path).read_text())
        data["events"] = [TruthEvent(**e) for e in data["events"]]
        return cls(**data)


def _sprites_for(obj: ScriptedObject) -> list[Sprite]:
    rng = np.random.default_rng(obj.seed)
    if obj.kind == "vendor_stall":
        return [sprites.vendor_stall(rng)]
    if obj.kind == "garbage":
        return [sprites.garbage(rng)]
    if obj.kind == "bikes":
        return [bikes.two_wheeler(rng) for _ in range(obj.count)]
    if obj.kind == "moving_bike":
        return [bikes.bicycle(rng)]
    if obj.kind == "bin":
        return [sprites.distractor(rng)]
    want = "muddy_truck" if obj.kind == "muddy_truck" else "truck"
    for _ in range(50):
        sp = sprites.truck(rng, muddy=want == "muddy_truck")
        if sp.label == want:
            if obj.plate is not None:  # painted over the mud: the number is what the camera must read
                sp.rgba = paint_plate(sp.rgba, obj.plate, obj.plate_style, obj.plate_width_m * sprites.PX_PER_M)
            return [sp]
    raise RuntimeError(f"could not draw a {want}")


def _feet(obj: ScriptedObject, t: float, width: int, height: int) -> list[tuple[float, float]]:
    if obj.path is not None:
        (xa, ya), (xb, yb) = obj.path
        k = (t - obj.start_s) / max(1e-6, (obj.end_s or t) - obj.start_s)
        return [((xa + (xb - xa) * k) * width, (ya + (yb - ya) * k) * height)]
    assert obj.at is not None  # ScriptedObject's validator: an object without a path stands at `at`
    x, y = obj.at
    offsets = [(i - (obj.count - 1) / 2) * obj.spacing for i in range(obj.count)]
    return [((x + dx) * width, y * height) for dx in offsets]


def render(
    scenario: Scenario, out_dir: Path, *, detector: Detector | None = None, progress: bool = True
) -> GroundTruth:
    """Writes `<out_dir>/<name>.mp4` and `<name>.truth.json`; returns the ground truth."""
    from tqdm import tqdm

    from vision.edge.detection import open_detector

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    detector = detector or open_detector("coco-nanodet", min_confidence=0.35)
    scene = SceneSource(scenario.background_path, detector, cache_dir=CACHE_DIR)
    perspective = scene.perspective()
    width, height = scene.frame_size()
    still = None
    if scene.is_video:
        cap = cv2.VideoCapture(str(scenario.background_path))
        bg_fps = cap.get(cv2.CAP_PROP_FPS) or 10.0
        cap.release()
        fps = min(scenario.fps or bg_fps, bg_fps)  # a lower rate renders only the frames a sampler would keep
        assert scene.background is not None  # a video source always has its median background
        reference = scene.background
    else:  # one picture, filmed for duration_s: every frame starts from it
        still = scene.frames([0])[0]
        bg_fps = fps = scenario.fps or STILL_FPS
        reference = still.image
    n_frames = int(round(scenario.duration_s * fps))
    look = FrameLook(
        scenario.condition,
        scenario.seed,
        n_frames,
        fps,
        reference,
        still=still is not None,
        ground_y=perspective.y_min / height,
    )
    object_sprites = [_sprites_for(obj) for obj in scenario.objects]
    events = [TruthEvent(obj.kind, obj.violation, obj.start_s, obj.end_s, obj.count) for obj in scenario.objects]
    video = out_dir / f"{scenario.name}.mp4"
    bar = tqdm(total=n_frames, desc=f"render {scenario.name}", unit="frame", disable=not progress)
    with Mp4Writer(video, fps, (width, height), crf=20) as writer:
        for chunk_start in range(0, n_frames, CHUNK):
            indices = [
                int(round(i * bg_fps / fps)) % scene.length
                for i in range(chunk_start, min(n_frames, chunk_start + CHUNK))
            ]
            chunk = scene.frames(indices) if still is None else [still] * len(indices)
            for offset, frame in enumerate(chunk):
                t = (chunk_start + offset) / fps
                canvas = frame.image.copy()
                # far objects first so nearer ones cover them
                active = sorted(
                    (i for i, obj in enumerate(scenario.objects) if obj.active(t)),
                    key=lambda i: _feet(scenario.objects[i], t, width, height)[0][1],
                )
                for i in active:
                    obj = scenario.objects[i]
                    rng = np.random.default_rng(obj.seed)  # same look in every frame
                    boxes = []
                    # one sprite per foot, except that a kind other than bikes draws one sprite whatever its count
                    for sprite, foot in zip(object_sprites[i], _feet(obj, t, width, height), strict=False):
                        placed = composite(frame, canvas, sprite, foot, perspective, rng)
                        if placed.box:
                            boxes.append(
                                [
                                    placed.box[0] / width,
                                    placed.box[1] / height,
                                    placed.box[2] / width,
                                    placed.box[3] / height,
                                ]
                            )
                    if boxes and not events[i].boxes_rel:
                        events[i].boxes_rel = boxes
                        events[i].visible_s = round(t, 3)
                    if boxes:
                        events[i].last_visible_s = round(t, 3)
                writer.write(look.apply(canvas, chunk_start + offset))
                bar.update(1)
    scene.save_cache()
    bar.close()
    truth = GroundTruth(scenario.name, video.name, fps, n_frames, n_frames / fps, width, height, events)
    truth.save(out_dir / f"{scenario.name}.truth.json")
    return truth

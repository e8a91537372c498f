"""Things moving near a site exit that no detector boxed: found, named, and followed at full rate."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from tests.support_edge import detections
from vision.edge.detection.moving_objects import MovingObjectFinder, MovingVehicles
from vision.edge.verify.classifier import CropVerdict

H, W = 360, 640
RNG = np.random.default_rng(7)
ROAD = RNG.integers(60, 120, size=(H, W, 3), dtype=np.uint8)  # a textured, fixed scene


def frame(t_s: float, *, truck_x: float | None = None, gain: float = 1.0, noise: float = 3.0) -> np.ndarray:
    """The road with sensor noise; a 60x36 px truck whose left edge is at `truck_x`; the whole picture
    brighter or darker by `gain` (clouds, auto-exposure)."""
    img = ROAD.astype(np.float32) * gain + np.random.default_rng(int(t_s * 100)).normal(0, noise, (H, W, 3))
    if truck_x is not None:
        x = int(truck_x)
        img[250:286, x : x + 60] = (40, 80, 200)
    return np.clip(img, 0, 255).astype(np.uint8)


def test_a_moving_truck_is_found_where_it_is_and_nothing_else_is():
    finder = MovingObjectFinder()
    for i in range(10):  # the empty road, learned
        assert finder.update(frame(i * 0.5), i * 0.5) == []
    for i, x in enumerate(range(50, 450, 40)):
        t = 5.0 + i * 0.2
        regions = finder.update(frame(t, truck_x=x), t)
        assert len(regions) == 1, regions
        x1, y1, x2, y2 = regions[0].xyxy
        # where the truck is now (a few pixels of dilation around it), not where it was
        assert x - 12 <= x1 <= x + 4 and x + 56 <= x2 <= x + 72, (x, regions[0].xyxy)
        assert 238 <= y1 <= 252 and 284 <= y2 <= 300


def test_light_changing_over_the_whole_picture_is_not_motion():
    finder = MovingObjectFinder()
    for i in range(10):
        finder.update(frame(i * 0.5), i * 0.5)
    for i, gain in enumerate((1.15, 1.3, 0.8, 0.7)):  # a cloud, the sun back, dusk
        t = 5.0 + i
        assert finder.update(frame(t, gain=gain), t) == []


def test_the_mask_limits_where_motion_counts_and_a_restart_forgets_the_scene():
    away_from_exit = np.zeros((H, W), dtype=bool)
    away_from_exit[:100, :] = True
    finder = MovingObjectFinder()
    for i in range(10):
        finder.update(frame(i * 0.5), i * 0.5)
    assert finder.update(frame(5.0, truck_x=200), 5.0, away_from_exit) == []
    assert len(finder.update(frame(5.2, truck_x=240), 5.2)) == 1
    assert finder.update(frame(1.0, truck_x=240), 1.0) == []  # the stream jumped back: learn again first


class Namer:
    """Names every crop the same; records the boxes it was asked about."""

    def __init__(self, label: str, score: float):
        self.label, self.score = label, score
        self.seen: list[np.ndarray] = []

    def classify(self, image, boxes):  # type: ignore[no-untyped-def]
        self.seen.extend(np.asarray(boxes))
        return [CropVerdict(self.label, self.score, {self.label: self.score}) for _ in boxes]


def _moving(namer: Namer) -> tuple[MovingVehicles, np.ndarray]:
    vehicles = MovingVehicles(MovingObjectFinder(), namer)
    for i in range(10):
        vehicles.update(frame(i * 0.5), i * 0.5, detections([]), None)
    return vehicles, frame(5.0, truck_x=300)


@pytest.mark.parametrize(
    ("label", "score", "expected"),
    [("muddy_truck", 0.9, ["muddy_truck"]), ("truck", 0.8, ["truck"]), ("car", 0.95, []), ("person", 0.9, [])]
    + [("muddy_truck", 0.3, [])],  # not sure enough
)
def test_only_a_truck_name_becomes_a_detection(label: str, score: float, expected: list[str]):
    vehicles, image = _moving(Namer(label, score))
    out = vehicles.update(image, 5.0, detections([]), None)
    assert (out.data["class_name"].tolist() if len(out) else []) == expected
    if expected:
        assert out.confidence[0] == pytest.approx(score)


def test_a_region_a_detector_already_boxed_is_left_to_it_but_a_faint_box_does_not_count():
    namer = Namer("muddy_truck", 0.9)
    vehicles, image = _moving(namer)
    boxed = detections([("truck", (298, 248, 362, 288), 0.8, -1)])
    assert len(vehicles.update(image, 5.0, boxed, None)) == 0 and namer.seen == []
    faint = detections([("truck", (298, 248, 362, 288), 0.2, -1)])  # below the tracker's activation
    assert len(vehicles.update(frame(5.2, truck_x=320), 5.2, faint, None)) == 1
    parked_car = detections([("car", (250, 230, 330, 300), 0.9, -1)])  # overlaps the truck, another object
    assert len(vehicles.update(frame(5.4, truck_x=340), 5.4, parked_car, None)) == 1


def test_a_moving_region_boxed_as_a_motorcycle_still_gets_the_truck_question():
    """COCO boxes a three-wheeled cargo carrier as a motorcycle (the held-out Sanchi trucks at 0.5-0.78):
    that box feeds the bike rule, not the truck rule, so it must not hide the vehicle from the truck question."""
    namer = Namer("muddy_truck", 0.9)
    vehicles, image = _moving(namer)
    as_motorcycle = detections([("motorcycle", (298, 248, 362, 288), 0.78, -1)])
    out = vehicles.update(image, 5.0, as_motorcycle, None)
    assert out.data["class_name"].tolist() == ["muddy_truck"] and len(namer.seen) == 1
    real_motorcycle = Namer("motorcycle", 0.95)  # the classifier names a real one: no truck comes of it
    vehicles, image = _moving(real_motorcycle)
    assert len(vehicles.update(image, 5.0, as_motorcycle, None)) == 0 and len(real_motorcycle.seen) == 1


def test_a_moving_truck_makes_the_camera_look_at_every_frame_for_a_while(repo_root: Path):
    from vision.edge.config import load_site
    from vision.edge.daemon import CameraPipeline

    site = load_site(repo_root / "configs" / "site-city.yaml")
    camera = next(c for c in site.cameras if "muddy-trucks" in c.rules)
    camera = camera.model_copy(update={"sampling": camera.sampling.model_copy(update={"detect_fps": 1.0})})
    pipe = CameraPipeline(site, camera)
    assert pipe.sample_fps == 5  # the clip's rate
    t0 = datetime(2026, 12, 6, tzinfo=UTC)

    class F:
        def __init__(self, t: float):
            self.camera_id, self.index, self.t_s = camera.id, int(t * 100), t
            self.captured_at, self.image = t0 + timedelta(seconds=t), np.zeros((72, 128, 3), np.uint8)

    step = 1.0 / pipe.sample_fps
    times = [round(i * step, 3) for i in range(int(6 / step))]
    due = [t for t in times if pipe.add_frame(F(t))]
    assert len(due) < len(times)  # detect_fps below the sampling rate: not every frame
    pipe.full_rate_until(times[-1] + 3.0)
    more = [round(times[-1] + (i + 1) * step, 3) for i in range(int(5 / step))]
    due_more = [t for t in more if pipe.add_frame(F(t))]
    in_hold = [t for t in more if t <= times[-1] + 3.0]
    assert set(in_hold) <= set(due_more)  # every frame while the truck moves
    after = [t for t in due_more if t > times[-1] + 3.0 + step]
    assert len(after) < len([t for t in more if t > times[-1] + 3.0 + step])  # then back to detect_fps


def test_the_moving_path_is_on_by_default_for_cameras_with_a_truck_rule_and_a_site_can_turn_it_off(repo_root: Path):
    from vision.edge.config import load_site
    from vision.edge.daemon import CameraPipeline

    site = load_site(repo_root / "configs" / "site-city.yaml")
    assert site.verifier is not None and site.verifier.name_moving is True  # default: on
    trucks = next(c for c in site.cameras if "muddy-trucks" in c.rules)
    street = next(c for c in site.cameras if "muddy-trucks" not in c.rules)
    verifier = object()  # not called while the pipeline is built
    assert isinstance(CameraPipeline(site, trucks, verifier=verifier).moving, MovingVehicles)  # type: ignore[arg-type]
    assert CameraPipeline(site, street, verifier=verifier).moving is None  # type: ignore[arg-type]  # no truck rule
    off = site.model_copy(update={"verifier": site.verifier.model_copy(update={"name_moving": False})})
    assert CameraPipeline(off, trucks, verifier=verifier).moving is None  # type: ignore[arg-type]

"""StaticObjectFinder on the real footage (vtest.avi at 2 fps: people walking, some standing)
with cut-out objects pasted in: appear-and-stay is reported with a stable id, people, dusk,
exposure jumps and rain are not, removal clears, occlusion keeps the id, stream time not
frame counts, bounded state, watch masks, the frozen background and ghosts."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest
from pydantic import ValidationError

from vision.edge.detection.static_objects import StaticObjectFinder, StaticObjectFinderConfig, StaticRegion

REPO = Path(__file__).resolve().parent.parent
FOOTAGE = REPO / "datasets" / "footage" / "vtest.avi"
OBJECTS = REPO / "datasets" / "assets" / "objects"
FPS = 2.0  # the clip is decoded at this rate; frame_at(t) loops over it
MIN_STATIC = StaticObjectFinderConfig().min_static_s
T_APPEAR = 10.0


# ---------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def clip() -> list[np.ndarray]:
    """vtest.avi (768x576, 10 fps) subsampled to 2 fps: 159 frames, 79.5 s."""
    assert FOOTAGE.is_file(), f"bundled footage missing: {FOOTAGE}"
    cap = cv2.VideoCapture(str(FOOTAGE))
    step = round(cap.get(cv2.CAP_PROP_FPS) / FPS)
    frames, i = [], 0
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        if i % step == 0:
            frames.append(frame)
        i += 1
    cap.release()
    assert len(frames) > 150
    return frames


@pytest.fixture(scope="module")
def person_boxes(clip) -> list[np.ndarray]:
    """Person boxes of every clip frame from the COCO NanoDet (what the pipeline's detector sees)."""
    from vision.edge.detection import open_detector

    det = open_detector("coco-nanodet", min_confidence=0.3)
    out = []
    for frame in clip:
        d = det.detect(frame)
        out.append(np.asarray(d.xyxy[d.data["class_name"] == "person"], dtype=np.float64).reshape(-1, 4))
    assert np.mean([len(b) for b in out]) > 3  # the footage is busy: the detector does see people
    return out


def load_object(name: str, scale: float = 1.0) -> np.ndarray:
    obj = cv2.imread(str(OBJECTS / f"{name}.png"), cv2.IMREAD_UNCHANGED)
    assert obj is not None and obj.shape[2] == 4, name
    return cv2.resize(obj, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale != 1.0 else obj


# name, scale, top-left in the 768x576 frame: a grey metal can on the road people walk on, a green
# wheelie bin on the grass (its luminance is close to the grass: colour matters)
CAN = ("a_tux_garbagecan", 1.0, (400, 300))
BIN = ("a_tux_wheelie_bin", 1.0, (150, 330))


class Scene:
    """The clip with an object pasted in (alpha) while present(t) is true."""

    def __init__(self, clip, obj=CAN, present=lambda t: t >= T_APPEAR):
        name, scale, (x, y) = obj
        self.clip, self.present = clip, present
        self.obj = load_object(name, scale)
        self.x, self.y = x, y
        ys, xs = np.nonzero(self.obj[:, :, 3] > 127)
        self.box = (x + xs.min(), y + ys.min(), x + xs.max() + 1, y + ys.max() + 1)

    def index(self, t: float) -> int:
        return int(round(t * FPS)) % len(self.clip)

    def frame(self, t: float) -> np.ndarray:
        img = self.clip[self.index(t)]
        if not self.present(t):
            return img
        return paste(img, self.obj, self.x, self.y)


def paste(img: np.ndarray, obj: np.ndarray, x: int, y: int) -> np.ndarray:
    out = img.copy()
    h, w = obj.shape[:2]
    alpha = obj[:, :, 3:4].astype(np.float32) / 255.0
    roi = out[y : y + h, x : x + w]
    roi[:] = (alpha * obj[:, :, :3] + (1 - alpha) * roi).astype(np.uint8)
    return out


def iou(a, b) -> float:
    x0, y0, x1, y1 = max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x1 - x0) * max(0.0, y1 - y0)
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def run(finder, times, frame_of, ignore_of=None, watch=None) -> list[tuple[float, list[StaticRegion]]]:
    out = []
    for t in times:
        regions = finder.update(frame_of(t), t, ignore_xyxy=ignore_of(t) if ignore_of else None, watch_mask=watch)
        out.append((t, regions))
    return out


def on_object(regions, box, min_iou=0.5) -> list[StaticRegion]:
    return [r for r in regions if iou(r.xyxy, box) >= min_iou]


def schedule(kind: str, end: float = 79.5) -> list[float]:
    if kind == "2fps":
        return list(np.arange(0.0, end, 0.5))
    if kind == "every_5s":
        return list(np.arange(0.0, end, 5.0))
    # irregular: 0.5-5 s apart, with a repeated timestamp now and then
    rng = np.random.default_rng(7)
    t, out = 0.0, []
    while t < end:
        out.append(t)
        t += 0.0 if rng.random() < 0.05 else float(rng.uniform(0.5, 5.0))
    return out


MAX_GAP = {"2fps": 0.5, "every_5s": 5.0, "irregular": 5.0}


# ---------------------------------------------------------------------------- (1) (7) appear & stay
@pytest.mark.parametrize("kind", ["2fps", "irregular", "every_5s"])
@pytest.mark.parametrize("obj", [CAN, BIN], ids=["can_on_road", "green_bin_on_grass"])
def test_object_that_appears_and_stays_is_reported_with_a_stable_id(clip, kind, obj):
    scene = Scene(clip, obj)
    times = schedule(kind)
    out = run(StaticObjectFinder(), times, scene.frame)
    hits = [(t, on_object(regions, scene.box)) for t, regions in out]
    reported = [t for t, h in hits if h]
    assert reported, "the object was never reported"
    first = reported[0]
    gap = MAX_GAP[kind]
    # not before it has been still for min_static_s, and no later than that plus two frame gaps
    assert T_APPEAR + MIN_STATIC <= first <= T_APPEAR + MIN_STATIC + 2 * gap + 0.5, first
    after = [(t, h) for t, h in hits if t >= first]
    assert all(h for _, h in after), [t for t, h in after if not h]  # reported in every later frame
    ids = {r.id for _, h in after for r in h}
    assert len(ids) == 1, ids
    last = after[-1][1][0]
    assert abs(last.first_seen_t - T_APPEAR) <= gap + 1e-6
    assert last.static_s >= times[-1] - T_APPEAR - 2 * gap
    assert 0.0008 <= last.area_frac <= 0.25
    assert iou(last.xyxy, scene.box) >= 0.7


# ---------------------------------------------------------------------------- (2) people walking
def test_walking_people_make_no_region_with_their_boxes_ignored(clip, person_boxes):
    scene = Scene(clip, present=lambda t: False)
    times = schedule("2fps")
    with_boxes = run(StaticObjectFinder(), times, scene.frame, lambda t: person_boxes[scene.index(t)])
    assert [(t, r) for t, r in with_boxes if r] == []
    # Without the boxes, the only regions are people who stand still for longer than min_static_s
    # (someone waits near (640, 350) for ~15 s): each overlaps a person box of that frame. This
    # also shows the run above is not vacuous: stillness is found when nothing says "person".
    raw = run(StaticObjectFinder(), times, scene.frame)
    raw_regions = [(t, r) for t, regions in raw for r in regions]
    assert raw_regions, "a person standing for ~15 s should be found when not ignored"
    for t, r in raw_regions:
        # someone the detector saw there while they stood (it misses them in some frames)
        recent = [p for u in np.arange(max(0.0, t - 20.0), t + 0.25, 0.5) for p in person_boxes[scene.index(u)]]
        assert any(iou(r.xyxy, p) > 0.3 for p in recent), (t, r)
        assert r.static_s >= MIN_STATIC


# ------------------------------------------------------------------------ (3) (4) lighting, rain
class Sensor:
    """Per-channel gain and Gaussian sensor noise (a small bank of noise frames, reused: drawing
    1.3 M normals per frame would cost more than the finder)."""

    def __init__(self, shape, seed: int = 3):
        rng = np.random.default_rng(seed)
        self.bank = [rng.normal(0.0, 1.0, shape).astype(np.float32) for _ in range(5)]
        self.rng = rng
        self.k = 0

    def __call__(self, frame: np.ndarray, gain, sigma: float) -> np.ndarray:
        img = cv2.transform(frame.astype(np.float32), np.diag(np.broadcast_to(np.asarray(gain, np.float32), 3)))
        if sigma > 0:
            self.k += 1
            cv2.scaleAdd(self.bank[self.k % len(self.bank)], float(sigma), img, dst=img)
        return cv2.convertScaleAbs(np.maximum(img, 0.0, out=img))  # saturates at 255 like a sensor


def dusk(sensor: Sensor, frame: np.ndarray, t: float) -> np.ndarray:
    """Darkened to ~30 % over 60 s (bluer), with sensor noise growing as it darkens."""
    p = min(max((t - 10.0) / 60.0, 0.0), 1.0)
    return sensor(frame, 1.0 - p * np.array([0.65, 0.70, 0.73]), 1.0 + 5.0 * p)


def exposure_jumps(sensor: Sensor, frame: np.ndarray, t: float) -> np.ndarray:
    """Auto-exposure: +25 % at 20 s, -25 % at 45 s (highlights clip)."""
    return sensor(frame, 1.0 if t < 20.0 else 1.25 if t < 45.0 else 0.75, 1.0)


def rain(sensor: Sensor, frame: np.ndarray, t: float) -> np.ndarray:
    """Overcast (85 %), ~600 bright streaks, new every frame, and sensor noise."""
    dim = sensor(frame, 0.85, 0.0)
    out = dim.copy()
    xs, ys = sensor.rng.integers(0, frame.shape[1], 600), sensor.rng.integers(-30, frame.shape[0], 600)
    for x, y in zip(xs, ys, strict=True):
        cv2.line(out, (int(x), int(y)), (int(x) + 5, int(y) + 30), (215, 215, 215), 2)
    return sensor(cv2.addWeighted(out, 0.7, dim, 0.3, 0), 1.0, 3.0)


@pytest.mark.parametrize("with_object", [False, True], ids=["empty", "with_object"])
@pytest.mark.parametrize("effect", [dusk, exposure_jumps, rain], ids=lambda f: f.__name__)
def test_lighting_and_rain_make_no_region_and_do_not_hide_objects(clip, person_boxes, effect, with_object):
    scene = Scene(clip, present=(lambda t: t >= T_APPEAR) if with_object else (lambda t: False))
    sensor = Sensor(clip[0].shape)
    out = run(
        StaticObjectFinder(),
        schedule("2fps"),
        lambda t: effect(sensor, scene.frame(t), t),
        lambda t: person_boxes[scene.index(t)],
    )
    regions = [(t, r) for t, rs in out for r in rs]
    if not with_object:
        assert regions == []
        return
    # the only region is the object, one id, reported through the whole change
    assert regions and all(iou(r.xyxy, scene.box) >= 0.5 for _, r in regions), [
        (t, r) for t, r in regions if iou(r.xyxy, scene.box) < 0.5
    ]
    assert len({r.id for _, r in regions}) == 1
    first = regions[0][0]
    assert first <= T_APPEAR + MIN_STATIC + 3.0  # rain streaks hide pixels now and then: they wait
    assert [t for t, rs in out if t >= first and not rs] == []


# ------------------------------------------------------------------------------- (5) removal
@pytest.mark.parametrize("kind", ["2fps", "irregular"])
def test_removed_object_vanishes_within_seconds_and_leaves_no_ghost(clip, person_boxes, kind):
    removed = 45.0
    scene = Scene(clip, present=lambda t: T_APPEAR <= t < removed)
    out = run(StaticObjectFinder(), schedule(kind), scene.frame, lambda t: person_boxes[scene.index(t)])
    assert any(on_object(rs, scene.box) for t, rs in out if t < removed)
    gap = MAX_GAP[kind]
    late = [(t, rs) for t, rs in out if t >= removed + StaticObjectFinderConfig().clear_s + gap]
    assert late and all(rs == [] for _, rs in late), [(t, rs) for t, rs in late if rs]


# ------------------------------------------------------------------------------ (6) occlusion
def with_walker(frame: np.ndarray, t: float, start: float, box) -> tuple[np.ndarray, np.ndarray]:
    """A dark figure walking left to right across the object from `start` for 6 s (covers up to
    ~60 % of it), and its box."""
    x0, y0, x1, y1 = box
    w, h = 40, int((y1 - y0) * 1.2)
    p = (t - start) / 6.0
    if not 0.0 <= p <= 1.0:
        return frame, np.empty((0, 4))
    cx = int(x0 - w + p * (x1 - x0 + 2 * w))
    top = int(y1 - h + 10)
    out = frame.copy()
    cv2.rectangle(out, (cx - w // 2, top), (cx + w // 2, top + int(h * 0.55)), (40, 35, 30), -1)
    cv2.rectangle(out, (cx - w // 3, top + int(h * 0.55)), (cx + w // 3, top + h), (90, 60, 40), -1)
    cv2.circle(out, (cx, top - 10), 11, (120, 140, 170), -1)
    return out, np.array([[cx - w / 2, top - 22, cx + w / 2, top + h]], np.float64)


@pytest.mark.parametrize("ignore_walker", [False, True], ids=["walker_unknown", "walker_ignored"])
def test_partly_occluded_object_keeps_its_id(clip, ignore_walker):
    scene = Scene(clip, BIN)
    start = 30.0
    finder = StaticObjectFinder()
    ids_by_t = []
    occluded = False
    for t in schedule("2fps"):
        img, walker = with_walker(scene.frame(t), t, start, scene.box)
        occluded |= len(walker) > 0
        regions = finder.update(img, t, ignore_xyxy=walker if ignore_walker else None)
        hit = on_object(regions, scene.box, min_iou=0.3)
        ids_by_t.append((t, {r.id for r in hit}))
    assert occluded
    first = next(t for t, ids in ids_by_t if ids)
    assert first < start  # reported before the walker comes
    later = [ids for t, ids in ids_by_t if t >= first]
    assert all(len(ids) == 1 for ids in later), [(t, ids) for t, ids in ids_by_t if t >= first and len(ids) != 1]
    assert len(set().union(*later)) == 1  # the same id before, during and after the crossing


# ----------------------------------------------------------------- (8) bounded state and reset
def test_state_stays_bounded_over_a_long_run_and_reset_empties_it(clip, person_boxes):
    """40 minutes of stream at one frame every 3 s (the clip looped, people ignored); an object
    appears every 2 minutes somewhere else and leaves after one."""
    rng = np.random.default_rng(11)
    obj = load_object("a_tux_garbagecan", 0.8)
    spots = [(int(rng.integers(20, 680)), int(rng.integers(120, 480))) for _ in range(20)]
    finder = StaticObjectFinder()
    sizes, found = [], 0
    for t in np.arange(0.0, 2400.0, 3.0):
        k, phase = divmod(t, 120.0)
        i = int(round(t * FPS)) % len(clip)
        img = clip[i]
        if 10.0 <= phase < 70.0:
            img = paste(img, obj, *spots[int(k)])
        regions = finder.update(img, float(t), ignore_xyxy=person_boxes[i])
        found += bool(regions)
        sizes.append(finder.state_size())
    assert found > 100  # the objects were seen (the state had something to hold)
    assert max(sizes) <= 6, max(sizes)
    # a still, empty scene (the first frame, its people ignored, with noise) for 40 s: every
    # track (objects gone, the odd person who stood near the sign) is deleted
    still, boxes = clip[0], person_boxes[0]
    for t in np.arange(2400.0, 2440.0, 3.0):
        noisy = np.clip(still + rng.normal(0.0, 2.0, still.shape), 0, 255).astype(np.uint8)
        assert finder.update(noisy, float(t), ignore_xyxy=boxes) == [] or t < 2415.0
    assert finder.state_size() == 0
    finder.reset()
    assert finder.state_size() == 0
    assert finder.update(clip[0], 0.0) == []  # starts over (warm-up)


# ---------------------------------------------------------------------------- (9) watch mask
@pytest.mark.parametrize("size", [(576, 768), (144, 192)], ids=["frame_size", "quarter_size"])
@pytest.mark.parametrize("dtype", [bool, np.uint8])
def test_watch_mask_restricts_reports(clip, size, dtype):
    scene = Scene(clip, BIN)  # on the grass, lower left
    times = schedule("2fps", end=30.0)
    h, w = size
    grass = np.zeros(size, dtype)
    grass[h // 2 :, : w // 2] = 1
    road = np.zeros(size, dtype)
    road[: h // 2, w // 2 :] = 1
    seen_grass = run(StaticObjectFinder(), times, scene.frame, watch=grass)
    seen_road = run(StaticObjectFinder(), times, scene.frame, watch=road)
    assert any(on_object(rs, scene.box) for _, rs in seen_grass)
    assert all(rs == [] for _, rs in seen_road)


# ------------------------------------------------------- frozen background, absorption, ghosts
@pytest.mark.parametrize("absorb_after_s", [7200.0, 600.0])
def test_long_stay_stays_reported_until_absorb_after_s(clip, person_boxes, absorb_after_s):
    """30 minutes at one frame every 5 s: far beyond long_tau_s (300 s), so only the frozen
    background keeps the object reported; absorb_after_s ends it."""
    scene = Scene(clip, CAN)
    finder = StaticObjectFinder(StaticObjectFinderConfig(absorb_after_s=absorb_after_s))
    times = list(np.arange(0.0, 1800.0, 5.0))
    out = run(finder, times, scene.frame, lambda t: person_boxes[scene.index(t)])
    hit = [(t, on_object(rs, scene.box)) for t, rs in out]
    first = next(t for t, h in hit if h)
    assert first <= T_APPEAR + MIN_STATIC + 10.0
    absorbed_at = T_APPEAR + absorb_after_s
    during = [h for t, h in hit if first <= t < absorbed_at]
    assert during and all(h for h in during)
    assert len({r.id for h in during for r in h}) == 1
    if absorb_after_s < times[-1]:  # absorbed, and not back
        assert all(not any(iou(r.xyxy, scene.box) > 0.1 for r in rs) for t, rs in out if t >= absorbed_at + 5.0)


def test_object_leaving_the_initial_background_is_a_ghost_not_a_region(clip, person_boxes):
    """A bin standing since before the camera started leaves at 30 s: the bare grass it leaves
    differs from the background but must not be reported."""
    scene = Scene(clip, BIN, present=lambda t: t < 30.0)
    out = run(StaticObjectFinder(), schedule("2fps"), scene.frame, lambda t: person_boxes[scene.index(t)])
    assert [(t, rs) for t, rs in out if rs] == []


# ---------------------------------------------------------------------------- inputs, settings
def test_grey_input_new_resolution_and_backwards_clock(clip):
    scene = Scene(clip, CAN)
    finder = StaticObjectFinder()
    out = run(finder, schedule("2fps", end=25.0), lambda t: cv2.cvtColor(scene.frame(t), cv2.COLOR_BGR2GRAY))
    assert on_object(out[-1][1], scene.box)
    small = cv2.resize(scene.frame(25.0), (384, 288))
    assert finder.update(small, 25.5) == []  # a new resolution starts over: only its first frame is held
    assert finder.state_size() == 1
    finder.update(small, 26.0)
    assert finder.update(small, 0.0) == []  # the stream clock restarted: starts over too


def test_settings_refuse_unknown_keys_and_document_every_field():
    with pytest.raises(ValidationError):
        StaticObjectFinderConfig(min_static=5)
    for name, field in StaticObjectFinderConfig.model_fields.items():
        assert field.description, name
    s = StaticObjectFinderConfig()
    assert (s.work_width, s.min_static_s, s.min_area, s.max_area) == (320, 8.0, 0.0008, 0.25)
    assert math.isclose(s.absorb_after_s, 7200.0)

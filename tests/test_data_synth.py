"""Synthesis: labels match composited pixels, occlusion, perspective, mud, a real run."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from vision.training.data.check import check_dataset
from vision.training.data.layout import CITY_CLASSES
from vision.training.data.synth import sprites
from vision.training.data.synth.compose import composite
from vision.training.data.synth.scene import Frame, Perspective

FLAT = Perspective(slope=0.0, intercept=1.7 * sprites.PX_PER_M, y_min=0, y_max=480, samples=0)  # 1 px per sprite px


def _disc_sprite(d: int = 60) -> sprites.Sprite:
    rgba = np.zeros((d, d, 4), np.uint8)
    import cv2

    cv2.circle(rgba, (d // 2, d // 2), d // 2 - 1, (255, 255, 255, 255), -1)
    return sprites.Sprite(sprites._trim(rgba), "garbage", "disc")


def _changed(before: np.ndarray, after: np.ndarray, thr: int = 40) -> np.ndarray:
    return np.abs(after.astype(int) - before.astype(int)).max(axis=2) > thr


@pytest.mark.parametrize(
    "make",
    [
        _disc_sprite,
        lambda: sprites.truck(np.random.default_rng(3)),
        lambda: sprites.vendor_stall(np.random.default_rng(5)),
        lambda: sprites.garbage(np.random.default_rng(7)),
    ],
)
@pytest.mark.parametrize("foot", [(320.0, 300.0), (20.0, 200.0)])  # second one is cut by the left edge
def test_label_box_matches_composited_pixels(make, foot):
    sprite = make()
    # a random texture, so no object colour can hide in it across a whole row or column
    bg = (np.random.default_rng(1).random((480, 640, 3)) * 255).astype(np.uint8)
    frame = Frame(bg, "test", 0)
    canvas = bg.copy()
    p = composite(frame, canvas, sprite, foot, FLAT, np.random.default_rng(0), occlude=False, shadow=False)
    assert p.box is not None
    x1, y1, x2, y2 = p.box
    changed = _changed(bg, canvas)
    ys, xs = np.nonzero(changed)
    # every clearly changed pixel lies in the box (1 px tolerance for the anti-aliased rim) ...
    assert xs.min() >= x1 - 1 and xs.max() <= x2 and ys.min() >= y1 - 1 and ys.max() <= y2
    # ... and the box is tight: its outermost rows and columns hold object pixels
    assert xs.min() <= x1 + 2 and xs.max() >= x2 - 3 and ys.min() <= y1 + 2 and ys.max() >= y2 - 3
    # bottom of the object sits on the foot point (ground-plane placement)
    assert abs(y2 - foot[1]) <= 2
    assert 0 <= x1 < x2 <= 640 and 0 <= y1 < y2 <= 480


def test_person_in_front_occludes_and_label_shrinks():
    bg = np.zeros((480, 640, 3), np.uint8)
    image = bg.copy()
    image[200:400, 280:340] = (0, 0, 200)  # a "person" standing in front (feet at y=400)
    mask = np.full((200, 60), 255, np.uint8)
    frame = Frame(image, "test", 0, person_masks=[((280, 200, 340, 400), mask)])
    canvas = image.copy()
    sprite = sprites.Sprite(
        np.dstack([np.full((100, 100, 3), 255, np.uint8), np.full((100, 100), 255, np.uint8)]), "garbage", "block"
    )
    p = composite(frame, canvas, sprite, (340.0, 350.0), FLAT, np.random.default_rng(0), shadow=False)
    # person pixels are pasted back over the object
    assert np.array_equal(canvas[260:350, 280:340], image[260:350, 280:340])
    assert p.box == (340, 250, 390, 350)  # the left half is hidden behind the person
    assert p.visible_fraction == pytest.approx(0.5, abs=0.05)
    # a person behind the object (feet above its foot) is covered instead
    frame_behind = Frame(image, "test", 0, person_masks=[((300, 100, 340, 300), np.full((200, 40), 255, np.uint8))])
    canvas2 = image.copy()
    p2 = composite(frame_behind, canvas2, sprite, (340.0, 350.0), FLAT, np.random.default_rng(0), shadow=False)
    assert p2.box == (290, 250, 390, 350)


def test_perspective_fit_ignores_outliers():
    rng = np.random.default_rng(0)
    y = rng.uniform(100, 570, 80)
    h = 0.24 * y + 15 + rng.normal(0, 2, 80)
    h[:6] = 20  # sitting people / broken boxes
    p = Perspective.fit(y, h, 576)
    assert p.slope == pytest.approx(0.24, abs=0.02)
    assert p.px_per_m(400) == pytest.approx((0.24 * 400 + 15) / 1.7, rel=0.05)
    fallback = Perspective.fit(np.array([100.0]), np.array([30.0]), 576)
    assert fallback.px_per_m(500) > fallback.px_per_m(150) > 0


def test_perspective_skips_a_picture_opencv_cannot_read(tmp_path):
    """An unreadable picture in a background folder is left out of the perspective fit, as frames() leaves it out
    (it used to reach the detector as None and fail on `None.shape`)."""
    import cv2

    from vision.edge.detection import empty_detections
    from vision.training.data.synth.scene import SceneSource

    cv2.imwrite(str(tmp_path / "a.jpg"), np.full((120, 160, 3), 128, np.uint8))
    (tmp_path / "b.jpg").write_bytes(b"not a picture")
    seen = []

    class Nobody:
        def detect(self, image):
            seen.append(image.shape)
            return empty_detections()

    scene = SceneSource(tmp_path, Nobody())
    p = scene.perspective()
    assert seen == [(120, 160, 3)]
    assert p.samples == 0 and p.px_per_m(100) > 0  # no people: the generic guess
    assert [f.index for f in scene.frames([0, 1])] == [0]


def test_mud_goes_on_the_lower_body():
    rng = np.random.default_rng(1)
    sp = sprites.truck(rng, muddy=True)
    assert sp.label == "muddy_truck" and sp.mud_mask is not None
    h = sp.mud_mask.shape[0]
    assert sp.mud_mask[: h // 3].max() == 0
    assert sp.mud_mask[2 * h // 3 :].mean() > 0.1
    clean = None
    for seed in range(20):
        t = sprites.truck(np.random.default_rng(seed), muddy=False)
        if t.kind != "c_tux_site_dumper":
            clean = t
            break
    assert clean is not None and clean.label == "truck" and clean.mud_mask is None


def test_sprites_are_seeded():
    a = sprites.vendor_stall(np.random.default_rng(11)).rgba
    b = sprites.vendor_stall(np.random.default_rng(11)).rgba
    assert np.array_equal(a, b)
    for build in (sprites.vendor_stall, sprites.garbage, sprites.distractor):
        for seed in range(4):
            sp = build(np.random.default_rng(seed))
            assert sp.rgba.ndim == 3 and sp.rgba.shape[2] == 4 and sp.rgba[:, :, 3].max() == 255
    assert sprites.distractor(np.random.default_rng(0)).label is None  # bins are negatives


@pytest.mark.slow
def test_generate_on_footage(tmp_path, footage_path):
    from vision.edge.detection import open_detector
    from vision.training.data.synth.generator import SynthConfig, generate

    det = open_detector("coco-nanodet", min_confidence=0.3)
    cfg = SynthConfig(out=tmp_path / "s", sources=[footage_path], images=8, seed=4, truck_sequences=0.5)
    ds = generate(cfg, det, progress=False)
    assert ds.names == CITY_CLASSES
    rep = check_dataset(ds)
    assert rep.ok, rep.problems[:5]
    assert rep.images == 8
    data = yaml.safe_load(ds.yaml_path.read_text())
    assert data["synth"]["seed"] == 4
    p = data["synth"]["perspective"][0]
    assert p["samples"] >= 5 and p["slope"] > 0  # people further down the image are taller
    meta = ds.read_meta()
    assert len(meta) == 8 and all(m["seed"] == 4 for m in meta.values())
    # scene groups never straddle splits
    seen: dict[str, set] = {}
    for img in ds.images():
        seen.setdefault(ds.source_of(img, meta), set()).add(ds.split_of(img))
    assert all(len(s) == 1 for s in seen.values())
    # composited objects are labelled with their exact recorded boxes
    new = {"vendor_stall", "garbage", "truck", "muddy_truck"}
    for img in ds.images():
        rec = meta[img.relative_to(ds.root).as_posix()]
        boxes = ds.labels(img)
        for obj in rec["objects"]:
            if obj["class"] in new:
                x1, y1, x2, y2 = obj["box"]
                assert any(
                    CITY_CLASSES[b.cls] == obj["class"] and np.allclose(b.xyxy(768, 576), (x1, y1, x2, y2), atol=0.05)
                    for b in boxes
                )

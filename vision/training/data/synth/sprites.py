"""Objects to composite, as RGBA sprites with a real-world size.

Stalls, carts, umbrellas, garbage bags and litter are drawn with OpenCV (no
photo of them exists in any package we can use); produce, bins and trucks are
real photo cut-outs (datasets/assets/objects, GPL-2, see NOTICE.md there).
Every sprite is drawn at PX_PER_M pixels per metre so the compositor scales it
by the scene's pixels-per-metre at the spot where it stands.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from vision.core.paths import REPO_ROOT

PX_PER_M = 120.0
ASSETS = REPO_ROOT / "datasets" / "assets" / "objects"


@dataclass
class Sprite:
    """RGBA (BGR + alpha) image; the bottom-centre of its alpha is where it touches the ground."""

    rgba: np.ndarray
    label: str | None  # class name, or None for an unlabelled distractor
    kind: str
    mud_mask: np.ndarray | None = None  # float 0..1 where mud was applied (trucks)
    info: dict[str, float] = field(default_factory=dict)  # drawing parameters worth keeping (bikes: "squash")

    @property
    def height_m(self) -> float:
        return int(self.rgba.shape[0]) / PX_PER_M


@cache
def load_rgba(name: str, assets: str = str(ASSETS)) -> np.ndarray:
    path = Path(assets) / name
    im = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if im is None:
        raise FileNotFoundError(f"asset missing: {path} (see datasets/assets/objects/MANIFEST.tsv)")
    if im.ndim == 2:
        im = cv2.cvtColor(im, cv2.COLOR_GRAY2BGR)
    if im.shape[2] == 3:
        im = np.dstack([im, np.full(im.shape[:2], 255, np.uint8)])
    return _trim(im)


def asset_names(prefix: str, assets: Path = ASSETS) -> list[str]:
    return sorted(p.name for p in Path(assets).glob(f"{prefix}*") if p.suffix in (".png", ".jpg"))


def _trim(rgba: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(rgba[:, :, 3] > 8)
    if len(ys) == 0:
        return rgba
    return rgba[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1].copy()


def _scale_to_height(rgba: np.ndarray, height_px: int) -> np.ndarray:
    h, w = rgba.shape[:2]
    height_px = max(2, int(height_px))
    width_px = max(2, int(round(w * height_px / h)))
    interp = cv2.INTER_AREA if height_px < h else cv2.INTER_LINEAR
    return cv2.resize(rgba, (width_px, height_px), interpolation=interp)


def _noise(rng: np.random.Generator, h: int, w: int, scale: float) -> np.ndarray:
    """Smooth random field in 0..1 (blurred white noise)."""
    small = rng.random((max(2, int(h / scale)), max(2, int(w / scale)))).astype(np.float32)
    big = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    big -= big.min()
    return big / max(float(big.max()), 1e-6)


def _paste(canvas: np.ndarray, rgba: np.ndarray, x: int, y: int) -> None:
    """Alpha-over `rgba` onto RGBA `canvas` with its top-left at (x, y), clipped."""
    H, W = canvas.shape[:2]
    h, w = rgba.shape[:2]
    x0, y0, x1, y1 = max(0, x), max(0, y), min(W, x + w), min(H, y + h)
    if x0 >= x1 or y0 >= y1:
        return
    src = rgba[y0 - y : y1 - y, x0 - x : x1 - x].astype(np.float32)
    dst = canvas[y0:y1, x0:x1].astype(np.float32)
    a = src[:, :, 3:4] / 255.0
    out_a = a + dst[:, :, 3:4] / 255.0 * (1 - a)
    rgb = src[:, :, :3] * a + dst[:, :, :3] * (dst[:, :, 3:4] / 255.0) * (1 - a)
    rgb = np.where(out_a > 0, rgb / np.maximum(out_a, 1e-6), 0)
    canvas[y0:y1, x0:x1, :3] = np.clip(rgb, 0, 255).astype(np.uint8)
    canvas[y0:y1, x0:x1, 3] = np.clip(out_a[:, :, 0] * 255, 0, 255).astype(np.uint8)


def _poly(canvas: np.ndarray, pts: npt.ArrayLike, color: npt.ArrayLike, shade: np.ndarray | None = None) -> None:
    """Fill the polygon `pts` (x, y pairs) with BGR `color`, times `shade` per pixel, opaque."""
    mask = np.zeros(canvas.shape[:2], np.uint8)
    cv2.fillPoly(mask, [np.asarray(pts, np.int32)], 255, lineType=cv2.LINE_AA)
    m = mask.astype(np.float32)[:, :, None] / 255.0
    col = np.empty(canvas.shape[:2] + (3,), np.float32)
    col[:] = color
    if shade is not None:
        col *= shade[:, :, None]
    canvas[:, :, :3] = (canvas[:, :, :3] * (1 - m) + np.clip(col, 0, 255) * m).astype(np.uint8)
    canvas[:, :, 3] = np.maximum(canvas[:, :, 3], mask)


def _color(rng: np.random.Generator, palette: list[tuple[int, int, int]]) -> np.ndarray:
    base = np.asarray(palette[rng.integers(len(palette))], np.float32)
    return np.clip(base * rng.uniform(0.8, 1.15) + rng.normal(0, 8, 3), 0, 255)


TARP_COLORS = [
    (200, 60, 20),
    (40, 40, 190),
    (30, 150, 30),
    (20, 160, 220),
    (150, 150, 150),
    (40, 90, 170),
    (180, 120, 60),
    (60, 60, 60),
    (230, 230, 230),
]
UMBRELLA_COLORS = [
    (30, 30, 200),
    (200, 80, 30),
    (40, 180, 230),
    (40, 160, 60),
    (230, 230, 230),
    (160, 40, 140),
    (50, 120, 230),
]
BAG_COLORS = [(25, 25, 25), (30, 30, 35), (120, 60, 20), (200, 200, 195), (40, 110, 40), (30, 30, 160), (160, 150, 60)]


def _produce_layer(
    rng: np.random.Generator, width_px: int, depth_px: int, rows: int, goods: tuple[str, ...] | None = None
) -> np.ndarray:
    """A heap of produce cut-outs filling a width x depth area (RGBA)."""
    names = list(goods) if goods else asset_names("b_")
    item = max(8, int(min(depth_px / max(rows, 1) * 1.6, width_px / 4)))
    canvas = np.zeros((depth_px + item * 2, width_px, 4), np.uint8)
    n_kinds = int(rng.integers(1, 4))
    kinds = [names[i] for i in rng.choice(len(names), n_kinds, replace=False)]
    for r in range(rows):
        y = int(depth_px * (r + 0.5) / rows)
        x = int(rng.integers(0, max(1, item // 3)))
        kind = kinds[r % n_kinds]
        while x < width_px - item // 2:
            size = int(item * rng.uniform(0.75, 1.1))
            im = _scale_to_height(load_rgba(kind), size)
            _paste(canvas, im, x, y)
            x += int(im.shape[1] * rng.uniform(0.55, 0.85))
    return canvas


def _umbrella(rng: np.random.Generator, span_px: int) -> np.ndarray:
    """A market umbrella canopy seen slightly from above (RGBA), pole not included."""
    h = int(span_px * rng.uniform(0.35, 0.5))
    canvas = np.zeros((h + 4, span_px + 4, 4), np.uint8)
    cx, top = span_px // 2 + 2, 2
    n = int(rng.integers(6, 11))
    c1, c2 = _color(rng, UMBRELLA_COLORS), _color(rng, UMBRELLA_COLORS)
    rim = [
        (int(cx + span_px / 2 * np.cos(t)), int(h * 0.75 + h * 0.2 * np.sin(t))) for t in np.linspace(np.pi, 0, n + 1)
    ]
    shade = 0.75 + 0.35 * _noise(rng, *canvas.shape[:2], 20)
    for i in range(n):
        (xa, ya), (xb, yb) = rim[i], rim[i + 1]
        scallop = (int((xa + xb) / 2), int((ya + yb) / 2 + h * 0.08))
        _poly(canvas, [(cx, top), (xa, ya), scallop, (xb, yb)], c1 if i % 2 == 0 else c2, shade)
    return canvas


def vendor_stall(rng: np.random.Generator, assets: Assets | None = None) -> Sprite:
    """A table or cart with a tarp front, produce on top, sometimes an umbrella,
    or a ground tarp (地摊) with goods; drawn at PX_PER_M."""
    goods = (assets or ORIGINAL).goods
    s = PX_PER_M
    kind = rng.choice(["table", "table", "cart", "ground_tarp"])
    width = int(s * rng.uniform(1.0, 2.0))
    depth = int(s * rng.uniform(0.25, 0.45))  # apparent depth of the top (camera is elevated)
    if kind == "ground_tarp":
        height = depth + int(s * 0.12)
        canvas_h, canvas_w = height + int(s * 0.3), width + 20
        canvas = np.zeros((canvas_h, canvas_w, 4), np.uint8)
        off = int(rng.integers(0, 12))
        tarp = [
            (10 + off, canvas_h - depth - 4),
            (width + 10 - off, canvas_h - depth - 4),
            (width + 18, canvas_h - 2),
            (2, canvas_h - 2),
        ]
        _poly(canvas, tarp, _color(rng, TARP_COLORS), 0.85 + 0.3 * _noise(rng, canvas_h, canvas_w, 15))
        heap = _produce_layer(rng, width - 20, depth, int(rng.integers(1, 3)), goods)
        _paste(canvas, heap, 14, canvas_h - depth - heap.shape[0] // 2 - 6)
        return Sprite(_trim(canvas), "vendor_stall", "ground_tarp")
    table_h = int(s * rng.uniform(0.7, 0.9))
    umbrella = bool(rng.random() < 0.5)
    ub_h = int(s * rng.uniform(2.0, 2.4)) if umbrella else 0
    top_y_off = int(s * 0.5) if umbrella else int(s * 0.35)
    canvas_h = max(ub_h, table_h + depth) + top_y_off + 10
    canvas_w = width + int(s * 1.2)
    canvas = np.zeros((canvas_h, canvas_w, 4), np.uint8)
    x0 = (canvas_w - width) // 2
    ground = canvas_h - 2
    front_top = ground - table_h
    back_top = front_top - depth
    skew = int(width * rng.uniform(-0.08, 0.08))
    wood = _color(rng, [(60, 90, 130), (90, 110, 140), (70, 70, 70), (180, 180, 180)])
    if umbrella:
        pole_x = canvas_w // 2
        cv2.line(canvas, (pole_x, back_top), (pole_x, ground - ub_h + 10), (90, 90, 90, 255), max(2, int(s * 0.03)))
    if kind == "cart":
        wheel_r = int(s * rng.uniform(0.18, 0.28))
        body_bottom = ground - wheel_r
        _poly(
            canvas,
            [(x0, back_top), (x0 + width, back_top), (x0 + width + skew, front_top), (x0 + skew, front_top)],
            wood * 1.1,
        )
        _poly(
            canvas,
            [
                (x0 + skew, front_top),
                (x0 + width + skew, front_top),
                (x0 + width + skew, body_bottom),
                (x0 + skew, body_bottom),
            ],
            _color(rng, TARP_COLORS),
            0.8 + 0.3 * _noise(rng, canvas_h, canvas_w, 25),
        )
        for wx in (x0 + skew + width // 5, x0 + skew + 4 * width // 5):
            cv2.circle(canvas, (wx, ground - wheel_r), wheel_r, (35, 35, 35, 255), -1, cv2.LINE_AA)
            cv2.circle(canvas, (wx, ground - wheel_r), max(2, wheel_r // 3), (150, 150, 150, 255), -1, cv2.LINE_AA)
        hx = x0 + width + skew
        cv2.line(
            canvas,
            (hx, front_top + 5),
            (hx + int(s * 0.5), front_top - int(s * 0.25)),
            (60, 60, 60, 255),
            max(2, int(s * 0.03)),
        )
    else:
        leg = max(2, int(s * 0.04))
        for lx in (x0 + skew + 4, x0 + width + skew - 4, x0 + 4, x0 + width - 4):
            cv2.line(canvas, (lx, front_top), (lx, ground), tuple(int(v) for v in wood) + (255,), leg)
        _poly(
            canvas,
            [(x0, back_top), (x0 + width, back_top), (x0 + width + skew, front_top), (x0 + skew, front_top)],
            wood,
        )
        drop = int(table_h * rng.uniform(0.4, 1.0))  # cloth hanging over the front
        folds = 0.75 + 0.35 * np.abs(np.sin(np.arange(canvas_w) / rng.uniform(4, 9)))[None, :].repeat(canvas_h, 0)
        _poly(
            canvas,
            [
                (x0 + skew, front_top),
                (x0 + width + skew, front_top),
                (x0 + width + skew, front_top + drop),
                (x0 + skew, front_top + drop),
            ],
            _color(rng, TARP_COLORS),
            folds.astype(np.float32),
        )
    heap = _produce_layer(rng, width - 8, depth, int(rng.integers(1, 4)), goods)
    _paste(canvas, heap, x0 + 4 + skew // 2, back_top - heap.shape[0] // 3)
    if umbrella:
        canopy = _umbrella(rng, int(s * rng.uniform(1.6, 2.3)))
        _paste(canvas, canopy, canvas_w // 2 - canopy.shape[1] // 2, ground - ub_h)
    return Sprite(_trim(canvas), "vendor_stall", str(kind) + ("+umbrella" if umbrella else ""))


def _bag(rng: np.random.Generator, size_px: int) -> np.ndarray:
    h = int(size_px * rng.uniform(0.8, 1.2))
    w = int(size_px * rng.uniform(0.8, 1.3))
    canvas = np.zeros((h + 8, w + 8, 4), np.uint8)
    t = np.linspace(0, 2 * np.pi, 28, endpoint=False)
    r = 1 + sum((rng.uniform(-0.08, 0.08) * np.sin(k * t + rng.uniform(0, 6.3)) for k in (2, 3, 5)), np.zeros_like(t))
    cx, cy = (w + 8) / 2, (h + 8) / 2 + h * 0.08
    pts = [
        (cx + w / 2 * rr * np.cos(a) * 0.95, cy + h / 2.2 * rr * np.sin(a) * (0.85 if np.sin(a) < 0 else 1.0))
        for a, rr in zip(t, r, strict=True)
    ]
    yy, xx = np.mgrid[0 : h + 8, 0 : w + 8].astype(np.float32)
    light = 1.25 - 0.6 * ((xx - cx * 0.7) ** 2 + (yy - cy * 0.6) ** 2) ** 0.5 / max(w, h)
    wrinkles = 0.85 + 0.3 * _noise(rng, h + 8, w + 8, 5)
    color = _color(rng, BAG_COLORS)
    _poly(canvas, pts, color, np.clip(light * wrinkles, 0.4, 1.6).astype(np.float32))
    knot = [
        (cx - w * 0.08, cy - h * 0.42),
        (cx + w * 0.08, cy - h * 0.42),
        (cx + w * 0.02, cy - h * 0.56),
        (cx - w * 0.05, cy - h * 0.58),
    ]
    _poly(canvas, knot, color * 0.9)
    return canvas


def _litter(rng: np.random.Generator, size_px: int) -> np.ndarray:
    """One piece of litter: paper, carton, can or bottle."""
    kind = rng.integers(4)
    w = max(4, int(size_px * rng.uniform(0.5, 1.0)))
    h = max(3, int(w * (rng.uniform(0.3, 0.6) if kind != 3 else rng.uniform(0.25, 0.4))))
    canvas = np.zeros((h + 4, w + 4, 4), np.uint8)
    color = [(235, 235, 235), (60, 110, 170), (40, 40, 200), (90, 150, 60)][kind]
    jitter = rng.integers(-max(1, w // 6), max(2, w // 6), size=(4, 2))
    pts = np.array([(2, 2), (w + 2, 2), (w + 2, h + 2), (2, h + 2)]) + jitter
    _poly(canvas, np.clip(pts, 0, [w + 3, h + 3]), _color(rng, [color]), 0.8 + 0.4 * _noise(rng, h + 4, w + 4, 3))
    return canvas


def garbage(rng: np.random.Generator, assets: Assets | None = None) -> Sprite:  # noqa: ARG001 # drawn, no cut-outs
    """A pile of bags with litter around it, a single dumped bag, or strewn litter."""
    s = PX_PER_M
    kind = rng.choice(["pile", "pile", "bag", "litter"])
    width = int(s * (rng.uniform(0.8, 1.8) if kind == "pile" else rng.uniform(0.5, 1.0)))
    height = int(s * (rng.uniform(0.5, 0.9) if kind != "litter" else 0.3))
    canvas = np.zeros((height + int(s * 0.4), width + int(s * 0.4), 4), np.uint8)
    H, W = canvas.shape[:2]
    if kind in ("pile", "litter"):
        for _ in range(int(rng.integers(6, 18))):
            piece = _litter(rng, int(s * rng.uniform(0.08, 0.25)))
            _paste(
                canvas,
                piece,
                int(rng.integers(0, W - piece.shape[1])),
                int(rng.integers(H - int(s * 0.3), H - piece.shape[0] + 1)),
            )
    n_bags = {"pile": int(rng.integers(2, 7)), "bag": 1, "litter": 0}[str(kind)]
    for i in range(n_bags):
        bag = _bag(rng, int(s * rng.uniform(0.35, 0.6)))
        bx = int(rng.integers(0, max(1, W - bag.shape[1])))
        by = H - bag.shape[0] - int(rng.integers(0, max(1, int(s * 0.12)))) - (int(s * 0.2) if i >= 3 else 0)
        _paste(canvas, bag, bx, max(0, by))
    if kind == "litter":  # a cardboard box in the strewn litter
        box_w = int(s * rng.uniform(0.25, 0.45))
        cb = np.zeros((box_w, box_w, 4), np.uint8)
        _poly(
            cb,
            [(0, box_w // 3), (box_w - 1, box_w // 3), (box_w - 1, box_w - 1), (0, box_w - 1)],
            _color(rng, [(70, 120, 170)]),
        )
        _poly(
            cb,
            [(0, box_w // 3), (box_w // 4, 0), (box_w - 1, 0), (box_w - 1, box_w // 3)],
            _color(rng, [(90, 140, 190)]),
        )
        _paste(canvas, cb, int(rng.integers(0, W - box_w)), H - box_w - 2)
    return Sprite(_trim(canvas), "garbage", str(kind))


DISTRACTORS = {  # real cut-outs that must NOT be flagged, with their real height in metres
    "a_tux_wheelie_bin.png": 1.05,
    "a_tux_garbagecan.png": 0.8,
    "a_tux_home_compost_bin.png": 0.9,
    "c_tux_traffic_cone.png": 0.7,
}


def distractor(rng: np.random.Generator, assets: Assets | None = None) -> Sprite:
    kinds = (assets or ORIGINAL).distractors
    name = list(kinds)[rng.integers(len(kinds))]
    rgba = _scale_to_height(load_rgba(name), int(kinds[name] * rng.uniform(0.9, 1.1) * PX_PER_M))
    return Sprite(rgba, None, name.removesuffix(".png"))


TRUCKS = {  # cut-out -> (real height m, always muddy)
    "a_c_tux_garbagetruck.png": (3.2, False),
    "c_tux_pickup_truck.png": (1.8, False),
    "c_tux_site_dumper.png": (2.3, True),
}
MUD_TEXTURES = ["c_gimp_drymud.png", "c_gimp_dirt.png", "c_gimp_ground1.png", "c_tuxdata_mudstone.jpg"]


def mud_texture(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    tex = load_rgba(MUD_TEXTURES[rng.integers(len(MUD_TEXTURES))])[:, :, :3]
    scale = rng.uniform(0.4, 1.0)
    tex = cv2.resize(tex, (max(8, int(tex.shape[1] * scale)), max(8, int(tex.shape[0] * scale))))
    reps = (h // tex.shape[0] + 2, w // tex.shape[1] + 2, 1)
    big = np.tile(tex, reps)
    oy, ox = rng.integers(0, tex.shape[0]), rng.integers(0, tex.shape[1])
    out = big[oy : oy + h, ox : ox + w].astype(np.float32)
    tint = np.asarray([40, 70, 95], np.float32) * rng.uniform(0.7, 1.3)  # brown (BGR)
    muddy: np.ndarray = np.clip(0.55 * out + 0.45 * tint * (out.mean(axis=2, keepdims=True) / 110.0), 0, 255)
    return muddy


def apply_mud(
    rng: np.random.Generator,
    rgb: np.ndarray,
    alpha: np.ndarray,
    region: tuple[int, int, int, int] | None = None,
    strength: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Splash mud on the lower body and wheels (inside alpha, or a region x1,y1,x2,y2):
    dense at the bottom, blotchy above. Returns (new rgb, mud coverage 0..1)."""
    h, w = rgb.shape[:2]
    x1, y1, x2, y2 = region or (0, 0, w, h)
    mask = np.zeros((h, w), np.float32)
    x1, y1 = max(0, x1), max(0, y1)
    x2, y2 = min(w, max(x2, x1 + 2)), min(h, max(y2, y1 + 2))
    rh, rw = y2 - y1, x2 - x1
    ys = np.linspace(0, 1, rh, dtype=np.float32)[:, None]
    level = rng.uniform(0.45, 0.7)  # mud reaches from the bottom up to this fraction of the height
    ramp = np.clip((ys - (1 - level)) / (level * 0.6), 0, 1)
    blotches = _noise(rng, rh, rw, max(3, rw / 25))
    splash = (blotches > rng.uniform(0.35, 0.55)).astype(np.float32)
    mud = np.clip(ramp * (0.35 + 0.65 * splash), 0, 1) * strength
    mask[y1:y2, x1:x2] = cv2.GaussianBlur(mud, (0, 0), 1.0)
    mask *= alpha.astype(np.float32) / 255.0
    tex = mud_texture(rng, h, w)
    out = rgb.astype(np.float32) * (1 - mask[:, :, None]) + tex * mask[:, :, None]
    return np.clip(out, 0, 255).astype(np.uint8), mask


def truck(rng: np.random.Generator, muddy: bool | None = None, assets: Assets | None = None) -> Sprite:
    kinds = (assets or ORIGINAL).trucks
    name = list(kinds)[rng.integers(len(kinds))]
    height_m, always_muddy = kinds[name]
    rgba = _scale_to_height(load_rgba(name), int(height_m * rng.uniform(0.9, 1.1) * PX_PER_M))
    if rng.random() < 0.5:
        rgba = rgba[:, ::-1].copy()
    muddy = always_muddy or (bool(rng.random() < 0.5) if muddy is None else muddy)
    mud = None
    if muddy:
        rgb, mud = apply_mud(rng, rgba[:, :, :3], rgba[:, :, 3], strength=rng.uniform(0.7, 1.0))
        rgba = np.dstack([rgb, rgba[:, :, 3]])
    return Sprite(rgba, "muddy_truck" if muddy else "truck", name.removesuffix(".png"), mud_mask=mud)


@dataclass(frozen=True)
class Assets:
    """Which cut-outs the builders draw: produce on stalls, trucks, and objects that must not
    become cases. Three pools: ORIGINAL (the scenario suite and the demo, kept as they were so
    their renders stay the same pixels), TRAINING (ORIGINAL plus the training cut-outs added
    since) and HELDOUT (the `heldout` split of MANIFEST.tsv only: evaluation sets, never training)."""

    name: str
    goods: tuple[str, ...]
    trucks: dict[str, tuple[float, bool]]  # cut-out -> (real height m, always muddy)
    distractors: dict[str, float]  # cut-out -> real height m


ORIGINAL = Assets("original", tuple(asset_names("b_")), dict(TRUCKS), dict(DISTRACTORS))
TRAINING = Assets(
    "training",
    tuple(asset_names("b_") + asset_names("g_")),
    {**TRUCKS, "c_tux_tow_truck_drawn.png": (2.8, False)},
    {**DISTRACTORS, "f_tux_bus.png": 3.1, "f_tux_sedan.png": 1.45, "f_tux_beetle.png": 1.5},
)
HELDOUT = Assets(
    "heldout",
    tuple(n for n in asset_names("h_") if n.split("_")[2] in ("apple", "pear", "orange", "peach", "lemon")),
    {"h_tux_dump_truck_drawn.png": (3.4, False), "h_tux_cement_mixer_drawn.png": (3.2, False)},
    {**DISTRACTORS, "h_tux_double_decker_bus_drawn.png": 4.4},
)
POOLS = {a.name: a for a in (ORIGINAL, TRAINING, HELDOUT)}


BUILDERS: dict[str, Callable[..., Sprite]] = {
    "vendor_stall": vendor_stall,
    "garbage": garbage,
    "truck": truck,
    "distractor": distractor,
}

"""Chinese number plates, drawn: random valid texts, plates at real proportions, pasted and dirtied.

No photo set of Chinese plates is in any registry we can reach, so the plate
reader is measured (and the scenario and demo trucks carry plates) on plates
drawn here after GA 36-2018: blue and yellow single-row plates 440 x 140 mm,
the lorry's double-row yellow rear plate 440 x 220 mm (province and letter on
top, five symbols below), the green new-energy plate 480 x 140 mm (white at
the top fading to green, eight symbols). One millimetre is one pixel at
scale 1. The symbols are cut from the committed plate font
(datasets/assets/fonts, a subset of Noto Sans CJK; `plate_font.py` made it)
and stretched to the plate's tall, narrow character cells, so drawing works
offline on a machine without system fonts.

- `random_plate_text(rng, style)`: a text `vision.core.plates.plate_format` accepts;
- `render_plate(text, style)`: the clean plate, BGR;
- `plate_corners(...)`: where a plate seen at an angle lands (tl, tr, br, bl);
- `paste_plate(image, plate, corners)`: the plate warped onto an image;
- `degrade(rng, image, ...)`: mud and dust, blur, low light, JPEG.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from functools import cache
from typing import Final, Literal

import cv2
import numpy as np

from vision.core.paths import REPO_ROOT
from vision.core.plates import LETTERS, PROVINCES, normalise_plate, plate_format

PlateStyle = Literal["blue", "yellow", "yellow_double", "green"]
PLATE_STYLES: Final[tuple[PlateStyle, ...]] = ("blue", "yellow", "yellow_double", "green")
PLATE_FONT = REPO_ROOT / "datasets" / "assets" / "fonts" / "PlateSans-Regular.otf"

Colour = tuple[int, int, int]  # BGR


@dataclass(frozen=True)
class _Layout:
    """A plate's size and character cells in millimetres (x, y, w, h), after GA 36-2018."""

    size: tuple[int, int]  # w, h
    cells: tuple[tuple[float, float, float, float], ...]
    dot: tuple[float, float] | None  # centre of the separator dot
    rivets: tuple[tuple[float, float], ...]


def _row(x0: float, y: float, w: float, h: float, gaps: list[float]) -> tuple[tuple[float, float, float, float], ...]:
    cells, x = [], x0
    for gap in [*gaps, 0.0]:
        cells.append((x, y, w, h))
        x += w + gap
    return tuple(cells)


# standard: 7 cells 45 x 90, 12 mm apart, 34 mm between the 2nd and 3rd (the dot's place)
_SINGLE = _Layout((440, 140), _row(15.5, 25, 45, 90, [12, 34, 12, 12, 12, 12]), (134.5, 70), ((110, 12), (330, 12)))
# new energy: 8 cells 43 x 90, 9 mm apart, 49 mm between the 2nd and 3rd
_NEW_ENERGY = _Layout((480, 140), _row(16.5, 25, 43, 90, [9, 49, 9, 9, 9, 9, 9]), (136.0, 70), ((120, 12), (360, 12)))
# double row: province and letter 80 x 60 on top, five symbols 65 x 110 below, 15 mm apart
_DOUBLE = _Layout(
    (440, 220),
    _row(110, 15, 80, 60, [60]) + _row(27.5, 92, 65, 110, [15, 15, 15, 15]),
    None,
    ((55, 45), (385, 45)),
)
_LAYOUTS: Final[dict[PlateStyle, _Layout]] = {
    "blue": _SINGLE,
    "yellow": _SINGLE,
    "yellow_double": _DOUBLE,
    "green": _NEW_ENERGY,
}
_BACKGROUND: Final[dict[PlateStyle, Colour]] = {
    "blue": (170, 70, 14),
    "yellow": (0, 190, 245),
    "yellow_double": (0, 190, 245),
    "green": (90, 190, 80),  # the bottom of the gradient
}
_GREEN_TOP: Final[Colour] = (240, 250, 242)
_INK: Final[dict[PlateStyle, Colour]] = {
    "blue": (245, 245, 245),
    "yellow": (20, 20, 20),
    "yellow_double": (20, 20, 20),
    "green": (20, 20, 20),
}
_LATIN_SQUEEZE = 0.8  # plate letters and digits are narrower than the font's: at this, a 0 fills 43 of its 45 mm
_GLYPH_PX = 160  # font size the glyphs are drawn at before they are fitted to their cells
_DIGIT_SHARE = 0.8  # of the five (or six) trailing symbols, this many are digits on average


def _symbol(rng: np.random.Generator, letters_left: list[int]) -> str:
    if letters_left[0] > 0 and rng.random() > _DIGIT_SHARE:
        letters_left[0] -= 1
        return str(rng.choice(list(LETTERS)))
    return str(rng.integers(0, 10))


def random_plate_text(rng: np.random.Generator, style: PlateStyle) -> str:
    """A random text of the style's format (no dot): 7 symbols, yellow ones at times a trailer's (…挂);
    green ones new energy, D or F first (small vehicle) or last (large vehicle)."""
    if style not in _LAYOUTS:
        raise ValueError(f"unknown plate style {style!r}; one of {', '.join(PLATE_STYLES)}")
    head = str(rng.choice(list(PROVINCES))) + str(rng.choice(list(LETTERS)))
    letters_left = [2]  # at most two letters among the serial's symbols
    if style == "green":
        if rng.random() < 0.7:
            tail = (
                str(rng.choice(["D", "F"]))
                + _symbol(rng, letters_left)
                + "".join(str(d) for d in rng.integers(0, 10, 4))
            )
        else:
            tail = "".join(str(d) for d in rng.integers(0, 10, 5)) + str(rng.choice(["D", "F"]))
    elif style in ("yellow", "yellow_double") and rng.random() < 0.2:
        tail = "".join(_symbol(rng, letters_left) for _ in range(4)) + "挂"
    else:
        tail = "".join(_symbol(rng, letters_left) for _ in range(5))
    text = head + tail
    expected = "new_energy" if style == "green" else "standard"
    if plate_format(text) != expected:  # a bug here, not bad luck: every branch draws a valid text
        raise AssertionError(f"drew {text!r}, not a {expected} plate")
    return text


@cache
def _font(size: int = _GLYPH_PX) -> object:
    from PIL import ImageFont

    if not PLATE_FONT.is_file():
        raise FileNotFoundError(
            f"plate font missing: {PLATE_FONT} (python -m vision.training.data.synth.plate_font rebuilds it)"
        )
    return ImageFont.truetype(str(PLATE_FONT), size)


@cache
def glyph(symbol: str) -> np.ndarray:
    """The symbol's ink as a float32 mask 0..1, cropped to its bounding box (empty when the font lacks it)."""
    from PIL import Image, ImageDraw, ImageFont

    font = _font()
    assert isinstance(font, ImageFont.FreeTypeFont)
    side = _GLYPH_PX * 2
    canvas = Image.new("L", (side, side), 0)
    ImageDraw.Draw(canvas).text((_GLYPH_PX // 4, _GLYPH_PX // 4), symbol, font=font, fill=255)
    ink = np.asarray(canvas, dtype=np.float32) / 255.0
    ys, xs = np.nonzero(ink > 0.02)
    if ys.size == 0:
        return np.zeros((0, 0), dtype=np.float32)
    return np.ascontiguousarray(ink[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1])


def has_glyph(symbol: str) -> bool:
    """Whether the plate font draws `symbol`: some ink, and not the box it draws for what it lacks."""
    drawn, missing = glyph(symbol), glyph("\ue000")  # a private-use code point: never in the font
    return drawn.size > 0 and (drawn.shape != missing.shape or not np.array_equal(drawn, missing))


def _fit(mask: np.ndarray, cell_w: int, cell_h: int, latin: bool) -> np.ndarray:
    """The glyph stretched to the cell's height; CJK fills the cell, Latin keeps (squeezed) proportions."""
    gh, gw = mask.shape
    width = cell_w if not latin else min(cell_w, max(2, round(gw * cell_h / gh * _LATIN_SQUEEZE)))
    interp = cv2.INTER_AREA if gh > cell_h else cv2.INTER_CUBIC
    return np.clip(cv2.resize(mask, (max(1, width), max(1, cell_h)), interpolation=interp), 0.0, 1.0)


def _background(style: PlateStyle, w: int, h: int) -> np.ndarray:
    if style != "green":
        return np.full((h, w, 3), _BACKGROUND[style], dtype=np.float32)
    # new energy: white at the top, green from about a third down (the gradient of GA 36-2018 plates)
    t = np.clip((np.arange(h, dtype=np.float32) / max(h - 1, 1) - 0.1) / 0.55, 0.0, 1.0)[:, None, None]
    top, bottom = np.asarray(_GREEN_TOP, np.float32), np.asarray(_BACKGROUND["green"], np.float32)
    return np.broadcast_to(top * (1 - t) + bottom * t, (h, w, 3)).copy()


def render_plate(text: str, style: PlateStyle, *, scale: float = 1.0) -> np.ndarray:
    """The clean plate as BGR uint8, `scale` pixels per millimetre (1: 440 x 140 px for a single row).

    `text` is the plate's symbols without the dot (a dot or spaces in it are dropped): 7 for
    blue and yellow plates, 8 for green ones."""
    if style not in _LAYOUTS:
        raise ValueError(f"unknown plate style {style!r}; one of {', '.join(PLATE_STYLES)}")
    symbols = normalise_plate(text)
    layout = _LAYOUTS[style]
    if len(symbols) != len(layout.cells):
        raise ValueError(f"a {style} plate has {len(layout.cells)} symbols, {symbols!r} has {len(symbols)}")
    w, h = round(layout.size[0] * scale), round(layout.size[1] * scale)
    plate = _background(style, w, h)
    ink = np.asarray(_INK[style], dtype=np.float32)
    alpha = np.zeros((h, w), dtype=np.float32)
    # the frame: a thin line inset from the plate's edge, rounded at the corners
    inset, radius, line = 4.0 * scale, 9.0 * scale, max(1, round(2.5 * scale))
    _rounded_rect(alpha, inset, inset, w - 1 - inset, h - 1 - inset, radius, line)
    for symbol, (x, y, cw, ch) in zip(symbols, layout.cells, strict=True):
        mask = glyph(symbol)
        if mask.size == 0:
            raise ValueError(f"the plate font has no {symbol!r}")
        fitted = _fit(
            mask, round(cw * scale), round(ch * scale), latin=symbol in string.ascii_uppercase + string.digits
        )
        fh, fw = fitted.shape
        x0 = round((x + cw / 2) * scale - fw / 2)
        y0 = round((y + ch / 2) * scale - fh / 2)
        region = alpha[y0 : y0 + fh, x0 : x0 + fw]
        np.maximum(region, fitted[: region.shape[0], : region.shape[1]], out=region)
    if layout.dot is not None:
        centre = (round(layout.dot[0] * scale * 16), round(layout.dot[1] * scale * 16))
        cv2.circle(alpha, centre, round(5 * scale * 16), 1.0, -1, lineType=cv2.LINE_AA, shift=4)
    plate = plate * (1 - alpha[..., None]) + ink * alpha[..., None]
    for rx, ry in layout.rivets:  # the screw heads: a dull metal disc with a darker rim
        centre = (round(rx * scale * 16), round(ry * scale * 16))
        cv2.circle(plate, centre, round(4.5 * scale * 16), (150, 150, 150), -1, lineType=cv2.LINE_AA, shift=4)
        cv2.circle(plate, centre, round(4.5 * scale * 16), (90, 90, 90), 1, lineType=cv2.LINE_AA, shift=4)
    drawn: np.ndarray = np.clip(plate, 0, 255).astype(np.uint8)
    return drawn


def _rounded_rect(alpha: np.ndarray, x1: float, y1: float, x2: float, y2: float, r: float, thickness: int) -> None:
    s = 16  # sub-pixel shift of cv2's anti-aliased drawing
    p = [round(v * s) for v in (x1, y1, x2, y2, r)]
    x1i, y1i, x2i, y2i, ri = p
    for a, b in (
        ((x1i + ri, y1i), (x2i - ri, y1i)),
        ((x1i + ri, y2i), (x2i - ri, y2i)),
        ((x1i, y1i + ri), (x1i, y2i - ri)),
        ((x2i, y1i + ri), (x2i, y2i - ri)),
    ):
        cv2.line(alpha, a, b, 1.0, thickness, lineType=cv2.LINE_AA, shift=4)
    for centre, angle in (
        ((x1i + ri, y1i + ri), 180),
        ((x2i - ri, y1i + ri), 270),
        ((x2i - ri, y2i - ri), 0),
        ((x1i + ri, y2i - ri), 90),
    ):
        cv2.ellipse(alpha, centre, (ri, ri), angle, 0, 90, 1.0, thickness, lineType=cv2.LINE_AA, shift=4)


def plate_aspect(style: PlateStyle) -> float:
    """Width over height of the style's plate (440/140, 440/220, 480/140)."""
    w, h = _LAYOUTS[style].size
    return w / h


def plate_corners(
    centre: tuple[float, float],
    width_px: float,
    aspect: float,
    *,
    yaw_deg: float = 0.0,
    pitch_deg: float = 0.0,
    roll_deg: float = 0.0,
    distance: float = 3.0,
) -> np.ndarray:
    """Where a plate seen at an angle lands in an image: (4, 2) float32 tl, tr, br, bl.

    The plate (width 1, height 1/aspect) is turned by `yaw` (about its vertical axis: seen from the
    side), `pitch` (about its horizontal axis; positive: a camera above it, which has the top edge nearer, so
    wider),
    projected from `distance` plate widths away, turned by `roll` in the image, and scaled so that
    the mean of its top and bottom edges is `width_px` long (the width a camera would measure)."""
    half_w, half_h = 0.5, 0.5 / aspect
    pts = np.asarray([[-half_w, -half_h, 0], [half_w, -half_h, 0], [half_w, half_h, 0], [-half_w, half_h, 0]], float)
    yaw, pitch, roll = np.radians([yaw_deg, pitch_deg, roll_deg])
    ry = np.asarray([[np.cos(yaw), 0, np.sin(yaw)], [0, 1, 0], [-np.sin(yaw), 0, np.cos(yaw)]])
    rx = np.asarray([[1, 0, 0], [0, np.cos(pitch), -np.sin(pitch)], [0, np.sin(pitch), np.cos(pitch)]])
    world = pts @ (rx @ ry).T + np.asarray([0.0, 0.0, distance])
    flat = world[:, :2] / world[:, 2:3] * distance
    rot = np.asarray([[np.cos(roll), -np.sin(roll)], [np.sin(roll), np.cos(roll)]])
    flat = flat @ rot.T
    edge = (np.linalg.norm(flat[1] - flat[0]) + np.linalg.norm(flat[2] - flat[3])) / 2
    out = flat / edge * width_px + np.asarray(centre, dtype=float)
    corners: np.ndarray = out.astype(np.float32)
    return corners


def paste_plate(image_bgr: np.ndarray, plate_bgr: np.ndarray, corners: np.ndarray) -> np.ndarray:
    """A copy of the image with the plate warped onto the quadrilateral `corners` (tl, tr, br, bl),
    its edges anti-aliased. A plate much larger than its place is shrunk first (area averaging), so a
    40 px plate looks like a camera's, not like a sampled 440 px drawing."""
    quad = np.asarray(corners, dtype=np.float32).reshape(4, 2)
    out = image_bgr.copy()
    ih, iw = out.shape[:2]
    x1, y1 = np.floor(quad.min(axis=0)).astype(int)
    x2, y2 = np.ceil(quad.max(axis=0)).astype(int) + 1
    x1, y1, x2, y2 = max(x1, 0), max(y1, 0), min(x2, iw), min(y2, ih)
    if x2 <= x1 or y2 <= y1:
        return out
    ph, pw = plate_bgr.shape[:2]
    target_w = max(np.linalg.norm(quad[1] - quad[0]), np.linalg.norm(quad[2] - quad[3]))
    if target_w < pw / 1.5:  # shrink in one step of area averaging, leave the last factor to the warp
        factor = max(target_w * 1.25 / pw, 1.0 / pw)
        plate_bgr = cv2.resize(
            plate_bgr, (max(2, round(pw * factor)), max(2, round(ph * factor))), interpolation=cv2.INTER_AREA
        )
        ph, pw = plate_bgr.shape[:2]
    src = np.asarray([[0, 0], [pw, 0], [pw, ph], [0, ph]], dtype=np.float32) - 0.5
    matrix = cv2.getPerspectiveTransform(src, quad - np.asarray([x1, y1], dtype=np.float32))
    size = (x2 - x1, y2 - y1)
    warped = cv2.warpPerspective(plate_bgr, matrix, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    ones = np.ones((ph, pw), dtype=np.float32)
    alpha = cv2.warpPerspective(ones, matrix, size, flags=cv2.INTER_LINEAR, borderValue=0.0)[..., None]
    region = out[y1:y2, x1:x2].astype(np.float32)
    out[y1:y2, x1:x2] = np.clip(region * (1 - alpha) + warped.astype(np.float32) * alpha + 0.5, 0, 255).astype(np.uint8)
    return out


def paint_plate(rgba: np.ndarray, text: str, style: PlateStyle, width_px: float) -> np.ndarray:
    """A vehicle cut-out (BGR + alpha) with the plate painted on its body: the enlarged number
    (放大号) a lorry carries on its cargo box, where a side-on camera sees it. The plate goes at the
    most central spot, in the body's middle band, where all of it lies on the vehicle."""
    plate = render_plate(text, style)
    w = max(8, round(width_px))
    h = max(4, round(w / plate_aspect(style)))
    rows, cols = rgba.shape[:2]
    if w >= cols or h >= rows:
        raise ValueError(f"a {w} px plate does not fit on a {cols} x {rows} px vehicle")
    solid = (rgba[:, :, 3] >= 250).astype(np.int32)
    # summed-area table: how many solid pixels a w x h plate at each top-left corner would cover
    table = np.pad(solid.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    covered = table[h:, w:] - table[:-h, w:] - table[h:, :-w] + table[:-h, :-w]
    ys, xs = np.nonzero(covered == w * h)
    centre_y = ys + h / 2
    band = (centre_y >= 0.3 * rows) & (centre_y <= 0.7 * rows)
    if not band.any():
        raise ValueError(f"no place on the vehicle's body holds a {w} x {h} px plate")
    ys, xs = ys[band], xs[band]
    distance = np.hypot(xs + w / 2 - cols / 2, ys + h / 2 - rows / 2)
    x0, y0 = int(xs[distance.argmin()]), int(ys[distance.argmin()])
    corners = np.asarray([[x0, y0], [x0 + w, y0], [x0 + w, y0 + h], [x0, y0 + h]], dtype=np.float32)
    out = rgba.copy()
    out[:, :, :3] = paste_plate(np.ascontiguousarray(rgba[:, :, :3]), plate, corners)
    return out


_MUD: Final[tuple[Colour, ...]] = ((40, 62, 92), (32, 52, 78), (55, 80, 110), (28, 40, 58), (70, 95, 120))


def _smooth_noise(rng: np.random.Generator, h: int, w: int, cell: float) -> np.ndarray:
    """Noise 0..1 varying over about `cell` pixels (bilinear up-sampled random grid)."""
    gh, gw = max(2, int(h / cell) + 2), max(2, int(w / cell) + 2)
    grid = rng.random((gh, gw)).astype(np.float32)
    return cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC).clip(0, 1)


def add_mud(rng: np.random.Generator, image: np.ndarray, amount: float) -> np.ndarray:
    """Mud as a lorry leaving a site carries it: a brownish film of dust over everything, blotches
    with ragged edges that cover parts of some characters, and small splashes. `amount` 0..1."""
    if amount <= 0:
        return image.copy()
    h, w = image.shape[:2]
    side = min(h, w)
    img = image.astype(np.float32)
    alpha = np.zeros((h, w), dtype=np.float32)
    colour = np.asarray(_MUD[int(rng.integers(len(_MUD)))], dtype=np.float32)
    # dust: a thin uneven film, thicker towards the bottom (thrown up by the wheels)
    film = (0.12 + 0.3 * amount) * _smooth_noise(rng, h, w, side * 0.5)
    film *= np.linspace(0.6, 1.2, h, dtype=np.float32)[:, None]
    alpha = np.maximum(alpha, film)
    # clods: clusters of overlapping drops, ragged where coarse noise eats their edges
    for _ in range(int(rng.integers(1, 3 + round(5 * amount)))):
        mask = np.zeros((h, w), dtype=np.float32)
        cx, cy = rng.uniform(0, w), rng.uniform(h * 0.2, h)
        spread = side * rng.uniform(0.1, 0.2 + 0.45 * amount)
        for _ in range(int(rng.integers(4, 12))):
            x, y = cx + rng.normal(0, spread), cy + rng.normal(0, spread * 0.5)
            r = max(1, int(spread * rng.uniform(0.25, 0.7)))
            cv2.circle(mask, (int(x), int(y)), r, 1.0, -1, lineType=cv2.LINE_AA)
        mask = np.asarray(cv2.GaussianBlur(mask, (0, 0), max(1.0, spread * 0.25)), dtype=np.float32)
        ragged = _smooth_noise(rng, h, w, max(side * 0.06, 2.0))
        alpha = np.maximum(alpha, np.clip((mask + 0.35 * ragged - 0.55) * 5, 0, 1) * rng.uniform(0.7, 0.97))
    # splashes: small drops
    for _ in range(int(rng.integers(0, 4 + round(30 * amount)))):
        r = max(1, int(side * rng.uniform(0.01, 0.05)))
        cv2.circle(alpha, (int(rng.integers(0, w)), int(rng.integers(0, h))), r, float(rng.uniform(0.5, 0.9)), -1)
    shade = 0.75 + 0.5 * _smooth_noise(rng, h, w, max(side * 0.05, 2.0))  # mud is not one flat colour
    mud = colour[None, None, :] * shade[..., None]
    soft = np.asarray(cv2.GaussianBlur(alpha, (0, 0), max(0.6, side * 0.006)), dtype=np.float32)[..., None]
    muddy: np.ndarray = np.clip(img * (1 - soft) + mud * soft, 0, 255).astype(np.uint8)
    return muddy


def degrade(
    rng: np.random.Generator,
    image: np.ndarray,
    *,
    mud: float = 0.0,
    blur_px: float = 0.0,
    motion_px: float = 0.0,
    light: float = 1.0,
    jpeg_quality: int | None = None,
) -> np.ndarray:
    """A plate or a whole image as a street camera would give it, in this order:
    - `mud` 0..1: dust film, blotches, splashes (`add_mud`; on a plate before it is pasted);
    - `blur_px`: out of focus, the Gaussian's sigma in pixels; `motion_px`: a moving lorry, the length
      of a streak about the horizontal;
    - `light` 0..1: dusk (1 is daylight): darker, bluer, noisier in the dark, contrast lost;
    - `jpeg_quality`: compressed like a camera's stream (e.g. 30-90), None for none."""
    out = add_mud(rng, image, mud) if mud > 0 else image.copy()
    if blur_px > 0:
        out = cv2.GaussianBlur(out, (0, 0), blur_px)
    if motion_px >= 2:
        n = int(round(motion_px)) | 1
        kernel = np.zeros((n, n), dtype=np.float32)
        kernel[n // 2, :] = 1.0 / n
        rot = cv2.getRotationMatrix2D((n / 2 - 0.5, n / 2 - 0.5), float(rng.uniform(-15, 15)), 1.0)
        kernel = np.asarray(cv2.warpAffine(kernel, rot, (n, n)), dtype=np.float32)
        out = cv2.filter2D(out, -1, kernel / max(float(kernel.sum()), 1e-6))
    if light < 1.0:
        f = out.astype(np.float32) / 255.0
        f = f**1.25 * light + 0.04 * (1 - light)  # darker, shadows crushed, a little veiling glare
        f *= np.asarray([1.08, 1.0, 0.88], dtype=np.float32)  # the blue hour
        noise_sigma = 0.012 + 0.04 * (1 - light)
        f += rng.normal(0.0, noise_sigma, f.shape[:2]).astype(np.float32)[..., None]  # luma noise
        f += rng.normal(0.0, noise_sigma / 2, f.shape).astype(np.float32)  # colour noise
        out = np.clip(f * 255.0, 0, 255).astype(np.uint8)
    if jpeg_quality is not None:
        ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)])
        if ok:
            out = np.asarray(cv2.imdecode(buf, cv2.IMREAD_COLOR))
    return out


__all__ = [
    "PLATE_FONT",
    "PLATE_STYLES",
    "PlateStyle",
    "add_mud",
    "degrade",
    "glyph",
    "has_glyph",
    "paste_plate",
    "plate_aspect",
    "plate_corners",
    "random_plate_text",
    "render_plate",
]

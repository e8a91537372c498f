"""Paste one sprite into a real frame so it looks like it stands there: scaled by
the scene's perspective at its foot, colour and blur matched to the spot, a
soft contact shadow, real people in front of it pasted back over it, sensor
noise. The label box is taken from the alpha that is finally visible, so it is
exact by construction (tested)."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from vision.training.data.synth.scene import Frame, Perspective
from vision.training.data.synth.sprites import PX_PER_M, Sprite

VISIBLE = 0.5  # alpha at or above which a pixel counts as the object's


@dataclass
class Placed:
    sprite: Sprite
    box: tuple[int, int, int, int] | None  # visible x1, y1, x2, y2 (x2/y2 exclusive), None if hidden
    full_box: tuple[int, int, int, int]  # box before occlusion and clipping
    visible_fraction: float
    foot: tuple[float, float]


def scaled(sprite: Sprite, perspective: Perspective, foot_y: float) -> np.ndarray:
    f = perspective.px_per_m(foot_y) / PX_PER_M
    h, w = sprite.rgba.shape[:2]
    nh, nw = max(2, int(round(h * f))), max(2, int(round(w * f)))
    return cv2.resize(sprite.rgba, (nw, nh), interpolation=cv2.INTER_AREA if f < 1 else cv2.INTER_LINEAR)


def match_colour(rgb: np.ndarray, alpha: np.ndarray, patch: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Move the object's brightness and saturation part-way to the surrounding scene's."""
    m = alpha > 128
    if m.sum() < 4 or patch.size == 0:
        return rgb
    lab = cv2.cvtColor(rgb, cv2.COLOR_BGR2LAB).astype(np.float32)
    plab = cv2.cvtColor(patch, cv2.COLOR_BGR2LAB).reshape(-1, 3).astype(np.float32)
    k = rng.uniform(0.2, 0.45)
    lo, lp = lab[..., 0][m], plab[:, 0]
    lab[..., 0] = (
        (lab[..., 0] - lo.mean()) * (1 - k + k * min(1.5, lp.std() / (lo.std() + 1e-3)))
        + lo.mean()
        + k * (lp.mean() - lo.mean())
    )
    chroma_o = np.abs(lab[..., 1:][m] - 128).mean()
    chroma_p = np.abs(plab[:, 1:] - 128).mean()
    sat = float(np.clip(1 - k + k * chroma_p / (chroma_o + 1e-3), 0.55, 1.1))
    lab[..., 1:] = (lab[..., 1:] - 128) * sat + 128
    return cv2.cvtColor(np.clip(lab, 0, 255).astype(np.uint8), cv2.COLOR_LAB2BGR)


def composite(
    frame: Frame,
    canvas: np.ndarray,
    sprite: Sprite,
    foot: tuple[float, float],
    perspective: Perspective,
    rng: np.random.Generator,
    occlude: bool = True,
    shadow: bool = True,
) -> Placed:
    """Composite `sprite` into `canvas` (modified in place) with its bottom centre at `foot`."""
    H, W = canvas.shape[:2]
    rgba = scaled(sprite, perspective, foot[1])
    h, w = rgba.shape[:2]
    x0, y0 = int(round(foot[0] - w / 2)), int(round(foot[1] - h))
    cx0, cy0, cx1, cy1 = max(0, x0), max(0, y0), min(W, x0 + w), min(H, y0 + h)
    full_box = (x0, y0, x0 + w, y0 + h)
    if cx0 >= cx1 or cy0 >= cy1:
        return Placed(sprite, None, full_box, 0.0, foot)
    rgb = rgba[:, :, :3]
    alpha = rgba[:, :, 3]
    pad = max(4, w // 2)
    patch = canvas[max(0, y0 - pad // 2) : min(H, y0 + h + pad // 2), max(0, x0 - pad) : min(W, x0 + w + pad)]
    rgb = match_colour(rgb, alpha, patch, rng)
    sigma = rng.uniform(0.3, 0.9)
    rgb = cv2.GaussianBlur(rgb, (0, 0), sigma)
    alpha_f: np.ndarray = cv2.GaussianBlur(alpha.astype(np.float32) / 255.0, (0, 0), 0.5)
    sub = (slice(cy0 - y0, cy1 - y0), slice(cx0 - x0, cx1 - x0))
    a = alpha_f[sub]
    if shadow:
        _shadow(canvas, foot, w, rng)
    region = canvas[cy0:cy1, cx0:cx1].astype(np.float32)
    obj = rgb[sub].astype(np.float32) + rng.normal(0, rng.uniform(1.0, 3.0), rgb[sub].shape)
    region = obj * a[:, :, None] + region * (1 - a[:, :, None])
    canvas[cy0:cy1, cx0:cx1] = np.clip(region, 0, 255).astype(np.uint8)
    visible = a.copy()
    if occlude:
        for (px1, py1, px2, py2), pmask in frame.person_masks:
            if py2 <= foot[1]:  # the person stands behind the object
                continue
            ix0, iy0, ix1, iy1 = max(cx0, px1), max(cy0, py1), min(cx1, px2), min(cy1, py2)
            if ix0 >= ix1 or iy0 >= iy1:
                continue
            pm = pmask[iy0 - py1 : iy1 - py1, ix0 - px1 : ix1 - px1].astype(np.float32) / 255.0
            orig = frame.image[iy0:iy1, ix0:ix1].astype(np.float32)
            cur = canvas[iy0:iy1, ix0:ix1].astype(np.float32)
            canvas[iy0:iy1, ix0:ix1] = (orig * pm[:, :, None] + cur * (1 - pm[:, :, None])).astype(np.uint8)
            visible[iy0 - cy0 : iy1 - cy0, ix0 - cx0 : ix1 - cx0] *= 1 - pm
    on = visible >= VISIBLE
    total = float((alpha_f >= VISIBLE).sum())
    if not on.any():
        return Placed(sprite, None, full_box, 0.0, foot)
    ys, xs = np.nonzero(on)
    box = (int(xs.min()) + cx0, int(ys.min()) + cy0, int(xs.max()) + cx0 + 1, int(ys.max()) + cy0 + 1)
    return Placed(sprite, box, full_box, float(on.sum()) / max(total, 1.0), foot)


def _shadow(canvas: np.ndarray, foot: tuple[float, float], width: int, rng: np.random.Generator) -> None:
    H, W = canvas.shape[:2]
    rx, ry = max(2, int(width * 0.5)), max(1, int(width * 0.08))
    x1, y1, x2, y2 = int(foot[0] - rx * 1.5), int(foot[1] - ry * 3), int(foot[0] + rx * 1.5), int(foot[1] + ry * 3)
    x1, y1, x2, y2 = max(0, x1), max(0, y1), min(W, x2), min(H, y2)
    if x1 >= x2 or y1 >= y2:
        return
    m = np.zeros((y2 - y1, x2 - x1), np.float32)
    cv2.ellipse(m, (int(foot[0]) - x1, int(foot[1]) - y1), (rx, ry), 0, 0, 360, 1.0, -1)
    m = cv2.GaussianBlur(m, (0, 0), max(1.0, ry))
    dark = 1 - rng.uniform(0.25, 0.45) * m
    canvas[y1:y2, x1:x2] = (canvas[y1:y2, x1:x2].astype(np.float32) * dark[:, :, None]).astype(np.uint8)

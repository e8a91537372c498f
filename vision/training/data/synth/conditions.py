"""What happens to a rendered frame after the objects are composited in: the light
and weather of the scene, and the camera that films it.

- `day`: nothing for real footage (its frames already carry the camera's noise).
- `dusk`: exposure and gamma down to about 25-40 % mean luma, a warm (sodium
  lamps) or blue (blue hour) cast, lower contrast with lifted blacks, a scene
  that keeps getting a little darker, and the stronger sensor noise of a camera
  at high gain.
- `rain`: semi-transparent streaks that fall anew in every frame, slight blur and
  contrast loss, greyer colours and darker wet ground below the horizon.

A still picture becomes footage of a camera that keeps filming it: per-frame
sensor noise (luma and coarser chroma, stronger in the shadows' relative
terms) and a slow small brightness drift, so no two frames are the same.
A black-and-white picture stays black and white after compositing.

Everything is drawn from the scene's seed and the frame index, so a scene
renders to the same pixels every time and in any chunking.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TypedDict

import cv2
import numpy as np

CONDITIONS = ("day", "dusk", "rain")
NOISE_FIELDS = 4  # noise fields made once per scene ...
NOISE_PAD = 64  # ... and shifted by up to this many pixels per frame


def is_monochrome(image: np.ndarray, tolerance: float = 4.0) -> bool:
    """True for a grey picture stored as BGR (channels within `tolerance` of each other)."""
    if image.ndim == 2:
        return True
    small = image[:: max(1, image.shape[0] // 64), :: max(1, image.shape[1] // 64)].astype(np.int16)
    return float(np.abs(small - small.mean(axis=2, keepdims=True)).mean()) < tolerance


def mean_luma(image: np.ndarray) -> float:
    """Mean luma of a BGR image, 0..1."""
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
    return float(grey.mean()) / 255.0


class LookParams(TypedDict, total=False):
    """The random parameters of one scene's look, drawn once from its seed; which keys are set
    depends on the condition."""

    # every condition (the camera filming a still)
    drift: list[tuple[float, float, float]]  # brightness drift: (amplitude, period s, phase) twice
    noise: float  # sensor noise sigma, grey levels
    # dusk
    target: float  # mean luma at the start, 0..1
    darken: float  # further fall by the end
    gamma: float
    contrast: float  # also rain
    lift: float
    cast: np.ndarray  # BGR multipliers, float32
    gain: float
    # rain
    density: float  # streaks per 10^4 pixels
    angle: float  # degrees off vertical (wind)
    length: float  # of the frame height
    streak: float  # streak opacity
    blur: float
    grey: float  # desaturation
    wet: float  # ground brightness when wet
    dim: float  # overcast


NoiseBank = tuple[list[np.ndarray], list[np.ndarray]]  # luma fields, chroma fields


@dataclass
class FrameLook:
    """Applies a condition (and, for a still, a camera) to frame i of n, deterministically."""

    condition: str
    seed: int
    n_frames: int
    fps: float
    reference: np.ndarray  # a background frame (before compositing) to calibrate the exposure on
    still: bool = False
    ground_y: float = 0.5  # relative y below which the ground is (wet in the rain)
    mono: bool = field(default=False, init=False)
    params: LookParams = field(default_factory=LookParams, init=False)
    _bank_key: tuple[int, int] | None = field(default=None, init=False, repr=False)  # frame size of _bank
    _bank: NoiseBank | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.condition not in CONDITIONS:
            raise ValueError(f"condition '{self.condition}' is not one of {CONDITIONS}")
        self.mono = is_monochrome(self.reference)
        rng = np.random.default_rng([self.seed, 7919])
        p = self.params
        # a camera filming a still: drift of a few percent over tens of seconds, light sensor noise
        p["drift"] = [
            (rng.uniform(0.012, 0.025), rng.uniform(15, 40), rng.uniform(0, 2 * math.pi)),
            (rng.uniform(0.004, 0.008), rng.uniform(4, 9), rng.uniform(0, 2 * math.pi)),
        ]
        p["noise"] = rng.uniform(1.6, 2.6)
        if self.condition == "dusk":
            # mean luma at the start: 28-36 %, and always well below the day picture's (some are dim already)
            p["target"] = max(0.2, min(rng.uniform(0.28, 0.36), mean_luma(self.reference) * rng.uniform(0.6, 0.75)))
            p["darken"] = rng.uniform(0.10, 0.22)  # further fall by the end
            p["gamma"] = rng.uniform(1.25, 1.6)
            p["contrast"] = rng.uniform(0.72, 0.85)
            p["lift"] = rng.uniform(0.015, 0.04)
            warm = rng.random() < 0.5
            p["cast"] = np.array([0.80, 0.95, 1.12] if warm else [1.14, 1.0, 0.84], np.float32)  # BGR
            p["cast"] = p["cast"] * rng.uniform(0.97, 1.03, 3).astype(np.float32)
            p["noise"] = rng.uniform(4.5, 7.0)
            # the gain that brings this picture's mean luma to the target after the gamma
            lin = (cv2.resize(self.reference, (64, 48), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0) ** p[
                "gamma"
            ]
            lum = float((lin * p["cast"] * np.array([0.114, 0.587, 0.299], np.float32)).sum(axis=2).mean())
            p["gain"] = p["target"] / max(lum, 1e-3)
        elif self.condition == "rain":
            p["density"] = rng.uniform(5.0, 9.0)  # streaks per 10^4 pixels
            p["angle"] = rng.uniform(-14, 14)  # degrees off vertical (wind)
            p["length"] = rng.uniform(0.035, 0.07)  # of the frame height
            p["streak"] = rng.uniform(0.22, 0.36)  # streak opacity
            p["blur"] = rng.uniform(0.6, 1.0)
            p["contrast"] = rng.uniform(0.78, 0.88)
            p["grey"] = rng.uniform(0.15, 0.3)  # desaturation
            p["wet"] = rng.uniform(0.72, 0.85)  # ground brightness when wet
            p["dim"] = rng.uniform(0.86, 0.95)  # overcast

    @property
    def identity(self) -> bool:
        """Nothing to do: real footage in daylight (its frames stay byte for byte as they were)."""
        return self.condition == "day" and not self.still and not self.mono

    # ------------------------------------------------------------------ per frame
    def apply(self, image: np.ndarray, index: int) -> np.ndarray:
        """Frame `index` as the camera delivers it (a new array; `image` is left as it is)."""
        if self.identity:
            return image
        p = self.params
        rng = np.random.default_rng([self.seed, index, 104729])
        H, W = image.shape[:2]
        img = image
        if self.condition == "rain":  # softer, greyer and flatter (one colour matrix), then the wet ground below
            img = cv2.transform(cv2.GaussianBlur(img, (0, 0), p["blur"]), self._rain_matrix())
        elif self.condition == "dusk":
            img = cv2.LUT(img, self._dusk_lut(index))
        f = img.astype(np.float32)
        gain = np.float32(1.0)
        if self.still:
            t = index / max(1.0, self.fps)
            gain = np.float32(
                1.0 + sum(a * math.sin(2 * math.pi * t / period + phase) for a, period, phase in p["drift"])
            )
        if self.condition == "rain":
            f *= (self._wet_rows(H) * gain)[:, None, None]
            alpha = self._streaks(rng, H, W)[:, :, None]
            f += alpha * (np.float32(225.0) - f)
        elif gain != 1.0:
            f *= gain
        if self.still or self.condition == "dusk":
            self._noise(f, img, rng)
        np.clip(f, 0, 255, out=f)
        out: np.ndarray = f.astype(np.uint8)
        if self.mono:
            out = cv2.cvtColor(cv2.cvtColor(out, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
        return out

    def _dusk_lut(self, index: int) -> np.ndarray:
        p = self.params
        k = index / max(1, self.n_frames - 1)
        fall = 1.0 - p["darken"] * k  # the scene keeps getting darker
        v = np.arange(256, dtype=np.float32) / 255.0
        mid = p["target"] * fall
        curves = []
        for c in range(3):
            lin = np.clip(v ** p["gamma"] * p["gain"] * fall * p["cast"][c], 0, 1)
            lin = mid + p["contrast"] * (lin - mid)
            curves.append(np.clip(p["lift"] + (1 - p["lift"]) * lin, 0, 1))
        return (np.stack(curves, axis=1) * 255.0 + 0.5).astype(np.uint8).reshape(1, 256, 3)

    def _rain_matrix(self) -> np.ndarray:
        """3x4 BGR matrix: desaturate by `grey`, then contrast `contrast` about mid-grey."""
        p = self.params
        g, c = p["grey"], p["contrast"]
        m = c * ((1 - g) * np.eye(3) + g / 3.0 * np.ones((3, 3)))
        matrix: np.ndarray = np.hstack([m, np.full((3, 1), 128.0 * (1 - c))]).astype(np.float32)
        return matrix

    def _wet_rows(self, H: int) -> np.ndarray:
        p = self.params
        rows = np.linspace(0.0, 1.0, H, dtype=np.float32)
        wet = np.clip((rows - self.ground_y) / max(0.05, (1.0 - self.ground_y) * 0.35), 0, 1)
        gain: np.ndarray = (p["dim"] * (1.0 - (1.0 - p["wet"]) * wet)).astype(np.float32)
        return gain

    def _streaks(self, rng: np.random.Generator, H: int, W: int) -> np.ndarray:
        """Opacity of the rain streaks in this frame: fresh positions every frame (drops fall far
        between two frames), a few nearer ones longer and thicker."""
        p = self.params
        n = int(p["density"] * W * H / 1e4)
        layer: np.ndarray = np.zeros((H, W), np.float32)
        a = math.radians(p["angle"] + rng.normal(0, 2.0))
        dx, dy = math.sin(a), math.cos(a)
        xs, ys = rng.uniform(-0.1 * W, 1.1 * W, n), rng.uniform(-0.1 * H, H, n)
        lengths = p["length"] * H * rng.uniform(0.5, 1.3, n)
        levels = rng.uniform(0.5, 1.0, n)
        near = rng.random(n) < 0.08
        lengths[near] *= 1.8
        x2, y2 = xs + dx * lengths, ys + dy * lengths
        for x, y, xe, ye, lv, big in zip(
            xs.astype(int), ys.astype(int), x2.astype(int), y2.astype(int), levels, near, strict=True
        ):
            cv2.line(layer, (int(x), int(y)), (int(xe), int(ye)), float(lv), 2 if big else 1, cv2.LINE_AA)
        blurred: np.ndarray = cv2.GaussianBlur(layer, (0, 0), 0.7)
        blurred *= np.float32(p["streak"])
        return blurred

    def _noise(self, f: np.ndarray, img: np.ndarray, rng: np.random.Generator) -> None:
        """Adds sensor noise to `f` in place: luma noise, relatively stronger in the dark, and coarser
        chroma noise. Drawn as a random window of a few noise fields made once per scene (drawing
        fresh normals for every frame costs more than everything else here)."""
        H, W = f.shape[:2]
        luma_bank, chroma_bank = self._noise_bank(H, W)
        k = int(rng.integers(len(luma_bank)))
        oy, ox = (int(v) for v in rng.integers(0, NOISE_PAD, 2))
        sign = np.float32(1.0 if rng.random() < 0.5 else -1.0)
        s = np.float32(self.params["noise"])
        by_level = s * (0.55 + 0.45 * np.sqrt(np.arange(256, dtype=np.float32) / 255.0)) * sign
        sigma = by_level[cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)]
        sigma *= luma_bank[k][oy : oy + H, ox : ox + W]
        f += sigma[:, :, None]
        cy, cx = oy // 2, ox // 2
        window = chroma_bank[k][cy : cy + (H + 1) // 2, cx : cx + (W + 1) // 2]
        chroma = cv2.resize(window, (W, H), interpolation=cv2.INTER_LINEAR)
        f += chroma * (np.float32(0.45) * s * sign)

    def _noise_bank(self, H: int, W: int) -> NoiseBank:
        key = (H, W)
        if self._bank is None or self._bank_key != key:
            rng = np.random.default_rng([self.seed, 15485863])
            luma = [rng.standard_normal((H + NOISE_PAD, W + NOISE_PAD), dtype=np.float32) for _ in range(NOISE_FIELDS)]
            chroma = [
                rng.standard_normal(((H + 1) // 2 + NOISE_PAD // 2, (W + 1) // 2 + NOISE_PAD // 2, 3), dtype=np.float32)
                for _ in range(NOISE_FIELDS)
            ]
            self._bank_key, self._bank = key, (luma, chroma)
        return self._bank

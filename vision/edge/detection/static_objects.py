"""Class-agnostic finder of new objects that appear in view and stay.

Why this exists: garbage piles and vendor stalls have no stable shape, so a
detector class covers them badly, but to a fixed camera they are all the same
event: something that was not there and does not leave. This finds those
regions without knowing what they are; a classifier names the crop later.

Why a dual background (Porikli's design) and not one: a single model can only
say "differs", which people walking also do. A long-term background (minutes)
remembers the empty scene; a short-term one (seconds) remembers the last few
seconds. A pixel that differs from the first but agrees with the second is new
*and has stopped changing*: static foreground. Each pixel accumulates the
stream seconds it has been so; connected regions static for `min_static_s`
are reported.

Why stream time: edge boxes sample cameras irregularly (0.5-5 s apart), so
every learning rate is `1 - exp(-dt / tau)` and every duration is seconds.

Why colour, a photometric fit and a texture test: a grey bin on a grey
pavement differs in luminance, a green bag on grass mostly in colour, so the
distance is over the three channels. Sunsets, clouds and auto-exposure change
the whole image at once: each frame is compared with the long-term background
mapped into the frame's photometry by a robust per-channel affine fit (and
clipped like the sensor clips, so over-exposed pixels do not differ), and the
long-term background follows slow global change (frozen pixels follow the fit
only). Where both images are textured, a local normalised cross-correlation
says "same texture, only brighter or darker": a lighting change, not an
object. Dusk noise and rain streaks are rejected by a noise-adaptive
threshold, a morphological opening and the temporal persistence itself.

Why freezing and ghost checks: a reported region keeps the long-term
background under it frozen (an hour-old pile stays reported) until
`absorb_after_s`. When something that *was* in the background leaves (a car
parked when the camera started), the bare ground would look like a new static
object; its boundary then has edges only the background has, so it is
recognised as a ghost and absorbed instead of reported.

Cost: everything is whole-array OpenCV/numpy at the work size (~320x240);
masked numpy writes are avoided (they cost more than the arithmetic). The
region table is the only state that grows; every entry has a deletion path.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from vision.core.geometry import box_ios, box_iou
from vision.edge.config import StaticObjectFinderConfig

__all__ = ["StaticRegion", "StaticObjectFinder"]

_SAT_HI = 250.0  # channel values at which the sensor clips: the true value is unknown
_SAT_LO = 5.0
_K3 = np.ones((3, 3), np.uint8)
_K5 = np.ones((5, 5), np.uint8)
_HALF_L1 = np.full((1, 3), 0.5, np.float32)  # colour distance: half the L1 over B, G, R


@dataclass(frozen=True)
class StaticRegion:
    id: int  # stable while the region persists
    xyxy: tuple[float, float, float, float]  # pixel coordinates of the input frame
    first_seen_t: float  # stream second it first differed from the background
    static_s: float  # seconds it has been static so far
    area_frac: float


@dataclass
class _Track:
    id: int
    box: np.ndarray  # work-pixel xyxy
    first_seen_t: float
    last_seen_t: float
    static_s: float = 0.0
    reported: bool = False  # once true, no more ghost checks


@dataclass
class _Pixels:
    """The per-pixel state at the work size, set up from the warm-up frames."""

    bg_long: np.ndarray  # (h, w, 3) float32, the empty scene
    bg_short: np.ndarray  # (h, w, 3) float32, the last seconds
    static: np.ndarray  # seconds each pixel has been static foreground
    miss: np.ndarray  # seconds each pixel has matched the long-term bg
    onset: np.ndarray  # stream second each pixel began to differ (nan: it does not)
    fg_prev: np.ndarray  # the previous frame's long-term foreground
    prev: np.ndarray  # the previous work frame


def _row_median(x: np.ndarray) -> np.ndarray:
    """Median of each row (upper median for even lengths), by one partition."""
    k = x.shape[1] // 2
    median: np.ndarray = np.partition(x, k, axis=1)[:, k]
    return median


class StaticObjectFinder:
    """Finds regions that became different from the empty scene and then stopped changing."""

    def __init__(self, settings: StaticObjectFinderConfig | None = None) -> None:
        self.settings = settings or StaticObjectFinderConfig()
        self._next_id = 1
        self._tracks: dict[int, _Track] = {}
        self._shape: tuple[int, int] | None = None  # input (h, w)
        self._clear()

    # ------------------------------------------------------------------ state
    def _clear(self) -> None:
        self._pixels: _Pixels | None = None  # None until the warm-up ends
        self._t_prev: float | None = None
        self._t_start = 0.0
        self._changed_since: float | None = None
        self._warm: list[tuple[np.ndarray, np.ndarray]] = []  # warm-up (frame, ignore mask)
        self._tracks.clear()

    def reset(self) -> None:
        """Forget everything (backgrounds, pixel histories, regions); ids keep increasing."""
        self._shape = None
        self._clear()

    def state_size(self) -> int:
        """Entries held in tables (region tracks and warm-up frames); pixel arrays are fixed-size."""
        return len(self._tracks) + len(self._warm)

    def _begin(self, frame: np.ndarray, ignore: np.ndarray, t_s: float) -> None:
        """Start over: collect warm-up frames from this one."""
        self._clear()
        self._t_prev = self._t_start = t_s
        self._warm = [(frame, ignore)]

    def _finish_warmup(self) -> None:
        """Both backgrounds = the per-pixel median of the warm-up frames, ignored pixels left out
        (as +inf / -inf alternately, which moves the median by half a rank at most)."""
        stack = np.stack([f for f, _ in self._warm])
        for i, (_, ign) in enumerate(self._warm):
            if ign.any():
                stack[i][ign] = np.inf if i % 2 == 0 else -np.inf
        med = np.median(stack, axis=0).astype(np.float32)
        bad = ~np.isfinite(med)
        if bad.any():  # ignored in (nearly) every warm-up frame: the last frame is the best guess
            med[bad] = self._warm[-1][0][bad]
        h, w = med.shape[:2]
        self._pixels = _Pixels(
            bg_long=med,
            bg_short=med.copy(),
            static=np.zeros((h, w), np.float32),
            miss=np.zeros((h, w), np.float32),
            onset=np.full((h, w), np.nan, np.float64),
            fg_prev=np.zeros((h, w), bool),
            prev=self._warm[-2][0] if len(self._warm) > 1 else self._warm[-1][0],  # the frame before this one
        )
        self._warm = []

    # ------------------------------------------------------------------ helpers
    def _work_frame(self, image: np.ndarray) -> np.ndarray:
        """BGR float32 at the work size. INTER_AREA at a fractional factor costs ~2.5 ms on a
        768x576 frame, so: halve with INTER_AREA while that stays above the work size, then linear."""
        h, w = image.shape[:2]
        ww = min(self.settings.work_width, w)
        wh = max(1, round(h * ww / w))
        img = image if image.ndim == 3 else cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        while img.shape[1] >= 2 * ww and img.shape[0] >= 2 * wh:
            img = cv2.resize(img, (img.shape[1] // 2, img.shape[0] // 2), interpolation=cv2.INTER_AREA)
        if img.shape[:2] != (wh, ww):
            img = cv2.resize(img, (ww, wh), interpolation=cv2.INTER_LINEAR)
        return img[:, :, :3].astype(np.float32)

    def _box_mask(self, boxes: np.ndarray | None, scale: tuple[float, float], shape: tuple[int, int]) -> np.ndarray:
        mask = np.zeros(shape, np.uint8)
        if boxes is None:
            return mask.view(bool)
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        pad = self.settings.ignore_pad
        w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
        grown = np.stack(
            [boxes[:, 0] - pad * w, boxes[:, 1] - pad * h, boxes[:, 2] + pad * w, boxes[:, 3] + pad * h], 1
        )
        grown = np.round(grown / np.array([scale[0], scale[1], scale[0], scale[1]])).astype(int)
        for x0, y0, x1, y1 in grown:  # one rectangle per box, not per pixel
            cv2.rectangle(mask, (int(x0), int(y0)), (int(x1), int(y1)), 1, thickness=-1)
        return mask.view(bool)

    def _fit(self, frame: np.ndarray, bg_long: np.ndarray, exclude: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
        """Per-channel robust affine fit frame ~ a*bg_long + b on a pixel grid, and the noise sigma."""
        h, w = exclude.shape
        step = max(1, int(math.sqrt(h * w / 1000)))  # ~1000 samples: plenty for 6 numbers
        f = frame[::step, ::step].reshape(-1, 3)
        bg = bg_long[::step, ::step].reshape(-1, 3)
        unclipped = ((f > _SAT_LO) & (f < _SAT_HI) & (bg > _SAT_LO) & (bg < _SAT_HI)).all(axis=1)
        ok = unclipped & ~exclude[::step, ::step].reshape(-1)
        if ok.sum() < 100:
            ok = unclipped
            if ok.sum() < 100:
                return np.ones(3, np.float32), np.zeros(3, np.float32), 2.0
        f, bg = np.ascontiguousarray(f[ok].T, np.float64), np.ascontiguousarray(bg[ok].T, np.float64)  # (3, N)
        gain = _row_median(f / bg)  # robust start, and the answer for a flat scene
        r = f - gain[:, None] * bg
        dev = np.abs(r - _row_median(r)[:, None])
        inl = dev < 3.0 * (_row_median(dev) * 1.4826 + 0.5)[:, None]
        n = np.maximum(inl.sum(axis=1), 1)
        bw = np.where(inl, bg, 0.0)
        xm, ym = bw.sum(axis=1) / n, np.where(inl, f, 0.0).sum(axis=1) / n
        var = (bw * bw).sum(axis=1) / n - xm * xm
        cov = (bw * f).sum(axis=1) / n - xm * ym
        flat = var < 4.0  # too little spread for an offset: gain only
        a = np.clip(np.where(flat, gain, cov / np.maximum(var, 1e-6)), 0.05, 20.0)
        b = np.where(flat, 0.0, ym - a * xm)
        r = f - (a[:, None] * bg + b[:, None])
        sigma = float(np.max(_row_median(np.abs(r - _row_median(r)[:, None])) * 1.4826))
        return a.astype(np.float32), b.astype(np.float32), sigma

    def _lighting(self, grey: np.ndarray, pred_grey: np.ndarray) -> np.ndarray:
        """Pixels where frame and background share their local texture (only lit differently).
        Computed at half the work size (a quarter of the cost; the test is over a window anyway)."""
        s = self.settings
        h, w = grey.shape
        half = h >= 64 and w >= 64
        if half:
            size = (w // 2, h // 2)
            grey = cv2.resize(grey, size, interpolation=cv2.INTER_AREA)
            pred_grey = cv2.resize(pred_grey, size, interpolation=cv2.INTER_AREA)
        side = max(3, (s.ncc_window // 2) | 1) if half else s.ncc_window
        k = (side, side)
        x, y = grey - 128.0, pred_grey - 128.0
        mx, my = cv2.blur(x, k), cv2.blur(y, k)
        vx = cv2.sqrBoxFilter(x, -1, k) - mx * mx
        vy = cv2.sqrBoxFilter(y, -1, k) - my * my
        cov = cv2.blur(x * y, k) - mx * my
        t2 = s.texture_min * s.texture_min
        lit: np.ndarray = (vx > t2) & (vy > t2) & (cov > s.ncc_min * np.sqrt(np.maximum(vx * vy, 1e-6)))
        if half:
            lit = cv2.resize(lit.view(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST).view(bool)
        return lit

    def _is_ghost(
        self,
        grey: np.ndarray,
        pred_grey: np.ndarray,
        fg_short: np.ndarray,
        comp: np.ndarray,
        box: tuple[int, int, int, int],
    ) -> bool:
        """Edges along the region boundary that only the background has, much stronger than those
        only the frame has: something that was in the background left. Edges both share (a pole
        through the region) cancel out; boundary pixels something is moving over now are left out."""
        if self.settings.ghost_ratio <= 0:
            return False
        x0, y0, x1, y1 = box
        h, w = grey.shape
        px0, py0, px1, py1 = max(0, x0 - 4), max(0, y0 - 4), min(w, x1 + 4), min(h, y1 + 4)
        m = np.zeros((py1 - py0, px1 - px0), np.uint8)
        m[y0 - py0 : y1 - py0, x0 - px0 : x1 - px0] = comp
        band = (cv2.dilate(m, _K5) > 0) & (cv2.erode(m, _K5) == 0) & ~fg_short[py0:py1, px0:px1]
        if band.sum() < 8:
            return False

        def edges(img: np.ndarray) -> np.ndarray:
            crop = img[py0:py1, px0:px1]
            return np.abs(cv2.Sobel(crop, cv2.CV_32F, 1, 0, ksize=3)) + np.abs(
                cv2.Sobel(crop, cv2.CV_32F, 0, 1, ksize=3)
            )

        d = (edges(pred_grey) - edges(grey))[band]
        only_bg, only_frame = float(np.maximum(d, 0).mean()), float(np.maximum(-d, 0).mean())
        return only_bg > 0.5 * self.settings.diff_min and only_frame < self.settings.ghost_ratio * only_bg

    # ------------------------------------------------------------------ main
    def update(
        self,
        image: np.ndarray,
        t_s: float,
        *,
        ignore_xyxy: np.ndarray | None = None,
        watch_mask: np.ndarray | None = None,
    ) -> list[StaticRegion]:
        """Feed one BGR frame at stream second t_s; returns the regions static for min_static_s now.

        ignore_xyxy: (N,4) input-pixel boxes of things known to move: never learned, never regions.
        watch_mask: bool/uint8 mask (any size, resized to the frame) where regions may be reported."""
        s = self.settings
        h, w = image.shape[:2]
        frame = self._work_frame(image)
        wh, ww = frame.shape[:2]
        scale = (w / ww, h / wh)
        ignore = self._box_mask(ignore_xyxy, scale, (wh, ww))
        if self._shape != (h, w) or self._t_prev is None or t_s < self._t_prev - s.max_dt_s:
            self._shape = (h, w)  # first frame, new resolution, or the stream's clock restarted
            self._begin(frame, ignore, t_s)
            return []
        dt = min(max(t_s - self._t_prev, 0.0), s.max_dt_s)
        self._t_prev = max(self._t_prev, t_s)
        if self._warm:
            self._warm.append((frame, ignore))
            if t_s - self._t_start < s.warmup_s:
                if len(self._warm) > 16:  # keep the whole span, thinned
                    self._warm = self._warm[::2]
                return []
            self._finish_warmup()
        px = self._pixels
        assert px is not None  # set when the warm-up ended, here or at an earlier frame

        # compare with the long-term background in the frame's photometry, clipped like the sensor
        a, b, sigma = self._fit(frame, px.bg_long, px.fg_prev | ignore)
        pred = cv2.transform(px.bg_long, np.hstack([np.diag(a), b[:, None]]).astype(np.float32))
        np.clip(pred, 0.0, 255.0, out=pred)
        thr = max(s.diff_min * float(a.mean()), s.noise_k * sigma)
        grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        pred_grey = cv2.cvtColor(pred, cv2.COLOR_BGR2GRAY)
        fg_long = cv2.transform(cv2.absdiff(frame, pred), _HALF_L1) > thr
        # "changing": differs from the short-term background and from the previous frame (the
        # latter makes a new object count as still one frame after it appears, whatever its contrast)
        fg_short = cv2.transform(cv2.absdiff(frame, px.bg_short), _HALF_L1) > thr
        fg_short &= cv2.transform(cv2.absdiff(frame, px.prev), _HALF_L1) > thr
        if s.ncc_min < 1.0 and fg_long.any():
            fg_long &= ~self._lighting(grey, pred_grey)
        fg_long = cv2.morphologyEx(fg_long.view(np.uint8), cv2.MORPH_OPEN, _K3).view(bool)

        # per-pixel static time: grows while new-and-still, holds while occluded or ignored,
        # cleared once the pixel has matched the empty scene for clear_s
        free = ~ignore
        px.static += (fg_long & ~fg_short & free) * np.float32(dt)
        px.miss += (~fg_long & free) * np.float32(dt)
        px.miss *= ~fg_long
        cleared = px.miss > s.clear_s
        if cleared.any():
            keep = ~cleared
            px.static *= keep
            px.miss *= keep
            px.onset[cleared] = np.nan
        start = fg_long & free & np.isnan(px.onset)
        if start.any():
            px.onset[start] = t_s
        px.fg_prev = fg_long

        # the view changed (camera moved, lights switched): start over
        if float(fg_long.mean()) > s.scene_change_frac:
            self._changed_since = t_s if self._changed_since is None else self._changed_since
            if t_s - self._changed_since >= s.scene_change_s:
                self._begin(frame, ignore, t_s)  # ids keep increasing
                return []
        else:
            self._changed_since = None

        regions, reported = self._regions(px, frame, grey, pred_grey, fg_short, a, b, t_s, scale, watch_mask)

        # learn. Long-term: where nothing is (or may become) an object; elsewhere only the global fit.
        alpha_l = 1.0 - math.exp(-dt / s.long_tau_s)
        if alpha_l > 0:
            follow = np.hstack([np.diag(1.0 - alpha_l + alpha_l * a), (alpha_l * b)[:, None]]).astype(np.float32)
            cv2.transform(px.bg_long, follow, dst=px.bg_long)
            young = px.static < 2.0 * s.min_static_s  # not yet reported: may still become a region
            frozen = ignore | reported | (fg_long & (fg_short | young))
            cv2.accumulateWeighted(frame, px.bg_long, alpha_l, mask=(~frozen).view(np.uint8))
        px.prev = frame
        alpha_s = 1.0 - math.exp(-dt / s.short_tau_s)
        if alpha_s > 0:
            mask = free.view(np.uint8) if ignore.any() else None
            cv2.accumulateWeighted(frame, px.bg_short, alpha_s, mask=mask)
        return regions

    def _regions(
        self,
        px: _Pixels,
        frame: np.ndarray,
        grey: np.ndarray,
        pred_grey: np.ndarray,
        fg_short: np.ndarray,
        a: np.ndarray,
        b: np.ndarray,
        t_s: float,
        scale: tuple[float, float],
        watch_mask: np.ndarray | None,
    ) -> tuple[list[StaticRegion], np.ndarray]:
        """Connected static pixels -> tracked regions; ghosts and old regions absorbed.

        Hysteresis: regions are pixels static for half of min_static_s, so an object whose pixels
        were occluded for different frames (rain, passers-by) is one region, not fragments; it is
        reported once its median pixel has been static for min_static_s, and until then it is
        checked for being a ghost in every frame (one check could hit a passer-by)."""
        s = self.settings
        wh, ww = grey.shape
        total = float(ww * wh)
        reported = np.zeros((wh, ww), bool)
        mask = cv2.morphologyEx((px.static >= 0.5 * s.min_static_s).view(np.uint8), cv2.MORPH_CLOSE, _K3)
        # outer contours, filled (holes included): ~0.02 ms where connectedComponentsWithStats costs 0.5
        contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        lo, hi = s.min_area * total, s.max_area * total
        comps: list[tuple[tuple[int, int, int, int], np.ndarray, int]] = []  # (work xyxy, filled mask in box, area)
        for c in contours:
            x, y, bw, bh = cv2.boundingRect(c)
            if bw * bh < lo:
                continue
            filled = np.zeros((bh, bw), np.uint8)
            cv2.drawContours(filled, [c], -1, 1, thickness=cv2.FILLED, offset=(-x, -y))
            area = cv2.countNonZero(filled)
            if lo <= area <= hi:
                comps.append(((x, y, x + bw, y + bh), filled.view(bool), area))
        comps = sorted(comps, key=lambda c: -c[2])[: s.max_regions]

        # match to tracks, greedy by overlap
        tids = list(self._tracks)
        assigned: dict[int, int] = {}
        if comps and tids:
            comp_boxes, track_boxes = (
                np.array([c[0] for c in comps], np.float64),
                np.stack([self._tracks[i].box for i in tids]),
            )
            score = np.maximum(box_iou(comp_boxes, track_boxes), 0.5 * box_ios(comp_boxes, track_boxes))
            used: set[int] = set()
            for flat in np.argsort(-score, axis=None):
                ci, tj = divmod(int(flat), len(tids))
                if score[ci, tj] < s.match_iou:
                    break
                if ci not in assigned and tj not in used:
                    assigned[ci] = tids[tj]
                    used.add(tj)

        watch = None
        if watch_mask is not None:
            watch = np.asarray(watch_mask)
            if watch.shape[:2] != (wh, ww):
                watch = cv2.resize(watch.astype(np.uint8), (ww, wh), interpolation=cv2.INTER_NEAREST)
            watch = watch.astype(bool)

        regions: list[StaticRegion] = []
        for ci, (box, comp, area) in enumerate(comps):
            x0, y0, x1, y1 = box
            tid = assigned.get(ci)
            tr = self._tracks.get(tid) if tid is not None else None
            if (tr is None or not tr.reported) and self._is_ghost(grey, pred_grey, fg_short, comp, box):
                self._absorb(px, box, comp, frame, fg_short, a, b)
                if tr is not None:
                    del self._tracks[tr.id]
                continue
            core = comp & (mask[y0:y1, x0:x1] > 0)
            if tr is None:
                onset = px.onset[y0:y1, x0:x1][core]
                onset = onset[~np.isnan(onset)]
                tr = _Track(self._next_id, np.array(box, np.float64), float(onset.min()) if len(onset) else t_s, t_s)
                self._next_id += 1
                self._tracks[tr.id] = tr
            tr.box = np.array(box, np.float64)
            tr.last_seen_t = t_s
            tr.static_s = max(tr.static_s, float(np.percentile(px.static[y0:y1, x0:x1][core], 75)))
            if tr.static_s < s.min_static_s and not tr.reported:
                continue
            if t_s - tr.first_seen_t >= s.absorb_after_s:
                self._absorb(px, box, comp, frame, fg_short, a, b)
                del self._tracks[tr.id]
                continue
            tr.reported = True
            if watch is not None and watch[y0:y1, x0:x1][comp].mean() < s.watch_min_frac:
                continue
            reported[y0:y1, x0:x1] |= comp
            regions.append(
                StaticRegion(
                    id=tr.id,
                    xyxy=(x0 * scale[0], y0 * scale[1], x1 * scale[0], y1 * scale[1]),
                    first_seen_t=tr.first_seen_t,
                    static_s=tr.static_s,
                    area_frac=area / total,
                )
            )
        for tid in [i for i, tr in self._tracks.items() if t_s - tr.last_seen_t > s.track_hold_s]:
            del self._tracks[tid]
        regions.sort(key=lambda r: r.id)
        return regions, reported

    def _absorb(
        self,
        px: _Pixels,
        box: tuple[int, int, int, int],
        comp: np.ndarray,
        frame: np.ndarray,
        fg_short: np.ndarray,
        a: np.ndarray,
        b: np.ndarray,
    ) -> None:
        """Learn a region into the long-term background now: from the frame where it agrees with
        the short-term background (nothing passing), else from the short-term background."""
        x0, y0, x1, y1 = box
        src = np.where(fg_short[y0:y1, x0:x1, None], px.bg_short[y0:y1, x0:x1], frame[y0:y1, x0:x1])
        bg = px.bg_long[y0:y1, x0:x1]
        bg[comp] = ((src - b) / a)[comp]
        for arr in (px.static, px.miss):
            arr[y0:y1, x0:x1][comp] = 0.0
        px.onset[y0:y1, x0:x1][comp] = np.nan

"""Real background frames and what we know about them: the people and vehicles
the base model finds, a mask of each person (for occlusion), and the scene's
perspective (person height in pixels as a function of foot y).

A fixed camera's ground plane maps image y to distance, so an object's size
in pixels at foot y is its real height times pixels-per-metre there; we learn
that line from the people the base model finds, assuming they are ~1.7 m.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from vision.training.data.layout import IMAGE_SUFFIXES
from vision.training.data.pseudo_label import BaseDetector, FrameBox, detect_base
from vision.training.data.synth import backgrounds

PERSON_HEIGHT_M = 1.7
VIDEO_SUFFIXES = (".avi", ".mp4", ".mkv", ".mov", ".webm")
# A person's silhouette: its box (x1, y1, x2, y2) in the frame and a uint8 mask of the box's size.
PersonMask = tuple[tuple[int, int, int, int], np.ndarray]


@dataclass
class Perspective:
    """person_px(y) = slope * y + intercept, valid for foot y in [y_min, y_max]."""

    slope: float
    intercept: float
    y_min: float
    y_max: float
    samples: int

    def px_per_m(self, y: float) -> float:
        return max(2.0, self.slope * y + self.intercept) / PERSON_HEIGHT_M

    @classmethod
    def fit(cls, feet_y: np.ndarray, heights: np.ndarray, frame_h: int) -> Perspective:
        feet_y, heights = np.asarray(feet_y, float), np.asarray(heights, float)
        if len(feet_y) < 5 or np.ptp(feet_y) < frame_h * 0.1:
            # no usable people: a generic elevated-camera guess (people 5%..30% of the frame height)
            return cls(0.25, frame_h * 0.05 - 0.25 * frame_h * 0.2, frame_h * 0.2, frame_h * 1.0, int(len(feet_y)))
        keep = np.ones(len(feet_y), bool)
        for _ in range(3):  # trim outliers (sitting people, merged boxes)
            slope, icpt = np.polyfit(feet_y[keep], heights[keep], 1)
            resid = np.abs(heights - (slope * feet_y + icpt))
            mad = np.median(resid[keep]) + 1e-6
            keep = resid < 3 * 1.4826 * mad
        slope, icpt = np.polyfit(feet_y[keep], heights[keep], 1)
        return cls(float(slope), float(icpt), float(np.percentile(feet_y, 2)), float(frame_h), int(keep.sum()))

    @classmethod
    def from_points(cls, far: tuple[float, float], near: tuple[float, float], frame_h: int) -> Perspective:
        """The line through two (foot y, person height) points relative to the frame height, read off a
        picture (datasets/backgrounds/MANIFEST.tsv); valid from the far point's y down to the frame's bottom."""
        (ya, ha), (yb, hb) = far, near
        slope = (hb - ha) / (yb - ya)
        return cls(float(slope), float((ha - slope * ya) * frame_h), float(ya * frame_h), float(frame_h), 0)


@dataclass
class Frame:
    image: np.ndarray  # BGR
    source: str  # scene group (video clip or image file)
    index: int
    found: list[FrameBox] = field(default_factory=list)
    person_masks: list[PersonMask] = field(default_factory=list)


def read_video_frames(path: Path, indices: list[int]) -> dict[int, np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise FileNotFoundError(f"cannot open video {path}")
    out = {}
    want = sorted(set(indices))
    pos = 0
    for idx in want:
        if idx != pos:
            cap.set(cv2.CAP_PROP_POS_FRAMES, idx)
        ok, frame = cap.read()
        pos = idx + 1
        if ok:
            out[idx] = frame
    cap.release()
    return out


def video_length(path: Path) -> int:
    cap = cv2.VideoCapture(str(path))
    n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    cap.release()
    return n


def median_background(path: Path, samples: int = 25) -> np.ndarray:
    """Per-pixel median of frames spread over the video: walking people vanish."""
    n = video_length(path)
    frames = read_video_frames(path, [int(i) for i in np.linspace(0, max(n - 1, 0), samples)])
    median: np.ndarray = np.median(np.stack(list(frames.values())), axis=0)
    return median.astype(np.uint8)


def person_masks(frame: np.ndarray, background: np.ndarray | None, found: list[FrameBox]) -> list[PersonMask]:
    """A silhouette per person: pixels differing from the median background
    inside the box; an ellipse where there is no background model."""
    out = []
    H, W = frame.shape[:2]
    for fb in found:
        if fb.name != "person":
            continue
        x1, y1, x2, y2 = (int(round(v)) for v in fb.xyxy)
        x1, y1, x2, y2 = max(0, x1), max(0, y1), min(W, x2), min(H, y2)
        if x2 - x1 < 3 or y2 - y1 < 3:
            continue
        if background is not None:
            diff = cv2.absdiff(frame[y1:y2, x1:x2], background[y1:y2, x1:x2]).max(axis=2)
            mask = (diff > 28).astype(np.uint8) * 255
            k = np.ones((3, 3), np.uint8)
            mask = cv2.morphologyEx(cv2.morphologyEx(mask, cv2.MORPH_OPEN, k), cv2.MORPH_CLOSE, k, iterations=2)
        else:
            mask = np.zeros((y2 - y1, x2 - x1), np.uint8)
            cv2.ellipse(mask, ((x2 - x1) // 2, (y2 - y1) // 2), ((x2 - x1) // 2, (y2 - y1) // 2), 0, 0, 360, 255, -1)
        out.append(((x1, y1, x2, y2), mask))
    return out


class SceneSource:
    """Frames from one video or image folder, with detections and perspective,
    cached as JSON beside the output so reruns skip the base model."""

    def __init__(
        self,
        path: Path,
        detector: BaseDetector,
        min_confidence: float = 0.35,
        clip_seconds: float = 10.0,
        cache_dir: Path | None = None,
    ):
        self.path = Path(path)
        self.detector = detector
        self.min_confidence = min_confidence
        self.cache_dir = cache_dir
        self.is_video = self.path.suffix.lower() in VIDEO_SUFFIXES
        self.background: np.ndarray | None  # median frame of a video, None for pictures
        if self.is_video:
            self.length = video_length(self.path)
            cap = cv2.VideoCapture(str(self.path))
            fps = cap.get(cv2.CAP_PROP_FPS) or 10.0
            cap.release()
            self.clip_frames = max(1, int(round(fps * clip_seconds)))
            self.background = median_background(self.path)
            self.images: list[Path] = []
        else:
            self.images = (
                sorted(p for p in self.path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
                if self.path.is_dir()
                else [self.path]
            )
            if not self.images:
                raise FileNotFoundError(f"no images in {self.path}")
            self.length = len(self.images)
            self.clip_frames = 1
            self.background = None
        self._found: dict[int, list[FrameBox]] = self._load_cache()

    # --- frames ----------------------------------------------------------
    def group(self, index: int) -> str:
        """Scene group of a frame: video clip of `clip_seconds`, or the image file."""
        if self.is_video:
            return f"{self.path.name}#clip{index // self.clip_frames:03d}"
        return self.images[index].name

    def frames(self, indices: list[int]) -> list[Frame]:
        raw: Mapping[int, np.ndarray | None]
        if self.is_video:
            raw = read_video_frames(self.path, indices)
        else:
            raw = {i: cv2.imread(str(self.images[i])) for i in indices}
        out = []
        for i in indices:
            img = raw.get(i)
            if img is None:
                continue
            found = self.detections(i, img)
            bg = self.background if self.background is not None and self.background.shape == img.shape else None
            out.append(Frame(img, self.group(i), i, found, person_masks(img, bg, found)))
        return out

    def detections(self, index: int, image: np.ndarray) -> list[FrameBox]:
        if index not in self._found:
            self._found[index] = detect_base(self.detector, image, self.min_confidence)
        return self._found[index]

    def perspective(self, sample: int = 40) -> Perspective:
        """From the background library's two measured points when the file has them (stills), else fitted
        to the people the base model finds."""
        known = backgrounds.lookup(self.path) if self.path.is_file() else None
        if known is not None and known.person_height is not None:
            return Perspective.from_points(*known.person_height, self.frame_size()[1])
        indices = [int(i) for i in np.linspace(0, self.length - 1, min(sample, self.length))]
        feet, heights, frame_h = [], [], None
        missing = [i for i in indices if i not in self._found]
        if missing:
            imgs: Mapping[int, np.ndarray | None]
            if self.is_video:
                imgs = read_video_frames(self.path, missing)
            else:
                imgs = {i: cv2.imread(str(self.images[i])) for i in missing}
            for i, img in imgs.items():
                if img is None:  # unreadable picture: skipped, as frames() does
                    continue
                self.detections(i, img)
                frame_h = img.shape[0]
        if frame_h is None:
            frame_h = self.frame_size()[1]
        for i in indices:
            for fb in self._found.get(i, []):
                x1, y1, x2, y2 = fb.xyxy
                if fb.name == "person" and y1 > 2 and y2 < frame_h - 2:
                    feet.append(y2)
                    heights.append(y2 - y1)
        self.save_cache()
        return Perspective.fit(np.asarray(feet), np.asarray(heights), frame_h)

    def frame_size(self) -> tuple[int, int]:
        if self.is_video:
            cap = cv2.VideoCapture(str(self.path))
            size = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
            cap.release()
            return size
        first = cv2.imread(str(self.images[0]))
        if first is None:
            raise FileNotFoundError(f"cannot read image {self.images[0]}")
        h, w = first.shape[:2]
        return w, h

    # --- cache -----------------------------------------------------------
    def _cache_file(self) -> Path | None:
        if self.cache_dir is None:
            return None
        return self.cache_dir / f"{self.path.name}.detections.json"

    def _load_cache(self) -> dict[int, list[FrameBox]]:
        f = self._cache_file()
        if f is None or not f.is_file():
            return {}
        data = json.loads(f.read_text())
        if data.get("min_confidence") != self.min_confidence:
            return {}
        return {int(k): [FrameBox(b[0], tuple(b[1]), b[2]) for b in v] for k, v in data["frames"].items()}

    def save_cache(self) -> None:
        f = self._cache_file()
        if f is None:
            return
        f.parent.mkdir(parents=True, exist_ok=True)
        frames = {
            str(k): [[b.name, [round(v, 2) for v in b.xyxy], round(b.confidence, 4)] for b in v]
            for k, v in self._found.items()
        }
        f.write_text(json.dumps({"source": str(self.path), "min_confidence": self.min_confidence, "frames": frames}))

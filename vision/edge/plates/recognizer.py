"""A vehicle image in, its plate out: find, rectify, name the colour, read, check the format.

Why these steps: a plate seen at an angle reads badly until the corners are
pulled square; the colour says what kind of plate it is (yellow: a lorry,
whose rear plate has two rows; green: new energy); a reading that is not a
plate format (province, letter, 5 or 6 symbols) is no reading. Over a track,
the most confident valid reading names the truck: the reader's confidence is
that of its least sure symbol, so a blurred or muddy view rarely outranks a
clear one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import cv2
import numpy as np

from vision.core.plates import PlateColour, normalise_plate, plate_format
from vision.edge.plates.detector import DEFAULT_PLATE_DETECTOR, PlateDetection, PlateDetector
from vision.edge.plates.reader import DEFAULT_PLATE_READER, PlateTextReader, RowReading

SINGLE = (240, 56)  # the rectified symbol row of a single-row plate, px
VIEW = (176, 56)  # a single-row plate as the evidence shows it (440 x 140 mm)
DOUBLE = (176, 88)  # rectified double-row plate (440 x 220 mm)
# Margins (left, top, right, bottom) as fractions of the plate, negative = cut off. The reader was
# trained on text lines a text detector cut tightly, so a single-row plate is read without its frame
# and rivets, stretched to the reader's width, cut three ways (the reader's confidence swings with a
# pixel of the corners; the surest of the three counts); a double-row plate keeps the border its rows are cut
# from, more of it above (the detector's corners of a double-row plate start below its top edge).
# Chosen on `bench plates --seed 1`, reported on seed 0 (models/clpr-plate-reader/STUDY.md).
_SINGLE_MARGINS = ((-0.02, -0.17, -0.02, -0.17), (0.0, -0.12, 0.0, -0.12), (-0.04, -0.2, -0.04, -0.2))
_DOUBLE_MARGINS = (0.04, 0.12, 0.04, 0.02)
_VIEW_MARGINS = (0.04, 0.04, 0.04, 0.04)
_DOUBLE_ASPECT = 2.6  # a quadrilateral narrower than this may be a double-row plate
_TOP_ROW = (0.03, 0.42, 0.16, 0.84)  # y1, y2, x1, x2 of a double-row plate's upper row (province, letter)
_BOTTOM_ROW = (0.36, 0.97, 0.02, 0.98)


@dataclass(frozen=True)
class PlateResult:
    text: str  # normalised reading; may be no valid plate (see `valid`)
    confidence: float  # of the least sure symbol
    valid: bool  # the text has a plate format
    colour: PlateColour
    rows: int  # 1, or 2 for a double-row lorry plate
    corners: np.ndarray  # (4, 2) tl, tr, br, bl in the image read
    crop: np.ndarray  # the rectified plate, BGR
    detect_score: float
    frames: int = 1  # frames of a track that gave this text


def plate_colour(plate: np.ndarray) -> PlateColour:
    """The background colour: the dominant hue among saturated pixels, else white or black by brightness."""
    hsv = cv2.cvtColor(plate, cv2.COLOR_BGR2HSV)
    h, s, v = hsv[..., 0].ravel(), hsv[..., 1].ravel(), hsv[..., 2].ravel()
    saturated = (s >= 70) & (v >= 50)
    if saturated.mean() >= 0.25:
        hues = h[saturated].astype(int)
        votes = {
            "yellow": int(((hues >= 12) & (hues < 35)).sum()),
            "green": int(((hues >= 35) & (hues < 90)).sum()),
            "blue": int(((hues >= 90) & (hues < 135)).sum()),
        }
        colour = max(votes, key=lambda k: votes[k])
        if votes[colour] >= 0.4 * saturated.sum():
            return colour  # type: ignore[return-value]
    return "white" if float(np.median(v)) >= 110 else "black"


def rectify(
    image: np.ndarray, corners: np.ndarray, size: tuple[int, int], margins: tuple[float, float, float, float]
) -> np.ndarray:
    """The plate pulled square to `size` (w, h), with `margins` (left, top, right, bottom) of its size."""
    w, h = size
    left, top, right, bottom = margins[0] * w, margins[1] * h, w - margins[2] * w, h - margins[3] * h
    target = np.asarray([[left, top], [right, top], [right, bottom], [left, bottom]], dtype=np.float32)
    matrix = cv2.getPerspectiveTransform(np.asarray(corners, dtype=np.float32), target)
    return cv2.warpPerspective(image, matrix, (w, h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)


def _aspect(corners: np.ndarray) -> float:
    tl, tr, br, bl = corners
    width = float(np.linalg.norm(tr - tl) + np.linalg.norm(br - bl)) / 2
    height = float(np.linalg.norm(bl - tl) + np.linalg.norm(br - tr)) / 2
    return width / max(height, 1e-3)


def _cut(plate: np.ndarray, region: tuple[float, float, float, float]) -> np.ndarray:
    h, w = plate.shape[:2]
    y1, y2, x1, x2 = region
    return plate[int(y1 * h) : int(y2 * h), int(x1 * w) : int(x2 * w)]


class PlateRecognizer:
    """Plate detection and reading on onnxruntime (no torch), for vehicle crops."""

    def __init__(self, detector: PlateDetector, reader: PlateTextReader, *, max_plates: int = 2) -> None:
        self.detector = detector
        self.reader = reader
        self.max_plates = max_plates  # detections read per image (a truck shows one plate; a sign may score too)

    @classmethod
    def load(
        cls,
        detector: str = DEFAULT_PLATE_DETECTOR,
        reader: str = DEFAULT_PLATE_READER,
        *,
        threads: int = 1,
        min_detect_score: float = 0.5,
    ) -> PlateRecognizer:
        return cls(
            PlateDetector(detector, threads=threads, min_score=min_detect_score),
            PlateTextReader(reader, threads=threads),
        )

    @property
    def versions(self) -> dict[str, str]:
        return {
            self.detector.card.name: self.detector.card.version,
            self.reader.card.name: self.reader.card.version,
        }

    def read(self, image: np.ndarray) -> PlateResult | None:
        """The best plate in one image (a valid format first, then confidence), or None when none is found."""
        results = [self._read_detection(image, d) for d in self.detector.detect(image)[: self.max_plates]]
        return max(results, key=lambda r: (r.valid, r.confidence), default=None)

    def read_track(self, images: Sequence[np.ndarray]) -> PlateResult | None:
        """A track's plate: its most confident valid reading (`frames`: the views that read the same
        text), else its most confident reading of any kind. Not a vote: two views misreading the
        province alike must not outvote one view that reads the plate clearly."""
        readings = [r for r in (self.read(img) for img in images) if r is not None]
        valid = [r for r in readings if r.valid]
        best = max(valid or readings, key=lambda r: r.confidence, default=None)
        if best is None or not best.valid:
            return best
        return replace(best, frames=sum(r.text == best.text for r in valid))

    def _read_detection(self, image: np.ndarray, det: PlateDetection) -> PlateResult:
        rows_read = [rectify(image, det.corners, SINGLE, margins) for margins in _SINGLE_MARGINS]
        colour = plate_colour(rows_read[0])  # the symbol row: mostly the plate's own colour
        view = rectify(image, det.corners, VIEW, _VIEW_MARGINS)
        options: list[tuple[RowReading, int, np.ndarray]] = [(self.reader.read_row(r), 1, view) for r in rows_read]
        if colour == "yellow" and _aspect(det.corners) < _DOUBLE_ASPECT:
            double = rectify(image, det.corners, DOUBLE, _DOUBLE_MARGINS)
            top, bottom = self.reader.read_row(_cut(double, _TOP_ROW)), self.reader.read_row(_cut(double, _BOTTOM_ROW))
            options.append((RowReading(top.text + bottom.text, top.symbol_scores + bottom.symbol_scores), 2, double))
        scored = []
        for reading, rows, crop in options:
            text = normalise_plate(reading.text)
            scored.append((plate_format(text) is not None, reading.confidence, text, rows, crop))
        valid, confidence, text, rows, crop = max(scored, key=lambda o: (o[0], o[1]))
        if plate_format(text) == "new_energy" and colour != "yellow":
            colour = "green"  # the gradient plate's white top can outvote its green
        return PlateResult(text, confidence, valid, colour, rows, det.corners, crop, det.score)

"""Plates of vehicles (muddy trucks): find, rectify, read; off the detection loop.

detector.py     where the plate is: box and four corners (clpr-plate-detector)
reader.py       what it says: one row of symbols, CTC (clpr-plate-reader)
recognizer.py   both, with colour, double rows, format check and the surest reading of a track
"""

from vision.edge.plates.detector import PlateDetection, PlateDetector
from vision.edge.plates.reader import PlateTextReader, RowReading
from vision.edge.plates.recognizer import PlateRecognizer, PlateResult, plate_colour, rectify

__all__ = [
    "PlateDetection",
    "PlateDetector",
    "PlateRecognizer",
    "PlateResult",
    "PlateTextReader",
    "RowReading",
    "plate_colour",
    "rectify",
]

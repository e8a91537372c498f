"""Data sets for the city model: YOLO layout on disk, formats, splits, checks, synthesis.

Core modules depend on numpy/opencv/PyYAML only; ultralytics and torch stay in
`vision.training`.
"""

from vision.training.data.layout import CITY_CLASSES, Box, Dataset, DatasetError, ImageLabels

__all__ = ["CITY_CLASSES", "Dataset", "DatasetError", "ImageLabels", "Box"]

"""The plate step of a case: a truck's best views in, its plate on the case out.

Runs on the case writer's thread (a plate read costs tens of milliseconds per
view, too much for the detection loop). The rectified plate becomes the
`plate_crop` evidence whenever a plate was found, readable or not (a person can
still read it); the text goes on the case only when it has a plate format and
its least sure symbol is confident enough, because the dispatch center merges
muddy-truck cases by plate and a wrong text would merge two trucks.
"""

from __future__ import annotations

import logging
import time

from vision.core.cases import PlateReading
from vision.edge.config import PlatesConfig
from vision.edge.plates import PlateRecognizer
from vision.edge.rules.base import Violation

log = logging.getLogger(__name__)


class PlateStep:
    def __init__(self, recognizer: PlateRecognizer, config: PlatesConfig) -> None:
        self.recognizer = recognizer
        self.config = config
        self.read = 0  # cases whose plate text went on the case
        self.unreadable = 0  # cases with views but no confident, valid reading
        self.seconds = 0.0  # CPU time spent reading (wall time on the writer thread)

    @classmethod
    def load(cls, config: PlatesConfig) -> PlateStep:
        recognizer = PlateRecognizer.load(
            config.detector, config.reader, threads=config.threads, min_detect_score=config.min_detect_score
        )
        return cls(recognizer, config)

    def apply(self, violation: Violation) -> None:
        """Reads the violation's plate views (if any) into `violation.plate` and its `plate_crop`."""
        if not violation.plate_views:
            return
        started = time.perf_counter()
        result = self.recognizer.read_track(violation.plate_views)
        took = time.perf_counter() - started
        self.seconds += took
        views = len(violation.plate_views)
        violation.plate_views = []  # read once; the frames are not needed any more
        if result is None:
            self.unreadable += 1
            log.info("camera %s: violation %s: no plate found (%.0f ms)", violation.camera_id, violation.id, took * 1e3)
            return
        violation.crops["plate_crop"] = result.crop
        if not result.valid or result.confidence < self.config.min_confidence:
            self.unreadable += 1
            log.info(
                "camera %s: violation %s: plate unreadable (read %r at %.2f, %s; %.0f ms)",
                violation.camera_id,
                violation.id,
                result.text,
                result.confidence,
                "a plate format" if result.valid else "no plate format",
                took * 1e3,
            )
            return
        violation.plate = PlateReading(
            text=result.text,
            confidence=round(result.confidence, 4),
            colour=result.colour,
            rows=2 if result.rows == 2 else 1,
            frames=result.frames,
        )
        self.read += 1
        log.info(
            "camera %s: violation %s: plate %s (%s, %.2f, %d of %d views; %.0f ms)",
            violation.camera_id,
            violation.id,
            result.text,
            result.colour,
            result.confidence,
            result.frames,
            views,
            took * 1e3,
        )

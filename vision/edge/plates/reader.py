"""Plate text from a rectified row of symbols (clpr-plate-reader, CTC).

The reader sees one row 32 px high. A double-row lorry plate is two rows: the
caller cuts them apart and reads each. Greedy CTC decoding: the most likely
symbol per column, repeats merged, blanks dropped; the text's confidence is
that of its least sure symbol, so one doubtful character marks the whole
plate doubtful.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from vision.core.model_registry import ModelCard, load_card, verify_card
from vision.edge.detection.base import ort_session

DEFAULT_PLATE_READER = "clpr-plate-reader"
_MAX_WIDTH = 320


@dataclass(frozen=True)
class RowReading:
    text: str
    symbol_scores: tuple[float, ...]

    @property
    def confidence(self) -> float:
        return min(self.symbol_scores, default=0.0)


class PlateTextReader:
    def __init__(self, card: ModelCard | str = DEFAULT_PLATE_READER, *, threads: int = 1) -> None:
        self.card = load_card(card) if isinstance(card, str) else card
        verify_card(self.card)
        self.session = ort_session(self.card.path, threads)
        self.input_name = self.session.get_inputs()[0].name
        self.symbols = list(self.card.classes)  # index 0 of the output is the CTC blank
        self.height = self.card.input.height
        self._mean = np.asarray(self.card.input.mean, dtype=np.float32)
        self._std = np.asarray(self.card.input.std, dtype=np.float32)

    def read_row(self, row: np.ndarray) -> RowReading:
        h, w = row.shape[:2]
        if h < 2 or w < 2:
            return RowReading("", ())
        width = int(min(_MAX_WIDTH, max(self.height, np.ceil(self.height * w / h))))
        resized = cv2.resize(
            row, (width, self.height), interpolation=cv2.INTER_AREA if h > self.height else cv2.INTER_CUBIC
        )
        blob = ((resized.astype(np.float32) - self._mean) / self._std).transpose(2, 0, 1)[None]
        probs = self.session.run(None, {self.input_name: np.ascontiguousarray(blob)})[0][0]
        best, score = probs.argmax(axis=1), probs.max(axis=1)
        text: list[str] = []
        scores: list[float] = []
        previous = 0
        for index, p in zip(best.tolist(), score.tolist(), strict=True):
            if index != 0 and index != previous and index - 1 < len(self.symbols):
                text.append(self.symbols[index - 1])
                scores.append(float(p))
            previous = index
        return RowReading("".join(text), tuple(scores))

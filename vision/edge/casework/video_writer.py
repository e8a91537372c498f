"""H.264 MP4 files that browsers play (PyAV's bundled libx264, yuv420p, faststart)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from types import TracebackType

import av
import numpy as np


class Mp4Writer:
    """Write BGR frames of one size to an MP4; use as a context manager."""

    def __init__(self, path: str | Path, fps: float, size: tuple[int, int], *, crf: int = 26):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        width, height = size
        # yuv420p needs even dimensions
        self.width, self.height = width - width % 2, height - height % 2
        self._container = av.open(str(self.path), mode="w", options={"movflags": "+faststart"})
        rate = Fraction(fps).limit_denominator(1000)
        self._stream = self._container.add_stream("libx264", rate=rate)
        self._stream.width, self._stream.height = self.width, self.height
        self._stream.pix_fmt = "yuv420p"
        self._stream.options = {"crf": str(crf), "preset": "veryfast"}
        self.frames = 0
        self._closed = False

    def write(self, image_bgr: np.ndarray) -> None:
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image_bgr[: self.height, : self.width]), format="bgr24")
        for packet in self._stream.encode(frame):
            self._container.mux(packet)
        self.frames += 1

    def close(self) -> None:
        """Flush the encoder and finish the file; a second call does nothing."""
        if self._closed:
            return
        self._closed = True
        try:
            for packet in self._stream.encode():
                self._container.mux(packet)
        finally:  # the file is closed even when the flush fails (ENOSPC): no open muxer is left behind
            self._container.close()

    def __enter__(self) -> Mp4Writer:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.close()
            return
        try:  # the write already failed: close what is open, and let that first error be the one raised
            self.close()
        except Exception:  # noqa: BLE001, S110 - a second error while closing after the first says nothing new
            pass

"""Where the loop's frames come from: batches of frames of every camera of the site.

Live (`live=True`, the daemon): one `CameraReader` thread per camera keeps only the
newest frame; a batch holds the newest frame of each camera that has one, so a loop
that falls behind drops frames (counted by the readers) instead of working on ever
older pictures. Files are paced like cameras, and replayed with `loop`.

Offline (`live=False`, tests and the scenario suite): every sampled frame of every
file, round robin, as fast as detection goes, none dropped.

Both read a camera with its `sampling` settings at the rate its pipeline samples.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import TypedDict

from vision.edge.config import CameraConfig
from vision.edge.streams import CameraReader, Frame, FrameSource, open_source
from vision.edge.streams.decoders import DecodeMode

__all__ = ["CameraFeeds", "sampling_options"]


class SamplingOptions(TypedDict):
    """The keywords `CameraReader` and `open_source` share, as a camera's config gives them."""

    decode: DecodeMode
    sample_fps: float
    idle_every_s: float | None
    motion_factor: float


def sampling_options(camera: CameraConfig, sample_fps: float) -> SamplingOptions:
    s = camera.sampling
    return SamplingOptions(
        decode=s.decode, sample_fps=sample_fps, idle_every_s=s.idle_every_s, motion_factor=s.motion_factor
    )


class CameraFeeds:
    """The site's cameras as one iterator of frame batches (`batches`); `stop` ends the readers."""

    def __init__(
        self,
        cameras: list[CameraConfig],
        sample_fps: Mapping[str, float],
        *,
        live: bool,
        loop: bool,
        on_idle: Callable[[], None],
    ) -> None:
        """`sample_fps`: camera id -> the rate its pipeline needs; `on_idle` is called while no
        camera has a new frame (the loop is alive, only waiting)."""
        self.cameras = cameras
        self.sample_fps = sample_fps
        self.live = live
        self.loop = loop
        self.on_idle = on_idle
        self.readers: dict[str, CameraReader] = {}  # live: filled as each reader starts
        self._sources: dict[str, FrameSource] = {}  # offline
        self.ended = False  # every source ended (files, or a camera that cannot come back)

    def batches(self, stop: threading.Event, deadline: float | None) -> Iterator[list[Frame]]:
        """Until `stop` is set, the `deadline` (monotonic) passes or every source ended."""
        return self._live(stop, deadline) if self.live else self._offline(stop, deadline)

    def hold_open(self, camera_id: str, seconds: float) -> None:
        """Every due keyframe of this camera for the next `seconds` (no-op without a motion gate)."""
        source = self.readers.get(camera_id) or self._sources.get(camera_id)
        if source is not None:
            source.hold_open(seconds)

    def stop(self) -> None:
        for reader in self.readers.values():
            reader.stop()

    def _live(self, stop: threading.Event, deadline: float | None) -> Iterator[list[Frame]]:
        for cam in self.cameras:
            reader = CameraReader(
                cam.id, cam.source, realtime=True, loop=self.loop, **sampling_options(cam, self.sample_fps[cam.id])
            )
            reader.start()
            self.readers[cam.id] = reader
        while not stop.is_set() and (deadline is None or time.monotonic() < deadline):
            batch = [f for f in (r.get(timeout=0) for r in self.readers.values()) if f is not None]
            if batch:
                yield batch
                continue
            if not any(r.running for r in self.readers.values()):
                self.ended = True
                return
            self.on_idle()
            stop.wait(0.01)

    def _offline(self, stop: threading.Event, deadline: float | None) -> Iterator[list[Frame]]:
        iters: dict[str, Iterator[Frame]] = {}
        for cam in self.cameras:
            source = open_source(cam.source, camera_id=cam.id, **sampling_options(cam, self.sample_fps[cam.id]))
            self._sources[cam.id] = source
            iters[cam.id] = iter(source)
        while iters and not stop.is_set() and (deadline is None or time.monotonic() < deadline):
            batch = []
            for cam_id in list(iters):
                frame = next(iters[cam_id], None)
                if frame is None:
                    del iters[cam_id]
                else:
                    batch.append(frame)
            if batch:
                yield batch
        if not iters:
            self.ended = True

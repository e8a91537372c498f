"""Camera stream sources: offline iteration (`open_source`) and live readers (`CameraReader`).

See `vision/streams/reader.py` for the latest-frame and watchdog design and
`vision/streams/decoders.py` for why OpenCV and PyAV are both used.
"""

from vision.streams.motion import MotionGate
from vision.streams.reader import Backoff, CameraReader, CameraStatus, LatestFrameSlot
from vision.streams.sources import Frame, FrameSource, Sampler, Timeline, open_source
from vision.streams.spec import SourceError, SourceSpec, mask_secrets, parse_source

__all__ = [
    "Backoff",
    "CameraReader",
    "CameraStatus",
    "Frame",
    "FrameSource",
    "LatestFrameSlot",
    "MotionGate",
    "Sampler",
    "SourceError",
    "SourceSpec",
    "Timeline",
    "mask_secrets",
    "open_source",
    "parse_source",
]

"""Camera stream sources: offline iteration (`open_source`) and live readers (`CameraReader`).

See `vision/edge/streams/reader.py` for the latest-frame and watchdog design and
`vision/edge/streams/decoders.py` for why OpenCV and PyAV are both used.
"""

from vision.edge.streams.motion import MotionGate
from vision.edge.streams.reader import CameraReader, CameraStatus, LatestFrameSlot
from vision.edge.streams.sources import Frame, FrameSource, Sampler, Timeline, open_source
from vision.edge.streams.spec import SourceError, SourceSpec, mask_secrets, parse_source

__all__ = [
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

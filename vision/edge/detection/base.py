"""Pieces every backend shares: the output container, NMS, model sessions (ONNX Runtime or
OpenVINO), the crop namer's interface."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol, get_args

import cv2
import numpy as np
import supervision as sv

if TYPE_CHECKING:
    import onnxruntime as ort


class DetectorError(RuntimeError):
    """A model that cannot be loaded or run, with a message saying which and why."""


# What runs a detector's ONNX model on the box's CPU (`detector.runtime`, docs/EDGE_HARDWARE.md).
Runtime = Literal["onnxruntime", "openvino"]
RUNTIMES: tuple[Runtime, ...] = get_args(Runtime)


class TensorInfo(Protocol):
    """An input or output of a model: its name and shape (a str or None for a dynamic dimension)."""

    @property
    def name(self) -> str: ...

    @property
    def shape(self) -> Sequence[int | str | None]: ...


class ModelMetadata(Protocol):
    @property
    def custom_metadata_map(self) -> Mapping[str, str]:
        """The ONNX file's metadata properties (ultralytics stores `names` and `imgsz` there)."""


class ModelSession(Protocol):
    """What the detectors call of a loaded model: ONNX Runtime's `InferenceSession` has it, and
    so has the OpenVINO adapter (`vision.edge.detection.openvino_runtime.OpenVinoSession`)."""

    def get_inputs(self) -> Sequence[TensorInfo]: ...

    def get_outputs(self) -> Sequence[TensorInfo]: ...

    def get_modelmeta(self) -> ModelMetadata: ...

    def run(self, output_names: Sequence[str] | None, input_feed: Mapping[str, np.ndarray]) -> list[np.ndarray]: ...


class CropName(Protocol):
    """What a crop was named (the verifier's `CropVerdict`)."""

    @property
    def label(self) -> str: ...

    @property
    def score(self) -> float: ...


class CropNamer(Protocol):
    """Names boxes of a frame, one name per box (the verifier's `CropClassifier`)."""

    def classify(self, image: np.ndarray, boxes_xyxy: np.ndarray) -> Sequence[CropName]: ...


def make_detections(
    xyxy: np.ndarray, confidence: np.ndarray, class_id: np.ndarray, class_names: list[str]
) -> sv.Detections:
    class_id = class_id.astype(int, copy=False)
    names = np.asarray(class_names, dtype=object)
    return sv.Detections(
        xyxy=xyxy.astype(np.float32, copy=False).reshape(-1, 4),
        confidence=confidence.astype(np.float32, copy=False),
        class_id=class_id,
        data={"class_name": names[class_id] if len(class_id) else np.empty(0, dtype=object)},
    )


def named_detections(xyxy: np.ndarray, labels: Sequence[str], scores: Sequence[float]) -> sv.Detections:
    """Boxes the crop classifier named, as detections of those names (class ids over the names present)."""
    if len(labels) == 0:
        return empty_detections()
    vocabulary = sorted(set(labels))
    return make_detections(
        np.asarray(xyxy, dtype=np.float32).reshape(-1, 4),
        np.asarray(scores, dtype=np.float32),
        np.asarray([vocabulary.index(label) for label in labels]),
        vocabulary,
    )


def boxes_touching(xyxy: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Per box: any set pixel of `mask` (a full-frame bool array) under it."""
    h, w = mask.shape
    out = np.zeros(len(xyxy), dtype=bool)
    for n, (x1, y1, x2, y2) in enumerate(xyxy):
        a, b = int(np.clip(x1, 0, w)), int(np.clip(np.ceil(x2), 0, w))
        c, d = int(np.clip(y1, 0, h)), int(np.clip(np.ceil(y2), 0, h))
        out[n] = b > a and d > c and bool(mask[c:d, a:b].any())
    return out


def select_detections(dets: sv.Detections, index: np.ndarray) -> sv.Detections:
    """`dets[index]` for a boolean mask or index array, typed as detections (supervision's
    `__getitem__` also answers a data key with that column)."""
    picked = dets[index]
    assert isinstance(picked, sv.Detections)  # an array index always selects detections
    return picked


def confidences(dets: sv.Detections) -> np.ndarray:
    """Each detection's confidence; 1 for every box of detections that carry none."""
    return dets.confidence if dets.confidence is not None else np.ones(len(dets), dtype=np.float32)


def empty_detections() -> sv.Detections:
    dets = sv.Detections.empty()
    dets.data["class_name"] = np.empty(0, dtype=object)
    return dets


def classwise_nms(xyxy: np.ndarray, scores: np.ndarray, class_id: np.ndarray, iou: float) -> np.ndarray:
    """Indices kept by per-class NMS (OpenCV's batched NMS, one C call)."""
    if len(scores) == 0:
        return np.empty(0, dtype=int)
    xywh = np.empty_like(xyxy)
    xywh[:, :2] = xyxy[:, :2]
    xywh[:, 2:] = xyxy[:, 2:] - xyxy[:, :2]
    keep = cv2.dnn.NMSBoxesBatched(xywh.tolist(), scores.tolist(), class_id.tolist(), 0.0, iou)
    return np.asarray(keep, dtype=int).reshape(-1)


def ort_session(path: Path | str, threads: int = 0) -> ort.InferenceSession:
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    options.log_severity_level = 3
    # Idle ORT workers otherwise spin-wait for the next call: on a 2-core box that burns
    # about half the CPU per frame (benchmarks/cameras_per_box.py, docs/PERFORMANCE.md).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types for bad files
        raise DetectorError(f"cannot load ONNX model {path}: {exc}") from None


def detector_session(
    path: Path | str, threads: int = 0, runtime: Runtime = "onnxruntime", workers: int = 0
) -> ModelSession:
    """A detector's ONNX model on the chosen runtime. `threads`: threads of one inference (0 = automatic);
    `workers`: inferences run at the same time from different threads (OpenVINO prepares one stream for
    each; ONNX Runtime needs nothing; 0 = guess from the cores)."""
    if runtime == "openvino":
        from vision.edge.detection.openvino_runtime import OpenVinoSession

        return OpenVinoSession(path, threads, workers)
    if runtime != "onnxruntime":
        raise DetectorError(f"unknown detector runtime {runtime!r}: one of {', '.join(RUNTIMES)}")
    session: ModelSession = ort_session(path, threads)
    return session

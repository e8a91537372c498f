"""OpenVINO's CPU plugin behind the calls the detectors make of an ONNX Runtime session.

Chosen per box with `detector.runtime: openvino` (docs/EDGE_HARDWARE.md). The detectors
call `get_inputs()`, `get_outputs()`, `get_modelmeta()` and `run(names, {input: blob})`;
`OpenVinoSession` answers those, so NanoDet and YOLO decode the same arrays whichever
runtime produced them. `openvino` is an optional extra, imported only here.

Two things differ from ONNX Runtime and are handled here:

* OpenVINO's ONNX reader refuses our NanoDet exports (tf2onnx leaves a ScatterND with
  empty indices, a constant zero vector, that OpenVINO's shape inference rejects). ONNX
  Runtime's basic graph optimisations (constant folding; standard ONNX ops only) fold it
  away, so the model is passed through them into a temporary file first (~0.05 s).
* One compiled model runs one inference at a time per stream: concurrent callers of a
  single-stream model queue behind each other. The detector pool calls one detector from
  `workers` threads at once, so the model gets one stream per worker, each with `threads`
  threads, and each calling thread its own infer request.
"""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vision.edge.detection.base import DetectorError

INSTALL_HINT = "pip install 'streetvision[openvino]'"


@dataclass(frozen=True)
class TensorInfo:
    """An input or output as ONNX Runtime describes it: its name and shape (a str or None for a dynamic dimension)."""

    name: str
    shape: list[int | str | None]


@dataclass(frozen=True)
class ModelMeta:
    """The ONNX file's metadata properties (`custom_metadata_map` as ONNX Runtime names it)."""

    custom_metadata_map: dict[str, str] = field(default_factory=dict)


def import_openvino() -> Any:
    """The `openvino` module, or a DetectorError saying how to install it."""
    try:
        import openvino
    except ImportError as exc:
        raise DetectorError(
            f"detector runtime 'openvino' needs the openvino package, which is not installed ({exc}): "
            f"{INSTALL_HINT}, or set detector.runtime: onnxruntime"
        ) from None
    return openvino


def default_streams(threads: int, cores: int | None = None) -> int:
    """Concurrent inferences to prepare for when the caller does not say: the automatic worker plan
    (`plan_workers`) gives each worker cores // workers threads, so cores // threads workers."""
    cores = max(1, cores or os.cpu_count() or 1)
    return max(1, cores // threads) if threads > 0 else 1


class OpenVinoSession:
    """An ONNX model compiled for OpenVINO's CPU plugin, run like an ONNX Runtime session.

    `threads`: threads of one inference (0 = OpenVINO decides); `workers`: inferences run at
    the same time from different threads (0 = `default_streams`). Safe to call from several
    threads: each thread runs its own infer request."""

    def __init__(self, path: Path | str, threads: int = 0, workers: int = 0) -> None:
        ov = import_openvino()
        self.path = Path(path)
        self.threads = max(0, threads)
        self.streams = workers if workers > 0 else default_streams(self.threads)
        config: dict[str, object] = {
            "PERFORMANCE_HINT": "LATENCY",
            "NUM_STREAMS": self.streams,
            # total over all streams; 0 lets OpenVINO use every core
            "INFERENCE_NUM_THREADS": self.threads * self.streams,
            # the box also decodes, verifies and reads plates: no thread is tied to a core (ONNX Runtime ties none)
            "ENABLE_CPU_PINNING": False,
            # the same arithmetic as ONNX Runtime's CPU provider; CPUs with AMX would otherwise default to bf16
            "INFERENCE_PRECISION_HINT": "f32",
        }
        with tempfile.TemporaryDirectory(prefix="streetvision-openvino-") as tmp:
            folded = Path(tmp) / "model.onnx"
            inputs, outputs, meta = _fold_constants(self.path, folded)
            try:
                core = ov.Core()
                self._compiled = core.compile_model(core.read_model(str(folded)), "CPU", config)
            except Exception as exc:  # openvino raises RuntimeError subclasses of its own
                raise DetectorError(f"cannot load ONNX model {self.path} with OpenVINO: {exc}") from None
        self._inputs, self._outputs, self._meta = inputs, outputs, meta
        self._input_index = self._port_index(self._compiled.inputs, [t.name for t in inputs])
        self._output_index = self._port_index(self._compiled.outputs, [t.name for t in outputs])
        self._local = threading.local()

    def _port_index(self, ports: Sequence[Any], names: list[str]) -> dict[str, int]:
        index: dict[str, int] = {}
        for name in names:
            found = [i for i, port in enumerate(ports) if name in port.get_names()]
            if len(found) != 1:
                raise DetectorError(f"{self.path}: OpenVINO's model has no single tensor named {name!r}")
            index[name] = found[0]
        return index

    def get_inputs(self) -> list[TensorInfo]:
        return list(self._inputs)

    def get_outputs(self) -> list[TensorInfo]:
        return list(self._outputs)

    def get_modelmeta(self) -> ModelMeta:
        return self._meta

    def _request(self) -> Any:
        request = getattr(self._local, "request", None)
        if request is None:
            request = self._local.request = self._compiled.create_infer_request()
        return request

    def run(self, output_names: Sequence[str] | None, input_feed: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        """The named outputs (all, in the model's order, for None) for one feed, as fresh arrays."""
        try:
            feed = {self._input_index[name]: value for name, value in input_feed.items()}
        except KeyError as exc:
            raise DetectorError(f"{self.path}: no input named {exc.args[0]!r}") from None
        names = [t.name for t in self._outputs] if output_names is None else list(output_names)
        try:
            wanted = [self._output_index[name] for name in names]
        except KeyError as exc:
            raise DetectorError(f"{self.path}: no output named {exc.args[0]!r}") from None
        results = self._request().infer(feed)  # copies the outputs (share_outputs=False)
        return [np.asarray(results[i]) for i in wanted]


def _fold_constants(path: Path, target: Path) -> tuple[list[TensorInfo], list[TensorInfo], ModelMeta]:
    """Write `path` through ONNX Runtime's basic optimisations (constant folding, standard ops) to
    `target`; return its inputs, outputs and metadata as ONNX Runtime sees them (the names the
    detectors use)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options.optimized_model_filepath = str(target)
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    try:
        session = ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types for bad files
        raise DetectorError(f"cannot load ONNX model {path}: {exc}") from None
    inputs = [TensorInfo(a.name, list(a.shape)) for a in session.get_inputs()]
    outputs = [TensorInfo(a.name, list(a.shape)) for a in session.get_outputs()]
    meta = ModelMeta(dict(session.get_modelmeta().custom_metadata_map))
    return inputs, outputs, meta

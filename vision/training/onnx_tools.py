"""ONNX side of export and quantize: int8 quantisation (dynamic, and static for
convolutions) and latency measurement,
with onnxruntime only (what the edge runs)."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np


class Captured:
    """What ran inside `captured_output()`: `text` once the block has ended."""

    text: str = ""


@contextlib.contextmanager
def captured_output() -> Iterator[Captured]:
    """Collect everything the block writes instead of showing it: records sent
    to the root logger (onnxruntime's quantizer logs one INFO line per tensor
    through `logging.info`), Python prints, and C-level writes to fd 1 and 2."""
    cap = Captured()
    buf = io.StringIO()
    root = logging.getLogger()
    saved_handlers = root.handlers[:]
    handler = logging.StreamHandler(buf)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root.handlers = [handler]  # also keeps logging.warning() from calling basicConfig() on stderr
    saved_fds: list[tuple[int, int]] = []
    tmp = tempfile.TemporaryFile()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    for fd in (1, 2):
        try:
            saved_fds.append((fd, os.dup(fd)))
            os.dup2(tmp.fileno(), fd)
        except OSError:  # no such descriptor (embedded interpreter): Python-level capture only
            pass
    try:
        with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
            yield cap
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        for fd, saved in saved_fds:
            os.dup2(saved, fd)
            os.close(saved)
        root.handlers = saved_handlers
        tmp.seek(0)
        cap.text = buf.getvalue() + tmp.read().decode("utf-8", errors="replace")
        tmp.close()


def quietly(work: Callable[[], object], verbose: bool = False) -> None:
    """Run `work` with its output captured and dropped (shown as it comes when `verbose`),
    and shown on stderr if it fails: onnxruntime's quantizer logs a line per tensor."""
    if verbose:
        work()
        return
    cap = None
    try:
        with captured_output() as cap:
            work()
    except BaseException:
        if cap is not None:
            sys.stderr.write(cap.text)
        raise


def quantize_int8(src: Path, dst: Path, verbose: bool = False) -> Path:
    """Dynamic int8 quantisation (weights uint8, activations quantised at run
    time); ultralytics' metadata (names, imgsz, stride) is carried over.

    onnxruntime's quantizer logs a line per tensor (about 60 for a YOLOv8n);
    that output is captured and dropped unless `verbose`, and shown on stderr
    if quantisation fails."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quietly(lambda: quantize_dynamic(str(src), str(dst), weight_type=QuantType.QUInt8), verbose)
    model = onnx.load(str(dst))
    meta = {p.key: p.value for p in onnx.load(str(src), load_external_data=False).metadata_props}
    have = {p.key for p in model.metadata_props}
    for k, v in meta.items():
        if k not in have:
            model.metadata_props.add(key=k, value=v)
    onnx.save(model, str(dst))
    return dst


def latency_ms(model: Path, imgsz: int, threads: int = 1, runs: int = 20, warmup: int = 3) -> dict[str, float]:
    """Median and p90 of session.run on one (1, 3, imgsz, imgsz) input."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = int(threads)
    opts.log_severity_level = 3
    sess = ort.InferenceSession(str(model), sess_options=opts, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    x = np.random.default_rng(0).random((1, 3, imgsz, imgsz), dtype=np.float32)
    for _ in range(warmup):
        sess.run(None, {name: x})
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        sess.run(None, {name: x})
        times.append((time.perf_counter() - t0) * 1000)
    return {
        "median_ms": round(float(np.median(times)), 2),
        "p90_ms": round(float(np.percentile(times, 90)), 2),
        "threads": int(threads),
        "imgsz": int(imgsz),
        "runs": int(runs),
    }


def quantize_static_int8(
    src: Path, dst: Path, blobs: list[np.ndarray], *, op_types: tuple[str, ...] = ("Conv",), verbose: bool = False
) -> Path:
    """Static int8 quantisation (QDQ; int8 weights per output channel, uint8
    activations with min-max ranges calibrated on `blobs`, the model's own
    input tensors) of the `op_types` layers only; the rest stays float."""
    import onnxruntime as ort
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    input_name = ort.InferenceSession(str(src), providers=["CPUExecutionProvider"]).get_inputs()[0].name

    class _Blobs(CalibrationDataReader):  # type: ignore[misc]
        def __init__(self) -> None:
            self._left = iter(blobs)

        def get_next(self) -> dict[str, np.ndarray] | None:
            blob = next(self._left, None)
            return None if blob is None else {input_name: blob}

    def run() -> None:
        with tempfile.TemporaryDirectory() as tmp:
            prepared = Path(tmp) / "prepared.onnx"
            quant_pre_process(str(src), str(prepared))
            quantize_static(
                str(prepared),
                str(dst),
                _Blobs(),
                quant_format=QuantFormat.QDQ,
                per_channel=True,
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
                op_types_to_quantize=list(op_types),
            )

    quietly(run, verbose)
    return dst

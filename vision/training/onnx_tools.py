"""ONNX side of export: int8 dynamic quantisation and latency measurement,
with onnxruntime only (what the edge runs)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np


def quantize_int8(src: Path, dst: Path) -> Path:
    """Dynamic int8 quantisation (weights uint8, activations quantised at run
    time); ultralytics' metadata (names, imgsz, stride) is carried over."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(src), str(dst), weight_type=QuantType.QUInt8)
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
    return {"median_ms": round(float(np.median(times)), 2), "p90_ms": round(float(np.percentile(times, 90)), 2),
            "threads": int(threads), "imgsz": int(imgsz), "runs": int(runs)}

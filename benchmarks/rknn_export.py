"""Our detectors as Rockchip NPU models (.rknn), checked in rknn-toolkit2's simulator against ONNX Runtime.

Runs on an x86 host in its own venv (rknn-toolkit2 pins numpy<=1.26.4, onnx<=1.18, torch<=2.4 and
must not go into .venv), with this repository installed without dependencies:

    python3.11 -m venv /tmp/rknnvenv
    /tmp/rknnvenv/bin/pip install --no-deps rknn-toolkit2==2.5.0 numpy==1.26.4 onnx==1.18.0 \\
        onnxruntime==1.26.0 opencv-python==4.11.0.86 protobuf==4.25.4 psutil ruamel.yaml scipy tqdm \\
        fast-histogram typing_extensions filelock fsspec jinja2 markupsafe networkx sympy mpmath packaging \\
        flatbuffers torch   # any CPU torch: the toolkit imports it (PyPI's torch pulls ~3 GB of CUDA)
    /tmp/rknnvenv/bin/pip install --no-deps -e . && /tmp/rknnvenv/bin/pip install supervision pydantic PyYAML
    /tmp/rknnvenv/bin/python benchmarks/rknn_export.py [--platform rk3588] [--out out/rknn]

Per model: the ONNX file is made NPU-ready (NanoDet: ONNX Runtime's constant folding removes the
empty ScatterND the toolkit cannot build; city-v1: the graph is cut before YOLOv8's DFL box
decoding, which the toolkit refuses, leaving the box distributions [1, 64, cells] and class
scores [1, classes, cells]), converted to fp16 and to int8 (calibrated on frames of
datasets/footage/vtest.avi prepared by our own pre-processing, mean/std folded into the model),
exported, then run in the toolkit's simulator on other frames. Its outputs go through our own
post-processing (for city-v1 with the DFL decoding in numpy first) and are compared with
ONNX Runtime's detections of the same frames. No NPU timing: the simulator says nothing about
speed on a board.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import FOOTAGE, print_machine  # noqa: E402  (benchmarks/ is not a package)
from inference_runtimes import compare_detections, spread_frames  # noqa: E402

from vision.core.model_registry import load_card  # noqa: E402
from vision.edge.detection import open_detector  # noqa: E402
from vision.edge.detection.yolo_onnx import letterbox  # noqa: E402

YOLO_CUT = ["/model.22/Concat_output_0", "/model.22/Sigmoid_output_0"]  # ultralytics YOLOv8 head, before DFL


def fold_constants(src: Path, dst: Path) -> Path:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options.optimized_model_filepath = str(dst)
    options.log_severity_level = 3
    ort.InferenceSession(str(src), options, providers=["CPUExecutionProvider"])
    return dst


def cut_before_dfl(src: Path, dst: Path) -> Path:
    import onnx.utils

    onnx.utils.extract_model(str(src), str(dst), ["images"], YOLO_CUT)
    return dst


def dfl_decode(box_dist: np.ndarray, cls: np.ndarray, in_w: int, in_h: int, bins: int = 16) -> np.ndarray:
    """What the cut-off graph did: DFL (softmax over bins, expectation) and distances to boxes, in numpy:
    (4 + classes, cells) as the full export's output0[0] (centre x, y, width, height in input pixels)."""
    centers, stride_of = [], []
    for s in (8, 16, 32):
        ys, xs = np.mgrid[0 : in_h // s, 0 : in_w // s]
        centers.append(np.stack([xs.ravel() + 0.5, ys.ravel() + 0.5], 1))
        stride_of.append(np.full(xs.size, s))
    c, st = np.concatenate(centers), np.concatenate(stride_of)[:, None]
    d = box_dist[0].reshape(4, bins, -1).astype(np.float32)
    d = np.exp(d - d.max(1, keepdims=True))
    d /= d.sum(1, keepdims=True)
    ltrb = (d * np.arange(bins, dtype=np.float32)[None, :, None]).sum(1).T
    x1y1, x2y2 = c - ltrb[:, :2], c + ltrb[:, 2:]
    cxcywh = np.concatenate([(x1y1 + x2y2) / 2, x2y2 - x1y1], 1) * st
    return np.concatenate([cxcywh.T, cls[0]], 0).astype(np.float32)


class SimulatedDetector:
    """The simulator's outputs through our detector's post-processing; `detect` like the real one."""

    def __init__(self, det, rknn, cut: bool):
        self.det, self.rknn, self.cut = det, rknn, cut
        self.graph_order = [o.name for o in det.session.get_outputs()]

    def uint8_input(self, frame: np.ndarray) -> np.ndarray:
        """Our pre-processing up to the uint8 image (the model does mean/std): NHWC, the model's colour order."""
        if self.cut:
            return cv2.cvtColor(letterbox(frame, self.det.in_w, self.det.in_h)[0], cv2.COLOR_BGR2RGB)
        return cv2.resize(frame, (self.det.in_w, self.det.in_h), interpolation=cv2.INTER_LINEAR)

    def detect(self, frame: np.ndarray):
        h, w = frame.shape[:2]
        outs = self.rknn.inference(inputs=[self.uint8_input(frame)[None]], data_format="nhwc")
        if self.cut:
            _, scale, pad = self.det.preprocess(frame)
            return self.det.postprocess(dfl_decode(outs[0], outs[1], self.det.in_w, self.det.in_h), scale, pad, w, h)
        by_name = dict(zip(self.graph_order, outs, strict=True))
        return self.det.postprocess([by_name[n] for n in self.det._outputs], w, h)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="coco-nanodet,coco-city,city-v1")
    ap.add_argument("--platform", default="rk3588", help="rk3588, rk3576, rk3568, rk3566, rk3562")
    ap.add_argument("--out", default="out/rknn")
    ap.add_argument("--calibration", type=int, default=20, help="frames for int8 calibration")
    ap.add_argument("--test", type=int, default=8, help="other frames to compare on")
    args = ap.parse_args()

    from rknn.api import RKNN

    print_machine()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    frames = spread_frames(2 * max(args.calibration, args.test), 19)
    calibration, test = frames[::2][: args.calibration], frames[1::2][: args.test]
    print(f"{FOOTAGE.name}: {len(calibration)} calibration and {len(test)} other test frames; target {args.platform}")
    for name in args.models.split(","):
        det = open_detector(name, min_confidence=0.3)
        card = load_card(name)
        cut = card.backend == "yolo-onnx"
        prepared = (cut_before_dfl if cut else fold_constants)(card.path, out / f"{name}-npu-ready.onnx")
        sim = SimulatedDetector(det, None, cut)
        dataset = out / f"{name}-calibration.txt"
        lines = []
        for i, frame in enumerate(calibration):
            path = out / f"{name}-calibration-{i}.npy"
            np.save(path, sim.uint8_input(frame).transpose(2, 0, 1)[None])  # the toolkit wants NCHW uint8 here
            lines.append(str(path.resolve()))
        dataset.write_text("\n".join(lines) + "\n")
        for dtype in ("fp16", "int8"):
            rknn = RKNN(verbose=False)
            rknn.config(
                mean_values=[list(card.input.mean)], std_values=[list(card.input.std)], target_platform=args.platform
            )
            t0 = time.perf_counter()
            if rknn.load_onnx(model=str(prepared)) != 0 or rknn.build(
                do_quantization=dtype == "int8", dataset=str(dataset)
            ):
                print(f"{name} {dtype}: conversion FAILED")
                continue
            target = out / f"{name}-{args.platform}-{dtype}.rknn"
            rknn.export_rknn(str(target))
            took = time.perf_counter() - t0
            rknn.init_runtime()  # no target: the simulator
            sim.rknn = rknn
            report = compare_detections(det, sim, test)
            print(f"{name} {dtype}: {target} {target.stat().st_size / 1e6:.1f} MB, converted in {took:.0f} s")
            print(f"  detections onnxruntime / rknn simulator: {report}")
            rknn.release()


if __name__ == "__main__":
    main()

"""ONNX Runtime's CPU provider against OpenVINO's CPU plugin, per model, on the same frames.

    flock /tmp/cpu.lock .venv/bin/python benchmarks/inference_runtimes.py            # ~4 min, both cores
    .venv/bin/python benchmarks/inference_runtimes.py --models coco-nanodet --frames 10 --repeats 1  # smoke

Needs the `openvino` extra (pip install -e '.[openvino]'). Both runtimes run each model through
the detector code the daemon uses (`open_detector(..., runtime=...)`, so OpenVINO gets the same
adapter, threads and streams as on a box), on frames spread over datasets/footage/vtest.avi
(real footage, 768x576), each frame's blob prepared once and fed to both.

Per model and per thread count (1 and 2; one worker):
- latency of the model call alone (`session.run`, what the runtime changes; pre- and
  post-processing are the same numpy/OpenCV code for both): median and p90 over frames x
  repeats, the two runtimes interleaved frame by frame (which goes first alternates) so
  that machine noise hits both; OpenVINO as a ratio to ONNX Runtime in the same run;
- CPU milliseconds of the process per call, each runtime in its own block (a runtime's idle
  worker threads would otherwise be billed to the other's calls).
Then the multi-camera plan (`detector.workers` 2, 1 thread each: the daemon's default on a
2-core box with several cameras): frames per second of `DetectorPool.detect_batch` (pre, run,
post on two threads), again as a ratio.

Agreement: largest absolute difference of any raw output value, and per frame the full
detections (`detect`): same count and classes, boxes matched by class and IoU (smallest IoU
and largest corner difference in pixels reported).

Models: city-v1 (YOLOv8n, 320), coco-nanodet (NanoDet COCO-80, 416), coco-city (NanoDet with
the city head: what configs/site-city.yaml runs) and city-v1's int8 file (QDQ) by default.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import FOOTAGE, print_machine  # noqa: E402  (benchmarks/ is not a package)

from vision.edge.detection import open_detector  # noqa: E402
from vision.edge.detection.pool import DetectorPool  # noqa: E402

DEFAULT_MODELS = "city-v1,coco-nanodet,coco-city,models/city-v1/model-int8.onnx"
RUNTIMES = ("onnxruntime", "openvino")


def spread_frames(n: int, step: int, path: Path = FOOTAGE) -> list[np.ndarray]:
    """`n` frames of the footage, one every `step` (consecutive frames are near copies)."""
    import cv2

    cap = cv2.VideoCapture(str(path))
    frames: list[np.ndarray] = []
    index = 0
    while len(frames) < n:
        ok, frame = cap.read()
        if not ok:
            break
        if index % step == 0:
            frames.append(frame)
        index += 1
    cap.release()
    if not frames:
        raise SystemExit(f"no frames could be read from {path}")
    return frames


def blob_of(det: Any, frame: np.ndarray) -> np.ndarray:
    prepared = det.preprocess(frame)
    return prepared[0] if isinstance(prepared, tuple) else prepared  # YOLO returns (blob, scale, pad)


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def iou(a: np.ndarray, b: np.ndarray) -> float:
    x1, y1 = max(a[0], b[0]), max(a[1], b[1])
    x2, y2 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def compare_detections(ref: Any, other: Any, frames: list[np.ndarray]) -> str:
    """Same detections on every frame? Counts, classes, each of `ref`'s boxes matched by class and IoU."""
    frames_differing, n_ref, n_other, matched, min_iou, max_px = 0, 0, 0, 0, 1.0, 0.0
    for frame in frames:
        a, b = ref.detect(frame), other.detect(frame)
        n_ref, n_other = n_ref + len(a), n_other + len(b)
        if len(a) != len(b) or sorted(a.class_id.tolist()) != sorted(b.class_id.tolist()):
            frames_differing += 1
        used: set[int] = set()
        for box, cls in zip(a.xyxy, a.class_id, strict=True):
            best, best_j = 0.0, -1
            for j, (cand, cand_cls) in enumerate(zip(b.xyxy, b.class_id, strict=True)):
                if j not in used and cand_cls == cls and iou(box, cand) > best:
                    best, best_j = iou(box, cand), j
            if best_j >= 0:
                used.add(best_j)
                max_px = max(max_px, float(np.abs(box - b.xyxy[best_j]).max()))
            matched += best >= 0.5
            min_iou = min(min_iou, best)
    return (
        f"{n_ref} / {n_other} boxes on {len(frames)} frames, {matched} of the first matched at IoU >= 0.5; "
        f"frames whose count or classes differ: {frames_differing}; smallest IoU of a box with its match "
        f"{min_iou:.4f}, largest corner difference {max_px:.4f} px"
    )


def latency_block(name: str, frames: list[np.ndarray], threads: int, repeats: int) -> None:
    dets = {rt: open_detector(name, threads=threads, runtime=rt, workers=1) for rt in RUNTIMES}
    blobs = [blob_of(dets["onnxruntime"], f) for f in frames]
    sessions = {rt: d.session for rt, d in dets.items()}
    feeds = [{dets["onnxruntime"].input_name: b} for b in blobs]  # type: ignore[attr-defined]

    # agreement of the raw outputs (all of them, in the model's order)
    max_diff = 0.0
    for feed in feeds:
        outs = {rt: s.run(None, feed) for rt, s in sessions.items()}
        for x, y in zip(outs["onnxruntime"], outs["openvino"], strict=True):
            max_diff = max(max_diff, float(np.abs(x - y).max()))

    for feed in feeds[:3]:  # warm-up
        for s in sessions.values():
            s.run(None, feed)
    wall: dict[str, list[float]] = {rt: [] for rt in RUNTIMES}
    for r in range(repeats):
        for i, feed in enumerate(feeds):
            order = RUNTIMES if (i + r) % 2 == 0 else RUNTIMES[::-1]
            for rt in order:
                t0 = time.perf_counter()
                sessions[rt].run(None, feed)
                wall[rt].append((time.perf_counter() - t0) * 1000)
    cpu: dict[str, float] = {}
    for rt in RUNTIMES:
        t0 = time.process_time()
        for feed in feeds:
            sessions[rt].run(None, feed)
        cpu[rt] = (time.process_time() - t0) * 1000 / len(feeds)

    base = statistics.median(wall["onnxruntime"])
    for rt in RUNTIMES:
        med, p90 = statistics.median(wall[rt]), pct(wall[rt], 90)
        print(
            f"  {threads} thread(s)  {rt:<11}  median {med:7.2f} ms  p90 {p90:7.2f} ms  "
            f"cpu {cpu[rt]:7.2f} ms/call  ratio {med / base:5.3f}x  (n={len(wall[rt])})"
        )
    print(f"  {threads} thread(s)  raw outputs: largest |onnxruntime - openvino| = {max_diff:.3g}")
    if threads == 1:
        print(
            f"  detections onnxruntime / openvino: {compare_detections(dets['onnxruntime'], dets['openvino'], frames)}"
        )


def pool_block(name: str, frames: list[np.ndarray], repeats: int) -> None:
    """The multi-camera plan: 2 workers x 1 thread, frames per second through the detector pool."""
    fps: dict[str, list[float]] = {rt: [] for rt in RUNTIMES}
    pools = {rt: DetectorPool(open_detector(name, threads=1, runtime=rt, workers=2), 2) for rt in RUNTIMES}
    try:
        for pool in pools.values():
            pool.detect_batch(frames[:4])  # warm-up
        for r in range(repeats):
            for rt in RUNTIMES if r % 2 == 0 else RUNTIMES[::-1]:
                t0 = time.perf_counter()
                pools[rt].detect_batch(frames)
                fps[rt].append(len(frames) / (time.perf_counter() - t0))
    finally:
        for pool in pools.values():
            pool.close()
    base = statistics.median(fps["onnxruntime"])
    for rt in RUNTIMES:
        med = statistics.median(fps[rt])
        print(
            f"  2 workers x 1 thread  {rt:<11}  {med:6.2f} frames/s (detect: pre+run+post; median of {repeats})  "
            f"ratio {med / base:5.3f}x"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=DEFAULT_MODELS, help=f"comma-separated names or .onnx files ({DEFAULT_MODELS})")
    ap.add_argument("--frames", type=int, default=40, help="frames of vtest.avi, one every --step")
    ap.add_argument("--step", type=int, default=19)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--threads", default="1,2", help="thread counts to time (one worker)")
    args = ap.parse_args()

    import onnxruntime
    import openvino

    print_machine()
    print(f"onnxruntime {onnxruntime.__version__}, openvino {openvino.__version__}, pid {os.getpid()}")
    frames = spread_frames(args.frames, args.step)
    print(f"{len(frames)} frames of {FOOTAGE.name} (one every {args.step}), {args.repeats} repeat(s)")
    started = time.perf_counter()
    for name in args.models.split(","):
        det = open_detector(name, threads=1)
        print(f"\n{name}: {det.name} {det.version}, input {det.in_w}x{det.in_h}")  # type: ignore[attr-defined]
        for threads in (int(t) for t in args.threads.split(",")):
            latency_block(name, frames, threads, args.repeats)
        pool_block(name, frames, max(3, args.repeats))
    load = tuple(round(x, 2) for x in os.getloadavg())
    print(f"\ndone in {time.perf_counter() - started:.0f} s; load avg at the end {load}")


if __name__ == "__main__":
    main()

"""Our edge pipeline vs ultralytics' own predictor on the same ONNX model and the same frames.

    .venv/bin/python benchmarks/pipeline_vs_ultralytics.py [--imgsz 320] [--frames 150] [--repeats 3]
    .venv/bin/python benchmarks/pipeline_vs_ultralytics.py --model models/city-v1/model.onnx

Each run decodes the first `--frames` frames of datasets/footage/vtest.avi and, per frame:
- ours:  `open_source` (OpenCV) → `YoloOnnxDetector.detect` → `CameraTracker.update` (ByteTrack);
- ultralytics predict: `YOLO(onnx).predict(vtest.avi, stream=True)` (its loader, letterbox,
  ONNX Runtime, NMS, `Results`), no tracking;
- ultralytics track: `YOLO(onnx).track(vtest.avi, stream=True, tracker="bytetrack.yaml")`,
  the same tracking algorithm as ours.
Same confidence (0.3), NMS IoU (0.5) and input size for all. Runs alternate (ours, predict,
track, ours, ...) so machine noise hits each alike; the median run is reported. The
score is frames per CPU-second of the whole process (getrusage: all threads, user +
system), the quantity that decides how many cameras a box serves; wall fps is shown too.

Threads: all three run in one process, so OpenCV's and torch's pools are shared (importing
ultralytics sets OMP_NUM_THREADS=1 and cv2.setNumThreads(0) for everyone). ONNX Runtime:
by default its own default intra-op pool (= physical cores) for both (ours passes
threads=0, ultralytics no session options); `--threads N` gives both N intra-op threads
(ultralytics' session is replaced, after its set-up, by one built with those options).
`--ours-threads N` changes ours only: NOT the same settings, but what the daemon's
`detector.threads` can do and `YOLO(...).predict` offers no option for; it is labelled
as such in the output and is not the like-for-like ratio. Without --model, a YOLOv8n built from
yolov8n.yaml (random weights: no pretrained weights are reachable offline) is exported
by ultralytics to out/bench/models/yolov8n-random-<imgsz>.onnx; speed does not depend
on the weights, but such a model finds (almost) nothing, so NMS and tracking costs are
those of a quiet scene.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import FOOTAGE, CpuClock, print_machine, yolov8n_onnx

CONF, IOU = 0.3, 0.5


THREADS = 0


def run_ours(model_path: Path, n: int) -> tuple[int, int, float, float]:
    from vision.streams import open_source
    from vision.tracking import CameraTracker

    det = _ours_detector(model_path)
    tracker = CameraTracker(fps_hint=10.0)
    frames = boxes = 0
    clock = CpuClock().start()
    for frame in open_source(str(FOOTAGE), camera_id="bench"):
        tracked = tracker.update(det.detect(frame.image), frame.t_s)
        boxes += len(tracked)
        frames += 1
        if frames >= n:
            break
    cpu, wall = clock.read()
    return frames, boxes, cpu, wall


_DETECTORS: dict = {}


def _ours_detector(model_path: Path):  # type: ignore[no-untyped-def]
    """One detector per model for the whole benchmark (ultralytics also keeps its session)."""
    if model_path not in _DETECTORS:
        from vision.detection import open_detector

        _DETECTORS[model_path] = open_detector(model_path, min_confidence=CONF, threads=THREADS)
        _DETECTORS[model_path].nms_iou = IOU
    return _DETECTORS[model_path]


def run_ultralytics(model, imgsz: int, n: int, track: bool) -> tuple[int, int, float, float]:  # type: ignore[no-untyped-def]
    kwargs = {"source": str(FOOTAGE), "stream": True, "imgsz": imgsz, "conf": CONF, "iou": IOU, "device": "cpu",
              "verbose": False}  # fmt: skip
    frames = boxes = 0
    clock = CpuClock().start()
    results = model.track(tracker="bytetrack.yaml", persist=False, **kwargs) if track else model.predict(**kwargs)
    for res in results:
        boxes += len(res.boxes) if res.boxes is not None else 0
        frames += 1
        if frames >= n:
            break
    results.close()
    cpu, wall = clock.read()
    return frames, boxes, cpu, wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, help="ultralytics-exported ONNX (default: yolov8n from yaml, exported)")
    ap.add_argument("--imgsz", type=int, default=320, help="export size of the default model (320 or 640)")
    ap.add_argument("--frames", type=int, default=150)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-track", action="store_true", help="skip ultralytics .track")
    ap.add_argument("--threads", type=int, default=0, help="ONNX Runtime intra-op threads for both (0: default)")
    ap.add_argument("--ours-threads", type=int, default=None, help="intra-op threads for ours only (not like for like)")
    args = ap.parse_args()
    global THREADS
    THREADS = args.threads if args.ours_threads is None else args.ours_threads

    model_path = args.model or yolov8n_onnx(args.imgsz)
    from vision.ultralytics_env import prepare_offline

    prepare_offline()
    from ultralytics import YOLO

    det = _ours_detector(model_path)
    imgsz = det.in_w
    ul_predict = YOLO(str(model_path), task="detect")
    ul_track = YOLO(str(model_path), task="detect")  # its own predictor: trackers stay separate
    import cv2
    import onnxruntime
    import torch

    print_machine()
    print(f"model {model_path} (input {det.in_w}x{det.in_h}), {args.frames} vtest.avi frames per run, "
          f"{args.repeats} runs each, interleaved")  # fmt: skip
    pool = f"{args.threads} intra-op threads" if args.threads else "default intra-op pool"
    if args.ours_threads is not None:
        pool += f" for ultralytics, {args.ours_threads or 'default'} for ours (NOT like for like)"
    else:
        pool += " (both)"
    print(f"threads: onnxruntime {onnxruntime.__version__} {pool}, torch {torch.get_num_threads()}, "
          f"cv2 {cv2.getNumThreads()}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}")  # fmt: skip

    systems = {
        "ours: decode+detect+ByteTrack": lambda: run_ours(model_path, args.frames),
        "ultralytics predict(stream)": lambda: run_ultralytics(ul_predict, imgsz, args.frames, track=False),
    }
    if not args.no_track:
        systems["ultralytics track(stream, bytetrack)"] = lambda: run_ultralytics(ul_track, imgsz, args.frames, track=True)
    # warm-up: sessions, predictor set-up, first-call allocations
    run_ours(model_path, 5)
    run_ultralytics(ul_predict, imgsz, 5, track=False)
    if not args.no_track:
        run_ultralytics(ul_track, imgsz, 5, track=True)
    if args.threads:
        from vision.detection.base import ort_session

        for ul in (ul_predict, ul_track):
            ul.predictor.model.backend.session = ort_session(model_path, args.threads)

    runs: dict[str, list[tuple[int, int, float, float]]] = {k: [] for k in systems}
    for _ in range(args.repeats):
        for name, fn in systems.items():
            runs[name].append(fn())

    print(f"\n{'system':40s} {'frames':>6s} {'boxes/fr':>8s} {'CPU s':>7s} {'wall s':>7s} {'fr/CPU-s':>9s} {'wall fps':>9s}")
    per_cpu: dict[str, float] = {}
    for name, rs in runs.items():
        fps_cpu = statistics.median(f / c for f, _, c, _ in rs)
        fps_wall = statistics.median(f / w for f, _, _, w in rs)
        frames, boxes, cpu, wall = sorted(rs, key=lambda r: r[0] / r[2])[len(rs) // 2]
        per_cpu[name] = fps_cpu
        print(f"{name:40s} {frames:6d} {boxes / frames:8.2f} {cpu:7.2f} {wall:7.2f} {fps_cpu:9.2f} {fps_wall:9.2f}")
    ours = per_cpu["ours: decode+detect+ByteTrack"]
    print()
    for name, value in per_cpu.items():
        if not name.startswith("ours"):
            note = "(threads differ: NOT like for like)" if args.ours_threads is not None else "(goal >= 1.5x)"
            print(f"ratio ours / {name:36s} {ours / value:6.2f}x frames per CPU-second   {note}")


if __name__ == "__main__":
    main()

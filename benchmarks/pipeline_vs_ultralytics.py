"""Our edge pipeline vs ultralytics' own predictor on the same ONNX model and the same frames.

    .venv/bin/python benchmarks/pipeline_vs_ultralytics.py --model models/city-v1/model.onnx
    .venv/bin/python benchmarks/pipeline_vs_ultralytics.py --model models/city-v1/model.onnx --threads 1
    .venv/bin/python benchmarks/pipeline_vs_ultralytics.py [--imgsz 320] [--workload frames]

Two workloads (`--workload both`, the default, runs both in one process):
- frames: every one of the first `--frames` frames of datasets/footage/vtest.avi (768x576,
  10 fps). Inference dominates; this isolates the detection path.
- camera: what an edge box does: one detection per second of a 1080p25 H.264 camera
  (GOP 25; the simulated camera of cameras_per_box.py), `--seconds` of it. Ours decodes
  the keyframes only (`decode="keyframes"`, `sample_fps=1`, the daemon's setting for
  detect_fps <= 1); ultralytics is given `vid_stride=25`, its way to run one frame in 25
  (it still decodes the 24 in between). Both detect the same number of frames, one per
  second of video (ours each keyframe, ultralytics the frame before it: the same picture,
  the camera repeats frames).

Per frame:
- ours:  `open_source` → `YoloOnnxDetector.detect` → `CameraTracker.update` (ByteTrack);
- ultralytics predict: `YOLO(onnx).predict(source, stream=True)` (its loader, letterbox,
  ONNX Runtime, NMS, `Results`), no tracking;
- ultralytics track: `YOLO(onnx).track(source, stream=True, tracker="bytetrack.yaml")`,
  the same tracking algorithm as ours.
Same confidence (0.3), NMS IoU (0.5) and input size for all. Runs alternate (ours, predict,
track, ours, ...) so machine noise hits each alike; the median run is reported. The
score is frames per CPU-second of the whole process (getrusage: all threads, user +
system), the quantity that decides how many cameras a box serves; wall fps is shown too.

Threads: all three run in one process, so OpenCV's and torch's pools are shared (importing
ultralytics sets OMP_NUM_THREADS=1 and cv2.setNumThreads(0) for everyone). ONNX Runtime:
by default each system as it ships: ours as the daemon builds it for one camera (all
cores, spinning off: `vision.edge.detection.base.ort_session`), ultralytics with no session
options (ONNX Runtime's default pool, spinning on); `--threads N` gives both N intra-op
threads with the same options (ultralytics' session is replaced, after its set-up, by one
built by our `ort_session`): the like-for-like comparison of the two code paths.
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
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import FOOTAGE, CpuClock, camera_file, print_machine, yolov8n_onnx

CONF, IOU = 0.3, 0.5


THREADS = 0


@dataclass(frozen=True)
class Workload:
    name: str
    source: Path
    frames: int  # frames detected per run
    ours: dict  # open_source keywords
    ultralytics: dict  # predict keywords
    fps_hint: float


def run_ours(model_path: Path, work: Workload, n: int | None = None) -> tuple[int, int, float, float]:
    from vision.edge.streams import open_source
    from vision.edge.tracking import CameraTracker

    n = n or work.frames
    det = _ours_detector(model_path)
    tracker = CameraTracker(fps_hint=work.fps_hint)
    frames = boxes = 0
    clock = CpuClock().start()
    for frame in open_source(str(work.source), camera_id="bench", **work.ours):
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
        from vision.edge.detection import open_detector

        _DETECTORS[model_path] = open_detector(model_path, min_confidence=CONF, threads=THREADS)
        _DETECTORS[model_path].nms_iou = IOU
    return _DETECTORS[model_path]


def run_ultralytics(
    model, imgsz: int, work: Workload, track: bool, n: int | None = None
) -> tuple[int, int, float, float]:  # type: ignore[no-untyped-def]
    n = n or work.frames
    kwargs = {
        "source": str(work.source),
        "stream": True,
        "imgsz": imgsz,
        "conf": CONF,
        "iou": IOU,
        "device": "cpu",
        "verbose": False,
        **work.ultralytics,
    }
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
    ap.add_argument("--workload", choices=["frames", "camera", "both"], default="both")
    ap.add_argument("--frames", type=int, default=150, help="frames workload: vtest.avi frames per run")
    ap.add_argument(
        "--seconds", type=int, default=40, help="camera workload: seconds of 1080p video (= detections) per run"
    )
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-track", action="store_true", help="skip ultralytics .track")
    ap.add_argument(
        "--threads", type=int, default=0, help="ONNX Runtime intra-op threads for both, same options (0: as shipped)"
    )
    args = ap.parse_args()
    global THREADS
    from vision.edge.detection.pool import plan_workers

    THREADS = args.threads or plan_workers(0, 0, cameras=1).threads  # what the daemon gives one camera

    model_path = args.model or yolov8n_onnx(args.imgsz)
    workloads = []
    if args.workload in ("frames", "both"):
        workloads.append(Workload("frames", FOOTAGE, args.frames, {}, {}, 10.0))
    if args.workload in ("camera", "both"):
        workloads.append(
            Workload(
                "camera",
                camera_file(),
                args.seconds,
                {"decode": "keyframes", "sample_fps": 1.0},
                {"vid_stride": 25},
                1.0,
            )
        )
    from vision.edge.detection.ultralytics_env import prepare_offline

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
    if args.threads:
        pool = f"{args.threads} intra-op thread(s) for both, spinning off for both (like for like)"
    else:
        pool = (
            f"as shipped: ours {THREADS} intra-op threads (= cores) with spinning off, "
            "ultralytics ONNX Runtime's default pool (= cores, spinning on)"
        )
    print(f"model {model_path} (input {det.in_w}x{det.in_h}), {args.repeats} runs each, interleaved")
    print(
        f"threads: onnxruntime {onnxruntime.__version__} {pool}; torch {torch.get_num_threads()}, "
        f"cv2 {cv2.getNumThreads()}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}"
    )

    # warm-up: sessions, predictor set-up, first-call allocations
    run_ours(model_path, workloads[0], 5)
    run_ultralytics(ul_predict, imgsz, workloads[0], False, 5)
    if not args.no_track:
        run_ultralytics(ul_track, imgsz, workloads[0], True, 5)
    if args.threads:
        from vision.edge.detection.base import ort_session

        for ul in (ul_predict, ul_track):
            ul.predictor.model.backend.session = ort_session(model_path, args.threads)

    for work in workloads:
        systems = {
            "ours: decode+detect+ByteTrack": lambda w=work: run_ours(model_path, w),
            "ultralytics predict(stream)": lambda w=work: run_ultralytics(ul_predict, imgsz, w, track=False),
        }
        if not args.no_track:
            systems["ultralytics track(stream, bytetrack)"] = lambda w=work: run_ultralytics(
                ul_track, imgsz, w, track=True
            )
        runs: dict[str, list[tuple[int, int, float, float]]] = {k: [] for k in systems}
        for _ in range(args.repeats):
            for name, fn in systems.items():
                runs[name].append(fn())
        if work.name == "frames":
            print(f"\nworkload frames: every frame of {work.source.name}, {work.frames} per run")
        else:
            print(
                f"\nworkload camera: {work.source.name} (1920x1080, 25 fps, GOP 25), 1 detection per video second, "
                f"{work.frames} s per run; ours decodes keyframes only, ultralytics vid_stride=25"
            )
        print(
            f"{'system':40s} {'frames':>6s} {'boxes/fr':>8s} {'CPU s':>7s} {'wall s':>7s} {'fr/CPU-s':>9s} {'wall fps':>9s}"
        )
        per_cpu: dict[str, float] = {}
        for name, rs in runs.items():
            fps_cpu = statistics.median(f / c for f, _, c, _ in rs)
            fps_wall = statistics.median(f / w for f, _, _, w in rs)
            frames, boxes, cpu, wall = sorted(rs, key=lambda r: r[0] / r[2])[len(rs) // 2]
            per_cpu[name] = fps_cpu
            print(f"{name:40s} {frames:6d} {boxes / frames:8.2f} {cpu:7.2f} {wall:7.2f} {fps_cpu:9.2f} {fps_wall:9.2f}")
        ours = per_cpu["ours: decode+detect+ByteTrack"]
        for name, value in per_cpu.items():
            if not name.startswith("ours"):
                print(
                    f"ratio ours / {name:36s} {ours / value:6.2f}x frames per CPU-second   ({work.name}; goal >= 1.5x)"
                )


if __name__ == "__main__":
    main()

"""`streetvision detect SOURCE`: detections and tracks on a file or stream, printed and drawn."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, TypedDict

if TYPE_CHECKING:
    import numpy as np
    import supervision as sv

    from vision.edge.casework.annotate import FrameAnnotator
    from vision.edge.casework.video_writer import Mp4Writer
    from vision.edge.config import TrackerConfig, ZoneConfig
    from vision.edge.detection import Runtime
    from vision.edge.streams import Frame
    from vision.edge.streams.decoders import DecodeMode


# One detection in `--json` output ("class" is a keyword, hence the functional form): the class name,
# its score (None when the detector gave none), the box (x1, y1, x2, y2 pixels), the track id (None
# before the tracker confirms the object).
DetectionRecord = TypedDict(
    "DetectionRecord", {"class": str, "score": float | None, "box": list[float], "track_id": int | None}
)


class FrameRecord(TypedDict):
    """One line of `--json` output: a processed frame and its detections."""

    frame: int
    t: float
    captured_at: str
    detections: list[DetectionRecord]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("detect", help="detect and track objects in a video, image or stream")
    p.add_argument("source", nargs="?", help="video/image file, rtsp://, http(s):// MJPEG, or device:N")
    p.add_argument("--model", default=None, help="model name under models/ or a .onnx/.pt file (default: coco-nanodet)")
    p.add_argument("--config", help="site YAML: take the camera's source, sampling and zones from it")
    p.add_argument("--camera", help="camera id in --config (default: the first)")
    p.add_argument("--max-frames", type=int, default=None, help="stop after N processed frames")
    p.add_argument("--sample-fps", type=float, default=None, help="process at most this many frames per stream second")
    p.add_argument("--min-confidence", type=float, default=None, help="drop detections below this score")
    p.add_argument(
        "--runtime",
        choices=["onnxruntime", "openvino"],
        default=None,
        help="what runs the ONNX model on the CPU (default: --config's detector.runtime, else onnxruntime)",
    )
    p.add_argument("--json", action="store_true", help="one JSON object per frame on stdout")
    p.add_argument(
        "--save",
        metavar="OUT",
        help="write the annotated result: OUT.mp4 an H.264 video of every processed frame, "
        "OUT.jpg/.png a still of the last one",
    )
    p.set_defaults(handler=run)


def _frame_record(frame: Frame, dets: sv.Detections) -> FrameRecord:
    n = len(dets)
    names = dets.data.get("class_name", [])
    scores = [round(float(c), 3) for c in dets.confidence] if dets.confidence is not None else [None] * n
    ids = [int(t) if int(t) >= 0 else None for t in dets.tracker_id] if dets.tracker_id is not None else [None] * n
    return {
        "frame": frame.index,
        "t": round(frame.t_s, 3),
        "captured_at": frame.captured_at.isoformat(),
        "detections": [
            {"class": str(name), "score": score, "box": [round(float(v), 1) for v in box], "track_id": track_id}
            for box, score, name, track_id in zip(dets.xyxy, scores, names, ids, strict=True)
        ],
    }


STILL_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp")


def _write_still(path: str, image: np.ndarray) -> bool:
    """The annotated still, written by OpenCV (the video writer's encoder cannot make single images)."""
    import cv2

    try:
        ok = cv2.imwrite(path, image)
    except cv2.error as err:
        print(f"detect: --save {path}: {err}", file=sys.stderr)
        return False
    if not ok:
        print(f"detect: --save {path}: could not write the image (does the folder exist?)", file=sys.stderr)
    return bool(ok)


def run(args: argparse.Namespace) -> int:
    from vision.edge.config import ConfigError, load_site
    from vision.edge.detection import DetectorError, open_detector
    from vision.edge.streams import SourceError, open_source
    from vision.edge.tracking import CameraTracker

    zones: list[ZoneConfig] = []
    source, sample_fps = args.source, args.sample_fps
    decode: DecodeMode = "all"
    model, min_conf = args.model, args.min_confidence
    runtime: Runtime = args.runtime or "onnxruntime"
    tracker_cfg: TrackerConfig | None = None
    camera_id = "cli"
    if args.config:
        try:
            site = load_site(args.config)
        except ConfigError as err:
            print(err, file=sys.stderr)
            return 1
        cams = [c for c in site.cameras if args.camera in (None, c.id)]
        if not cams:
            print(f"{args.config}: no camera '{args.camera}'", file=sys.stderr)
            return 1
        cam = cams[0]
        camera_id, zones, decode = cam.id, cam.zones, cam.sampling.decode
        source = source or cam.source
        sample_fps = sample_fps or cam.sampling.detect_fps
        model = model or site.detector.model
        min_conf = min_conf if min_conf is not None else site.detector.min_confidence
        runtime = args.runtime or site.detector.runtime
        tracker_cfg = site.tracker
    if not source:
        print("detect: give a SOURCE or --config", file=sys.stderr)
        return 2
    save_still = False
    if args.save:
        suffix = Path(args.save).suffix.lower()
        if suffix in STILL_SUFFIXES:
            save_still = True
        elif suffix != ".mp4":
            print(
                f"detect: --save {args.save}: give OUT.mp4 (annotated video) or OUT.jpg / OUT.png (annotated still)",
                file=sys.stderr,
            )
            return 2
    try:
        detector = open_detector(
            model or "coco-nanodet", min_confidence=0.3 if min_conf is None else min_conf, runtime=runtime, workers=1
        )
    except DetectorError as err:
        print(f"detect: {err}", file=sys.stderr)
        return 1

    writer: Mp4Writer | None = None
    annotator: FrameAnnotator | None = None
    last_annotated: np.ndarray | None = None
    counts: Counter[str] = Counter()
    processed, started = 0, time.perf_counter()
    infer_s = 0.0
    try:
        with open_source(source, camera_id=camera_id, decode=decode, sample_fps=sample_fps) as frames:
            tracker = CameraTracker(tracker_cfg, fps_hint=frames.effective_fps or 10.0)
            for frame in frames:
                t0 = time.perf_counter()
                dets = tracker.update(detector.detect(frame.image), frame.t_s)
                infer_s += time.perf_counter() - t0
                processed += 1
                counts.update(str(n) for n in dets.data.get("class_name", []))
                if args.json:
                    print(json.dumps(_frame_record(frame, dets), ensure_ascii=False), flush=True)
                else:
                    per_class = Counter(str(n) for n in dets.data.get("class_name", []))
                    summary = ", ".join(f"{v} {k}" for k, v in per_class.most_common()) or "nothing"
                    print(f"frame {frame.index:5d}  t={frame.t_s:7.2f}s  {summary}", flush=True)
                if args.save:
                    if annotator is None:
                        from vision.edge.casework.annotate import FrameAnnotator

                        annotator = FrameAnnotator()
                    annotated = annotator.annotate(frame.image, dets, zones)
                    if save_still:
                        last_annotated = annotated
                    else:
                        if writer is None:
                            from vision.edge.casework.video_writer import Mp4Writer

                            h, w = frame.image.shape[:2]
                            writer = Mp4Writer(args.save, frames.effective_fps or 10.0, (w, h))
                        writer.write(annotated)
                if args.max_frames is not None and processed >= args.max_frames:
                    break
    except SourceError as err:
        print(f"detect: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("detect: interrupted", file=sys.stderr)
    finally:
        if writer is not None:
            writer.close()
    if save_still and last_annotated is not None and not _write_still(args.save, last_annotated):
        return 1
    elapsed = time.perf_counter() - started
    totals = ", ".join(f"{k}: {v}" for k, v in counts.most_common()) or "none"
    print(
        f"{processed} frame(s) in {elapsed:.1f} s ({processed / elapsed if elapsed else 0:.1f} fps; "
        f"detect+track {1000 * infer_s / max(processed, 1):.0f} ms/frame) with {detector.name} {detector.version} "
        f"on {runtime}; "
        f"detections by class: {totals}"
        + (f"; annotated {'still' if save_still else 'video'}: {args.save}" if args.save else ""),
        file=sys.stderr,
    )
    return 0

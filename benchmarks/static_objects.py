"""Cost of one StaticObjectFinder.update, against baselines timed in the same run.

    .venv/bin/python benchmarks/static_objects.py [--frames 120] [--repeats 3] [--widths 320,480]
                                                  [--sizes 768x576,1920x1080] [--no-detector]

vtest.avi frames 0.5 s apart (people walking; a bin pasted in from 10 s so that a region is
tracked) are fed at each work width and input size. Warm-up updates (which only buffer the
frame) are not timed. Baselines, interleaved with the updates so machine noise hits both:
`cv2.resize` of the input frame to the work width (INTER_AREA, what a naive downscale costs)
and one COCO NanoDet detection of the frame (what the pipeline already pays per frame).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import cv2  # noqa: E402
import numpy as np  # noqa: E402
from common import FOOTAGE, print_machine  # noqa: E402  (benchmarks/ is not a package)

from vision.edge.detection.static_objects import StaticObjectFinder, StaticObjectFinderConfig  # noqa: E402

OBJECT = Path(__file__).resolve().parent.parent / "datasets" / "assets" / "objects" / "a_tux_wheelie_bin.png"


def clip_frames(n: int, step: int = 5) -> list[np.ndarray]:
    """n frames of the footage, every `step`-th (0.5 s apart at 10 fps), with the bin from 10 s."""
    cap = cv2.VideoCapture(str(FOOTAGE))
    obj = cv2.imread(str(OBJECT), cv2.IMREAD_UNCHANGED)
    alpha = obj[:, :, 3:4].astype(np.float32) / 255.0
    frames, i = [], 0
    while len(frames) < n:
        ok, frame = cap.read()
        if not ok:
            cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            continue
        if i % step == 0:
            if len(frames) >= 20:
                roi = frame[330 : 330 + obj.shape[0], 150 : 150 + obj.shape[1]]
                roi[:] = (alpha * obj[:, :, :3] + (1 - alpha) * roi).astype(np.uint8)
            frames.append(frame)
        i += 1
    cap.release()
    return frames


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=120)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--widths", default="320,480")
    ap.add_argument("--sizes", default="768x576,1920x1080", help="input frame sizes (the clip is resized, untimed)")
    ap.add_argument("--no-detector", action="store_true", help="skip the NanoDet baseline")
    args = ap.parse_args()

    print_machine()
    base = clip_frames(args.frames)
    det = None
    if not args.no_detector:
        from vision.edge.detection import open_detector

        det = open_detector("coco-nanodet")
        det.detect(base[0])
    widths = [int(w) for w in args.widths.split(",")]
    sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes.split(",")]
    print(f"{len(base)} vtest.avi frames 0.5 s apart, x{args.repeats}; ms per call (median / p90)")
    print(
        f"{'input':>10} {'work':>5} {'update':>14} {'resize':>14} {'upd/resize':>10} {'nanodet':>8} {'upd/nanodet':>11} {'regions':>7}"
    )
    for w, h in sizes:
        frames = base if (w, h) == base[0].shape[1::-1] else [cv2.resize(f, (w, h)) for f in base]
        det_ms: list[float] = []
        if det is not None:
            for f in frames[:: max(1, len(frames) // 15)]:
                t0 = time.perf_counter()
                det.detect(f)
                det_ms.append((time.perf_counter() - t0) * 1000)
        for ww in widths:
            upd_ms, rs_ms, found = [], [], 0
            wh = round(h * ww / w)
            for _ in range(args.repeats):
                finder = StaticObjectFinder(StaticObjectFinderConfig(work_width=ww))
                warm = finder.settings.warmup_s
                for k, f in enumerate(frames):
                    t = k * 0.5
                    t0 = time.perf_counter()
                    cv2.resize(f, (ww, wh), interpolation=cv2.INTER_AREA)
                    t1 = time.perf_counter()
                    regions = finder.update(f, t)
                    t2 = time.perf_counter()
                    if t > warm:
                        rs_ms.append((t1 - t0) * 1000)
                        upd_ms.append((t2 - t1) * 1000)
                        found += bool(regions)
            upd, rs = statistics.median(upd_ms), statistics.median(rs_ms)
            dm = statistics.median(det_ms) if det_ms else float("nan")
            print(
                f"{w}x{h:<5} {ww:>5} {upd:6.2f} / {pct(upd_ms, 90):5.2f} {rs:6.2f} / {pct(rs_ms, 90):5.2f} "
                f"{upd / rs:9.2f}x {dm:8.1f} {upd / dm:10.3f}x {found / args.repeats:7.0f}"
            )
    print_machine()  # load average after the run too: the machine may be shared


if __name__ == "__main__":
    main()

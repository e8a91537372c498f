"""Detector wrapper overhead: raw `session.run` vs the full call (pre + run + post).

    .venv/bin/python benchmarks/detector.py [--model coco-nanodet] [--frames 60] [--repeats 3]

Both are timed on the same decoded vtest.avi frames in the same run,
interleaved so that machine noise hits both; the ratio is the number to keep
small (goal <= 1.15x).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import load_frames  # noqa: E402  (benchmarks/ is not a package)

from vision.edge.detection import open_detector  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="coco-nanodet")
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args()

    det = open_detector(args.model, threads=args.threads)
    frames = load_frames(args.frames)
    if hasattr(det, "preprocess") and det.__class__.__name__ == "NanoDetDetector":
        blobs = [det.preprocess(f) for f in frames]
        raw_call = lambda i: det.run(blobs[i])  # noqa: E731
    else:
        blobs = [det.preprocess(f)[0] for f in frames]
        raw_call = lambda i: det.session.run(None, {det.input_name: blobs[i]})  # noqa: E731
    full_call = lambda i: det.detect(frames[i])  # noqa: E731

    for i in range(min(5, len(frames))):  # warm-up
        raw_call(i), full_call(i)
    raw_ms, full_ms = [], []
    for _ in range(args.repeats):
        for i in range(len(frames)):
            t0 = time.perf_counter()
            raw_call(i)
            t1 = time.perf_counter()
            full_call(i)
            t2 = time.perf_counter()
            raw_ms.append((t1 - t0) * 1000)
            full_ms.append((t2 - t1) * 1000)
    raw, full = statistics.median(raw_ms), statistics.median(full_ms)
    print(f"model {det.name} {det.version}, {len(frames)} vtest.avi frames x {args.repeats}")
    print(f"raw session.run        {raw:7.2f} ms/frame (median)")
    print(f"detect (pre+run+post)  {full:7.2f} ms/frame (median)")
    print(f"ratio detect/raw       {full / raw:7.3f}x   (goal <= 1.15x)")


if __name__ == "__main__":
    main()

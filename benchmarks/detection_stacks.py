"""What one look at a frame costs per detection stack, as ratios to the COCO model alone.

    .venv/bin/python benchmarks/detection_stacks.py [--frames 60] [--repeats 3] [--threads 1]

Stacks, timed on the same decoded vtest.avi frames in the same run, interleaved so that
machine noise hits all of them alike (median ms per frame of `detect`: pre + run + post):

- `coco-nanodet`: the pretrained COCO model alone (the baseline);
- `coco-city`: the same network with the city head grafted on (one pass, both heads);
- `coco-nanodet + city-v1`: the two networks site-city ran before coco-city, one after the other.

Each detector gets `--threads` ONNX Runtime threads (1: what each of the daemon's detector
workers gets on a box with several cameras).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import load_frames, print_machine  # noqa: E402  (benchmarks/ is not a package)

from vision.edge.detection import open_detector  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    print_machine()

    coco = open_detector("coco-nanodet", threads=args.threads)
    city = open_detector("coco-city", threads=args.threads)
    city_v1 = open_detector("city-v1", threads=args.threads)
    frames = load_frames(args.frames)
    stacks: dict[str, Callable[[int], object]] = {
        "coco-nanodet": lambda i: coco.detect(frames[i]),
        "coco-city": lambda i: city.detect(frames[i]),
        "coco-nanodet + city-v1": lambda i: (coco.detect(frames[i]), city_v1.detect(frames[i])),
    }
    for i in range(min(5, len(frames))):  # warm-up
        for call in stacks.values():
            call(i)
    ms: dict[str, list[float]] = {name: [] for name in stacks}
    for _ in range(args.repeats):
        for i in range(len(frames)):
            for name, call in stacks.items():
                t0 = time.perf_counter()
                call(i)
                ms[name].append((time.perf_counter() - t0) * 1000)
    base = statistics.median(ms["coco-nanodet"])
    print(f"{len(frames)} vtest.avi frames x {args.repeats}, {args.threads} ONNX Runtime thread(s) per detector")
    print(f"{'stack':26s} {'ms/look':>8s} {'ratio':>7s}")
    for name, values in ms.items():
        med = statistics.median(values)
        print(f"{name:26s} {med:8.2f} {med / base:6.2f}x")


if __name__ == "__main__":
    main()

"""What the moving-vehicle path costs per look, as a ratio to one look of the shipped detector.

    .venv/bin/python benchmarks/moving_objects.py [--frames 40]

Baseline: `coco-city` (the shipped detector), median CPU ms of one `detect` on a decoded 1080p
frame (the bundled vtest.avi scaled to 1920x1080, as a camera box decodes it). Measured on the
same frames, interleaved so machine noise hits both alike:
- the finder alone (`MovingObjectFinder.update`: what every look of a truck camera pays);
- one crop named by the verifier's classifier (what each moving region near an exit that no
  detector boxed costs, at most `max_per_look` a look).
One ONNX Runtime thread each; CPU is the process's, OpenCV's own threads included.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import cpu_ms, load_frames, print_machine  # noqa: E402  (benchmarks/ is not a package)

from vision.edge.detection import open_detector  # noqa: E402
from vision.edge.detection.moving_objects import MovingObjectFinder  # noqa: E402
from vision.edge.verify.classifier import load_classifier  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=40, help="vtest.avi frames, scaled to 1080p")
    args = ap.parse_args()
    print_machine()
    frames = [cv2.resize(f, (1920, 1080)) for f in load_frames(args.frames)]
    detector = open_detector("coco-city", threads=1)
    classifier = load_classifier(threads=1)
    finder = MovingObjectFinder()
    box = np.asarray([[800, 500, 1000, 620]], dtype=np.float64)  # a truck-sized crop
    for i in range(3):  # warm-up
        detector.detect(frames[i])
        classifier.classify(frames[i], box)
    detect_ms, finder_ms, crop_ms = [], [], []
    for i, frame in enumerate(frames):
        detect_ms.append(cpu_ms(lambda frame=frame: detector.detect(frame)))
        finder_ms.append(cpu_ms(lambda frame=frame, i=i: finder.update(frame, i * 0.2)))
        crop_ms.append(cpu_ms(lambda frame=frame: classifier.classify(frame, box)))
    base = statistics.median(detect_ms)
    print(f"baseline: coco-city, one detect on a 1920x1080 frame: {base:.1f} ms CPU (median of {len(detect_ms)})")
    print(f"{'':34s} {'ms CPU':>8s} {'ratio':>7s}")
    for name, values in (("finder update (every look)", finder_ms), ("one region named (classifier)", crop_ms)):
        ms = statistics.median(values)
        print(f"{name:34s} {ms:8.1f} {ms / base:6.2f}x")


if __name__ == "__main__":
    main()

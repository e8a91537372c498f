"""What reading a truck's plate costs, as a ratio to one look of the shipped detector, and how often it is right.

    .venv/bin/python benchmarks/plates.py [--tracks 28] [--frames 20] [--seed 0]

Baseline: `coco-city` (the shipped detector) on decoded vtest.avi frames, median CPU ms of one
`detect` (pre + run + post). Plate work: `PlateRecognizer.read_track` on the 3 best crops of a
truck track (what the muddy-truck rule hands it), here three drawn truck crops from the plate
test set (`vision/training/plates/testset.py`, seed `--seed`), median CPU ms
per truck. A truck is one drawn plate seen 3 times (`make_track`: the plate 10 % wider per frame,
angles, mud, blur and light drawn anew each time). Both with one ONNX Runtime thread, interleaved so machine noise hits both alike.
CPU is the process's (every thread), so OpenCV's own threads count too.

Read rates per plate style come from the same crops, each read once (`streetvision bench plates`
gives the full report with conditions and sizes).
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import cpu_ms, load_frames, print_machine  # noqa: E402  (benchmarks/ is not a package)

from vision.edge.detection import open_detector  # noqa: E402
from vision.edge.plates import PlateRecognizer  # noqa: E402
from vision.training.data.synth.plates import PLATE_STYLES  # noqa: E402
from vision.training.plates.evaluate import score_sample  # noqa: E402
from vision.training.plates.testset import make_track  # noqa: E402

CROPS_PER_TRUCK = 3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tracks", type=int, default=28, help="trucks of 3 crops each (styles take turns)")
    ap.add_argument("--frames", type=int, default=20, help="vtest.avi frames for the detector baseline")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    print_machine()

    detector = open_detector("coco-city", threads=1)
    recognizer = PlateRecognizer.load(threads=1)
    frames = load_frames(args.frames)
    tracks = [make_track(args.seed, t, CROPS_PER_TRUCK) for t in range(args.tracks)]  # styles and conditions cycle
    for i in range(3):  # warm-up
        detector.detect(frames[i % len(frames)])
        recognizer.read_track([s.image for s in tracks[i % len(tracks)]])

    detect_ms: list[float] = []
    truck_ms: list[float] = []
    rows_by_style: dict[str, list[dict[str, object]]] = defaultdict(list)
    track_exact: dict[str, list[bool]] = defaultdict(list)
    for i in range(max(len(tracks), len(frames))):
        if i < len(frames):
            detect_ms.append(cpu_ms(lambda i=i: detector.detect(frames[i])))
        if i < len(tracks):
            images = [s.image for s in tracks[i]]
            best: list[object] = []
            truck_ms.append(cpu_ms(lambda images=images, best=best: best.append(recognizer.read_track(images))))
            style = tracks[i][0].style
            for sample in tracks[i]:
                rows_by_style[style].append(score_sample(recognizer, sample))
            result = best[0]
            track_exact[style].append(getattr(result, "text", None) == tracks[i][0].text)

    base = statistics.median(detect_ms)
    read_ms = [float(r["cpu_ms"]) for rows in rows_by_style.values() for r in rows]  # type: ignore[arg-type]
    print(f"baseline: coco-city, one detect on a 768x576 frame: {base:.1f} ms CPU (median of {len(detect_ms)})")
    print(f"{len(tracks)} trucks x {CROPS_PER_TRUCK} drawn crops (seed {args.seed}), 1 ONNX Runtime thread")
    print(f"{'style':14s} {'crops':>5s} {'found':>6s} {'exact':>6s} {'char acc':>8s} {'truck read right':>18s}")
    for style in PLATE_STYLES:
        rows = rows_by_style.get(style, [])
        if not rows:
            continue
        n = len(rows)
        found = sum(bool(r["found"]) for r in rows) / n
        exact = sum(bool(r["exact"]) for r in rows) / n
        acc = statistics.fmean(float(r["char_accuracy"]) for r in rows)  # type: ignore[arg-type]
        read_right = sum(track_exact[style]) / len(track_exact[style])
        print(f"{style:14s} {n:5d} {found:6.0%} {exact:6.0%} {acc:8.0%} {read_right:18.0%}")
    per_read = statistics.median(read_ms)
    per_truck = statistics.median(truck_ms)
    print(f"{'':14s} {'ms CPU':>8s} {'ratio':>7s}")
    print(f"{'one read':14s} {per_read:8.1f} {per_read / base:6.2f}x")
    print(f"{'one truck':14s} {per_truck:8.1f} {per_truck / base:6.2f}x   (read_track over {CROPS_PER_TRUCK} crops)")


if __name__ == "__main__":
    main()

"""Evidence snapshots of what a scenario run missed or got wrong, to read next to its report.

    .venv/bin/python benchmarks/scenario_misses.py out/heldout/report.json --suite heldout --out docs/heldout-misses

For every missed violation of the report, and every one the scorer calls hidden (behind a
nearer scripted object all the while, so left out of recall: shown so the claim can be checked):
the frame a few seconds after its onset (dwell included), or for an object that drives through
(a truck) the frame half-way along the part of its path in view, with the truth box (yellow; for
a driving object estimated: its scripted foot point then, the height of the tallest object of its
kind the scene shows whole when first seen), every model's boxes of the site's detectors
(confidence >= 0.2; first model green, second red, third blue) and the crop classifier's name for each box near
the truth; then the crop around the truth enlarged. For every false case: the frame it opened
on, with its box (magenta). Written as JPEGs plus an index.md listing what each shows.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from vision.core.paths import REPO_ROOT  # noqa: E402
from vision.edge.config import load_site  # noqa: E402
from vision.edge.daemon import open_site_detectors, open_site_verifier  # noqa: E402
from vision.scenarios.cache import rendered  # noqa: E402
from vision.scenarios.script import load_scenario  # noqa: E402
from vision.scenarios.suite import load_suite  # noqa: E402

COLOURS = [(0, 200, 0), (0, 0, 255), (255, 128, 0)]
MAX_WIDTH = 1100


def frame_at(video: Path, t_s: float) -> np.ndarray | None:
    cap = cv2.VideoCapture(str(video))
    fps = cap.get(cv2.CAP_PROP_FPS) or 5.0
    cap.set(cv2.CAP_PROP_POS_FRAMES, int(t_s * fps))
    ok, img = cap.read()
    cap.release()
    return img if ok else None


def driving_target(sc, k: int, events: list, w: int, h: int) -> tuple[float, np.ndarray] | None:  # type: ignore[no-untyped-def]
    """(time, box) half-way along the part of a driving object's path in view: where it was to be seen whole.
    None when the object stands (or the script and the truth do not line up)."""
    ev = events[k]
    obj = sc.objects[k] if k < len(sc.objects) else None
    if obj is None or obj.path is None or obj.end_s is None or obj.kind != ev.kind:
        return None
    first = ev.visible_s if ev.visible_s is not None else obj.start_s
    last = ev.last_visible_s if ev.last_visible_s is not None else obj.end_s
    t = (max(first, obj.start_s) + min(last, obj.end_s)) / 2
    f = (t - obj.start_s) / (obj.end_s - obj.start_s)
    (xa, ya), (xb, yb) = obj.path
    fx, fy = (xa + f * (xb - xa)) * w, (ya + f * (yb - ya)) * h
    # its size: the tallest first-seen box of its kind in the scene that the frame did not cut (the same sprites)
    whole = [
        b
        for e in events
        if e.kind == ev.kind
        for b in e.boxes_rel[:1]
        if b[0] > 0.005 and b[2] < 0.995 and b[3] - b[1] > 0
    ]
    bh, bw = (
        (max(b[3] - b[1] for b in whole) * h, max(b[2] - b[0] for b in whole) * w) if whole else (0.06 * h, 0.06 * w)
    )
    return t, np.array([fx - bw / 2, fy - bh, fx + bw / 2, fy], dtype=np.float64)


def near(box: np.ndarray, target: np.ndarray, pad: float) -> bool:
    w, h = target[2] - target[0], target[3] - target[1]
    return not (
        box[2] < target[0] - pad * w
        or box[0] > target[2] + pad * w
        or box[3] < target[1] - pad * h
        or box[1] > target[3] + pad * h
    )


def annotate(img: np.ndarray, detectors, classifier, target: np.ndarray, colour: tuple) -> tuple[np.ndarray, list[str]]:  # type: ignore[no-untyped-def]
    out = img.copy()
    lines = []
    x1, y1, x2, y2 = target.astype(int)
    cv2.rectangle(out, (x1, y1), (x2, y2), colour, 2)
    for det, col in zip(detectors, COLOURS, strict=False):
        d = det.detect(img)
        for box, conf, name in zip(d.xyxy, d.confidence, d.data["class_name"], strict=True):
            if conf < 0.2:
                continue
            label = f"{name} {conf:.2f}"
            if classifier is not None and near(box, target, 0.5):
                v = classifier.classify(img, box[None].astype(np.float64))[0]
                label += f" -> {v.label} {v.score:.2f}"
                lines.append(f"{det.name}: {label}")
            b = box.astype(int)
            cv2.rectangle(out, (b[0], b[1]), (b[2], b[3]), col, 1)
            cv2.putText(out, label, (b[0], max(10, b[1] - 2)), cv2.FONT_HERSHEY_SIMPLEX, 0.35, col, 1, cv2.LINE_AA)
    h, w = img.shape[:2]
    bw, bh = max(x2 - x1, 20), max(y2 - y1, 20)
    cx1, cy1 = max(0, x1 - 2 * bw), max(0, y1 - 2 * bh)
    cx2, cy2 = min(w, x2 + 2 * bw), min(h, y2 + 2 * bh)
    crop = out[cy1:cy2, cx1:cx2]
    scale = min(4.0, 360 / max(crop.shape[0], 1))
    crop = cv2.resize(crop, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
    canvas = np.zeros((max(h, crop.shape[0]), w + crop.shape[1] + 8, 3), np.uint8)
    canvas[:h, :w] = out
    canvas[: crop.shape[0], w + 8 :] = crop
    if canvas.shape[1] > MAX_WIDTH:  # small enough to keep in the repository
        canvas = cv2.resize(
            canvas, None, fx=MAX_WIDTH / canvas.shape[1], fy=MAX_WIDTH / canvas.shape[1], interpolation=cv2.INTER_AREA
        )
    return canvas, lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("report", type=Path)
    ap.add_argument("--suite", required=True, help="the suite the report is of (its scenarios are re-read)")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--after-s", type=float, default=5.0, help="seconds after onset + dwell to look")
    args = ap.parse_args()
    report = json.loads(args.report.read_text())
    dwell = {r["rule"]: r["dwell_s"] for r in report["rules"]}
    dwell_of = {r["violation"]: r["dwell_s"] for r in report["rules"]}
    suite = load_suite(args.suite)
    scenarios = {load_scenario(p).name: load_scenario(p) for p in suite.scenarios}
    args.out.mkdir(parents=True, exist_ok=True)
    index = [
        f"# What `{args.suite}` missed or got wrong\n",
        f"Report: `{args.report}`. Yellow: the truth (for a truck driving through: the frame half-way along "
        "its path in view, its box estimated from the script); boxes of the site's detectors (full frame only, no zoom "
        "tiles), the first model's green, a second's red; `-> label score`: the crop classifier's name. "
        "Magenta: a false case. Made by `benchmarks/scenario_misses.py`.\n",
    ]
    cache: dict[str, tuple] = {}
    for run in report["scenarios"]:
        sc = scenarios.get(run["scenario"])
        hidden = {int(k): front for k, front in run.get("hidden_events", {}).items()}
        clean = not run.get("missed_events") and not hidden and all(c["hit"] or c["duplicate"] for c in run["cases"])
        if sc is None or clean:
            continue
        site_path = REPO_ROOT / sc.site if sc.site else suite.site
        if str(site_path) not in cache:
            site = load_site(site_path)
            verifier = open_site_verifier(site)
            cache[str(site_path)] = (open_site_detectors(site), verifier.classifier if verifier else None)
        detectors, classifier = cache[str(site_path)]
        r = rendered(sc, progress=False)
        events = r.truth.events
        for k in [*run.get("missed_events", []), *hidden]:
            ev = events[k]
            t = ev.onset_s + dwell_of.get(ev.violation or "", 10.0) + args.after_s
            if ev.end_s is not None:
                t = min(t, (ev.onset_s + ev.end_s) / 2)
            drive = driving_target(sc, k, events, r.truth.width, r.truth.height)
            if drive is not None:
                t = drive[0]
            img = frame_at(r.video, t)
            if img is None or not ev.boxes_rel:
                continue
            h, w = img.shape[:2]
            target = drive[1] if drive is not None else np.asarray(ev.boxes_rel[0], dtype=np.float64) * [w, h, w, h]
            canvas, lines = annotate(img, detectors, classifier, target, (0, 255, 255))
            what = "hidden" if k in hidden else "missed"
            name = f"{run['scenario']}-{what}-{k}-{ev.kind}.jpg"
            cv2.imwrite(str(args.out / name), canvas, [cv2.IMWRITE_JPEG_QUALITY, 70])
            behind = f" behind the {events[hidden[k]].kind}" if k in hidden else ""
            index.append(
                f"- [`{name}`]({name}): {what} {ev.kind}{behind} (onset {ev.onset_s:g} s, frame at {t:.0f} s). "
                "Near it: " + ("; ".join(lines) if lines else "no box of any model") + "\n"
            )
        for c in run["cases"]:
            if c["hit"] or c["duplicate"]:
                continue
            img = frame_at(r.video, c["detected_s"])
            if img is None:
                continue
            h, w = img.shape[:2]
            target = np.asarray(c["bbox"], dtype=np.float64) * [w, h, w, h]
            canvas, lines = annotate(img, detectors, classifier, target, (255, 0, 255))
            name = f"{run['scenario']}-false-{c['rule']}-{c['detected_s']:.0f}s.jpg"
            cv2.imwrite(str(args.out / name), canvas, [cv2.IMWRITE_JPEG_QUALITY, 70])
            index.append(
                f"- [`{name}`]({name}): false {c['rule']} case at {c['detected_s']:g} s (dwell {dwell.get(c['rule'], 0):g} s). "
                "Near it: " + ("; ".join(lines) if lines else "no box") + "\n"
            )
    (args.out / "index.md").write_text("".join(index), encoding="utf-8")
    print(f"{len(index) - 2} snapshot(s) -> {args.out}")


if __name__ == "__main__":
    main()

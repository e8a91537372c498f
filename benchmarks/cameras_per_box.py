"""How many 1080p H.264 cameras one box serves at 1 detection/s each.

    .venv/bin/python benchmarks/cameras_per_box.py            # the measurement (~7 min, both cores)
    .venv/bin/python benchmarks/cameras_per_box.py --quick    # a smoke run (~1 min)
    .venv/bin/python benchmarks/cameras_per_box.py --ladder 8,16,24,32 --window 30 --threads 1

Simulated cameras: datasets/footage/vtest.avi (768x576, 10 fps) upscaled to 1920x1080,
brought to 25 fps by repeating frames and re-encoded once with x264 (High profile, 3 Mbit/s,
no B-frames, a keyframe every 25 frames = 1 s, like a typical IP camera); cached as
out/bench/cam-1080p25-gop25-3mbps.mp4. One tests/rtsp_server.py process serves it without
re-encoding (`--passthrough`) on N mount points of 127.0.0.1; each reader gets its own
server pipeline (real-time paced, looping).

Part 1, decode cost: `--decode-cameras` CameraReaders per mode at sample_fps=1 (keyframe-only
via PyAV `skip_frame="NONKEY"` vs every frame via OpenCV, both over RTSP/TCP), frames taken
as the daemon does, no detector: CPU seconds per camera-minute (this process, all threads)
and the ratio.

Part 2, capacity: for each N of the ladder, the daemon itself (`vision.daemon.SiteRunner`,
live mode) runs a site of N cameras made from configs/site-city.yaml's street camera
(its zones and the vending, bikes and garbage rules; detect_fps 1, `decode` keyframes or
all; evidence ring at 1 frame/s; outbox in a temporary directory, no dispatch). So
everything the daemon does per frame counts: decode, the JPEG frame ring, detection on
its workers, tracking, rules. After a warm-up, every camera must get >= 90 % of its
nominal detections (1/s) over `--window` seconds. A ladder with full decoding
(`--ladder-all`) runs for comparison. The server's CPU is reported apart (it shares the
machine but is not part of the box's own work).

Model: models/city-v1/model.onnx when it exists, else a YOLOv8n from yolov8n.yaml (random
weights) exported at 320 to out/bench/models/ (same architecture and input size, so the
same speed; it finds almost nothing). Detector workers and ONNX Runtime threads:
`--workers` / `--threads` as `detector.workers` / `detector.threads` of the site config
(0 = automatic, the daemon's default: one worker per core, 1 thread each, for N > 1).
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import selectors
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

# OpenCV's FFmpeg would try RTSP over UDP first; TCP for both decoders compares like with like.
os.environ.setdefault("OPENCV_FFMPEG_CAPTURE_OPTIONS", "rtsp_transport;tcp")

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import (
    BENCH_DIR,
    REPO,
    CpuClock,
    camera_file,
    pid_cpu_s,
    print_machine,
    yolov8n_onnx,
)

RTSP_SCRIPT = REPO / "tests" / "rtsp_server.py"
SYSTEM_PYTHON = "/usr/bin/python3"
SAMPLE_FPS = 1.0
KEEP_RATE = 0.9  # a camera keeps its rate when it gets >= 90 % of its nominal detections


class Server:
    """tests/rtsp_server.py serving the camera file as is on /cam0 ... /cam{N-1}."""

    def __init__(self, media: Path, mounts: int, port: int) -> None:
        cmd = [SYSTEM_PYTHON, str(RTSP_SCRIPT), "--port", str(port), "--file", str(media), "--passthrough",
               "--mounts", str(mounts), "--mount", "/cam"]  # fmt: skip
        self.log = open(BENCH_DIR / "rtsp-server.log", "wb")  # noqa: SIM115 (closed in stop())
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self.log, start_new_session=True)
        assert self.proc.stdout is not None
        with selectors.DefaultSelector() as sel:
            sel.register(self.proc.stdout, selectors.EVENT_READ)
            ready = sel.select(20)
        line = self.proc.stdout.readline().decode().strip() if ready else ""
        if not line.startswith("READY"):
            self.stop()
            raise SystemExit(f"RTSP server did not start ({line!r}); see {BENCH_DIR / 'rtsp-server.log'}")
        self.urls = line.split()[1:]

    def cpu_s(self) -> float:
        return pid_cpu_s(self.proc.pid)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class StepResult:
    mode: str
    cameras: int
    window_s: float
    cpu_s: float  # this process (readers + detector), all threads
    server_cpu_s: float
    detections: list[int] = field(default_factory=list)  # per camera, within the window
    latencies: list[float] = field(default_factory=list)  # capture -> detection done, s
    dropped: int = 0  # sampled frames replaced before the detector took them
    busy_s: float = 0.0  # main loop wall time inside detection (the serial part)
    online: int = 0
    plan: str = ""  # detector workers x ONNX Runtime threads

    @property
    def nominal(self) -> float:
        return self.window_s * SAMPLE_FPS

    @property
    def min_rate(self) -> float:
        return min(self.detections) / self.window_s if self.detections else 0.0

    @property
    def keeps_rate(self) -> bool:
        return bool(self.detections) and min(self.detections) >= KEEP_RATE * self.nominal

    @property
    def cpu_per_cam_min(self) -> float:
        return self.cpu_s / self.cameras / (self.window_s / 60)


def run_decode_step(urls: list[str], server: Server, n: int, mode: str, window_s: float, warmup_s: float,
                    open_timeout_s: float = 10) -> StepResult:  # fmt: skip
    """N bare readers (no detector) for warm-up + window; counts what happened in the window."""
    from vision.streams import CameraReader

    readers = [
        CameraReader(
            f"cam{i}", urls[i % len(urls)], sample_fps=SAMPLE_FPS, decode=mode,  # type: ignore[arg-type]
            open_timeout_s=open_timeout_s, read_timeout_s=10, stall_timeout_s=15,
        )
        for i in range(n)
    ]
    index = {r.camera_id: i for i, r in enumerate(readers)}
    for r in readers:
        r.start()
    result = StepResult(mode=mode, cameras=n, window_s=window_s, cpu_s=0.0, server_cpu_s=0.0, detections=[0] * n)
    try:
        # Wait until every camera has delivered a frame (connect + first keyframe), then warm up.
        deadline = time.monotonic() + open_timeout_s + 10
        seen: set[str] = set()
        while len(seen) < n and time.monotonic() < deadline:
            for r in readers:
                if r.status().delivered_frames or r.status().decoded_frames:
                    seen.add(r.camera_id)
            time.sleep(0.2)
        start = time.monotonic() + warmup_s
        end = start + window_s
        clock: CpuClock | None = None
        server0 = 0.0
        dropped0 = 0
        while True:
            now = time.monotonic()
            if clock is None and now >= start:
                clock, server0 = CpuClock().start(), server.cpu_s()
                dropped0 = sum(r.status().dropped_frames for r in readers)
            if now >= end:
                break
            batch = [f for f in (r.get(timeout=0) for r in readers) if f is not None]
            if not batch:
                time.sleep(0.01)  # as the daemon's live loop
                continue
            done = time.monotonic()
            if clock is not None and done < end:
                result.busy_s += done - now
                wall_now = datetime.now(UTC)
                for frame in batch:
                    result.detections[index[frame.camera_id]] += 1
                    result.latencies.append((wall_now - frame.captured_at).total_seconds())
        assert clock is not None
        result.cpu_s, _ = clock.read()
        result.server_cpu_s = server.cpu_s() - server0
        statuses = [r.status() for r in readers]
        result.dropped = sum(s.dropped_frames for s in statuses) - dropped0
        result.online = sum(s.online for s in statuses)
    finally:
        for r in readers:
            r.stop(timeout=2)
    return result


def site_for(urls: list[str], n: int, mode: str, model: Path, workers: int, threads: int, outbox: Path):  # type: ignore[no-untyped-def]
    """N copies of site-city.yaml's street camera on the RTSP mounts, as a validated Site."""
    import yaml

    from vision.config import parse_site

    data = yaml.safe_load((REPO / "configs" / "site-city.yaml").read_text())
    template = data["cameras"][0]
    data["cameras"] = [
        {**template, "id": f"cam{i}", "source": urls[i % len(urls)], "sampling": {"detect_fps": SAMPLE_FPS, "decode": mode}}
        for i in range(n)
    ]
    data["rules"] = [r for r in data["rules"] if r["name"] in template["rules"]]
    data["detector"] = {"model": str(model), "min_confidence": 0.3, "workers": workers, "threads": threads}
    data["evidence"] = {**data.get("evidence", {}), "clip_fps": None}  # ring at the detection rate, as keyframes give
    data["outbox"] = {"path": str(outbox), "max_evidence_mb": 512}
    data["metrics"] = {"enabled": False}
    data.pop("dispatch", None)
    return parse_site(data)


def run_daemon_step(urls: list[str], server: Server, n: int, mode: str, window_s: float, warmup_s: float,
                    model: Path, workers: int, threads: int) -> StepResult:  # fmt: skip
    """The real daemon with N cameras for warm-up + window; counts what it processed in the window."""
    import tempfile
    import threading

    from vision.daemon import SiteRunner

    result = StepResult(mode=mode, cameras=n, window_s=window_s, cpu_s=0.0, server_cpu_s=0.0, detections=[0] * n)
    window: list[float] = []  # [start, end] once known (monotonic)
    index = {f"cam{i}": i for i in range(n)}

    def on_observation(obs, _events) -> None:  # type: ignore[no-untyped-def]
        now = time.monotonic()
        if window and window[0] <= now < window[1]:
            result.detections[index[obs.camera_id]] += 1
            result.latencies.append((datetime.now(UTC) - obs.captured_at).total_seconds())

    with tempfile.TemporaryDirectory(prefix="cameras-per-box-") as tmp:
        site = site_for(urls, n, mode, model, workers, threads, Path(tmp) / "outbox")
        runner = SiteRunner(site, live=True, on_observation=on_observation)
        result.plan = f"{runner.pool.workers}x{runner.plan.threads}"
        stop = threading.Event()
        thread = threading.Thread(target=runner.run, args=(stop,), name="daemon")
        thread.start()
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and len(runner.readers) < n:
                time.sleep(0.1)
            while time.monotonic() < deadline and not all(r.status().delivered_frames for r in runner.readers.values()):
                time.sleep(0.2)
            time.sleep(warmup_s)
            dropped0 = sum(r.status().dropped_frames for r in runner.readers.values())
            busy0 = runner.metrics.inference._sum.get()
            clock, server0 = CpuClock().start(), server.cpu_s()
            window.extend([time.monotonic(), time.monotonic() + window_s])
            time.sleep(window_s)
            result.cpu_s, _ = clock.read()
            result.server_cpu_s = server.cpu_s() - server0
            result.busy_s = runner.metrics.inference._sum.get() - busy0
            statuses = [r.status() for r in runner.readers.values()]
            result.dropped = sum(s.dropped_frames for s in statuses) - dropped0
            result.online = sum(s.online for s in statuses)
        finally:
            stop.set()
            thread.join(60)
    return result


def p95(values: list[float]) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, math.ceil(0.95 * len(values)) - 1)]


def print_decode_table(results: list[StepResult]) -> None:
    print(f"\n{'decode':10s} {'cams':>4s} {'window s':>8s} {'CPU s':>7s} {'CPU s/cam-min':>13s} "
          f"{'frames/cam/s':>12s} {'server CPU s/cam-min':>20s}")  # fmt: skip
    for r in results:
        server = r.server_cpu_s / r.cameras / (r.window_s / 60)
        rate = statistics.mean(r.detections) / r.window_s
        print(f"{r.mode:10s} {r.cameras:4d} {r.window_s:8.1f} {r.cpu_s:7.2f} {r.cpu_per_cam_min:13.2f} "
              f"{rate:12.2f} {server:20.2f}")  # fmt: skip
    by_mode = {r.mode: r for r in results}
    if "all" in by_mode and "keyframes" in by_mode:
        ratio = by_mode["all"].cpu_per_cam_min / max(by_mode["keyframes"].cpu_per_cam_min, 1e-9)
        print(f"ratio full / keyframe-only decode CPU per camera-minute: {ratio:.1f}x")


def print_capacity_table(results: list[StepResult], nproc: int) -> None:
    print(f"\n{'decode':10s} {'cams':>4s} {'det':>4s} {'min det/s':>9s} {'mean det/s':>10s} {'p95 lat s':>9s} {'dropped':>7s} "
          f"{'box CPU %':>9s} {'server CPU %':>12s} {'det busy %':>10s} {'ms/det':>6s} {'keeps 1/s':>9s}")  # fmt: skip
    for r in results:
        mean_rate = statistics.mean(r.detections) / r.window_s if r.detections else 0.0
        box = 100 * r.cpu_s / r.window_s / nproc
        srv = 100 * r.server_cpu_s / r.window_s / nproc
        busy = 100 * r.busy_s / r.window_s
        ms_det = 1000 * r.busy_s / max(sum(r.detections), 1)
        print(f"{r.mode:10s} {r.cameras:4d} {r.plan:>4s} {r.min_rate:9.2f} {mean_rate:10.2f} {p95(r.latencies):9.2f} "
              f"{r.dropped:7d} {box:9.1f} {srv:12.1f} {busy:10.1f} {ms_det:6.1f} {'yes' if r.keeps_rate else 'NO':>9s}")  # fmt: skip
    for mode in dict.fromkeys(r.mode for r in results):
        tried = [r.cameras for r in results if r.mode == mode]
        ok = [r.cameras for r in results if r.mode == mode and r.keeps_rate]
        best = "none of the ladder" if not ok else f"{max(ok)}" + (" (top of the ladder: maybe more)" if max(ok) == max(tried) else "")
        print(f"largest N keeping 1 detection/s with {mode} decoding: {best}"
              f"{'   (goal >= 24)' if mode == 'keyframes' else ''}")  # fmt: skip
        if ok:
            r = next(x for x in results if x.mode == mode and x.cameras == max(ok))
            per_cam = (r.cpu_s + r.server_cpu_s) / r.window_s / r.cameras
            print(f"  at N={r.cameras}: {per_cam:.3f} cores per camera (box + server); an idle {nproc}-core box "
                  f"would fit about {int(nproc / per_cam)} such cameras (estimate, not measured)")  # fmt: skip
    print(f"(% of the whole machine: {nproc} cores = 100 %; det = detector workers x ONNX Runtime threads; det busy % = "
          "share of wall time the daemon's loop waited for detection, ms/det = that time per frame: near 100 % the loop "
          "is the limit)")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="tiny settings for development")
    ap.add_argument("--ladder", default="8,16,24,32,40", help="camera counts, keyframe decoding")
    ap.add_argument("--ladder-all", default="4,8,16", help="camera counts, full decoding ('' to skip)")
    ap.add_argument("--window", type=float, default=30.0, help="seconds measured per step")
    ap.add_argument("--warmup", type=float, default=5.0)
    ap.add_argument("--decode-cameras", type=int, default=4, help="cameras for the decode-cost part (0 skips)")
    ap.add_argument("--model", type=Path, help="detector ONNX (default: city-v1 or a yolov8n export at 320)")
    ap.add_argument("--threads", type=int, default=0, help="detector.threads of the site (0: automatic)")
    ap.add_argument("--workers", type=int, default=0, help="detector.workers of the site (0: automatic)")
    ap.add_argument("--keep-going", action="store_true", help="do not stop a ladder at its first failure")
    ap.add_argument("--switch-interval", type=float, default=None,
                    help="experiment: sys.setswitchinterval(S) (Python's GIL hand-off interval, default 0.005)")  # fmt: skip
    args = ap.parse_args()
    if args.switch_interval:
        sys.setswitchinterval(args.switch_interval)
    if args.quick:
        args.ladder, args.ladder_all, args.window, args.warmup, args.decode_cameras = "2,4", "2", 8.0, 2.0, 2
    ladder = [int(x) for x in args.ladder.split(",") if x.strip()]
    ladder_all = [int(x) for x in args.ladder_all.split(",") if x.strip()]
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("vision.daemon").setLevel(logging.ERROR)  # "no dispatch section": intended here

    media = camera_file()
    model = args.model
    if model is None:
        city = REPO / "models" / "city-v1" / "model.onnx"
        model = city if city.is_file() else yolov8n_onnx(320)
    from vision.detection import open_detector

    detector = open_detector(model)
    nproc = os.cpu_count() or 1
    print_machine()
    print(f"camera: {media.name} (1920x1080, 25 fps, GOP 25, 3 Mbit/s H.264 High), sample_fps={SAMPLE_FPS:g}")
    print(f"detector: {model} ({detector.in_w}x{detector.in_h}, batchable={detector.batchable}), "
          f"workers={args.workers or 'auto'}, ORT threads={args.threads or 'auto'} (spinning off), "
          f"GIL switch interval {sys.getswitchinterval() * 1000:g} ms; window {args.window:g} s after "
          f"{args.warmup:g} s warm-up")  # fmt: skip

    mounts = max([*ladder, *ladder_all, args.decode_cameras, 1])
    server = Server(media, mounts, free_port())
    try:
        decode_results = []
        if args.decode_cameras:
            for mode in ("keyframes", "all"):
                r = run_decode_step(server.urls, server, args.decode_cameras, mode, args.window, args.warmup)
                decode_results.append(r)
                print(f"  decode {mode:9s} x{r.cameras}: {r.cpu_per_cam_min:.2f} CPU s/camera-minute", flush=True)
            print_decode_table(decode_results)

        capacity: list[StepResult] = []
        for mode, steps in (("keyframes", ladder), ("all", ladder_all)):
            for n in steps:
                r = run_daemon_step(server.urls, server, n, mode, args.window, args.warmup, model, args.workers, args.threads)
                capacity.append(r)
                print(f"  {mode:9s} x{n:2d} det {r.plan}: min {r.min_rate:.2f} det/s, box CPU {r.cpu_s / r.window_s:.2f} cores, "
                      f"server {r.server_cpu_s / r.window_s:.2f} cores, online {r.online}/{n} -> "
                      f"{'keeps 1/s' if r.keeps_rate else 'FALLS BEHIND'}", flush=True)  # fmt: skip
                if not r.keeps_rate and not args.keep_going:
                    break
        if capacity:
            print_capacity_table(capacity, nproc)
        print_machine()
    finally:
        server.stop()


if __name__ == "__main__":
    main()

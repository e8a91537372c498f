"""Shared pieces of the benchmarks: footage, cached models, CPU clocks, machine facts.

Caches live under out/bench/ (git-ignored) so a second run measures, not prepares.
"""

from __future__ import annotations

import os
import platform
import resource
import shutil
import subprocess
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FOOTAGE = REPO / "datasets" / "footage" / "vtest.avi"
BENCH_DIR = REPO / "out" / "bench"


def load_frames(n: int, path: Path = FOOTAGE) -> list:
    """The first `n` frames of the footage as BGR arrays (decoded once, outside any timing)."""
    import cv2

    cap = cv2.VideoCapture(str(path))
    frames = []
    while len(frames) < n:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    if not frames:
        raise SystemExit(f"no frames could be read from {path}")
    return frames


def yolov8n_onnx(imgsz: int, cache: Path = BENCH_DIR / "models") -> Path:
    """A YOLOv8n built from yolov8n.yaml (random weights: no pretrained weights are reachable
    here) and exported by ultralytics to ONNX at `imgsz`, exactly like `export_onnx` does for
    city-v1 (static batch 1, simplified). Cached; the first call takes ~30 s and needs the
    `train` extra. Speed does not depend on the weights, but detection counts do."""
    target = cache / f"yolov8n-random-{imgsz}.onnx"
    if target.is_file():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    from vision.edge.detection.ultralytics_env import prepare_offline

    prepare_offline()
    from ultralytics import YOLO

    cwd = os.getcwd()
    os.chdir(cache)  # a model built from a yaml exports next to the working directory
    try:
        model = YOLO("yolov8n.yaml")
        exported = Path(model.export(format="onnx", imgsz=imgsz, dynamic=False, simplify=True, device="cpu"))
    finally:
        os.chdir(cwd)
    exported = exported if exported.is_absolute() else cache / exported
    exported.replace(target)
    return target


@dataclass
class CpuClock:
    """Process CPU seconds (all threads: user + system) and wall seconds between start() and read()."""

    cpu0: float = 0.0
    wall0: float = 0.0

    def start(self) -> CpuClock:
        self.cpu0, self.wall0 = process_cpu_s(), time.perf_counter()
        return self

    def read(self) -> tuple[float, float]:
        return process_cpu_s() - self.cpu0, time.perf_counter() - self.wall0


def process_cpu_s() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def cpu_ms(call: object) -> float:
    """CPU milliseconds of this process (every thread) while `call()` runs."""
    assert callable(call)
    t0 = time.process_time()
    call()
    return (time.process_time() - t0) * 1000


def pid_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) of another process, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks  # utime, stime


def machine() -> dict:
    """What the numbers were measured on, and how busy it was."""
    model = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg()
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": os.cpu_count(),
        "cpu": model,
        "python": platform.python_version(),
        "loadavg_1_5_15": tuple(round(x, 2) for x in load),
    }


def busy_processes(limit: int = 5) -> list[str]:
    """The other processes using the CPU right now (the machine may be shared)."""
    try:
        out = subprocess.run(
            ["ps", "-eo", "pcpu,comm,args", "--sort=-pcpu"], check=False, capture_output=True, text=True, timeout=5
        ).stdout.splitlines()[1 : limit + 1]
    except (OSError, subprocess.SubprocessError):
        return []
    me = str(os.getpid())
    return [line.strip()[:110] for line in out if me not in line]


def print_machine() -> None:
    m = machine()
    print(f"machine: {m['nproc']} cpus, {m['cpu']}, Python {m['python']}, {m['date']}, load avg {m['loadavg_1_5_15']}")
    for line in busy_processes():
        print(f"  busy: {line}")


CAMERA_FILE = BENCH_DIR / "cam-1080p25-gop25-3mbps.mp4"


def camera_file() -> Path:
    """The simulated camera's H.264 file (made once with GStreamer's x264enc, ~1 CPU-minute)."""
    if CAMERA_FILE.is_file():
        return CAMERA_FILE
    if not shutil.which("gst-launch-1.0"):
        raise SystemExit("gst-launch-1.0 not found: apt-get install gstreamer1.0-tools gstreamer1.0-plugins-ugly")
    CAMERA_FILE.parent.mkdir(parents=True, exist_ok=True)
    tmp = CAMERA_FILE.with_suffix(".part.mp4")
    pipeline = (
        f"filesrc location={FOOTAGE} ! decodebin ! videoconvert ! videoscale "
        "! video/x-raw,width=1920,height=1080,pixel-aspect-ratio=1/1 ! videorate ! video/x-raw,framerate=25/1 "
        "! x264enc speed-preset=veryfast bitrate=3000 key-int-max=25 bframes=0 option-string=scenecut=0:min-keyint=25 "
        f"! video/x-h264,profile=high ! h264parse ! mp4mux ! filesink location={tmp}"
    )
    print(f"making {CAMERA_FILE} (once) ...", flush=True)
    subprocess.run(["nice", "-n", "10", "gst-launch-1.0", "-q", *pipeline.split()], check=True)
    tmp.replace(CAMERA_FILE)
    return CAMERA_FILE

"""Detect the frames of one pass on several threads at once.

Why: on a small model one ONNX Runtime call spread over 2 intra-op threads
costs ~1.3x the CPU of the same call on one thread (the threads wait on each
other inside every layer), and the daemon's single detection loop then leaves
a core idle whenever Python holds the GIL. Two frames in two 1-thread calls use
both cores at full efficiency instead: ONNX Runtime releases the GIL while it
runs, and one session may be run from several threads at once. So a box with
many cameras splits each pass into one chunk per worker
(`docs/PERFORMANCE.md`, cameras per box).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import supervision as sv

__all__ = ["DetectorPool", "WorkerPlan", "plan_workers"]


class _BatchDetector(Protocol):
    """What the pool needs of a detector (`vision.edge.detection.Detector` has it)."""

    def detect_batch(self, images: list[np.ndarray]) -> list[sv.Detections]: ...


@dataclass(frozen=True)
class WorkerPlan:
    workers: int  # frames detected at the same time
    threads: int  # ONNX Runtime intra-op threads of the session


def plan_workers(workers: int, threads: int, cameras: int, cores: int | None = None) -> WorkerPlan:
    """Fill in the automatic (0) settings of `detector.workers` / `detector.threads`.

    One camera gets one worker with every core (lowest latency per frame); several
    cameras get one worker per core, each with one thread (most frames per CPU-second)."""
    cores = max(1, cores or os.cpu_count() or 1)
    if workers <= 0:
        workers = min(cores, cameras) if cameras > 1 else 1
    if threads <= 0:
        threads = max(1, cores // workers)
    return WorkerPlan(workers, threads)


class DetectorPool:
    """`detect_batch` over `workers` threads; the calling thread is one of them.

    Detectors that are not safe to call from several threads (no `thread_safe = True`,
    e.g. the torch backend) run on the caller alone."""

    def __init__(self, detector: _BatchDetector, workers: int = 1) -> None:
        self.detector = detector
        self.workers = max(1, workers) if getattr(detector, "thread_safe", False) else 1
        self._executor = (
            ThreadPoolExecutor(self.workers - 1, thread_name_prefix="detector") if self.workers > 1 else None
        )

    def detect_batch(self, images: list[np.ndarray]) -> list[sv.Detections]:
        if self._executor is None or len(images) < 2:
            return self.detector.detect_batch(images)
        size = -(-len(images) // self.workers)  # ceil: contiguous chunks keep the results in order
        chunks = [images[i : i + size] for i in range(0, len(images), size)]
        futures = [self._executor.submit(self.detector.detect_batch, chunk) for chunk in chunks[1:]]
        results = list(self.detector.detect_batch(chunks[0]))
        for future in futures:  # a failure is raised to the loop, which skips this pass
            results.extend(future.result())
        return results

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

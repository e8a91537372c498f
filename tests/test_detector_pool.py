"""Detector workers: the frames of one pass split over threads, results in order, and
the automatic plan of workers and ONNX Runtime threads."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from vision.edge.detection import open_detector
from vision.edge.detection.pool import DetectorPool, plan_workers

REPO = Path(__file__).resolve().parent.parent


def footage(n: int) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(REPO / "datasets" / "footage" / "vtest.avi"))
    frames = []
    while len(frames) < n:
        ok, img = cap.read()
        assert ok
        frames.append(img)
        for _ in range(9):  # every 10th frame: people at different places
            cap.grab()
    cap.release()
    return frames


@pytest.mark.parametrize("model", ["coco-nanodet", "models/city-v1/model.onnx"])
def test_two_workers_give_exactly_the_serial_results_in_order(model):
    det = open_detector(str(REPO / model) if model.endswith(".onnx") else model, threads=1)
    images = footage(7)  # odd: chunks of 4 and 3
    serial = det.detect_batch(images)
    pool = DetectorPool(det, workers=2)
    try:
        assert pool.workers == 2
        parallel = pool.detect_batch(images)
    finally:
        pool.close()
    assert len(parallel) == len(serial) == 7
    assert sum(len(d) for d in serial) > 7, "the frames have objects, so order matters"
    for a, b in zip(serial, parallel, strict=True):
        np.testing.assert_allclose(a.xyxy, b.xyxy, atol=1e-3)
        assert list(a.class_id) == list(b.class_id)


class _Recording:
    """Thread-safe fake that records how many calls overlap."""

    thread_safe = True
    name, version, class_names = "fake", "0", ["x"]

    def __init__(self):
        self.active = self.max_active = 0
        self.lock = threading.Lock()
        self.threads: set[str] = set()

    def detect_batch(self, images):
        with self.lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
            self.threads.add(threading.current_thread().name)
        time.sleep(0.2)  # long enough for the other worker's call to start meanwhile
        with self.lock:
            self.active -= 1
        return [int(img[0, 0, 0]) for img in images]


def test_chunks_run_at_the_same_time_and_the_caller_works_too():
    fake = _Recording()
    pool = DetectorPool(fake, workers=3)
    images = [np.full((4, 4, 3), i, np.uint8) for i in range(8)]
    try:
        assert pool.detect_batch(images) == list(range(8))
    finally:
        pool.close()
    assert fake.max_active == 3
    assert threading.current_thread().name in fake.threads


def test_a_detector_that_is_not_thread_safe_runs_on_one_worker():
    fake = _Recording()
    fake.thread_safe = False
    pool = DetectorPool(fake, workers=4)
    assert pool.workers == 1
    assert pool.detect_batch([np.zeros((2, 2, 3), np.uint8)] * 5) == [0] * 5
    assert fake.max_active == 1


def test_a_failing_chunk_raises_to_the_caller():
    class Failing(_Recording):
        def detect_batch(self, images):
            if any(int(img[0, 0, 0]) == 5 for img in images):
                raise RuntimeError("bad frame")
            return super().detect_batch(images)

    pool = DetectorPool(Failing(), workers=2)
    try:
        with pytest.raises(RuntimeError, match="bad frame"):
            pool.detect_batch([np.full((2, 2, 3), i, np.uint8) for i in range(6)])
    finally:
        pool.close()


@pytest.mark.parametrize(
    ("workers", "threads", "cameras", "cores", "expected"),
    [
        (0, 0, 1, 2, (1, 2)),  # one camera: one call with every core
        (0, 0, 24, 2, (2, 1)),  # many cameras: a worker per core, one thread each
        (0, 0, 3, 8, (3, 2)),  # fewer cameras than cores
        (0, 0, 40, 8, (8, 1)),
        (1, 0, 24, 2, (1, 2)),  # explicit settings win
        (2, 2, 24, 2, (2, 2)),
        (0, 1, 1, 4, (1, 1)),
    ],
)
def test_automatic_worker_plan(workers, threads, cameras, cores, expected):
    plan = plan_workers(workers, threads, cameras, cores)
    assert (plan.workers, plan.threads) == expected

"""Is a tracked object moving? Per-track anchor history over a short window.

Passers-by are the classic false alarm of a stall rule: a person walking
through a no-vending zone is moving, and a moving object never feeds the
stationary memory. History is keyed by track id, so every id unseen for a
while is deleted (the leak supervision's LineZone had).
"""

from __future__ import annotations

from collections import deque

import numpy as np


class MotionHistory:
    def __init__(self, window_s: float, max_move: float, forget_after_s: float = 30.0):
        self.window_s = window_s
        self.max_move = max_move  # in box heights
        self.forget_after_s = max(forget_after_s, window_s)
        self._hist: dict[int, deque[tuple[float, float, float]]] = {}
        self._last_seen: dict[int, float] = {}

    def update(self, tracker_ids: np.ndarray, points: np.ndarray, heights: np.ndarray, t_s: float) -> np.ndarray:
        """(N,) bool: track n moved more than max_move box heights within the window.
        Unconfirmed detections (id -1) and brand-new tracks are not known to move."""
        moving = np.zeros(len(tracker_ids), dtype=bool)
        for n, tid in enumerate(np.asarray(tracker_ids, dtype=int)):
            if tid < 0:
                continue
            x, y = float(points[n][0]), float(points[n][1])
            hist = self._hist.setdefault(int(tid), deque())
            while hist and t_s - hist[0][0] > self.window_s:
                hist.popleft()
            if hist:
                past = np.asarray([(px, py) for _, px, py in hist])
                dist = np.hypot(past[:, 0] - x, past[:, 1] - y).max()
                moving[n] = dist > self.max_move * max(float(heights[n]), 1.0)
            hist.append((float(t_s), x, y))
            self._last_seen[int(tid)] = float(t_s)
        self._prune(t_s)
        return moving

    def _prune(self, t_s: float) -> None:
        stale = [tid for tid, seen in self._last_seen.items() if t_s - seen > self.forget_after_s]
        for tid in stale:
            self._last_seen.pop(tid, None)
            self._hist.pop(tid, None)

    def __len__(self) -> int:
        return len(self._hist)

    def reset(self) -> None:
        self._hist.clear()
        self._last_seen.clear()

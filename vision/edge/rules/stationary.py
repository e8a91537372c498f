"""The engine shared by the three stationary rules (vending, bikes, garbage).

Per frame: eligible detections (class, confidence, anchor in the rule's zones,
not moving) feed the stationary memory; an entry that has been present for
`dwell_s` of stream time, in at least `min_presence` of the frames since its
onset, fires. Fired entries are grouped into violations (one case per
cluster: a stall and its vendor, ten bikes in a row); a cleared violation
stays in a cooldown list for `cooldown_s`, and an object firing near it within
that time resumes the old violation instead of opening a new case. An
object that joins an open violation opens no second case (one case per
place); when the violation holds more objects than it ever did, a `grew`
event tells the center the new count.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

import numpy as np

from vision.core.geometry import box_gap
from vision.edge.config import StationaryRuleConfigBase, ZoneConfig
from vision.edge.rules.base import Observation, RuleEngine, RuleEvent, Violation, box_tuple, union_box
from vision.edge.rules.memory import MemoryEntry, StationaryMemory
from vision.edge.rules.motion import MotionHistory
from vision.edge.zones import ZoneGeometry, anchor_points


@dataclass
class _Group:
    id: int
    violation: Violation
    members: set[int] = field(default_factory=set)
    points_rel: list[np.ndarray] = field(default_factory=list)  # where its objects were (cooldown matching)
    boxes_px: list[np.ndarray] = field(default_factory=list)  # and their boxes (pixels: gaps are scale-free)
    cleared_t: float | None = None
    peak: int = 0  # the most members it has held: only a count above it is news for the center

    def near(self, p: np.ndarray, box: np.ndarray, link: _Link) -> bool:
        return any(link(p, box, q, b) for q, b in zip(self.points_rel, self.boxes_px, strict=True))


class _Link:
    """When two violating objects are one case: anchors within `distance` (relative), or pixel boxes closer
    than `touch` heights of the smaller one."""

    def __init__(self, distance: float, touch: float) -> None:
        self.distance = distance
        self.touch = touch

    def __call__(self, p: np.ndarray, box: np.ndarray, q: np.ndarray, other: np.ndarray) -> bool:
        if float(np.hypot(*(p - q))) <= self.distance:
            return True
        return bool(box_gap(box, other)[0, 0] <= self.touch)


class StationaryRule(RuleEngine):
    """The shared engine; a concrete rule names its config and violation type and may add hooks."""

    config: StationaryRuleConfigBase

    def __init__(self, config: StationaryRuleConfigBase, camera_id: str, zones: list[ZoneConfig]) -> None:
        super().__init__(config, camera_id, zones)
        self.memory = StationaryMemory(
            inertia_frames=config.inertia_frames,
            max_move=config.max_move,
            max_gap_s=config.max_gap_s,
            clear_after_s=config.clear_after_s,
            presence_window_s=config.presence_window_s,
            passing_classes=frozenset(config.passing_classes),
        )
        self.motion = MotionHistory(config.motion_window_s, config.max_move, forget_after_s=config.motion_window_s + 30)
        self.groups: dict[int, _Group] = {}
        self.cooldown: list[_Group] = []
        self._next_group = 1
        self._classes = np.asarray(config.classes, dtype=object)
        self._link = _Link(config.cluster_distance, config.cluster_touch)

    # hooks for the concrete rules ------------------------------------------------------------
    def _excluded(self, obs: Observation, geometry: ZoneGeometry, inside: np.ndarray) -> np.ndarray:
        """(N,) bool: detections this rule ignores although they are in its zones."""
        return np.zeros(len(inside), dtype=bool)

    def _extra_ok(self, obs: Observation, points_rel: np.ndarray, candidates: np.ndarray) -> np.ndarray:
        return np.ones(len(points_rel), dtype=bool)

    # ------------------------------------------------------------------------------------------
    def update(self, obs: Observation, geometry: ZoneGeometry) -> list[RuleEvent]:
        cfg = self.config
        dets = obs.detections
        n = len(dets)
        names = obs.class_names()
        tids = obs.tracker_ids()
        xyxy = np.asarray(dets.xyxy, dtype=np.float64).reshape(-1, 4)
        conf = np.asarray(dets.confidence if dets.confidence is not None else np.ones(n), dtype=np.float64)
        points = anchor_points(xyxy, cfg.anchor).astype(np.float64)
        heights = xyxy[:, 3] - xyxy[:, 1]
        inside_all = geometry.contains(points)
        cols = [geometry.index(z) for z in self.zone_names if z in geometry.names]
        inside = inside_all[:, cols] if cols else np.zeros((n, 0), dtype=bool)
        in_zone = inside.any(axis=1)
        cls_ok = np.isin(names, self._classes) if n else np.zeros(0, dtype=bool)
        moving = np.zeros(n, dtype=bool)
        idx = np.flatnonzero(cls_ok)
        if len(idx):
            moving[idx] = self.motion.update(tids[idx], points[idx], heights[idx], obs.t_s)
        else:
            self.motion.update(np.empty(0, dtype=int), np.empty((0, 2)), np.empty(0), obs.t_s)
        points_rel = points / np.array([obs.width, obs.height], dtype=np.float64)
        big_enough = heights >= cfg.min_box_height * obs.height
        candidates = cls_ok & (conf >= cfg.min_confidence) & big_enough & in_zone & ~moving
        candidates &= ~self._excluded(obs, geometry, inside_all)
        candidates &= self._extra_ok(obs, points_rel, candidates)
        sel = np.flatnonzero(candidates)
        zone_of = [geometry.names[cols[int(np.argmax(inside[i]))]] for i in sel]
        update = self.memory.update(
            obs.t_s, obs.captured_at, names[sel], xyxy[sel], points[sel], conf[sel], tids[sel], zone_of
        )
        events: list[RuleEvent] = []
        ready = [
            e
            for e in self.memory.entries.values()
            if e.entered
            and e.seen_now
            and e.state == "candidate"
            and obs.t_s - e.onset_t >= cfg.dwell_s
            and e.presence >= cfg.min_presence
            and e.recent_presence >= cfg.min_presence
        ]
        for e in sorted(ready, key=lambda e: (e.onset_t, e.id)):
            if e.state == "candidate":  # may have been absorbed by a group opened just before
                ev = self._fire(e, obs)
                if ev is not None:
                    events.append(ev)
        for e in update.cleared:
            events.extend(self._member_gone(e, obs.t_s))
        for e in update.dropped:
            if e.group is not None:
                events.extend(self._member_gone(e, obs.t_s))
        self._prune_cooldown(obs.t_s)
        return events

    def _rel(self, e: MemoryEntry, obs: Observation) -> np.ndarray:
        return e.ref_point / np.array([obs.width, obs.height], dtype=np.float64)

    def _fire(self, e: MemoryEntry, obs: Observation) -> RuleEvent | None:
        """Open a case for `e` and the candidates linked to it, unless one of them belongs to a case already.

        The whole cluster is matched, not the seed alone: the seed may be a bike one step too far from a
        case whose neighbour it is standing next to."""
        members = self._cluster_from(e, obs)
        places = [(m, self._rel(m, obs), m.box) for m in members]

        def linked(g: _Group) -> bool:
            return any(g.near(p, box, self._link) for _, p, box in places)

        for g in self.groups.values():
            if linked(g):
                for m, p, box in places:
                    self._join(g, m, p, box)
                return self._grew(g, [m for m, _, _ in places])
        for g in self.cooldown:
            if linked(g) and obs.t_s - (g.cleared_t or 0.0) <= self.config.cooldown_s:
                self.cooldown.remove(g)
                g.cleared_t = None
                self.groups[g.id] = g
                for m, p, box in places:
                    self._join(g, m, p, box)
                g.peak = max(g.peak, self._present(g))
                return RuleEvent("resumed", g.violation)
        g = _Group(id=self._next_group, violation=self._violation(members, e, obs))
        self._next_group += 1
        self.groups[g.id] = g
        for m, p, box in places:
            self._join(g, m, p, box)
        g.peak = self._present(g)
        return RuleEvent("opened", g.violation)

    def _present(self, g: _Group) -> int:
        """Members of `g` there now: seen in this frame or in `min_presence` of the recent ones, the test
        a candidate passes to fire (one that left lingers as a member until it clears)."""
        entries = (self.memory.entries.get(m) for m in g.members)
        floor = self.config.min_presence
        return sum(1 for e in entries if e is not None and (e.seen_now or e.recent_presence >= floor))

    def _grew(self, g: _Group, joined: list[MemoryEntry]) -> RuleEvent | None:
        """`grew` when the objects that just joined `g` make it hold more than it ever has; None when
        they only replace members that left (a bike taken away or re-parked, another in its place)."""
        present = self._present(g)
        if present <= g.peak:
            return None
        g.peak = present
        return RuleEvent("grew", g.violation, object_count=present, joined_px=tuple(box_tuple(m.box) for m in joined))

    def _join(self, g: _Group, e: MemoryEntry, p: np.ndarray, box: np.ndarray) -> None:
        e.state = "active"
        e.group = g.id
        g.members.add(e.id)
        if len(g.points_rel) < 64:
            g.points_rel.append(p)
            g.boxes_px.append(box)

    def _cluster_from(self, seed: MemoryEntry, obs: Observation) -> list[MemoryEntry]:
        """The seed plus every entered candidate linked to it (anchors within cluster_distance or boxes
        touching, single link)."""
        pool = [e for e in self.memory.entries.values() if e.entered and e.state == "candidate" and e is not seed]
        cluster = [seed]
        frontier = [(self._rel(seed, obs), seed.box)]
        while frontier and pool:
            p, box = frontier.pop()
            near = [e for e in pool if self._link(self._rel(e, obs), e.box, p, box)]
            for e in near:
                pool.remove(e)
                cluster.append(e)
                frontier.append((self._rel(e, obs), e.box))
        return cluster

    def _violation(self, members: list[MemoryEntry], seed: MemoryEntry, obs: Observation) -> Violation:
        boxes = np.stack([m.box for m in members])
        onset = min(members, key=lambda m: m.onset_t)
        history = list(seed.history)
        recent = [s.score for s in history[-10:]] or [0.0]
        return Violation(
            rule=self.name,
            violation_type=self.violation_type,
            camera_id=self.camera_id,
            zone=seed.zone,
            box_px=union_box(boxes),
            frame_size=(obs.width, obs.height),
            classes=sorted({m.class_name for m in members}),
            object_count=len(members),
            confidence=float(np.clip(np.median(recent), 0.0, 1.0)),
            confidence_history=history,
            onset_t_s=onset.onset_t,
            onset_at=onset.onset_at or onset.first_at,
            detected_t_s=obs.t_s,
            detected_at=obs.captured_at,
            object_boxes_px=[box_tuple(b) for b in boxes],
            track_ids=sorted({t for m in members for t in m.track_ids}),
        )

    def _member_gone(self, e: MemoryEntry, t_s: float) -> list[RuleEvent]:
        g = self.groups.get(e.group) if e.group is not None else None
        if g is None:
            return []
        g.members.discard(e.id)
        if g.members:
            return []
        del self.groups[g.id]
        g.cleared_t = t_s
        self.cooldown.append(g)
        return [RuleEvent("cleared", g.violation)]

    def _prune_cooldown(self, t_s: float) -> None:
        self.cooldown = [g for g in self.cooldown if t_s - (g.cleared_t or t_s) <= self.config.cooldown_s]

    def boxes_now(self, violation_id: uuid.UUID) -> list[tuple[float, float, float, float]] | None:
        g = next((g for g in self.groups.values() if g.violation.id == violation_id), None)
        if g is None:
            return None
        boxes = [box_tuple(self.memory.entries[m].box) for m in sorted(g.members) if m in self.memory.entries]
        return boxes or None

    def state_size(self) -> int:
        return len(self.memory) + len(self.motion) + len(self.groups) + len(self.cooldown)

    def reset(self) -> None:
        self.memory.reset()
        self.motion.reset()
        self.groups.clear()
        self.cooldown.clear()

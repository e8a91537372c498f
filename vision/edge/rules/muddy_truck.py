"""带泥上路 / 车轮夹带: a truck crossing a site exit, judged muddy in k of its last n frames.

Trucks move, so this rule is keyed by track id (with deletion after
`clear_after_s` unseen). A truck is muddy in a frame when a mud-class box lies
mostly inside its box, or when the model labels the whole vehicle with a mud
class. The case keeps the best crop of the truck (highest score x size) and the
truck's best few views (largest and sharpest, a margin around the box): the
verifier judges the mud on all of them, and the case writer reads the plate from
them, off the detection loop (vision/edge/plates).

One truck, one case: a new track where a truck with a case would be by now (the
tracker lost it, or boxed it twice), or that truck's own track taken up again
after a gap, is that truck, unless it then drives the other way: at a site gate
one truck leaves where another comes in, seconds apart.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime

import cv2
import numpy as np

from vision.core.geometry import box_containment, box_iou
from vision.edge.config import MuddyTruckRuleConfig, ZoneConfig
from vision.edge.rules.base import (
    ConfidenceSample,
    Observation,
    RuleEngine,
    RuleEvent,
    VehicleView,
    Violation,
    box_tuple,
)
from vision.edge.zones import LineCrossing, ZoneGeometry, anchor_points

# A new track id where a just-fired truck would be now (its last box moved on at its last
# speed) within this time is that truck: the tracker lost and re-found it, or split it.
# Deliberately short: other trucks pass the same exit.
RE_ID_WINDOW_S = 5.0
RE_ID_IOU = 0.3
# A box mostly inside that truck's box (or around it) is that truck too: a detector that boxed the
# cab or the load as a vehicle of its own, next to the whole truck, gives a second track on one truck.
RE_ID_CONTAINED = 0.7
# ...unless it then drives the other way: at a site gate one truck leaves where another comes in, seconds
# apart. Judged once its centre has moved this share of its box width from where the track began.
RE_ID_DIRECTION_AFTER = 0.3
# A fired truck's own track unseen this long and then taken up again by the tracker is judged the same way
# (ByteTrack takes up a lost track where a new truck appears where the old one was lost).
REVIVED_AFTER_S = 1.0


@dataclass(frozen=True)
class _Onset:
    """Where and when a truck reached a site exit: its case's onset, set once, all at the same time."""

    t_s: float
    at: datetime
    zone: str


@dataclass
class _Truck:
    track_id: int
    muddy: deque[bool]
    last_seen_t: float
    box: np.ndarray
    first_box: np.ndarray  # where the track began: its direction is judged from here
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(4))  # box px per stream second
    consecutive_in_zone: int = 0
    onset: _Onset | None = None  # None until the truck is at an exit
    fired: bool = False
    same_as: _Truck | None = None  # the fired truck this new track was taken for (re-found, split)
    heading: np.ndarray | None = None  # which way that truck was driving (px per s, or a displacement)
    not_same_as: list[_Truck] = field(default_factory=list)  # fired trucks it was taken for, then drove away from
    best_score: float = -1.0
    best_crop: np.ndarray | None = None
    views: list[tuple[float, VehicleView]] = field(default_factory=list)  # (quality, view) best first
    history: list[ConfidenceSample] = field(default_factory=list)
    classes: set[str] = field(default_factory=set)


VIEW_MARGIN = 0.08  # of the box, kept around a truck's view: a plate at the bumper sits on the box's edge
SHARPNESS_WIDTH = 96  # px: views are compared for sharpness at this width (cheap, and fair between sizes)

LINE_MARGIN = 0.15  # of a vehicle's box height: nearer the exit line is "on" it (a parked car's jitter never crosses)


class MuddyTruckRule(RuleEngine, config=MuddyTruckRuleConfig):
    violation_type = "muddy_truck"
    config: MuddyTruckRuleConfig

    def __init__(self, config: MuddyTruckRuleConfig, camera_id: str, zones: list[ZoneConfig]) -> None:
        super().__init__(config, camera_id, zones)  # zone_names: the rule's, else the camera's site_exit zones
        self._line_zone = {z.name: z.is_line for z in zones}
        self.trucks: dict[int, _Truck] = {}
        self.crossings: dict[tuple[str, int, int], LineCrossing] = {}  # (zone, w, h)
        self._recent_fired: deque[_Truck] = deque(maxlen=32)

    def update(self, obs: Observation, geometry: ZoneGeometry) -> list[RuleEvent]:
        cfg = self.config
        dets = obs.detections
        names = obs.class_names()
        tids = obs.tracker_ids()
        xyxy = np.asarray(dets.xyxy, dtype=np.float64).reshape(-1, 4)
        conf = np.asarray(dets.confidence if dets.confidence is not None else np.ones(len(dets)), dtype=np.float64)
        ok = (conf >= cfg.min_confidence) & ((xyxy[:, 3] - xyxy[:, 1]) >= cfg.min_box_height * obs.height)
        is_truck = np.isin(names, np.asarray(cfg.classes, dtype=object)) & ok
        is_mud = np.isin(names, np.asarray(cfg.mud_classes, dtype=object)) & ok
        truck_idx = np.flatnonzero(is_truck)
        mud_idx = np.flatnonzero(is_mud)
        muddy = np.zeros(len(truck_idx), dtype=bool)
        if len(truck_idx) and len(mud_idx):
            # (mud, truck): a mud box on the truck, or one around it (the model boxed the whole
            # muddy vehicle a little larger than the truck box): either way the same vehicle,
            # so it never becomes a second vehicle with a track (and a case) of its own
            inside = np.maximum(
                box_containment(xyxy[mud_idx], xyxy[truck_idx]), box_containment(xyxy[truck_idx], xyxy[mud_idx]).T
            )
            muddy = np.asarray((inside >= cfg.mud_overlap).any(axis=0))
            claimed = (inside >= cfg.mud_overlap).any(axis=1)
            whole = mud_idx[~claimed]  # mud boxes on no truck: the model labelled the vehicle itself
        else:
            whole = mud_idx
        vehicles = np.concatenate([truck_idx, whole]).astype(int)
        vehicle_muddy = np.concatenate([muddy, np.ones(len(whole), dtype=bool)])
        keep = tids[vehicles] >= 0
        vehicles, vehicle_muddy = vehicles[keep], vehicle_muddy[keep]

        points = anchor_points(xyxy[vehicles], cfg.anchor).astype(np.float64)
        at_exit: list[str | None] = [None] * len(vehicles)
        inside_all = geometry.contains(points)
        for zone in self.zone_names:
            if zone not in geometry.names:
                continue
            zi = geometry.index(zone)
            if geometry.is_line[zi]:
                crossing = self._crossing(zone, geometry)
                heights = xyxy[vehicles, 3] - xyxy[vehicles, 1]
                crossed = crossing.update(tids[vehicles], points, obs.t_s, margins=LINE_MARGIN * heights)
                for j in np.flatnonzero(crossed):
                    at_exit[j] = at_exit[j] or zone
            else:
                for j in np.flatnonzero(inside_all[:, zi]):
                    at_exit[j] = at_exit[j] or f"polygon:{zone}"

        events: list[RuleEvent] = []
        for k, det in enumerate(vehicles):
            tid = int(tids[det])
            truck = self.trucks.get(tid)
            if truck is None:
                truck = self.trucks[tid] = _Truck(tid, deque(maxlen=cfg.n), obs.t_s, xyxy[det].copy(), xyxy[det].copy())
                same_as = self._refired_match(truck, obs.t_s)
                if same_as is not None:
                    self._take_for(truck, same_as)
            elif truck.fired and obs.t_s - truck.last_seen_t > REVIVED_AFTER_S:
                truck = self.trucks[tid] = self._revived(truck, xyxy[det], obs.t_s)
            elif obs.t_s > truck.last_seen_t:
                truck.velocity = (xyxy[det] - truck.box) / (obs.t_s - truck.last_seen_t)
            truck.last_seen_t = obs.t_s
            truck.box = xyxy[det].copy()
            if truck.same_as is not None and _drives_against(truck):
                self._another_truck(truck)
            truck.muddy.append(bool(vehicle_muddy[k]))
            truck.classes.add(str(names[det]))
            if vehicle_muddy[k] and len(mud_idx):
                truck.classes.update(str(names[m]) for m in mud_idx if names[m] != names[det])
            if len(truck.history) < 1000:
                truck.history.append(ConfidenceSample(obs.t_s, obs.captured_at, float(conf[det])))
            self._keep_best_crop(truck, xyxy[det], float(conf[det]), obs)
            exit_zone = at_exit[k]
            if exit_zone is not None and exit_zone.startswith("polygon:"):
                truck.consecutive_in_zone += 1
                exit_zone = exit_zone.split(":", 1)[1] if truck.consecutive_in_zone >= cfg.inertia_frames else None
            elif exit_zone is None:
                truck.consecutive_in_zone = 0
            if exit_zone is not None and truck.onset is None:
                truck.onset = _Onset(float(obs.t_s), obs.captured_at, exit_zone)
            if truck.onset is not None and not truck.fired and sum(truck.muddy) >= cfg.k:
                # a second track on a truck that has its case (the model boxed it twice, as
                # "truck" and as "muddy_truck", and the tracker followed both) is no new case
                duplicate = self._is_refired(truck, obs.t_s)
                truck.fired = True
                self._recent_fired.append(truck)
                if not duplicate:
                    events.append(RuleEvent("opened", self._violation(truck, truck.onset, obs)))
        self._prune(obs.t_s)
        return events

    def _crossing(self, zone: str, geometry: ZoneGeometry) -> LineCrossing:
        key = (zone, geometry.width, geometry.height)
        line = self.crossings.get(key)
        if line is None:
            a, b = geometry.line(geometry.index(zone))
            line = self.crossings[key] = LineCrossing(
                a, b, forget_after_s=self.config.clear_after_s, appearing_on_line=True
            )
        return line

    def _is_refired(self, new: _Truck, t_s: float) -> bool:
        """Is this new track a truck that already has its case (re-found, split, or part of it boxed)?"""
        return self._refired_match(new, t_s) is not None

    def _refired_match(self, new: _Truck, t_s: float) -> _Truck | None:
        """The fired truck this new track is (where that one would be now), if any."""
        for fired in self._recent_fired:
            gone_s = t_s - fired.last_seen_t
            if fired is new or gone_s > RE_ID_WINDOW_S or any(fired is other for other in new.not_same_as):
                continue
            predicted = fired.box + fired.velocity * gone_s
            if box_iou(new.box, predicted)[0, 0] >= RE_ID_IOU:
                return fired
            inside = max(box_containment(new.box, predicted)[0, 0], box_containment(predicted, new.box)[0, 0])
            if inside >= RE_ID_CONTAINED:
                return fired
        return None

    def _revived(self, fired: _Truck, box: np.ndarray, t_s: float) -> _Truck:
        """A fired truck's track the tracker took up again after losing it: the same truck, unless it then
        drives the other way (another truck, come in where that one was lost)."""
        fired.same_as, fired.not_same_as = None, []  # no chains of old states
        truck = _Truck(fired.track_id, deque(maxlen=self.config.n), t_s, box.copy(), box.copy())
        self._take_for(truck, fired)
        return truck

    def _take_for(self, truck: _Truck, fired: _Truck) -> None:
        """Take a track for a truck that already has its case: no case of its own (until it drives against it)."""
        truck.same_as, truck.heading, truck.fired = fired, _heading(fired), True
        self._recent_fired.append(truck)  # a further re-id may follow this one

    def _another_truck(self, truck: _Truck) -> None:
        """A track taken for a fired truck that drives the other way: a truck of its own, with its own case."""
        assert truck.same_as is not None
        truck.not_same_as.append(truck.same_as)
        truck.same_as, truck.fired = None, False
        self._recent_fired = deque((t for t in self._recent_fired if t is not truck), maxlen=self._recent_fired.maxlen)

    def _keep_best_crop(self, truck: _Truck, box: np.ndarray, score: float, obs: Observation) -> None:
        if obs.image is None:
            return
        h, w = obs.image.shape[:2]
        x1, y1, x2, y2 = np.round(box).astype(int)
        x1, y1, x2, y2 = max(x1, 0), max(y1, 0), min(x2, w), min(y2, h)
        if x2 - x1 < 2 or y2 - y1 < 2:
            return
        quality = score * float(np.sqrt((x2 - x1) * (y2 - y1)))
        if quality > truck.best_score:
            truck.best_score = quality
            truck.best_crop = obs.image[y1:y2, x1:x2].copy()
        if not truck.fired:
            self._keep_view(truck, obs.image, (x1, y1, x2, y2))

    def _keep_view(self, truck: _Truck, image: np.ndarray, box: tuple[int, int, int, int]) -> None:
        """Keeps the truck's `plate_views` best views: size times sharpness of the lower half (where plates and
        the mud on the wheels are)."""
        h, w = image.shape[:2]
        bx1, by1, bx2, by2 = box
        mx, my = int(VIEW_MARGIN * (bx2 - bx1)), int(VIEW_MARGIN * (by2 - by1))
        x1, y1, x2, y2 = max(bx1 - mx, 0), max(by1 - my, 0), min(bx2 + mx, w), min(by2 + my, h)
        lower = image[(y1 + y2) // 2 : y2, x1:x2]
        scale = SHARPNESS_WIDTH / max(lower.shape[1], 1)
        small = cv2.resize(lower, (SHARPNESS_WIDTH, max(2, int(lower.shape[0] * scale))), interpolation=cv2.INTER_AREA)
        sharpness = float(cv2.Laplacian(cv2.cvtColor(small, cv2.COLOR_BGR2GRAY), cv2.CV_32F).var())
        quality = float(np.sqrt((x2 - x1) * (y2 - y1))) * min(1.0, sharpness / 200.0) ** 0.5
        views = truck.views
        if len(views) >= self.config.plate_views and quality <= views[-1][0]:
            return
        inner = (float(bx1 - x1), float(by1 - y1), float(bx2 - x1), float(by2 - y1))
        views.append((quality, VehicleView(image[y1:y2, x1:x2].copy(), inner)))
        views.sort(key=lambda v: -v[0])
        del views[self.config.plate_views :]

    def _violation(self, truck: _Truck, onset: _Onset, obs: Observation) -> Violation:
        crops: dict[str, np.ndarray] = {}
        if truck.best_crop is not None:
            crops["vehicle_crop"] = truck.best_crop
        box = box_tuple(truck.box)
        scores = [s.score for s in truck.history] or [0.0]
        return Violation(
            rule=self.name,
            violation_type="muddy_truck",
            camera_id=self.camera_id,
            zone=onset.zone,
            box_px=box,
            frame_size=(obs.width, obs.height),
            classes=sorted(truck.classes),
            object_count=1,
            confidence=float(np.clip(max(scores), 0.0, 1.0)),
            confidence_history=list(truck.history),
            onset_t_s=onset.t_s,
            onset_at=onset.at,
            detected_t_s=obs.t_s,
            detected_at=obs.captured_at,
            object_boxes_px=[box],
            crops=crops,
            track_ids=[truck.track_id],
            views=[view for _, view in truck.views],
            plate_views=[view.image for _, view in truck.views] if self.config.read_plates else [],
        )

    def _prune(self, t_s: float) -> None:
        stale = [tid for tid, tr in self.trucks.items() if t_s - tr.last_seen_t > self.config.clear_after_s]
        for tid in stale:
            del self.trucks[tid]
        self._recent_fired = deque(
            (tr for tr in self._recent_fired if t_s - tr.last_seen_t <= RE_ID_WINDOW_S),
            maxlen=self._recent_fired.maxlen,
        )

    def state_size(self) -> int:
        return len(self.trucks) + sum(len(c) for c in self.crossings.values())

    def reset(self) -> None:
        self.trucks.clear()
        self.crossings.clear()
        self._recent_fired.clear()


def _centre(box: np.ndarray) -> np.ndarray:
    centre: np.ndarray = anchor_points(box, "center")[0]
    return centre


def _heading(truck: _Truck) -> np.ndarray | None:
    """Which way a truck was driving: its last velocity, else how far it moved, else (seen once) the heading of
    the truck it was taken for; None when nothing says."""
    for way in (_centre(truck.velocity), _centre(truck.box) - _centre(truck.first_box)):
        if float(np.hypot(*way)) > 1e-6:
            return way
    return truck.heading


def _drives_against(new: _Truck) -> bool:
    """Has a track taken for a fired truck, since it began, moved against the way that truck was driving?"""
    if new.heading is None:
        return False  # nothing to judge by: a re-found truck it stays
    moved = _centre(new.box) - _centre(new.first_box)
    if float(np.hypot(*moved)) < RE_ID_DIRECTION_AFTER * float(new.box[2] - new.box[0]):
        return False  # too early to say
    return float(np.dot(moved, new.heading)) < 0.0

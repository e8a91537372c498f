"""One camera's state in the daemon: tracker, rules, frame ring, and the clips still being recorded.

The loop hands each camera's frames to its `CameraPipeline`: `add_frame` buffers every
sampled frame for clips and says whether it is due for detection (the camera's
`detect_fps` grid); `process` runs a due frame's detections through proposal naming and
static-object candidates (when the site has a verifier), the tracker, the rules and the
verifier's gate (verifier_gate.py), and returns the rule events that stand. A case's clip
is cut from the ring once its seconds after onset are buffered (`await_clip` /
`clips_ready`). A camera with a muddy-truck rule also says when a truck moves in view
(`followed_moving`), so the loop can look at it at full rate.
"""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

import numpy as np
import supervision as sv

from vision.core.geometry import box_iou
from vision.core.zone_shapes import ZoneConfig
from vision.edge.casework.evidence import BufferedFrame, FrameRing, clip_window
from vision.edge.config import CameraConfig, MuddyTruckRuleConfig, SiteConfig, StaticObjectsConfig
from vision.edge.daemon.verifier_gate import RecentVerdict, VerifierGate
from vision.edge.detection.routing import merge_detections
from vision.edge.rules import CameraRules, Observation, RuleEvent, Violation
from vision.edge.verify.classifier import CropVerdict
from vision.edge.verify.verifier import Verifier

if TYPE_CHECKING:
    from vision.edge.detection.moving_objects import MovingVehicles
    from vision.edge.detection.proposal_naming import ProposalNamer
    from vision.edge.detection.static_candidates import StaticCandidates
    from vision.edge.tracking import CameraTracker

__all__ = ["CameraPipeline", "FrameLike", "FOLLOW_STILL_IOU"]

FOLLOW_STILL_IOU = 0.5  # a followed object's box overlapping one of the last look this much has not moved


class FrameLike(Protocol):
    """What the pipeline reads of a frame (vision.edge.streams.Frame has it)."""

    @property
    def camera_id(self) -> str: ...
    @property
    def index(self) -> int: ...
    @property
    def t_s(self) -> float: ...
    @property
    def captured_at(self) -> datetime: ...
    @property
    def image(self) -> np.ndarray: ...


# A box no rule consumes is named for the stationary rules once it has stood at one place for this many
# looks: what walks by is no stall or bag, and naming walkers' junk boxes took a third of the loop's time
# (vision/edge/detection/proposal_naming.py).
STAY_LOOKS = 2
# A vehicle near a site exit is named (is it a muddy truck?) until it has stood at one place this many stream
# seconds: a car parked by the gate is no truck driving out (vision/edge/detection/proposal_naming.py).
VEHICLE_STAND_S = 2.0


@dataclass(frozen=True)
class _AwaitedClip:
    violation: Violation
    ready_at_t: float  # stream time when the clip's "after" part is buffered


class CameraPipeline:
    """Per-camera state: tracker, rules, frame ring, violations waiting for the end of their clip."""

    STATIONARY_TYPES = ("street_vending", "non_motor_parking", "exposed_garbage")
    # Rules whose boxes under their threshold get the classifier's second opinion (ProposalNamer.weak_below).
    # Stalls only: a stall is a large crop the classifier names well, and at dusk the detector scores it
    # 0.25-0.40 (held-out vending 0.87 -> 0.93). For garbage too it was measured and lost: no bag gained, and
    # a case on a violation-free fresh scene (docs/PERFORMANCE.md, 2026-12-07).
    SECOND_OPINION_TYPES = ("street_vending",)

    def __init__(
        self,
        site: SiteConfig,
        camera: CameraConfig,
        *,
        tracker: CameraTracker | None = None,
        verifier: Verifier | None = None,
    ) -> None:
        from vision.edge.tracking import CameraTracker

        self.site = site
        self.camera = camera
        self.detect_fps = camera.sampling.detect_fps
        self.clip_fps = site.evidence.clip_fps or self.detect_fps
        self.sample_fps = max(self.detect_fps, self.clip_fps)
        self.tracker = tracker or CameraTracker(site.tracker, fps_hint=self.detect_fps)
        self.rules = CameraRules.for_site(site, camera)
        ev = site.evidence
        longest_dwell = max([site.rule(n).dwell_s for n in camera.rules] or [0.0])
        self.ring = FrameRing(
            max_seconds=longest_dwell + ev.clip_before_s + ev.clip_after_s + 5.0,
            max_bytes=int(ev.buffer_max_mb * (1 << 20)),
            jpeg_quality=ev.jpeg_quality,
            dense_s=ev.clip_before_s + ev.clip_after_s + 2.0,
            sparse_interval_s=1.0 / self.detect_fps,
        )
        self._awaited: list[_AwaitedClip] = []
        self.verifier = verifier
        self.gate = VerifierGate(site, camera.id, verifier)
        # Moving objects a rule follows (trucks and their mud): while one is in view the camera looks at full rate.
        follow = [r for r in (site.rule(n) for n in camera.rules) if isinstance(r, MuddyTruckRuleConfig)]
        self.follow_classes = {c for r in follow for c in (*r.classes, *r.mud_classes)}
        self.follow_looks = {c for r in follow for c in r.mud_classes}  # models holding these must look again
        self._followed: np.ndarray = np.empty((0, 4))  # boxes of followed objects at the last look that had any
        self.static = self._static_candidates()
        self.namer = self._proposal_namer()
        self.moving = self._moving_vehicles()
        self._exit_mask: tuple[tuple[int, int], np.ndarray] | None = None
        self._watch: tuple[tuple[int, int], np.ndarray] | None = None
        self._next_detect_t: float | None = None
        self._full_rate_until_t: float | None = None
        self.frames = 0
        self.processed = 0
        self.last_t: float | None = None

    @property
    def dropped(self) -> Counter[str]:
        """Rule name -> candidates the verifier dropped."""
        return self.gate.dropped

    @property
    def recent_verdicts(self) -> list[RecentVerdict]:
        """The verifier's last looks at this camera's candidates, oldest first."""
        return list(self.gate.recent)

    @property
    def unverified(self) -> dict[uuid.UUID, tuple[Violation, float]]:
        """Dropped candidates still held by their rule, waiting for a second look."""
        return self.gate.held

    # --- frames -----------------------------------------------------------------------------------
    def add_frame(self, frame: FrameLike) -> bool:
        """Buffer a frame for clips; True when it is due for detection."""
        self.frames += 1
        self.last_t = frame.t_s
        self.ring.add(frame.t_s, frame.captured_at, frame.image)
        interval = 1.0 / self.detect_fps
        slack = 0.5 / self.sample_fps  # sampling jitter must not skip a beat
        if self._next_detect_t is None or frame.t_s >= self._next_detect_t - slack:
            # a fixed grid keeps the average at detect_fps; after a gap, restart the grid
            nxt = (frame.t_s if self._next_detect_t is None else self._next_detect_t) + interval
            self._next_detect_t = nxt if nxt > frame.t_s else frame.t_s + interval
            return True
        # a truck moving near an exit: every sampled frame is looked at, so its track holds between looks
        # (a small truck moves further than its own length between two looks at 1-2 fps)
        return self._full_rate_until_t is not None and frame.t_s <= self._full_rate_until_t

    def process(self, frame: FrameLike, detections: sv.Detections) -> tuple[Observation, list[RuleEvent]]:
        """A due frame's detections -> tracks -> rule events, those the verifier drops held back."""
        h, w = frame.image.shape[:2]
        if self.namer is not None and len(detections):
            named = self.namer.update(
                frame.image, frame.t_s, detections, self._watch_mask(w, h), self._vehicle_mask(w, h)
            )
            if len(named):
                detections = merge_detections([detections, named])
        if self.moving is not None:
            moving = self.moving.update(frame.image, frame.t_s, detections, self._vehicle_mask(w, h))
            if len(moving):
                detections = merge_detections([detections, moving])
        if self.static is not None:
            extra = self.static.update(frame.image, frame.t_s, detections, self._watch_mask(w, h))
            if len(extra):
                detections = merge_detections([self.static.supersede(detections, extra), extra])
        tracked = self.tracker.update(detections, frame.t_s)
        obs = Observation(
            camera_id=self.camera.id,
            t_s=frame.t_s,
            captured_at=frame.captured_at,
            width=w,
            height=h,
            detections=tracked,
            image=frame.image,
            index=frame.index,
        )
        events = self.gate.admit(self.rules.update(obs), obs, self.rules.boxes_now)
        self.processed += 1
        return obs, events

    def followed_moving(self, detections: sv.Detections) -> bool:
        """A followed object (a truck) that is new or moved since the last look; a parked one does not count."""
        names = detections.data.get("class_name")
        if not self.follow_classes or names is None or len(detections) == 0:
            return False
        followed = np.isin(np.asarray(names, dtype=object), list(self.follow_classes))
        if detections.confidence is not None:  # a faint box flickering between looks is not a truck driving in
            followed &= np.asarray(detections.confidence) >= self.site.tracker.activation_confidence
        boxes = detections.xyxy[followed]
        if len(boxes) == 0:
            return False
        previous, self._followed = self._followed, boxes
        return len(previous) == 0 or bool((box_iou(boxes, previous).max(axis=1) < FOLLOW_STILL_IOU).any())

    def full_rate_until(self, t_s: float) -> None:
        """Look at every sampled frame until stream time `t_s` (a followed truck is moving)."""
        self._full_rate_until_t = max(t_s, self._full_rate_until_t or t_s)

    # --- zones from the center ----------------------------------------------------------------------
    def replace_zones(self, site: SiteConfig, camera: CameraConfig) -> list[str]:
        """Run the camera's zones as `camera` has them now (a zone version from the center), from the
        next frame on; the tracker, the frame ring and the clips being recorded carry on.

        A rule whose zones (those it names, else every zone of its kind) keep their names, kinds and
        points keeps its engine and all it remembers: objects, dwell timers, open violations. A rule
        watching a zone that changed starts fresh: its remembered places and dwell were measured
        against the old outline, so an object already in the new zone opens its case after a full
        dwell; its open violations get no cleared or resumed event from this box, and candidates the
        verifier held back for it are dropped. Returns the names of the rules that started fresh."""

        def watched(s: SiteConfig, c: CameraConfig, name: str) -> list[ZoneConfig]:
            cfg = s.rule(name)
            return (
                [z for z in c.zones if z.name in cfg.zones]
                if cfg.zones
                else [z for z in c.zones if z.kind == cfg.zone_kind]
            )

        rules = CameraRules.for_site(site, camera)
        fresh = []
        previous = {rule.name: rule for rule in self.rules.rules}
        for i, rule in enumerate(rules.rules):
            kept = previous.get(rule.name)
            if (
                kept is not None
                and self.site.rule(rule.name) == site.rule(rule.name)
                and watched(self.site, self.camera, rule.name) == watched(site, camera, rule.name)
            ):
                rules.rules[i] = kept
            else:
                fresh.append(rule.name)
        self.site, self.camera, self.rules = site, camera, rules
        self.gate.held = {k: held for k, held in self.gate.held.items() if held[0].rule not in fresh}
        self._exit_mask = self._watch = None  # both are drawn from the zones
        return fresh

    # --- clips ------------------------------------------------------------------------------------
    def await_clip(self, violation: Violation) -> None:
        """An opened case waits until the seconds its clip keeps after onset are buffered."""
        self._awaited.append(_AwaitedClip(violation, violation.onset_t_s + self.site.evidence.clip_after_s))

    def clips_ready(self, flush: bool = False) -> list[Violation]:
        """Violations whose clip window is fully buffered (all of them when flushing, at shutdown)."""
        latest = self.ring.latest_t
        if flush:
            done, self._awaited = self._awaited, []
        elif latest is None:
            return []
        else:
            done = [a for a in self._awaited if latest >= a.ready_at_t]
            self._awaited = [a for a in self._awaited if latest < a.ready_at_t]
        return [a.violation for a in done]

    def clip_frames(self, violation: Violation) -> list[BufferedFrame]:
        """The ring's frames of the violation's clip window (immutable JPEGs: no copy needed)."""
        return self.ring.window(*clip_window(violation, self.site.evidence))

    # --- what the verifier's classifier adds to the detections -------------------------------------
    def _stationary_classes(self) -> set[str]:
        """The classes this camera's stationary rules consume."""
        rules = (self.site.rule(n) for n in self.camera.rules)
        return {c for r in rules if r.type in self.STATIONARY_TYPES for c in r.classes}

    def _static_candidates(self) -> StaticCandidates | None:
        # left out of the site: on, with the defaults, wherever there is a verifier to name the regions
        cfg = self.site.static_objects or StaticObjectsConfig()
        if not cfg.enabled or self.verifier is None:
            return None
        wanted = self._stationary_classes()
        if not wanted:
            return None
        from vision.edge.detection.static_candidates import StaticCandidates

        return StaticCandidates(
            cfg.finder,
            _CurrentClassifier(self.verifier),
            wanted,
            min_score=cfg.min_score,
            reclassify_s=cfg.reclassify_s,
            cover_min_confidence=self.site.tracker.activation_confidence,
        )

    def _proposal_namer(self) -> ProposalNamer | None:
        cfg = self.site.verifier
        if cfg is None or not cfg.name_objects or self.verifier is None:
            return None
        wanted = self._stationary_classes()
        name_vehicles = any(self.site.rule(n).type == "muddy_truck" for n in self.camera.rules)
        if not wanted and not name_vehicles:
            return None
        from vision.edge.detection.proposal_naming import ProposalNamer

        weak_below: dict[str, float] = {}
        for rule in (self.site.rule(n) for n in self.camera.rules):
            if rule.type in self.SECOND_OPINION_TYPES:
                for c in rule.classes:
                    weak_below[c] = max(weak_below.get(c, 0.0), rule.min_confidence)
        return ProposalNamer(
            _CurrentClassifier(self.verifier),
            wanted,
            name_vehicles=name_vehicles,
            min_score=cfg.name_min_score,
            weak_below=weak_below,
            vehicle_classifier=_CurrentClassifier(self.verifier, "muddy_truck"),
            stay_looks=STAY_LOOKS,
            vehicle_stand_s=VEHICLE_STAND_S,
        )

    def _moving_vehicles(self) -> MovingVehicles | None:
        cfg = self.site.verifier
        if cfg is None or not cfg.name_moving or self.verifier is None:
            return None
        if not any(self.site.rule(n).type == "muddy_truck" for n in self.camera.rules):
            return None
        from vision.edge.detection.moving_objects import MovingObjectFinder, MovingVehicles

        return MovingVehicles(
            MovingObjectFinder(),
            _CurrentClassifier(self.verifier, "muddy_truck"),
            min_score=cfg.name_min_score,
            covered_min_confidence=self.site.tracker.activation_confidence,
        )

    def _vehicle_mask(self, width: int, height: int) -> np.ndarray:
        """Around this camera's site exits: where a vehicle is worth a look for mud."""
        if self._exit_mask is None or self._exit_mask[0] != (width, height):
            import cv2

            geometry = self.rules.zones.at(width, height)
            canvas = np.zeros((height, width), dtype=np.uint8)
            for i, kind in enumerate(geometry.kinds):
                if kind != "site_exit":
                    continue
                pts = np.round(geometry.points_px[i]).astype(np.int32)
                if geometry.is_line[i]:
                    cv2.polylines(canvas, [pts], False, 1, thickness=max(3, height // 10))
                else:
                    cv2.fillPoly(canvas, [pts], 1)
            self._exit_mask = ((width, height), canvas.astype(bool))
        return self._exit_mask[1]

    def _watch_mask(self, width: int, height: int) -> np.ndarray:
        """The zones of this camera's stationary rules (and the space above them), once per frame size."""
        if self._watch is None or self._watch[0] != (width, height):
            from vision.edge.config import RULE_ZONE_KIND
            from vision.edge.detection.static_candidates import watch_mask_for

            geometry = self.rules.zones.at(width, height)
            names: set[str] = set()
            for rule in (self.site.rule(n) for n in self.camera.rules):
                if rule.type in self.STATIONARY_TYPES:
                    kind = RULE_ZONE_KIND[rule.type]
                    names |= set(rule.zones or [z.name for z in self.camera.zones if z.kind == kind])
            idx = [geometry.index(n) for n in sorted(names) if n in geometry.names]
            self._watch = ((width, height), watch_mask_for(geometry.masks[idx]))
        return self._watch[1]


class _CurrentClassifier:
    """The verifier's head for a violation type (or its default head) as it is now: a rolled-out version
    replaces it in place."""

    def __init__(self, verifier: Verifier, violation_type: str = ""):
        self.verifier = verifier
        self.violation_type = violation_type

    def classify(self, image: np.ndarray, boxes_xyxy: np.ndarray) -> list[CropVerdict]:
        return self.verifier.classifier_for(self.violation_type).classify(image, boxes_xyxy)

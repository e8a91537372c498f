"""The crop verifier's second look, between a camera's rules and its cases.

A rule that asks for verification (`verify: true`) opens a *candidate*; it becomes a case
only when the verifier accepts its crop. A dropped candidate is counted per rule and,
while its rule still holds it, looked at again every `verifier.recheck_s` stream seconds
(the object may have been occluded at the first look): a later look that accepts it opens
its case then, stamped with that look's time. A second look crops where the rule sees the
objects *now* (`boxes_now`), not the boxes of the first look: a box cut short by a
passer-by, or one that took in the bin beside a bag, must not be judged again. A truck
drives on, so a dropped truck gets no second look. A verifier that fails opens the case
unverified: a bug must not cost a case. The last verdicts are kept (`recent`) for the box's
health endpoint and the demo's summary: "why did this truck open no case?" is answered
there, not only in a debug log nobody had on.
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import replace
from typing import TypedDict

import numpy as np

from vision.edge.config import SiteConfig, VerifierConfig
from vision.edge.rules import Observation, RuleEvent, Violation
from vision.edge.rules.base import union_box
from vision.edge.verify.verifier import Verifier

log = logging.getLogger("vision.edge.daemon")

__all__ = ["VerifierGate", "RecentVerdict"]


class RecentVerdict(TypedDict):
    """One look of the verifier at a candidate, as the health endpoint and the demo report it."""

    t_s: float  # stream time of the look
    rule: str
    candidate: str  # the violation id (the case's id once accepted)
    accepted: bool
    label: str
    score: float
    reason: str
    tallest_px: float


class VerifierGate:
    """One camera's gate: `admit(events, obs)` is the rule events with the dropped candidates held back."""

    MAX_HELD = 256  # candidates waiting for a second look; the oldest is forgotten beyond this
    RECENT = 32  # verdicts kept for the health endpoint and the demo's summary

    def __init__(self, site: SiteConfig, camera_id: str, verifier: Verifier | None):
        self.site = site
        self.camera_id = camera_id
        self.verifier = verifier
        cfg = site.verifier or VerifierConfig()
        self.recheck_s = cfg.recheck_s
        self.held: dict[uuid.UUID, tuple[Violation, float]] = {}  # violation id -> (violation, next look at t)
        self.dropped: Counter[str] = Counter()  # rule name -> candidates the verifier dropped
        self.recent: deque[RecentVerdict] = deque(maxlen=self.RECENT)  # the last verdicts, oldest first

    def admit(
        self,
        events: list[RuleEvent],
        obs: Observation,
        boxes_now: Callable[[Violation], list[tuple[float, float, float, float]] | None] | None = None,
    ) -> list[RuleEvent]:
        """The events that stand: others pass, an "opened" one of a verified rule only once accepted.
        `boxes_now(violation)`: where its rule sees a held candidate's objects now (None: as first seen)."""
        if self.verifier is None:
            return events
        out: list[RuleEvent] = []
        for ev in events:
            v = ev.violation
            if v.id in self.held:
                if ev.kind == "cleared":
                    del self.held[v.id]
                continue  # the rule's "resumed" of a candidate never opened is no case either
            if ev.kind not in ("opened", "grew") or not self.site.rule(v.rule).verify:
                out.append(ev)
            elif ev.kind == "grew":  # the objects that joined get their own look: a person is no third bike
                joined = list(ev.joined_px) or [v.box_px]
                look = replace(v, object_boxes_px=joined, box_px=union_box(np.asarray(joined, dtype=np.float64)))
                if self._accepted(look, obs):
                    out.append(ev)
            elif self._accepted(v, obs):
                out.append(ev)
            elif v.violation_type != "muddy_truck":  # a truck drives on: no second look at the same box
                self.held[v.id] = (v, obs.t_s + self.recheck_s)
                while len(self.held) > self.MAX_HELD:
                    del self.held[next(iter(self.held))]
        due = next((vid for vid, (_, at) in self.held.items() if obs.t_s >= at), None)
        if due is not None:  # at most one second look per frame: bounded cost
            v, _ = self.held.pop(due)
            now = boxes_now(v) if boxes_now is not None else None
            if now:  # the case opens with what its rule sees now, count included (objects that joined meanwhile)
                v.object_boxes_px = now
                v.box_px = union_box(np.asarray(now, dtype=np.float64))
                v.object_count = len(now)
            if self._accepted(v, obs):
                v.detected_t_s, v.detected_at = obs.t_s, obs.captured_at
                out.append(RuleEvent("opened", v))
            else:
                self.held[v.id] = (v, obs.t_s + self.recheck_s)
        return out

    def _accepted(self, v: Violation, obs: Observation) -> bool:
        assert self.verifier is not None
        try:
            if obs.image is None:
                raise ValueError("the frame has no image to crop")
            verdict = self.verifier.check(v, obs.image, obs.detections)
        except Exception:  # noqa: BLE001 - a verifier failure must not cost the case
            log.exception(
                "camera %s: verifier failed on %s violation %s; case opened unverified", self.camera_id, v.rule, v.id
            )
            return True
        v.verification = verdict.as_dict()
        tallest = max((b[3] - b[1] for b in v.object_boxes_px or [v.box_px]), default=0.0)
        self.recent.append(
            RecentVerdict(
                t_s=round(obs.t_s, 2),
                rule=v.rule,
                candidate=str(v.id),
                accepted=verdict.accepted,
                label=verdict.label,
                score=round(verdict.score, 3),
                reason=verdict.reason,
                tallest_px=round(float(tallest), 1),
            )
        )
        if verdict.accepted:
            log.debug(
                "camera %s: %s candidate %s confirmed by the verifier%s (label %s, score %.2f, %.0f px tall)",
                self.camera_id,
                v.rule,
                v.id,
                verdict.reason.removeprefix("confirmed"),  # " on 6 looks" when a truck's views were judged
                verdict.label,
                verdict.score,
                tallest,
            )
        else:
            self.dropped[v.rule] += 1
            log.debug(
                "camera %s: %s candidate %s dropped by the verifier: %s (label %s, score %.2f, %.0f px tall)",
                self.camera_id,
                v.rule,
                v.id,
                verdict.reason,
                verdict.label,
                verdict.score,
                tallest,
            )
        return verdict.accepted

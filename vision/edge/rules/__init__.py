"""Violation rules: tracked detections of one camera in, violation events out.

`CameraRules` holds one camera's rule set and computes the zone geometry once
per frame size; `build_rule` maps a rule config to its engine.
"""

from __future__ import annotations

import logging

from vision.edge.config import CameraConfig, SiteConfig
from vision.edge.rules.base import ConfidenceSample, Observation, Rule, RuleEvent, Violation
from vision.edge.rules.exposed_garbage import ExposedGarbageRule
from vision.edge.rules.muddy_truck import MuddyTruckRule
from vision.edge.rules.non_motor_parking import NonMotorParkingRule
from vision.edge.rules.street_vending import StreetVendingRule
from vision.edge.zones import ZoneSet

__all__ = [
    "CameraRules",
    "ConfidenceSample",
    "Observation",
    "Rule",
    "RuleEvent",
    "Violation",
    "build_rule",
]

log = logging.getLogger(__name__)

_ENGINES = {
    "street_vending": StreetVendingRule,
    "non_motor_parking": NonMotorParkingRule,
    "exposed_garbage": ExposedGarbageRule,
    "muddy_truck": MuddyTruckRule,
}


def build_rule(config, camera: CameraConfig) -> Rule:
    return _ENGINES[config.type](config, camera.id, camera.zones)


class CameraRules:
    """The rules of one camera; one instance per camera (rules keep per-camera state)."""

    def __init__(self, camera: CameraConfig, rule_configs: list):
        self.camera = camera
        self.zones = ZoneSet(camera.zones)
        self.rules: list[Rule] = [build_rule(cfg, camera) for cfg in rule_configs]
        self._size: tuple[int, int] | None = None

    @classmethod
    def for_site(cls, site: SiteConfig, camera: CameraConfig) -> "CameraRules":
        return cls(camera, [site.rule(name) for name in camera.rules])

    def update(self, obs: Observation) -> list[RuleEvent]:
        if self._size is not None and self._size != (obs.width, obs.height):
            # remembered locations are in pixels of the old size: start over rather than mismatch
            log.warning("camera %s: frame size changed %s -> %s; rule state reset", self.camera.id, self._size, (obs.width, obs.height))
            self.reset()
        self._size = (obs.width, obs.height)
        geometry = self.zones.at(obs.width, obs.height)
        events: list[RuleEvent] = []
        for rule in self.rules:
            events.extend(rule.update(obs, geometry))
        return events

    def state_size(self) -> int:
        return sum(rule.state_size() for rule in self.rules)

    def reset(self) -> None:
        for rule in self.rules:
            rule.reset()

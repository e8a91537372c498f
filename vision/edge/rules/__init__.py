"""Violation rules: tracked detections of one camera in, violation events out.

`CameraRules` holds one camera's rule set and computes the zone geometry once
per frame size; `build_rule` maps a rule config to its engine through the
engines' registry (`RuleEngine`). Every module of this package is imported
here, so an engine module registers itself by being in the folder.
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
from collections.abc import Sequence

from vision.edge.config import CameraConfig, RuleConfigBase, SiteConfig
from vision.edge.rules.base import ConfidenceSample, Observation, Rule, RuleEngine, RuleEvent, Violation
from vision.edge.zones import ZoneSet

__all__ = [
    "CameraRules",
    "ConfidenceSample",
    "Observation",
    "Rule",
    "RuleEngine",
    "RuleEvent",
    "Violation",
    "build_rule",
]

log = logging.getLogger(__name__)

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")


def build_rule(config: RuleConfigBase, camera: CameraConfig) -> Rule:
    engine = RuleEngine.registry.get(config.type)
    if engine is None:
        raise LookupError(f"no rule engine for rule type {config.type!r} (known: {sorted(RuleEngine.registry)})")
    return engine(config, camera.id, camera.zones)


class CameraRules:
    """The rules of one camera; one instance per camera (rules keep per-camera state)."""

    def __init__(self, camera: CameraConfig, rule_configs: Sequence[RuleConfigBase]) -> None:
        self.camera = camera
        self.zones = ZoneSet(camera.zones)
        self.rules: list[Rule] = [build_rule(cfg, camera) for cfg in rule_configs]
        self._size: tuple[int, int] | None = None

    @classmethod
    def for_site(cls, site: SiteConfig, camera: CameraConfig) -> CameraRules:
        return cls(camera, [site.rule(name) for name in camera.rules])

    def update(self, obs: Observation) -> list[RuleEvent]:
        if self._size is not None and self._size != (obs.width, obs.height):
            # remembered locations are in pixels of the old size: start over rather than mismatch
            log.warning(
                "camera %s: frame size changed %s -> %s; rule state reset",
                self.camera.id,
                self._size,
                (obs.width, obs.height),
            )
            self.reset()
        self._size = (obs.width, obs.height)
        geometry = self.zones.at(obs.width, obs.height)
        events: list[RuleEvent] = []
        for rule in self.rules:
            events.extend(rule.update(obs, geometry))
        return events

    def state_size(self) -> int:
        return sum(rule.state_size() for rule in self.rules)

    def boxes_now(self, violation: Violation) -> list[tuple[float, float, float, float]] | None:
        """Where the objects of an open violation are now, asked of the rule that holds it."""
        rule = next((r for r in self.rules if r.name == violation.rule), None)
        return rule.boxes_now(violation.id) if rule is not None else None

    def reset(self) -> None:
        for rule in self.rules:
            rule.reset()

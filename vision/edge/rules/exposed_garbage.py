"""暴露垃圾: garbage stationary in a watched zone beyond the dwell time."""

from __future__ import annotations

from vision.edge.config import ExposedGarbageRuleConfig
from vision.edge.rules.stationary import StationaryRule


class ExposedGarbageRule(StationaryRule, config=ExposedGarbageRuleConfig):
    violation_type = "exposed_garbage"

"""占道经营 / 无照经营游商: a stall, cart or staying vendor in a no-vending zone.

People are the hard part: they are everywhere. A person class counts only
while the person stays still (the shared motion check), and, when
`goods_classes` is set, only next to goods; walkers never feed the memory.
"""

from __future__ import annotations

import numpy as np

from vision.edge.config import StreetVendingRuleConfig
from vision.edge.rules.base import Observation
from vision.edge.rules.stationary import StationaryRule
from vision.edge.zones import anchor_points


class StreetVendingRule(StationaryRule, config=StreetVendingRuleConfig):
    violation_type = "street_vending"
    config: StreetVendingRuleConfig

    def _extra_ok(self, obs: Observation, points_rel: np.ndarray, candidates: np.ndarray) -> np.ndarray:
        cfg = self.config
        ok = np.ones(len(points_rel), dtype=bool)
        if not cfg.goods_classes or len(points_rel) == 0:
            return ok
        names = obs.class_names()
        people = np.isin(names, np.asarray(cfg.person_classes, dtype=object)) & candidates
        if not people.any():
            return ok
        conf = np.asarray(obs.detections.confidence, dtype=np.float64)
        goods = np.isin(names, np.asarray(cfg.goods_classes, dtype=object)) & (conf >= cfg.min_confidence)
        if not goods.any():
            ok[people] = False
            return ok
        gpts = anchor_points(obs.detections.xyxy[goods], cfg.anchor) / np.array([obs.width, obs.height])
        for i in np.flatnonzero(people):
            ok[i] = bool((np.hypot(*(gpts - points_rel[i]).T) <= cfg.cluster_distance).any())
        return ok

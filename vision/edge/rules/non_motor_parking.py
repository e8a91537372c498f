"""非机动车乱停放: bikes and motorcycles stationary in a no-parking zone, outside bike bays.

One case per cluster: the stationary engine groups the bikes within
`cluster_distance` and the case carries their count.
"""

from __future__ import annotations

import numpy as np

from vision.edge.config import NonMotorParkingRuleConfig
from vision.edge.rules.base import Observation
from vision.edge.rules.stationary import StationaryRule
from vision.edge.zones import ZoneGeometry


class NonMotorParkingRule(StationaryRule, config=NonMotorParkingRuleConfig):
    violation_type = "non_motor_parking"

    def _excluded(self, obs: Observation, geometry: ZoneGeometry, inside: np.ndarray) -> np.ndarray:
        bays = [i for i, kind in enumerate(geometry.kinds) if kind == "bike_bay"]
        if not bays or inside.shape[0] == 0:
            return np.zeros(inside.shape[0], dtype=bool)
        return np.asarray(inside[:, bays].any(axis=1))

"""Rule types: each config type of the site schema has exactly one registered engine."""

from __future__ import annotations

import pytest

from vision.edge.config import RULE_CONFIG_TYPES, RULE_ZONE_KIND, CameraConfig, RuleConfigBase, StreetVendingRuleConfig
from vision.edge.rules import RuleEngine, build_rule
from vision.edge.rules.stationary import StationaryRule


def _camera() -> CameraConfig:
    return CameraConfig.model_validate(
        {
            "id": "cam1",
            "source": "x.mp4",
            "location": {"crs": "WGS84", "lat": 30.0, "lon": 120.0},
            "grid_code": "330106001001001",
            "zones": [{"name": "pavement", "kind": "no_vending", "polygon": [[0, 0], [1, 0], [1, 1], [0, 1]]}],
        }
    )


def test_every_rule_type_has_one_engine_and_a_zone_kind():
    types = {c.model_fields["type"].default for c in RULE_CONFIG_TYPES}
    assert set(RuleEngine.registry) == types == set(RULE_ZONE_KIND)
    for rule_type, engine in RuleEngine.registry.items():
        assert engine.config_type.model_fields["type"].default == rule_type
        rule = build_rule(engine.config_type(), _camera())
        assert isinstance(rule, engine) and rule.state_size() == 0


def test_build_rule_uses_the_registered_engine_and_its_zone_kind():
    rule = build_rule(StreetVendingRuleConfig(), _camera())
    assert type(rule).__name__ == "StreetVendingRule" and rule.zone_names == ["pavement"]


def test_a_second_engine_for_a_rule_type_is_refused():
    with pytest.raises(TypeError, match="two engines for rule type 'street_vending'"):

        class AnotherStallRule(StationaryRule, config=StreetVendingRuleConfig):
            violation_type = "street_vending"


def test_a_rule_type_without_engine_names_the_known_ones():
    class Unknown(RuleConfigBase):
        type: str = "ghost_rule"

    with pytest.raises(LookupError, match="no rule engine for rule type 'ghost_rule'"):
        build_rule(Unknown(classes=["x"], dwell_s=1), _camera())
    assert "ghost_rule" not in RuleEngine.registry

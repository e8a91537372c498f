"""Site config sections and rule parameters added for rules, outbox, sender and daemon."""

from __future__ import annotations

import pytest

from tests.support_edge import site_dict
from vision.edge.config import ConfigError, parse_site
from vision.edge.config_check import check_site_files

ZONES = [
    {"name": "pavement", "kind": "no_vending", "polygon": [[0, 0], [1, 0], [1, 1]]},
    {"name": "gate", "kind": "site_exit", "polygon": [[0, 0.5], [1, 0.5]]},
]


def errors(data) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as exc:
        parse_site(data)
    return exc.value.errors


@pytest.mark.parametrize(
    "rule, field, text",
    [
        (
            {"type": "street_vending", "zones": ["gate"]},
            "rules.0.zones",
            "a street_vending rule watches no_vending zones",
        ),
        ({"type": "muddy_truck", "k": 6, "n": 5}, "rules.0.muddy_truck", "k (6) must be <= n (5)"),
        ({"type": "muddy_truck", "plate_views": 0}, "rules.0.muddy_truck.plate_views", "greater than or equal to 1"),
        (
            {"type": "street_vending", "min_presence": 1.5},
            "rules.0.street_vending.min_presence",
            "less than or equal to 1",
        ),
        ({"type": "exposed_garbage", "max_move": 0}, "rules.0.exposed_garbage.max_move", "greater than 0"),
        ({"type": "street_vending", "dwel_s": 10}, "rules.0.street_vending.dwel_s", "Extra inputs"),
    ],
)
def test_rule_parameter_errors_name_their_field(rule, field, text):
    errs = errors(site_dict(ZONES, [rule]))
    assert any(loc.startswith(field) and text in msg for loc, msg in errs), errs


@pytest.mark.parametrize(
    "section, field, text",
    [
        ({"dispatch": {"url": "http://d", "token": "a", "token_env": "B"}}, "dispatch", "either token or token_env"),
        ({"dispatch": {"url": "ftp://d"}}, "dispatch.url", "pattern"),
        ({"dispatch": {"url": "http://d", "backoff_initial_s": 10, "backoff_max_s": 1}}, "dispatch", "backoff_max_s"),
        ({"outbox": {"max_evidence_mb": 0}}, "outbox.max_evidence_mb", "greater than 0"),
        ({"evidence": {"clip_before_s": -1}}, "evidence.clip_before_s", "greater than or equal to 0"),
        ({"metrics": {"port": 70000}}, "metrics.port", "less than or equal to 65535"),
    ],
)
def test_site_section_errors_name_their_field(section, field, text):
    errs = errors(site_dict(ZONES, [{"type": "street_vending"}], **section))
    assert any(loc.startswith(field) and text in msg for loc, msg in errs), errs


def test_defaults_are_sane():
    site = parse_site(site_dict(ZONES, [{"type": "street_vending"}, {"type": "muddy_truck"}]))
    assert site.dispatch is None and site.outbox.path == "var/outbox" and site.metrics.port == 9108
    vending, truck = site.rules
    assert vending.dwell_s == 240 and vending.person_classes == ["person"] and vending.goods_classes == []
    assert truck.read_plates and truck.plate_views == 5
    assert site.plates is not None and site.plates.reader == "clpr-plate-reader"


def test_config_check_refuses_goods_and_mud_classes_the_model_lacks():
    site = parse_site(
        site_dict(
            ZONES,
            [
                {"type": "street_vending", "classes": ["person"], "goods_classes": ["vendor_cart"]},
                {"type": "muddy_truck", "classes": ["truck"]},
            ],
        )
    )
    problems = dict(check_site_files(site))
    assert "vendor_cart" in problems["rules.0.goods_classes"]
    assert "muddy_truck" in problems["rules.1.mud_classes"] and "coco-nanodet" in problems["rules.1.mud_classes"]
    assert "rules.0.classes" not in problems and "rules.1.classes" not in problems


def test_missing_token_env_refuses_to_start(tmp_path, monkeypatch):
    from vision.edge.delivery.outbox import Outbox
    from vision.edge.delivery.sender import Sender

    site = parse_site(
        site_dict(
            ZONES, [{"type": "street_vending"}], dispatch={"url": "http://127.0.0.1:9", "token_env": "SV_TEST_TOKEN"}
        )
    )
    monkeypatch.delenv("SV_TEST_TOKEN", raising=False)
    with pytest.raises(ValueError, match="SV_TEST_TOKEN is not set"):
        Sender.from_config(Outbox(tmp_path / "ob"), site.dispatch, site.site_id)
    monkeypatch.setenv("SV_TEST_TOKEN", "secret")
    sender = Sender.from_config(Outbox(tmp_path / "ob2"), site.dispatch, site.site_id)
    assert sender._client.headers["Authorization"] == "Bearer secret"
    assert sender._client.headers["X-Device-Id"] == "test-site"
    sender.stop()

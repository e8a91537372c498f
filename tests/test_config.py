"""Site config: valid files load, bad ones name the field, the CLI never shows a traceback."""

from __future__ import annotations

import copy
import json
import subprocess
import sys

import pytest
import yaml

from vision.edge.config import ConfigError, load_site, parse_site

VALID = {
    "site_id": "demo-box-1",
    "detector": {"model": "coco-nanodet"},
    "cameras": [
        {
            "id": "cam-1",
            "source": "datasets/footage/vtest.avi",
            "location": {"crs": "WGS84", "lat": 31.2304, "lon": 121.4737},
            "grid_code": "310101001001001",
            "sampling": {"detect_fps": 2},
            "zones": [
                {"name": "footpath", "kind": "no_parking", "polygon": [[0, 0.5], [1, 0.5], [1, 1], [0, 1]]},
                {"name": "exit", "kind": "site_exit", "polygon": [[0.2, 0.3], [0.8, 0.3]]},
            ],
            "rules": ["bikes"],
        }
    ],
    "rules": [{"type": "non_motor_parking", "name": "bikes", "dwell_s": 60}],
}


def errors_of(data) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as exc:
        parse_site(data)
    return exc.value.errors


def mutate(path: str, value):
    data = copy.deepcopy(VALID)
    node = data
    keys = path.split(".")
    for k in keys[:-1]:
        node = node[int(k)] if k.isdigit() else node[k]
    last = keys[-1]
    if last.isdigit():
        node[int(last)] = value
    else:
        node[last] = value
    return data


def test_valid_site_loads():
    site = parse_site(VALID)
    cam = site.cameras[0]
    assert cam.zones[1].is_line and site.rule("bikes").dwell_s == 60
    assert site.rules[0].classes == ["bicycle", "motorcycle"]


@pytest.mark.parametrize(
    "data, field, words",
    [
        (mutate("cameras.0.sampling.detcet_fps", 2), "cameras.0.sampling.detcet_fps", "Extra inputs"),
        (mutate("cameraz", []), "cameraz", "Extra inputs"),
        (mutate("cameras.0.zones.0.polygon", [[0, 0], [1, 1]]), "cameras.0.zones.0.polygon", "at least 3 points"),
        (
            mutate("cameras.0.zones.0.polygon", [[0, 0], [1.5, 0], [1, 1]]),
            "cameras.0.zones.0.polygon.1.0",
            "less than or equal to 1",
        ),
        (mutate("cameras.0.zones.0.polygon", [[0, 0], [1, 1], [1, 0], [0, 1]]), "cameras.0.zones.0.polygon", "cross"),
        (mutate("cameras.0.zones.0.polygon", [[0, 0], [0.5, 0.5], [1, 1]]), "cameras.0.zones.0.polygon", "zero area"),
        (mutate("cameras.0.zones.0.kind", "no_smoking"), "cameras.0.zones.0.kind", "no_vending"),
        (mutate("cameras.0.rules", ["bikes", "stalls"]), "cameras.0.rules.1", "unknown rule 'stalls'"),
        (mutate("rules.0", {"type": "jaywalking"}), "rules.0", "jaywalking"),
        (mutate("rules.0.dwell_s", -5), "rules.0.non_motor_parking.dwell_s", "greater than or equal to 0"),
        (mutate("cameras.0.grid_code", "12345"), "cameras.0.grid_code", "pattern"),
        (mutate("cameras.0.location.crs", "EPSG:9999"), "cameras.0.location.crs", "WGS84"),
        (mutate("cameras.0.sampling", {"detect_fps": 5, "decode": "keyframes"}), "cameras.0.sampling", "keyframes"),
    ],
)
def test_bad_field_is_named(data, field, words):
    errors = errors_of(data)
    assert any(loc == field and words in msg for loc, msg in errors) or any(
        words in f"{loc}: {msg}" and loc.startswith(field) for loc, msg in errors
    ), errors


def test_duplicate_camera_ids_refused():
    data = copy.deepcopy(VALID)
    data["cameras"].append(copy.deepcopy(data["cameras"][0]))
    assert any("used twice" in msg for _, msg in errors_of(data))


def test_yaml_syntax_error_names_the_line(tmp_path):
    f = tmp_path / "site.yaml"
    f.write_text("site_id: x\ncameras: [\n  - id: a\n")
    with pytest.raises(ConfigError) as exc:
        load_site(f)
    assert "line" in exc.value.errors[0][0]


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "vision", *args], capture_output=True, text=True, timeout=60)


def test_cli_check_ok(tmp_path):
    f = tmp_path / "site.yaml"
    f.write_text(yaml.safe_dump(VALID))
    res = run_cli("config", "check", str(f))
    assert res.returncode == 0, res.stderr
    assert "ok (1 camera(s), 2 zone(s), 1 rule(s))" in res.stdout


@pytest.mark.parametrize(
    "data, expect",
    [
        (mutate("cameras.0.zones.0.polgon", [[0, 0], [1, 0], [1, 1]]), "cameras.0.zones.0.polgon: Extra inputs"),
        (mutate("cameras.0.zones.0.polygon", [[0, 0], [1, 1], [1, 0], [0, 1]]), "cameras.0.zones.0.polygon: edges"),
        (mutate("cameras.0.rules", ["nope"]), "unknown rule 'nope'"),
        (mutate("rules.0.type", "jaywalking"), "rules.0"),
    ],
)
def test_cli_check_errors_without_traceback(tmp_path, data, expect):
    f = tmp_path / "site.yaml"
    f.write_text(yaml.safe_dump(data))
    res = run_cli("config", "check", str(f))
    assert res.returncode == 1
    assert expect in res.stderr, res.stderr
    assert "Traceback" not in res.stderr


def test_cli_refuses_rule_whose_classes_the_model_lacks(tmp_path):
    data = copy.deepcopy(VALID)
    data["rules"].append({"type": "street_vending", "name": "stalls"})
    data["cameras"][0]["rules"].append("stalls")
    f = tmp_path / "site.yaml"
    f.write_text(yaml.safe_dump(data))
    res = run_cli("config", "check", str(f))
    assert res.returncode == 1
    assert "rules.1.classes" in res.stderr and "vendor_stall" in res.stderr and "coco-nanodet" in res.stderr
    assert "Traceback" not in res.stderr


def test_cli_missing_file(tmp_path):
    res = run_cli("config", "check", str(tmp_path / "nope.yaml"))
    assert res.returncode == 1 and "cannot read" in res.stderr and "Traceback" not in res.stderr


def test_cli_schema_is_json_schema():
    res = run_cli("config", "schema")
    assert res.returncode == 0
    schema = json.loads(res.stdout)
    assert schema["additionalProperties"] is False
    assert "cameras" in schema["properties"] and "ZoneConfig" in schema["$defs"]


def _with(**sections):
    data = copy.deepcopy(VALID)
    data.update(sections)
    return data


DISPATCH = {"url": "http://127.0.0.1:8000", "token": "t"}


@pytest.mark.parametrize(
    "data, field, words",
    [
        (_with(dispatch=DISPATCH, model_updates={}), "model_updates", "trusted_keys"),
        (
            _with(dispatch=DISPATCH, model_updates={"trusted_keys": ["bm90LWEta2V5"]}),
            "model_updates.trusted_keys",
            "32",
        ),
        (_with(model_updates={"require_signature": False}), "", "needs a dispatch section"),
        (_with(dispatch={**DISPATCH, "heartbeat_s": -1}), "dispatch.heartbeat_s", "greater than or equal to 0"),
    ],
)
def test_fleet_settings_are_checked_and_named(data, field, words):
    errors = errors_of(data)
    assert any(loc.startswith(field) and words in msg for loc, msg in errors), errors


def test_model_updates_with_a_trusted_key_load(tmp_path):
    from vision.core.signing import generate_key

    key = generate_key(tmp_path / "k")
    site = parse_site(_with(dispatch=DISPATCH, model_updates={"trusted_keys": [key], "check_every_s": 5}))
    assert site.model_updates is not None and site.model_updates.trusted_keys == [key]
    assert site.model_names() == ["coco-nanodet"]

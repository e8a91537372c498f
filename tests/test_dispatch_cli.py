"""`streetvision dispatch ...` as users run it: subprocesses, a real server process,
two stateless servers on one PostgreSQL, and the label export."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.support_dispatch import PASSWORD, case_report, make_jpeg, multipart

PY = [sys.executable, "-m", "vision", "dispatch"]


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*PY, *args], capture_output=True, text=True, timeout=120, env={**os.environ, **(env or {})})


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """The same entry point in-process (fast); `run` above is the real subprocess."""
    from vision.cli import main

    code = main(["dispatch", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_users_devices_and_errors(tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    data = str(tmp_path / "data")
    monkeypatch.setenv("SV_PW", PASSWORD)
    code, out, err = cli(capsys, "add-user", "--data-dir", data, "boss", "--role", "admin", "--password-env", "SV_PW")
    assert code == 0, err
    assert "boss (admin)" in out
    r = run("add-device", "--data-dir", data, "edge-01", "--site", "site-a")  # as a real process
    assert r.returncode == 0, r.stderr
    token = r.stdout.strip()
    assert token.startswith("svd_") and len(token) > 30 and "shown once" in r.stderr
    # the database keeps only the hash
    assert token.encode() not in (tmp_path / "data" / "dispatch.db").read_bytes()
    code, _, err = cli(capsys, "add-user", "--data-dir", data, "boss", "--password-env", "SV_PW")
    assert code == 1 and "exists" in err and "Traceback" not in err
    monkeypatch.setenv("SV_SHORT", "abc")
    code, _, err = cli(capsys, "add-user", "--data-dir", data, "short", "--password-env", "SV_SHORT")
    assert code == 1 and "password" in err
    code, _, err = cli(capsys, "add-user", "--data-dir", data, "nopw", "--password-env", "SV_UNSET_VAR")
    assert code == 1 and "SV_UNSET_VAR" in err
    bad = tmp_path / "bad.yaml"
    bad.write_text("departments: []\ndefault_department: x\n")
    code, _, err = cli(capsys, "add-device", "--data-dir", data, "edge-02", "--config", str(bad))
    assert code == 1 and "departments" in err and str(bad) in err
    r = run("migrate", "--db", "postgresql+psycopg://nobody@127.0.0.1:9/none")
    assert r.returncode == 1 and "database" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.slow
def test_two_servers_share_one_postgresql(pg_server, tmp_path: Path, snapshot_jpeg: bytes) -> None:
    from vision.dispatch.server import spawn_server
    from vision.dispatch.settings import Settings

    db = pg_server.fresh_database()
    settings = Settings(data_dir=tmp_path / "shared", db_url=db)
    token = run("add-device", "--data-dir", str(settings.data_dir), "--db", db, "edge-01", "--any-site").stdout.strip()
    assert (
        run(
            "add-user",
            "--data-dir",
            str(settings.data_dir),
            "--db",
            db,
            "ops",
            "--role",
            "reviewer",
            "--password-env",
            "SV_PW",
            env={"SV_PW": PASSWORD},
        ).returncode
        == 0
    )
    procs = []
    try:
        (p1, url1), (p2, url2) = spawn_server(settings), spawn_server(settings)
        procs = [p1, p2]
        ev = {"snapshot.jpg": ("snapshot", "image/jpeg", snapshot_jpeg)}
        report = case_report(ev)
        dev = {"Authorization": f"Bearer {token}"}
        r1 = httpx.post(url1 + "/api/v1/cases", headers=dev, **multipart(report, ev))
        r2 = httpx.post(url2 + "/api/v1/cases", headers=dev, **multipart(report, ev))  # replay via the other worker
        assert (r1.status_code, r2.status_code) == (201, 200)
        assert r1.json()["case_id"] == r2.json()["case_id"]
        login = httpx.post(url2 + "/api/v1/auth/login", json={"username": "ops", "password": PASSWORD}).json()
        h = {"Authorization": f"Bearer {login['access_token']}"}
        r = httpx.post(f"{url1}/api/v1/cases/{r1.json()['case_id']}/transitions", json={"action": "accept"}, headers=h)
        assert r.status_code == 200  # a token issued by one worker works on the other
        snap = r.json()["evidence"][0]["url"]
        assert httpx.get(url2 + snap, headers=h).content == snapshot_jpeg
    finally:
        for p in procs:
            p.terminate()
            p.wait(15)


def test_export_labels_cli(tmp_path: Path, fast_passwords) -> None:
    from vision.core.cases import CaseReport
    from vision.dispatch.notify import Notifier
    from vision.dispatch.service import ClientPrincipal, DispatchService, OperatorPrincipal, Upload
    from vision.dispatch.settings import Settings
    from vision.dispatch.workflow import Role

    settings = Settings(data_dir=tmp_path / "data")
    service = DispatchService.from_settings(settings, notifier=Notifier())
    cid, _ = service.create_client("edge-01", "device", None, site_less=True)
    device = ClientPrincipal(cid, "edge-01", "device", None)
    admin = OperatorPrincipal(1, "admin", Role.ADMIN, "api")
    import io

    ids = {}
    for i, (violation, cam) in enumerate(
        [("street_vending", "c1"), ("exposed_garbage", "c2"), ("non_motor_parking", "c3"), ("muddy_truck", "c4")]
    ):
        jpg = make_jpeg(seed=i)
        ev = {"snap.jpg": ("snapshot", "image/jpeg", jpg)}
        report = CaseReport.model_validate(
            case_report(ev, camera_id=cam, violation=violation, bbox=(0.1, 0.2, 0.5, 0.6))
        )
        ids[violation] = service.intake(device, report, {"snap.jpg": Upload(io.BytesIO(jpg))}).case_id
    service.transition(admin, ids["street_vending"], "accept")
    service.transition(admin, ids["exposed_garbage"], "accept")
    service.transition(admin, ids["exposed_garbage"], "dispatch")
    service.transition(admin, ids["non_motor_parking"], "reject", reason="bikes in the bay")
    # two-wheeler cases are labelled with what the edge detected: an e-bike case is a motorcycle
    for cam, classes in (("c5", ["motorcycle"]), ("c6", ["bicycle", "motorcycle"])):
        jpg = make_jpeg(seed=len(ids))
        report = CaseReport.model_validate(
            case_report(
                {"snap.jpg": ("snapshot", "image/jpeg", jpg)},
                camera_id=cam,
                violation="non_motor_parking",
                bbox=(0.1, 0.2, 0.5, 0.6),
                classes=classes,
            )
        )
        ids[cam] = service.intake(device, report, {"snap.jpg": Upload(io.BytesIO(jpg))}).case_id
        service.transition(admin, ids[cam], "accept")
    # muddy_truck stays suspected: not reviewed, not exported
    service.close()

    out = tmp_path / "labels"
    r = run("export-labels", "--data-dir", str(settings.data_dir), str(out))
    assert r.returncode == 0, r.stderr
    assert "4 labelled, 1 hard negative" in r.stdout
    rows = {row["case_id"]: row for row in map(json.loads, (out / "manifest.jsonl").read_text().splitlines())}
    assert set(rows) == {ids[k] for k in ("street_vending", "exposed_garbage", "non_motor_parking", "c5", "c6")}
    moto, both = rows[ids["c5"]], rows[ids["c6"]]
    assert moto["class"] == "motorcycle" and moto["detected_classes"] == ["motorcycle"]
    assert (out / moto["label"]).read_text().startswith("3 ")  # names: ..., bicycle 2, motorcycle 3
    assert both["class"] == "bicycle"  # both detected, one box: the type's default
    sv, garbage, bikes = rows[ids["street_vending"]], rows[ids["exposed_garbage"]], rows[ids["non_motor_parking"]]
    assert (out / sv["label"]).read_text() == "0 0.300000 0.400000 0.400000 0.400000\n"
    assert (out / garbage["label"]).read_text().startswith("1 ")
    assert garbage["class"] == "garbage" and garbage["status"] == "dispatched"
    assert (out / bikes["label"]).read_text() == "" and bikes["outcome"] == "rejected"
    assert bikes["reason"] == "bikes in the bay" and bikes["model_version"] == "2026.11-test"
    for row in rows.values():
        assert (out / row["image"]).read_bytes()[:3] == b"\xff\xd8\xff"
        assert set(row) >= {"case_id", "image", "label", "outcome", "reason", "model_version", "model_name"}
    import yaml

    data = yaml.safe_load((out / "data.yaml").read_text())
    assert data["names"] == {0: "vendor_stall", 1: "garbage", 2: "bicycle", 3: "motorcycle", 4: "muddy_truck"}


def test_cli_help_lists_the_actions() -> None:
    r = subprocess.run(
        [sys.executable, "-m", "vision", "dispatch", "--help"], capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 0
    for action in ("serve", "migrate", "add-user", "add-device", "export-labels"):
        assert action in r.stdout

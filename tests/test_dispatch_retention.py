"""Evidence retention at the center, on SQLite and PostgreSQL: finished cases (结案, 误报) lose
their clips and then their images after the configured days, keep their record and say why
in their history; cases still in the workflow keep everything; a file another case still names
stays on disk; two center nodes expiring at once expire each case once; a bad policy names
its field."""

from __future__ import annotations

import hashlib
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support_dispatch import PASSWORD, Dispatch, build_dispatch, case_report, make_jpeg

REPO = Path(__file__).resolve().parents[1]
FAR = 10**11  # a collection "now" past any grace period


def _report(d: Dispatch, seed: int, clip: bytes, camera: str) -> int:
    evidence = {
        "snapshot.jpg": ("snapshot", "image/jpeg", make_jpeg(seed=seed)),
        "clip.mp4": ("clip", "video/mp4", clip),
    }
    r = d.post_case(case_report(evidence, camera_id=camera), evidence)
    assert r.status_code == 201, r.text
    return int(r.json()["case_id"])


def _close(d: Dispatch, cid: int) -> None:
    assert d.act(cid, "accept", "reviewer").status_code == 200
    assert d.act(cid, "dispatch", "dispatcher", department="street_office").status_code == 200
    r = d.client.post(
        f"/api/v1/cases/{cid}/handle",
        headers=d.auth("dispatcher"),
        files={"after_photo": ("after.jpg", make_jpeg(seed=cid + 100), "image/jpeg")},
        data={"reason": "stall removed"},
    )
    assert r.status_code == 200, r.text
    assert d.act(cid, "verify", "reviewer").status_code == 200
    assert d.act(cid, "close", "reviewer").json()["status"] == "closed"


def _days_later(d: Dispatch, days: float) -> None:
    d.clock_holder["offset"] = timedelta(days=days)  # type: ignore[attr-defined]


def _case(d: Dispatch, cid: int) -> dict[str, Any]:
    """The case as the API shows it, read at today's clock (the operators' tokens do not last years)."""
    holder = d.clock_holder  # type: ignore[attr-defined]
    offset, holder["offset"] = holder["offset"], timedelta(0)
    try:
        r = d.client.get(f"/api/v1/cases/{cid}", headers=d.auth("admin"))
    finally:
        holder["offset"] = offset
    assert r.status_code == 200, r.text
    return dict(r.json())


def _on_disk(d: Dispatch) -> set[str]:
    return {sha for sha, _ in d.service.store.stored_files()}


def test_finished_cases_lose_clips_then_images_and_keep_their_record(dispatch: Dispatch, clip_mp4: bytes) -> None:
    d = dispatch
    closed = _report(d, 1, clip_mp4, "cam-01")
    _close(d, closed)
    rejected = _report(d, 2, clip_mp4, "cam-02")
    assert d.act(rejected, "reject", "reviewer", reason="not a stall").json()["status"] == "rejected"
    open_case = _report(d, 3, clip_mp4, "cam-03")  # same clip content as the other two
    assert d.act(open_case, "accept", "reviewer").status_code == 200
    clip_sha = hashlib.sha256(clip_mp4).hexdigest()
    snapshot_sha = {n: hashlib.sha256(make_jpeg(seed=n)).hexdigest() for n in (1, 2, 3)}

    _days_later(d, 100)  # inside both times (clips 180 days, images 1095 in configs/dispatch.yaml)
    assert d.service.expire_evidence().files == 0

    _days_later(d, 200)  # the clips of the finished cases are due, nothing else
    dry = d.service.expire_evidence(dry_run=True)
    assert (dry.cases, dry.files, dry.bytes) == (2, 2, 2 * len(clip_mp4))
    assert len(_case(d, closed)["evidence"]) == 3  # a dry run deletes nothing
    done = d.service.expire_evidence()
    assert (done.cases, done.files, done.bytes) == (dry.cases, dry.files, dry.bytes)
    for cid in (closed, rejected):
        case = _case(d, cid)
        assert "clip" not in {e["kind"] for e in case["evidence"]}
        last = case["transitions"][-1]
        assert (last["action"], last["actor"], last["from_status"], last["to_status"]) == (
            "expire",
            "retention",
            case["status"],
            case["status"],
        )
        assert last["details"] == {"files": 1, "bytes": len(clip_mp4)}
    assert {e["kind"] for e in _case(d, open_case)["evidence"]} == {"snapshot", "clip"}
    d.service.collect_evidence(now=FAR)
    assert clip_sha in _on_disk(d)  # the open case still names the same content
    assert d.service.expire_evidence().files == 0  # once only

    _days_later(d, 1100)  # now the images: snapshots and the after photo
    done = d.service.expire_evidence()
    assert (done.cases, done.files) == (2, 3)
    assert _case(d, closed)["evidence"] == [] and _case(d, rejected)["evidence"] == []
    assert _case(d, closed)["status"] == "closed" and _case(d, rejected)["status"] == "rejected"
    d.service.collect_evidence(now=FAR)
    disk = _on_disk(d)
    assert snapshot_sha[1] not in disk and snapshot_sha[2] not in disk
    assert {snapshot_sha[3], clip_sha} <= disk
    assert len(_case(d, open_case)["evidence"]) == 2  # in the workflow for three years: all kept


def test_the_case_page_says_why_the_evidence_is_gone(tmp_path: Path, fast_passwords: None, clip_mp4: bytes) -> None:
    d = build_dispatch(tmp_path, f"sqlite:///{tmp_path / 'ui.db'}")
    with d.client:
        cid = _report(d, 5, clip_mp4, "cam-01")
        assert d.act(cid, "reject", "reviewer", reason="not a stall").status_code == 200
        _days_later(d, 2000)
        assert d.service.expire_evidence().files == 2
        r = d.client.post(
            "/ui/login", data={"username": "reviewer", "password": PASSWORD, "next": "/ui/"}, follow_redirects=False
        )
        assert r.status_code == 303
        page = d.client.get(f"/ui/cases/{cid}").text
    d.service.close()
    size_mb = (len(clip_mp4) + len(make_jpeg(seed=5))) / 1e6
    assert "证据过期删除" in page
    assert f"超过保存期限，已删除证据文件 2 个，共 {size_mb:.1f} MB" in page


def test_two_center_nodes_expiring_at_once_expire_each_case_once(
    dispatch: Dispatch, db_url: str, tmp_path: Path, clip_mp4: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    from vision.dispatch import retention
    from vision.dispatch.service import DispatchService

    d = dispatch
    cases = [_report(d, 10 + n, clip_mp4, f"cam-{n:02d}") for n in range(12)]
    for cid in cases:
        assert d.act(cid, "reject", "reviewer", reason="not a stall").status_code == 200
    monkeypatch.setattr(retention, "BATCH", 2)  # many small transactions: the two nodes interleave
    other = DispatchService.from_settings(d.settings)  # a second node: same database, same evidence directory
    _days_later(d, 2000)
    other.clock = d.service.clock
    results: list[retention.Expired] = []
    start = threading.Barrier(2)

    def node(service: DispatchService) -> None:
        start.wait()
        results.append(service.expire_evidence())

    threads = [threading.Thread(target=node, args=(s,)) for s in (d.service, other)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    other.close()
    assert sum(r.files for r in results) == 2 * len(cases)
    assert sum(r.cases for r in results) == len(cases)
    for cid in cases:
        expires = [t for t in _case(d, cid)["transitions"] if t["action"] == "expire"]
        assert len(expires) == 1 and expires[0]["details"]["files"] == 2


@pytest.mark.parametrize(
    ("retention", "field"),
    [({"clip_days": 0}, "retention.clip_days"), ({"image_days": "soon"}, "retention.image_days"), ({"x": 1}, "x")],
)
def test_a_bad_retention_policy_names_its_field(tmp_path: Path, retention: dict[str, Any], field: str) -> None:
    from vision.dispatch.config import ConfigError, load_dispatch_config

    cfg = yaml.safe_load((REPO / "configs" / "dispatch.yaml").read_text(encoding="utf-8"))
    cfg["map"]["grids"] = str(REPO / "configs" / cfg["map"]["grids"])
    cfg["retention"] = retention
    path = tmp_path / "dispatch.yaml"
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        load_dispatch_config(path)


def test_keep_for_ever_expires_nothing(tmp_path: Path, fast_passwords: None, clip_mp4: bytes) -> None:
    cfg = yaml.safe_load((REPO / "configs" / "dispatch.yaml").read_text(encoding="utf-8"))
    cfg["map"]["grids"] = str(REPO / "configs" / cfg["map"]["grids"])
    cfg["retention"] = {"clip_days": None, "image_days": None}
    path = tmp_path / "dispatch.yaml"
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    d = build_dispatch(tmp_path, f"sqlite:///{tmp_path / 'keep.db'}", config_path=path)
    with d.client:
        cid = _report(d, 7, clip_mp4, "cam-01")
        assert d.act(cid, "reject", "reviewer", reason="not a stall").status_code == 200
        _days_later(d, 100_000)
        assert d.service.expire_evidence().files == 0
        assert len(_case(d, cid)["evidence"]) == 2
    d.service.close()


def test_the_cli_says_what_it_would_delete_and_then_deletes_it(
    dispatch: Dispatch, clip_mp4: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    from vision.cli import main

    d = dispatch
    cid = _report(d, 8, clip_mp4, "cam-01")
    assert d.act(cid, "reject", "reviewer", reason="not a stall").status_code == 200
    args = ["dispatch", "expire-evidence", "--db", d.settings.db_url, "--data-dir", str(d.settings.data_dir)]
    capsys.readouterr()
    assert main([*args, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "clips 180 days, images 1095 days" in out and "would delete 0 evidence file(s)" in out
    # the CLI reads the real clock: age the case instead
    from sqlalchemy import update

    from vision.dispatch import models as m

    with d.service.ctx.write() as s:
        s.execute(update(m.Case).where(m.Case.id == cid).values(updated_at=m.utcnow() - timedelta(days=200)))
        s.commit()
    assert main([*args, "--dry-run"]) == 0
    assert f"would delete 1 evidence file(s) of 1 case(s), {len(clip_mp4) / 1e6:.1f} MB" in capsys.readouterr().out
    assert main(args) == 0
    assert "deleted 1 evidence file(s) of 1 case(s)" in capsys.readouterr().out
    assert [e["kind"] for e in _case(d, cid)["evidence"]] == ["snapshot"]

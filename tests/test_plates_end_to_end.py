"""Plates from the camera to the dispatch center: trucks with drawn plates cross the demo
site's exit, the real daemon reads them, its sender posts the cases to the real center.

One scene, four passes within the merge window, the same truck body each time so that
only the plate tells them apart: 苏E12345, 浙B67890, 苏E12345 again, then a truck with no
plate. Expected: three cases - 苏E12345 with two occurrences, 浙B67890 on its own, and the
plateless truck on its own although its box overlaps the others' at the same exit.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from tests.support_dispatch import build_dispatch
from vision.core.paths import REPO_ROOT
from vision.edge.config import load_site
from vision.edge.daemon import SiteRunner
from vision.edge.delivery.outbox import Outbox
from vision.edge.delivery.sender import Sender
from vision.scenarios.cache import rendered
from vision.scenarios.script import Scenario
from vision.scenarios.suite import site_for

pytestmark = pytest.mark.slow  # renders 48 s of footage and runs the daemon on it

PATH = [[1.15, 0.40], [0.55, 0.62]]  # the demo truck's way out across the road-exit line


def _truck(start: float, plate: str | None) -> dict:
    return {"kind": "muddy_truck", "start_s": start, "end_s": start + 9, "path": PATH, "seed": 14, "plate": plate}


@pytest.mark.timeout(600)
def test_cases_name_their_trucks_and_merge_by_plate(tmp_path: Path, fast_passwords: None) -> None:
    scenario = Scenario(
        name="plates-e2e",
        duration_s=48,
        fps=5,
        objects=[_truck(1, "苏E·12345"), _truck(13, "浙B67890"), _truck(25, "苏E12345"), _truck(37, None)],
    )
    video = rendered(scenario, progress=False).video
    site = site_for(load_site(REPO_ROOT / "configs" / "site-demo.yaml"), video, tmp_path / "outbox")
    summary = SiteRunner(site, live=False).run(threading.Event())
    assert summary.cases == 4, f"one case per truck pass, got {summary.cases}"

    outbox = Outbox(tmp_path / "outbox")
    queued = [outbox.get(r.key) for r in outbox.records()]
    plates = [item.report().plate for item in queued if item is not None]
    read = [p.text if p else None for p in plates]
    assert read == ["苏E12345", "浙B67890", "苏E12345", None], read
    assert all(p.colour == "yellow" and p.rows == 1 and p.confidence >= 0.8 for p in plates if p)
    for item in queued[:3]:
        assert item is not None and "plate.jpg" in {f.name for f in item.files}, "the rectified plate is evidence"

    d = build_dispatch(tmp_path / "dispatch", f"sqlite:///{tmp_path / 'dispatch.db'}")
    with d.client:
        _, token = d.service.create_client("demo-box", "device", site.site_id)
        sender = Sender(outbox, "http://testserver", token, transport=d.client._transport)
        assert sender.drain() == 4 and sender.stats.permanent_failures == 0
        cases = d.client.get("/api/v1/cases", params={"limit": 50}, headers=d.auth("admin")).json()["items"]
        by_plate = {c.get("plate_text"): c for c in cases}
        assert len(cases) == 3, [(c["id"], c.get("plate_text"), c["occurrence_count"]) for c in cases]
        assert by_plate["苏E12345"]["occurrence_count"] == 2, "the same truck twice is one case"
        assert by_plate["浙B67890"]["occurrence_count"] == 1, "another plate is another case"
        assert by_plate[None]["occurrence_count"] == 1, "a truck without a plate never merges"
        found = d.client.get("/api/v1/cases", params={"q": "苏e 12345"}, headers=d.auth("admin")).json()
        assert [c["id"] for c in found["items"]] == [by_plate["苏E12345"]["id"]]
    d.service.close()

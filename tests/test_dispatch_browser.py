"""End to end in real headless Chromium (Debian's, via Playwright): log in, review
posted cases (snapshot visible, H.264 clip plays), accept, dispatch, handle,
verify, close; reject another and find it in the label export."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support_dispatch import PASSWORD, case_report, make_jpeg, multipart

pytestmark = pytest.mark.slow  # headless Chromium sessions

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture
def server(tmp_path: Path, fast_passwords: None) -> Iterator[tuple[str, str]]:
    from vision.dispatch import bootstrap
    from vision.dispatch.server import DispatchServer
    from vision.dispatch.settings import Settings

    settings = Settings(data_dir=tmp_path / "data")
    bootstrap.create_admin(settings, "chief", PASSWORD)
    token = bootstrap.create_device(settings, "edge-01", "site-a")
    with DispatchServer(settings) as srv:
        yield srv.url, token


@pytest.fixture
def page() -> Iterator:
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), "Debian chromium missing (.ci/apt-packages.txt)"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        ctx = browser.new_context(accept_downloads=True)
        pg = ctx.new_page()
        pg.set_default_timeout(15_000)
        yield pg
        browser.close()


def _media_ok(page, case_id: int) -> None:
    card = f"#case-{case_id}"
    page.wait_for_function(f"document.querySelector('{card} img.ev-snapshot').complete")
    assert page.eval_on_selector(f"{card} img.ev-snapshot", "img => img.naturalWidth") > 0
    page.wait_for_function(f"document.querySelector('{card} video.ev-clip').readyState >= 2")
    t0 = page.eval_on_selector(f"{card} video.ev-clip", "v => v.currentTime")
    played = page.eval_on_selector(
        f"{card} video.ev-clip",
        "async v => { await v.play(); await new Promise(r => setTimeout(r, 700)); v.pause();"
        " return {t: v.currentTime, w: v.videoWidth, err: v.error && v.error.code}; }",
    )
    assert played["err"] is None and played["w"] == 320 and played["t"] > t0 + 0.2, played


def test_review_dispatch_close_and_reject_to_export(
    server, page, snapshot_jpeg: bytes, clip_mp4: bytes, tmp_path
) -> None:
    url, token = server
    ev = {"snapshot.jpg": ("snapshot", "image/jpeg", snapshot_jpeg), "clip.mp4": ("clip", "video/mp4", clip_mp4)}
    ids = []
    for camera in ("cam-01", "cam-02"):
        r = httpx.post(
            url + "/api/v1/cases",
            headers={"Authorization": f"Bearer {token}"},
            **multipart(case_report(ev, camera_id=camera), ev),
        )
        assert r.status_code == 201, r.text
        ids.append(r.json()["case_id"])
    good, bad = ids

    page.goto(url + "/ui/")
    assert "/ui/login" in page.url
    page.fill("#username", "chief")
    page.fill("#password", "wrong-password")
    page.click("#login-submit")
    assert page.locator("[role=alert]").inner_text() == "Wrong username or password"
    page.fill("#username", "chief")
    page.fill("#password", PASSWORD)
    page.click("#login-submit")
    page.wait_for_url(url + "/ui/")
    assert page.locator("article.case").count() == 2
    _media_ok(page, good)
    _media_ok(page, bad)

    page.click(f"#case-{good} button[data-action=accept]")
    page.wait_for_selector(f"#case-{good}", state="detached")
    page.fill(f"#case-{bad} input.reason", "shadow of an awning")
    page.click(f"#case-{bad} button[data-action=reject]")
    page.wait_for_selector("#queue-empty")

    page.goto(f"{url}/ui/cases/{good}")
    assert page.get_attribute("#case-status", "data-status") == "accepted"
    page.select_option("#department-select", "street_office")
    page.click("button[data-action=dispatch]")
    page.wait_for_selector("#case-status[data-status=dispatched]")
    assert "街道办事处" in page.inner_text("#department")
    photo = tmp_path / "after.jpg"
    photo.write_bytes(make_jpeg(seed=9))
    page.set_input_files("#after-photo", str(photo))
    page.click("button[data-action=handle]")
    page.wait_for_selector("#case-status[data-status=handled]")
    page.wait_for_function("document.querySelector('img.stage-after').naturalWidth > 0")
    page.click("button[data-action=verify]")
    page.wait_for_selector("#case-status[data-status=verified]")
    page.click("button[data-action=close]")
    page.wait_for_selector("#case-status[data-status=closed]")
    actions = page.eval_on_selector_all("#timeline li", "els => els.map(e => e.dataset.action)")
    assert actions == ["report", "accept", "dispatch", "handle", "verify", "close"]
    assert page.locator("#actions form").count() == 0

    page.goto(f"{url}/ui/cases/{bad}")
    assert page.get_attribute("#case-status", "data-status") == "rejected"
    assert "shadow of an awning" in page.inner_text("#timeline")

    page.goto(url + "/ui/stats")
    for name in ("cases_per_day", "precision", "overdue"):
        page.wait_for_function(f"document.getElementById('plot-{name}').naturalWidth > 0")
    assert page.inner_text("#precision tr[data-rule=street_vending_rule] td:last-child") == "50%"

    with page.expect_download() as dl:
        page.click("#nav-export")
    archive = zipfile.ZipFile(io.BytesIO(Path(dl.value.path()).read_bytes()))
    manifest = [json.loads(line) for line in archive.read("manifest.jsonl").decode().splitlines()]
    by_case = {row["case_id"]: row for row in manifest}
    assert by_case[bad]["outcome"] == "rejected" and by_case[bad]["reason"] == "shadow of an awning"
    assert archive.read(by_case[bad]["label"]) == b""
    assert by_case[good]["outcome"] == "accepted" and by_case[good]["class"] == "vendor_stall"
    assert archive.read(by_case[good]["label"]).decode().startswith("0 0.300000 0.450000 0.200000 0.300000")
    assert archive.read(by_case[good]["image"]) == snapshot_jpeg

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

from tests.support_browser import CHROMIUM, CHROMIUM_ARGS, wait_until
from tests.support_dispatch import PASSWORD, case_report, make_jpeg, multipart

pytestmark = pytest.mark.slow  # headless Chromium sessions


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
    wait_until(page, f"() => document.querySelector('{card} img.ev-snapshot').complete")
    assert page.eval_on_selector(f"{card} img.ev-snapshot", "img => img.naturalWidth") > 0
    assert page.eval_on_selector(f"{card} video.ev-clip", "v => v.preload") == "none"  # loaded when asked for
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
    assert page.locator("[role=alert]").inner_text() == "用户名或密码错误"
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
    wait_until(page, "() => document.querySelector('img.stage-after').naturalWidth > 0")
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
        wait_until(page, f"() => document.getElementById('plot-{name}').naturalWidth > 0")
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


# Latin text an operator may see in the Chinese UI: the brand and "AI"; anything else
# visible is either a translated string or data marked translate="no" (ids, names, codes).
LATIN_ALLOWED = {"StreetVision", "AI", "English", "Esc"}
VISIBLE_LATIN = """() => {
  const out = [];
  const walk = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walk.nextNode()) {
    const node = walk.currentNode, el = node.parentElement;
    if (!el || el.closest('[translate=no], script, style, kbd, dialog:not([open])')) continue;
    if (!el.getClientRects().length || getComputedStyle(el).visibility === 'hidden') continue;
    for (const w of node.textContent.match(/[A-Za-z]{2,}/g) || []) out.push(w + ' <' + el.tagName + '> ' + node.textContent.trim().slice(0, 60));
  }
  for (const el of document.querySelectorAll('input[placeholder], button, option')) {
    if (el.closest('[translate=no]')) continue;
    const t = (el.placeholder || '') + ' ' + (el.tagName === 'OPTION' ? el.textContent : '');
    for (const w of t.match(/[A-Za-z]{2,}/g) || []) out.push(w + ' <' + el.tagName + '> ' + t.trim().slice(0, 60));
  }
  return out;
}"""


def _latin(page) -> list[str]:
    return [w for w in page.evaluate(VISIBLE_LATIN) if w.split(" ")[0] not in LATIN_ALLOWED]


def test_queue_at_volume_in_chinese_keyboard_bulk_and_english(server, page, snapshot_jpeg: bytes) -> None:
    url, token = server
    ev = {"snapshot.jpg": ("snapshot", "image/jpeg", snapshot_jpeg)}
    kinds = ["street_vending", "exposed_garbage", "non_motor_parking", "muddy_truck"]
    ids = []
    truck_plate = {"text": "苏E12345", "confidence": 0.91, "colour": "blue", "rows": 1, "frames": 3}
    for i in range(62):
        report = case_report(ev, camera_id=f"cam-{i:02d}", violation=kinds[i % 4])
        if i == 7:  # a muddy truck whose plate was read
            report["plate"] = truck_plate
        r = httpx.post(url + "/api/v1/cases", headers={"Authorization": f"Bearer {token}"}, **multipart(report, ev))
        assert r.status_code == 201, r.text
        ids.append(r.json()["case_id"])

    page.goto(url + "/ui/login")
    assert _latin(page) == []
    page.fill("#username", "chief")
    page.fill("#password", PASSWORD)
    page.click("#login-submit")
    page.wait_for_url(url + "/ui/")

    seen = []  # every case reachable by paging, oldest first, and no English on any page
    while True:
        seen += [int(c) for c in page.eval_on_selector_all("article.case", "els => els.map(e => e.dataset.case)")]
        assert _latin(page) == [], page.url
        if not page.locator("#page-next").count():
            break
        page.click("#page-next")
    assert seen == ids

    page.goto(url + "/ui/?violation=exposed_garbage")  # filters narrow the list
    garbage = [i for n, i in enumerate(ids) if n % 4 == 1]
    assert page.inner_text("#queue-total") == f"({len(garbage)})"
    page.fill("#filter-q", f"#{garbage[3]}")
    page.click("#filter-apply")
    page.wait_for_url("**q=*")
    assert page.eval_on_selector_all("article.case", "els => els.map(e => +e.dataset.case)") == [garbage[3]]

    page.goto(url + "/ui/")  # keyboard: j moves to the second report, a accepts it
    page.keyboard.press("j")
    page.keyboard.press("a")
    page.wait_for_selector(f"#case-{ids[1]}", state="detached")
    page.keyboard.press("r")  # r puts the cursor in the current report's reason
    assert page.evaluate("document.activeElement.classList.contains('reason')")

    page.goto(url + "/ui/")  # bulk: select three, reject with one reason
    for cid in (ids[0], ids[2], ids[3]):
        page.check(f"#case-{cid} input.select")
    assert "3" in page.inner_text("#selected-count")
    page.fill("#bulk-reason", "图像不清晰")
    page.click("#bulk-reject")
    page.wait_for_selector("#bulk-result")
    assert "已审核 3 件" in page.inner_text("#bulk-result")
    first = page.eval_on_selector_all("article.case", "els => els.slice(0, 2).map(e => +e.dataset.case)")
    assert first == [ids[4], ids[5]]

    page.goto(f"{url}/ui/cases/{ids[0]}")
    assert page.get_attribute("#case-status", "data-status") == "rejected"
    assert _latin(page) == []
    page.click(".zoomable")  # evidence zoom
    page.wait_for_selector("dialog#zoom[open]")
    page.keyboard.press("Escape")
    page.goto(f"{url}/ui/cases/{ids[7]}")  # the truck's plate, in a blue plate's colours
    assert page.inner_text("#plate .plate") == "苏E·12345"
    assert page.eval_on_selector("#plate .plate", "e => getComputedStyle(e).backgroundColor") == "rgb(29, 78, 216)"
    assert "蓝牌" in page.inner_text("#plate-meta") and "0.91" in page.inner_text("#plate-meta")
    assert _latin(page) == []
    for path in ("/ui/cases", "/ui/stats", "/ui/map", "/ui/cases/99999"):
        page.goto(url + path)
        assert _latin(page) == [], path

    page.click("#lang-en")  # English on switch, on the same page
    page.wait_for_url(url + "/ui/cases/99999")
    assert "Not found" in page.inner_text("main")
    page.goto(url + "/ui/")
    assert page.inner_text("#nav-queue") == "Review queue"
    assert "待审核" not in page.inner_text("body")
    assert "Review" in " ".join(_latin(page))  # the checker above does see Latin text when there is some


def test_api_docs_render_offline_in_chromium(server, page) -> None:
    """Swagger UI draws the API from files the center serves; no request leaves 127.0.0.1."""
    from urllib.parse import urlparse

    url, _ = server
    hosts: set[str] = set()
    page.on("request", lambda req: hosts.add(urlparse(req.url).hostname or ""))
    page.goto(url + "/docs")
    page.wait_for_selector(".swagger-ui .info .title")
    assert "StreetVision dispatch center" in page.inner_text(".swagger-ui .info .title")
    page.wait_for_selector(".opblock-summary-path")  # the operations, read from /openapi.json
    assert page.locator(".opblock").count() > 10
    assert hosts == {"127.0.0.1"}, hosts


def _log_in(page, url: str, user: str) -> None:
    page.goto(url + "/ui/login")
    page.fill("#username", user)
    page.fill("#password", PASSWORD)
    page.click("#login-submit")
    page.wait_for_selector("#nav-cases")


def test_department_handles_its_own_case_and_sees_the_urge(server, page, snapshot_jpeg: bytes, tmp_path) -> None:
    """督办 by the administrator in the UI; the sanitation office's account logs in, finds only
    its own dispatched case on its workspace (urged, marked), handles it with a photo; another
    department's case is not found; the statistics show the department's score; all in Chinese."""
    url, token = server
    ev = {"snapshot.jpg": ("snapshot", "image/jpeg", snapshot_jpeg)}
    ids = []
    for camera, violation in (("cam-01", "exposed_garbage"), ("cam-02", "street_vending")):
        report = case_report(ev, camera_id=camera, violation=violation)
        r = httpx.post(url + "/api/v1/cases", headers={"Authorization": f"Bearer {token}"}, **multipart(report, ev))
        assert r.status_code == 201, r.text
        ids.append(r.json()["case_id"])
    ours, theirs = ids
    login = httpx.post(url + "/api/v1/auth/login", json={"username": "chief", "password": PASSWORD})
    admin = {"Authorization": f"Bearer {login.json()['access_token']}"}
    for cid in ids:
        for body in ({"action": "accept"}, {"action": "dispatch"}):
            assert httpx.post(f"{url}/api/v1/cases/{cid}/transitions", json=body, headers=admin).status_code == 200
    r = httpx.post(
        url + "/api/v1/operators",
        headers=admin,
        json={"username": "huanwei", "password": PASSWORD, "role": "department", "department": "sanitation"},
    )
    assert r.status_code == 201, r.text

    _log_in(page, url, "chief")
    page.goto(f"{url}/ui/cases/{ours}")
    page.fill("#urge-note", "居民多次投诉")
    page.click("button[data-action=urge]")
    page.wait_for_selector("#urged-tag")
    assert "督办" in page.inner_text("#urged-tag") and "居民多次投诉" in page.inner_text("#urged")
    assert page.get_attribute("#case-status", "data-status") == "dispatched"
    assert _latin(page) == []
    page.click("form.logout button")
    page.wait_for_url(url + "/ui/login")

    _log_in(page, url, "huanwei")
    assert page.url == url + "/ui/workspace"
    assert page.inner_text("#nav-workspace") == "我的案件" and page.locator("#nav-stats").count() == 0
    rows = page.eval_on_selector_all("#workspace tbody tr[data-case]", "els => els.map(e => +e.dataset.case)")
    assert rows == [ours]
    assert "督办" in page.inner_text(f"#row-{ours} .tag.urged") and "环卫所" in page.inner_text("#workspace-department")
    assert _latin(page) == []
    page.goto(url + "/ui/cases")
    assert page.locator(f"#row-{theirs}").count() == 0 and page.locator(f"#row-{ours}").count() == 1
    page.goto(f"{url}/ui/cases/{theirs}")
    assert "不存在" in page.inner_text("main")
    page.goto(f"{url}/ui/cases/{ours}")
    assert page.is_visible("#urged") and _latin(page) == []
    assert page.eval_on_selector_all("#actions button", "els => els.map(e => e.dataset.action)") == ["handle"]
    photo = tmp_path / "after.jpg"
    photo.write_bytes(make_jpeg(seed=12))
    page.set_input_files("#after-photo", str(photo))
    page.click("button[data-action=handle]")
    page.wait_for_selector("#case-status[data-status=handled]")
    wait_until(page, "() => document.querySelector('img.stage-after').naturalWidth > 0")
    assert page.locator("#actions form").count() == 0
    last = page.eval_on_selector_all("#timeline li", "els => els.map(e => e.dataset.action)")
    assert last[-2:] == ["urge", "handle"] and "huanwei" in page.inner_text("#timeline li:last-child")
    page.goto(url + "/ui/workspace")
    page.wait_for_selector("#workspace-empty")
    page.click("form.logout button")
    page.wait_for_url(url + "/ui/login")

    _log_in(page, url, "chief")
    page.goto(url + "/ui/stats")
    row = "#department-scores tr[data-department=sanitation]"
    assert page.inner_text(f"{row} td.handled") == "1" and page.inner_text(f"{row} td.on-time") == "100%"
    assert page.inner_text(f"{row} td.urged") == "1"
    wait_until(page, "() => document.getElementById('plot-departments').naturalWidth > 0")
    assert _latin(page) == []

"""Headless Chromium for the tests of the center's pages that draw on a camera's picture: a page
in Chinese, an operator logged in, clicks on the picture at fractions of its size."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def wait_until(page: Any, predicate: str, timeout_ms: int = 15_000) -> None:
    """Polls `predicate` (a JS function) with evaluate. Not `wait_for_function`: it builds its poller
    from a string, which the center's CSP (no unsafe-eval) refuses whenever the first check fails."""
    for _ in range(max(1, timeout_ms // 100)):
        if page.evaluate(predicate):
            return
        page.wait_for_timeout(100)
    raise AssertionError(f"never true within {timeout_ms} ms: {predicate}")


@contextmanager
def chromium_page() -> Iterator[Any]:
    """One page of a headless Chromium (zh-CN, a viewport the camera's large picture fits in),
    closed when the block ends."""
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), "Debian chromium missing (.ci/apt-packages.txt)"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            pg = browser.new_context(locale="zh-CN", viewport={"width": 1366, "height": 1000}).new_page()
            pg.set_default_timeout(15_000)
            yield pg
        finally:
            browser.close()


def log_in(page: Any, url: str, username: str, password: str) -> None:
    page.goto(url + "/ui/login")
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("#login-submit")
    page.wait_for_url(url + "/ui/")


def click_on_picture(page: Any, points: list[tuple[float, float]]) -> None:
    """Clicks on the camera's picture (the zone editor's) at these fractions of its width and height."""
    wait_until(page, "() => document.querySelector('#camera-picture img').naturalWidth > 0")
    picture = page.locator("#camera-picture svg.zones")
    picture.scroll_into_view_if_needed()
    box = picture.bounding_box()
    view = page.viewport_size
    assert box["y"] >= 0 and box["y"] + box["height"] <= view["height"], ("the picture is not all in view", box)
    for x, y in points:
        page.mouse.click(box["x"] + x * box["width"], box["y"] + y * box["height"])

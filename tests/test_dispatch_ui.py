"""Operator UI without a browser: login redirects, CSRF, role errors shown, no open redirect."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support_dispatch import PASSWORD, Dispatch, build_dispatch, case_report


@pytest.fixture
def ui(tmp_path: Path, fast_passwords) -> Iterator[Dispatch]:
    d = build_dispatch(tmp_path, f"sqlite:///{tmp_path / 'ui.db'}")
    with d.client:
        yield d
    d.service.close()


def _login(d: Dispatch, user: str, nxt: str = "/ui/") -> str:
    r = d.client.post("/ui/login", data={"username": user, "password": PASSWORD, "next": nxt}, follow_redirects=False)
    assert r.status_code == 303
    page = d.client.get("/ui/").text
    return re.search(r'name="csrf" value="([0-9a-f]+)"', page).group(1)


@pytest.mark.parametrize("path", ["/ui/", "/ui/cases", "/ui/cases/1", "/ui/stats", "/ui/export.zip"])
def test_pages_need_login(ui: Dispatch, path: str) -> None:
    r = ui.client.get(path, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/ui/login?next=")
    assert ui.client.get("/ui/stats/precision.png").status_code == 401


def test_login_redirect_keeps_the_page_and_query(ui: Dispatch) -> None:
    r = ui.client.get("/ui/cases?status=accepted&overdue=true", follow_redirects=False)
    assert (r.status_code, r.headers["location"]) == (
        303,
        "/ui/login?next=/ui/cases%3Fstatus%3Daccepted%26overdue%3Dtrue",
    )
    r = ui.client.post("/ui/cases/1/action", data={"action": "accept"}, follow_redirects=False)
    assert (r.status_code, r.headers["location"]) == (303, "/ui/login?next=/ui/cases/1/action")
    _login(ui, "admin")
    assert ui.client.get("/ui/cases?status=accepted", follow_redirects=False).status_code == 200


@pytest.mark.parametrize("nxt", ["//evil.example/", "https://evil.example/", "/ui/\\\\evil", "/api/v1/cases"])
def test_no_open_redirect_after_login(ui: Dispatch, nxt: str) -> None:
    r = ui.client.post(
        "/ui/login", data={"username": "admin", "password": PASSWORD, "next": nxt}, follow_redirects=False
    )
    assert r.headers["location"] == "/ui/"
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie


def test_forms_need_the_csrf_token_and_roles_show_errors(ui: Dispatch) -> None:
    cid = ui.post_case(case_report()).json()["case_id"]
    csrf = _login(ui, "dispatcher")
    r = ui.client.post(f"/ui/cases/{cid}/action", data={"action": "accept"})
    assert r.status_code == 403
    r = ui.client.post(f"/ui/cases/{cid}/action", data={"action": "accept", "csrf": csrf})
    assert r.status_code == 200 and "may not accept" in r.text  # redirected to the case page with the error
    assert 'data-status="suspected"' in r.text
    csrf = _login(ui, "reviewer")
    r = ui.client.post(f"/ui/cases/{cid}/action", data={"action": "reject", "csrf": csrf})
    assert "reason" in r.text and 'data-status="suspected"' in r.text
    r = ui.client.post(f"/ui/cases/{cid}/action", data={"action": "accept", "csrf": csrf})
    assert 'data-status="accepted"' in r.text
    assert ui.client.post("/ui/cases/99999/action", data={"action": "accept", "csrf": csrf}).status_code == 404
    assert ui.client.get("/ui/cases/99999").status_code == 404


def test_times_are_shown_in_the_city_zone(ui: Dispatch) -> None:
    cid = ui.post_case(case_report()).json()["case_id"]
    _login(ui, "admin")
    assert "Asia/Shanghai" in ui.client.get("/ui/").text
    assert "Asia/Shanghai" in ui.client.get(f"/ui/cases/{cid}").text


def test_logout_revokes_the_session(ui: Dispatch) -> None:
    csrf = _login(ui, "admin")
    assert ui.client.get("/ui/cases", follow_redirects=False).status_code == 200
    ui.client.post("/ui/logout", data={"csrf": csrf})
    assert ui.client.get("/ui/cases", follow_redirects=False).status_code == 303

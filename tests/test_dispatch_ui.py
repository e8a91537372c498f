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
    assert r.status_code == 200 and "您的角色无权执行此操作" in r.text  # redirected to the case page with the error
    assert 'data-status="suspected"' in r.text
    csrf = _login(ui, "reviewer")
    r = ui.client.post(f"/ui/cases/{cid}/action", data={"action": "reject", "csrf": csrf})
    assert "此操作需要填写理由" in r.text and 'data-status="suspected"' in r.text
    r = ui.client.post(f"/ui/cases/{cid}/action", data={"action": "accept", "csrf": csrf})
    assert 'data-status="accepted"' in r.text
    assert ui.client.post("/ui/cases/99999/action", data={"action": "accept", "csrf": csrf}).status_code == 404
    missing = ui.client.get("/ui/cases/99999")
    assert missing.status_code == 404 and missing.headers["content-type"].startswith("text/html")
    assert "该页面或案件不存在" in missing.text and "/ui/" in missing.text  # an HTML page with a way back
    assert ui.client.get("/ui/cases/abc").status_code == 422
    assert "无效" in ui.client.get("/ui/cases/abc").text
    api = ui.client.get("/api/v1/cases/99999", headers=ui.auth("admin"))
    assert api.status_code == 404 and api.headers["content-type"] == "application/json"  # the API stays JSON


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


def _ids_on(page: str) -> list[int]:
    return [int(i) for i in re.findall(r'<article class="card case" id="case-(\d+)"', page)]


def test_queue_serves_the_longest_waiting_first_and_every_case_by_paging(ui: Dispatch) -> None:
    ids = [ui.post_case(case_report(camera_id=f"cam-{i:02d}")).json()["case_id"] for i in range(45)]
    _login(ui, "reviewer")
    seen = []
    for page in (1, 2, 3):
        body = ui.client.get(f"/ui/?page={page}").text
        assert "(45)" in body
        seen += _ids_on(body)
    assert seen == sorted(ids)  # oldest first, every one reachable, none twice
    assert 'id="page-next"' not in ui.client.get("/ui/?page=3").text
    assert _ids_on(ui.client.get("/ui/?page=99").text) == []  # past the end: empty, not an error
    assert _ids_on(ui.client.get("/ui/?camera=cam-07").text) == [ids[7]]
    assert _ids_on(ui.client.get("/ui/?q=cam-1").text) == ids[10:20]  # text search in camera ids
    assert _ids_on(ui.client.get(f"/ui/?q=%23{ids[7]}").text) == [ids[7]]  # search by case number
    assert "不是有效日期" in ui.client.get("/ui/?since=yesterday").text
    assert ui.client.get("/ui/?page=0").status_code == 422


def test_case_list_filters_by_state_department_and_search(ui: Dispatch) -> None:
    ids = [ui.post_case(case_report(camera_id=f"cam-{i}")).json()["case_id"] for i in range(4)]
    ui.act(ids[0], "accept")
    ui.act(ids[0], "dispatch", department="sanitation")
    ui.act(ids[1], "reject", reason="duplicate")
    _login(ui, "admin")
    rows = lambda q: [int(i) for i in re.findall(r'<tr id="row-(\d+)"', ui.client.get("/ui/cases?" + q).text)]  # noqa: E731
    assert rows("") == sorted(ids, reverse=True)
    assert rows("status=rejected") == [ids[1]]
    assert rows("department=sanitation") == [ids[0]]
    assert rows("q=cam-3") == [ids[3]]
    assert rows("status=suspected&q=cam-0") == []
    page = ui.client.get("/ui/cases?department=sanitation").text
    assert "环卫所" in page and ">sanitation<" not in page  # department names, not ids


def test_bulk_review_rejects_the_selection_with_one_reason(ui: Dispatch) -> None:
    ids = [ui.post_case(case_report(camera_id=f"cam-{i}")).json()["case_id"] for i in range(5)]
    csrf = _login(ui, "reviewer")
    form = {"csrf": csrf, "action": "reject", "reason": "与其他案件重复", "back": "/ui/", "case_id": ids[:3]}
    r = ui.client.post("/ui/bulk", data=form, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/ui/?done=3&failed=0"
    for cid in ids[:3]:
        case = ui.service.get_case(cid)
        assert (case.status.value, case.reject_reason) == ("rejected", "与其他案件重复")
    again = ui.client.post("/ui/bulk", data=form | {"case_id": [ids[2], ids[3]], "action": "accept"})
    assert "已审核 1 件，1 件未能审核" in again.text  # the one already rejected is counted, not fatal
    assert ui.service.get_case(ids[3]).status.value == "accepted"
    assert ui.client.post("/ui/bulk", data=form | {"csrf": "x"}).status_code == 403
    no_reason = ui.client.post("/ui/bulk", data=form | {"reason": "", "case_id": [ids[4]]})
    assert "1 件未能审核" in no_reason.text and ui.service.get_case(ids[4]).status.value == "suspected"


def test_chinese_by_default_english_on_switch(ui: Dispatch) -> None:
    cid = ui.post_case(case_report(violation="exposed_garbage")).json()["case_id"]
    _login(ui, "reviewer")
    zh = ui.client.get("/ui/").text
    assert '<html lang="zh-CN">' in zh and "待审核" in zh and "暴露垃圾" in zh and "Review queue" not in zh
    assert (
        "垃圾桶或收集点内的垃圾" in zh
        and "行人或顾客，不是摊贩" not in zh.split(f'id="case-{cid}"')[1].split("</article>")[0]
    )
    r = ui.client.get("/ui/lang/en?next=/ui/cases", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/ui/cases"
    en = ui.client.get("/ui/").text
    assert '<html lang="en">' in en and "Review queue" in en and "Exposed garbage" in en and "待审核" not in en
    assert ui.client.get("/ui/lang/fr").status_code == 404
    assert ui.client.get("/ui/stats/overdue.png").headers["content-type"] == "image/png"

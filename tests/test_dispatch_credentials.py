"""Credentials that can be taken back, and what the public may see, on SQLite and
PostgreSQL: revoked and rotated device tokens get 401 at once; deactivating an
operator or changing their password ends their tokens and UI sessions; logout
always ends the session; security headers and the Secure cookie flag; the data
directory is private; Open311 GET shows only what the city publishes."""

from __future__ import annotations

import re
import stat
from pathlib import Path

import pytest

from tests.support_dispatch import PASSWORD, Dispatch, case_report
from vision.dispatch.config import Open311Config, Open311Publish
from vision.dispatch.errors import Conflict, InvalidInput, NotFound
from vision.dispatch.settings import DEFAULT_CSP, Settings
from vision.dispatch.workflow import Status

NEW_PASSWORD = "another-long-password"


def _ui_login(d: Dispatch, user: str, password: str = PASSWORD) -> str:
    r = d.client.post("/ui/login", data={"username": user, "password": password}, follow_redirects=False)
    assert r.status_code == 303, r.text
    page = d.client.get("/ui/").text
    return re.search(r'name="csrf" value="([0-9a-f]+)"', page).group(1)  # type: ignore[union-attr]


# ------------------------------------------------------------------ devices
def test_revoked_device_token_gets_401_at_once(dispatch: Dispatch) -> None:
    assert dispatch.post_case(case_report()).status_code in (200, 201)
    r = dispatch.client.post("/api/v1/clients/edge-01/revoke", headers=dispatch.auth("admin"))
    assert r.status_code == 204
    r = dispatch.post_case(case_report(camera_id="cam-09"))
    assert r.status_code == 401


def test_rotated_device_token_replaces_the_old_one(dispatch: Dispatch) -> None:
    old = dispatch.device_token
    r = dispatch.client.post("/api/v1/clients/edge-01/rotate", headers=dispatch.auth("admin"))
    assert r.status_code == 200
    body = r.json()
    assert body["name"] == "edge-01" and body["kind"] == "device" and body["token"].startswith("svd_")
    assert body["token"] != old
    assert dispatch.post_case(case_report(), headers={"Authorization": f"Bearer {old}"}).status_code == 401
    assert dispatch.post_case(case_report(), headers={"Authorization": f"Bearer {body['token']}"}).status_code in (
        200,
        201,
    )


def test_client_management_needs_admin_and_an_existing_client(dispatch: Dispatch) -> None:
    assert dispatch.client.post("/api/v1/clients/edge-01/revoke", headers=dispatch.auth("reviewer")).status_code == 403
    assert dispatch.client.post("/api/v1/clients/edge-01/revoke").status_code == 401
    assert dispatch.client.post("/api/v1/clients/nobody/rotate", headers=dispatch.auth("admin")).status_code == 404
    assert dispatch.post_case(case_report()).status_code in (200, 201)  # untouched


def test_devices_are_bound_to_a_site_unless_asked_otherwise(dispatch: Dispatch) -> None:
    with pytest.raises(InvalidInput, match="site"):
        dispatch.service.create_client("edge-loose", "device", None)
    r = dispatch.client.post("/api/v1/clients", json={"name": "edge-loose"}, headers=dispatch.auth("admin"))
    assert r.status_code == 422 and "site" in r.text
    assert dispatch.service.create_client("edge-any", "device", None, site_less=True)[1].startswith("svd_")
    assert dispatch.service.create_client("city-app", "open311")[1].startswith("svo_")  # no site: not a device


# ---------------------------------------------------------------- operators
def test_deactivated_operator_loses_token_and_ui_session(dispatch: Dispatch) -> None:
    _ui_login(dispatch, "reviewer")
    assert dispatch.client.get("/ui/cases", follow_redirects=False).status_code == 200
    r = dispatch.client.post("/api/v1/operators/reviewer/deactivate", headers=dispatch.auth("admin"))
    assert r.status_code == 204
    assert dispatch.client.get("/api/v1/me", headers=dispatch.auth("reviewer")).status_code == 401
    assert dispatch.client.get("/ui/cases", follow_redirects=False).status_code == 303  # back to login
    r = dispatch.client.post("/api/v1/auth/login", json={"username": "reviewer", "password": PASSWORD})
    assert r.status_code == 401
    listed = {
        o["username"]: o["active"]
        for o in dispatch.client.get("/api/v1/operators", headers=dispatch.auth("admin")).json()
    }
    assert listed["reviewer"] is False
    assert (
        dispatch.client.post("/api/v1/operators/reviewer/activate", headers=dispatch.auth("admin")).status_code == 204
    )
    r = dispatch.client.post("/api/v1/auth/login", json={"username": "reviewer", "password": PASSWORD})
    assert r.status_code == 200


def test_password_change_ends_sessions_and_old_password(dispatch: Dispatch) -> None:
    r = dispatch.client.put(
        "/api/v1/operators/dispatcher/password", json={"password": NEW_PASSWORD}, headers=dispatch.auth("admin")
    )
    assert r.status_code == 204
    assert dispatch.client.get("/api/v1/me", headers=dispatch.auth("dispatcher")).status_code == 401

    def login(password: str) -> int:
        body = {"username": "dispatcher", "password": password}
        return int(dispatch.client.post("/api/v1/auth/login", json=body).status_code)

    assert login(PASSWORD) == 401 and login(NEW_PASSWORD) == 200
    r = dispatch.client.put(
        "/api/v1/operators/dispatcher/password", json={"password": "short"}, headers=dispatch.auth("admin")
    )
    assert r.status_code == 422
    assert (
        dispatch.client.put(
            "/api/v1/operators/nobody/password", json={"password": NEW_PASSWORD}, headers=dispatch.auth("admin")
        ).status_code
        == 404
    )


def test_service_level_account_changes(dispatch: Dispatch) -> None:
    accounts = dispatch.service.accounts
    with pytest.raises(Conflict):
        accounts.set_operator_active("admin", False)  # the last active admin
    dispatch.service.create_operator("admin2", PASSWORD, "admin")
    accounts.set_operator_active("admin", False)
    assert dispatch.service.authenticate_operator(dispatch.tokens["admin"]) is None
    with pytest.raises(NotFound):
        accounts.set_operator_active("ghost", False)
    with pytest.raises(InvalidInput):
        accounts.set_password("admin2", "short")
    with pytest.raises(NotFound):
        accounts.revoke_client("ghost")


def test_ui_logout_without_csrf_still_ends_the_session(dispatch: Dispatch) -> None:
    _ui_login(dispatch, "admin")
    token = dispatch.client.cookies.get("sv_session")
    assert token and dispatch.service.authenticate_operator(token) is not None
    r = dispatch.client.post("/ui/logout", data={}, follow_redirects=False)
    assert r.status_code == 303
    assert dispatch.service.authenticate_operator(token) is None  # server side, not just the cookie


# ------------------------------------------------------------ HTTP hardening
def test_security_headers_on_pages_and_api(dispatch: Dispatch) -> None:
    for path in ("/ui/login", "/api/v1/me", "/healthz"):
        r = dispatch.client.get(path)
        assert r.headers["content-security-policy"] == DEFAULT_CSP, path
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["referrer-policy"] == "same-origin"
    docs = dispatch.client.get("/docs")
    assert "content-security-policy" not in docs.headers and docs.headers["x-content-type-options"] == "nosniff"


def test_cookie_secure_auto_follows_the_scheme(dispatch: Dispatch) -> None:
    form = {"username": "admin", "password": PASSWORD}
    r = dispatch.client.post("/ui/login", data=form, follow_redirects=False)
    assert "secure" not in r.headers["set-cookie"].lower()
    r = dispatch.client.post("https://testserver/ui/login", data=form, follow_redirects=False)
    assert "secure" in r.headers["set-cookie"].lower()
    assert Settings(cookie_secure=True).cookie_secure_for("http") is True
    assert Settings(cookie_secure=False).cookie_secure_for("https") is False


def test_settings_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREETVISION_DISPATCH_COOKIE_SECURE", "true")
    monkeypatch.setenv("STREETVISION_DISPATCH_CSP", "off")
    s = Settings.from_env()
    assert s.cookie_secure is True and s.content_security_policy == ""
    monkeypatch.setenv("STREETVISION_DISPATCH_COOKIE_SECURE", "sometimes")
    with pytest.raises(ValueError, match="cookie_secure"):
        Settings.from_env()


def test_data_directory_is_private(tmp_path: Path) -> None:
    fresh = Settings(data_dir=tmp_path / "new" / "data")
    fresh.ensure_data_dir()
    assert stat.S_IMODE(fresh.data_dir.stat().st_mode) == 0o700
    loose = tmp_path / "loose"
    loose.mkdir(mode=0o755)
    loose.chmod(0o755)
    Settings(data_dir=loose).ensure_data_dir()
    assert stat.S_IMODE(loose.stat().st_mode) == 0o700


def test_dispatch_data_dir_of_a_running_service_is_private(dispatch: Dispatch) -> None:
    assert stat.S_IMODE(dispatch.settings.data_dir.stat().st_mode) == 0o700


# ------------------------------------------------------------ Open311 publishing
def test_open311_get_shows_only_published_cases_with_coarse_location(dispatch: Dispatch) -> None:
    base = "/open311/v2"
    suspected = dispatch.post_case(case_report()).json()["case_id"]
    rejected = dispatch.post_case(case_report(camera_id="cam-02")).json()["case_id"]
    dispatch.act(rejected, "reject", reason="the reviewer's private reason")
    accepted = dispatch.post_case(case_report(camera_id="cam-03")).json()["case_id"]
    dispatch.act(accepted, "accept")

    listed = dispatch.client.get(f"{base}/requests.json").json()
    assert [int(r["service_request_id"]) for r in listed] == [accepted]
    assert "private reason" not in dispatch.client.get(f"{base}/requests.json", params={"status": "closed"}).text
    (req,) = listed
    assert req["lat"] == pytest.approx(31.230) and req["long"] == pytest.approx(121.474)
    assert req["lat"] != pytest.approx(31.2304, abs=1e-5)  # not the exact point
    for hidden in (suspected, rejected):
        assert dispatch.client.get(f"{base}/requests/{hidden}.json").status_code == 404
    by_ids = dispatch.client.get(f"{base}/requests.json", params={"service_request_id": f"{suspected},{accepted}"})
    assert [int(r["service_request_id"]) for r in by_ids.json()] == [accepted]

    # the city may decide otherwise (configs/dispatch.yaml `open311.publish`)
    everything = Open311Config(publish=Open311Publish(statuses=list(Status), location_decimals=None))
    dispatch.service.ctx.config = dispatch.service.config.model_copy(update={"open311": everything})
    ids = sorted(int(r["service_request_id"]) for r in dispatch.client.get(f"{base}/requests.json").json())
    assert ids == sorted([suspected, rejected, accepted])
    (req,) = dispatch.client.get(f"{base}/requests/{suspected}.json").json()
    assert req["lat"] == pytest.approx(31.2304)


# ------------------------------------------------------------------ the CLI
def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    from vision.cli import main

    code = main(["dispatch", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_revokes_rotates_deactivates_and_changes_passwords(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, fast_passwords: None
) -> None:
    from vision.dispatch import bootstrap
    from vision.dispatch.notify import Notifier
    from vision.dispatch.service import DispatchService

    settings = Settings(data_dir=tmp_path / "data")
    data = ["--data-dir", str(settings.data_dir)]
    bootstrap.create_admin(settings, "boss", PASSWORD)
    bootstrap.create_operator(settings, "ann", PASSWORD, "reviewer")
    old = bootstrap.create_device(settings, "edge-01", "site-a")
    service = DispatchService.from_settings(settings, notifier=Notifier())
    try:
        ann_token = service.login("ann", PASSWORD)[0]
        code, out, err = _cli(capsys, "rotate-device", *data, "edge-01")
        assert code == 0, err
        new = out.strip()
        assert new.startswith("svd_") and "shown once" in err
        assert service.authenticate_client(old, "device") is None
        assert service.authenticate_client(new, "device") is not None
        assert _cli(capsys, "revoke-device", *data, "edge-01")[0] == 0
        assert service.authenticate_client(new, "device") is None

        monkeypatch.setenv("SV_NEW_PW", NEW_PASSWORD)
        code, out, err = _cli(capsys, "set-password", *data, "ann", "--password-env", "SV_NEW_PW")
        assert code == 0 and "ended" in out, err
        assert service.authenticate_operator(ann_token) is None
        ann_token = service.login("ann", NEW_PASSWORD)[0]
        assert _cli(capsys, "deactivate-user", *data, "ann")[0] == 0
        assert service.authenticate_operator(ann_token) is None
        assert _cli(capsys, "activate-user", *data, "ann")[0] == 0
        assert service.login("ann", NEW_PASSWORD)[0]

        code, _, err = _cli(capsys, "deactivate-user", *data, "boss")
        assert code == 1 and "last active admin" in err and "Traceback" not in err
        code, _, err = _cli(capsys, "revoke-device", *data, "ghost")
        assert code == 1 and "ghost" in err
        code, _, err = _cli(capsys, "add-device", *data, "edge-02")
        assert code == 1 and "site" in err
        code, out, err = _cli(capsys, "add-device", *data, "edge-03", "--any-site")
        assert code == 0 and out.strip().startswith("svd_"), err
    finally:
        service.close()


def test_api_docs_and_favicon_are_served_from_the_package_without_a_cdn(dispatch: Dispatch) -> None:
    """A city intranet reaches no CDN: /docs and /redoc load every script and style from the center."""
    import re

    for path in ("/docs", "/redoc"):
        page = dispatch.client.get(path)
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        assets = re.findall(r"""(?:src|href)=["']([^"']+)["']""", page.text)
        urls = re.findall(r"""url: ?["']([^"']+)["']""", page.text)
        assert assets, path
        for ref in assets + urls:
            assert ref.startswith("/"), f"{path} loads {ref} from elsewhere"
            assert dispatch.client.get(ref).status_code == 200, ref
    icon = dispatch.client.get("/favicon.ico")
    assert icon.status_code == 200 and icon.headers["content-type"].startswith("image/svg+xml")

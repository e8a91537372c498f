"""Operator web UI: server-rendered Jinja2 pages over the same service.

Session cookie (HttpOnly, SameSite=Strict) from the login form; every form
carries a CSRF token derived from the session token. Every page asks for the
session through one dependency, which sends a visitor without one to the login
page and back to the page afterwards."""

from __future__ import annotations

import hmac
import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path as FsPath
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, FastAPI, Form, HTTPException, Path, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.background import BackgroundTask

from vision.dispatch import PACKAGE_DIR, stats
from vision.dispatch.api.deps import (
    SESSION_COOKIE,
    CredentialFirst,
    ServiceDep,
    check_before_body,
    client_address,
    once_per_request,
)
from vision.dispatch.api.errors import status_of
from vision.dispatch.export import export_labels
from vision.dispatch.security import csrf_token
from vision.dispatch.service import DispatchService, OperatorPrincipal, Upload
from vision.dispatch.throttle import TooManyAttempts
from vision.dispatch.workflow import ACTION_LABELS, STATUS_LABELS, Status, WorkflowError

router = APIRouter(prefix="/ui", include_in_schema=False, route_class=CredentialFirst)
templates = Jinja2Templates(directory=PACKAGE_DIR / "templates")
templates.env.globals.update(
    STATUS_LABELS={s.value: label for s, label in STATUS_LABELS.items()},
    ACTION_LABELS={a.value: label for a, label in ACTION_LABELS.items()},
)

CaseId = Annotated[int, Path(ge=1, le=2**31 - 1)]


@dataclass(frozen=True)
class UiSession:
    """The logged-in operator of a UI request and the session token their forms' CSRF token derives from."""

    operator: OperatorPrincipal
    token: str

    @property
    def csrf(self) -> str:
        return csrf_token(self.token)

    def csrf_ok(self, submitted: str) -> bool:
        return hmac.compare_digest(submitted, self.csrf)


def _find_session(request: Request, service: DispatchService) -> UiSession | None:
    def find() -> UiSession | None:
        token = request.cookies.get(SESSION_COOKIE)
        if not token:
            return None
        op = service.authenticate_operator(token)
        return UiSession(op, token) if op else None

    return once_per_request(request, "ui-session", find)


class LoginRequired(Exception):
    """A page was asked for without a session; answered with the login page (see `install`)."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.path = path  # where to come back to after logging in


def page_session(request: Request, service: ServiceDep) -> UiSession:
    """The session a page needs; without one the visitor is sent to log in."""
    sess = _find_session(request, service)
    if sess is None:
        raise LoginRequired(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
    return sess


def asset_session(request: Request, service: ServiceDep) -> UiSession:
    """The session an image on a page needs; without one a plain 401 (an <img> cannot follow a login)."""
    sess = _find_session(request, service)
    if sess is None:
        raise HTTPException(401, "login required")
    return sess


check_before_body(page_session)  # a form (with an after photo) is read only for a session
check_before_body(asset_session)
PageSession = Annotated[UiSession, Depends(page_session)]
AssetSession = Annotated[UiSession, Depends(asset_session)]


def install(app: FastAPI) -> None:
    """Turns `LoginRequired` into the redirect to the login page, with `next=` the page asked for."""

    async def _to_login(_request: Request, exc: Exception) -> RedirectResponse:
        assert isinstance(exc, LoginRequired)
        return RedirectResponse(f"/ui/login?next={quote(exc.path)}", status_code=303)

    app.add_exception_handler(LoginRequired, _to_login)


def _render(request: Request, name: str, sess: UiSession | None, status_code: int = 200, **ctx: Any) -> HTMLResponse:
    tz = request.app.state.service.config.working_time.zone()

    def local(dt: datetime | None, seconds: bool = False) -> str:
        """Times in the city's zone (the working calendar's), not UTC."""
        return dt.astimezone(tz).strftime("%Y-%m-%d %H:%M" + (":%S" if seconds else "")) if dt else "—"

    ctx.update(op=sess.operator if sess else None, csrf=sess.csrf if sess else "", local=local, tzname=tz.key)
    return templates.TemplateResponse(request, name, ctx, status_code=status_code)


def _safe_next(nxt: str | None) -> str:
    return nxt if nxt and nxt.startswith("/ui/") and "//" not in nxt and "\\" not in nxt else "/ui/"


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str | None = None) -> HTMLResponse:
    return _render(request, "login.html", None, next=_safe_next(next), error=None)


@router.post("/login")
def login(
    request: Request,
    service: ServiceDep,
    username: Annotated[str, Form(max_length=64)] = "",
    password: Annotated[str, Form(max_length=256)] = "",
    next: Annotated[str, Form(max_length=500)] = "/ui/",
) -> Response:
    try:
        token, _expires, _role = service.login(username, password, "session", client_address(request))
    except TooManyAttempts as exc:
        return _render(
            request,
            "login.html",
            None,
            status_code=429,
            next=_safe_next(next),
            error=f"Too many failed logins: try again in {exc.retry_after_s:.0f} s",
        )
    except WorkflowError:
        return _render(
            request, "login.html", None, status_code=401, next=_safe_next(next), error="Wrong username or password"
        )
    resp = RedirectResponse(_safe_next(next), status_code=303)
    resp.set_cookie(
        SESSION_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=service.settings.cookie_secure_for(request.url.scheme),
        max_age=service.settings.token_ttl_s,
        path="/",
    )
    return resp


@router.post("/logout")
def logout(request: Request, service: ServiceDep, csrf: Annotated[str, Form(max_length=128)] = "") -> Response:  # noqa: ARG001 # kept for old forms
    """Always ends the server-side session of the cookie, CSRF token or not: a forged
    logout can only log someone out (and SameSite=Strict keeps the cookie off cross-site
    requests), while a logout that left the session alive would keep a stolen cookie valid."""
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        service.logout(token)
    resp = RedirectResponse("/ui/login", status_code=303)
    resp.delete_cookie(SESSION_COOKIE, path="/")
    return resp


@router.get("/", response_class=HTMLResponse)
def queue(request: Request, service: ServiceDep, sess: PageSession) -> Response:
    listing = service.list_cases(status=[Status.SUSPECTED.value], limit=50)
    cases = [service.get_case(c.id, sess.operator) for c in reversed(listing.items)]  # oldest first
    return _render(request, "queue.html", sess, cases=cases, total=listing.total)


@router.get("/cases", response_class=HTMLResponse)
def cases(
    request: Request, service: ServiceDep, sess: PageSession, status: str | None = None, overdue: bool | None = None
) -> Response:
    wanted = [status] if status in {s.value for s in Status} else None
    listing = service.list_cases(status=wanted, overdue=overdue, limit=200)
    return _render(
        request,
        "cases.html",
        sess,
        cases=listing.items,
        total=listing.total,
        status=status,
        overdue=overdue,
        statuses=[s.value for s in Status],
    )


@router.get("/cases/{case_id}", response_class=HTMLResponse)
def case_detail(
    request: Request, case_id: CaseId, service: ServiceDep, sess: PageSession, error: str | None = None
) -> Response:
    try:
        case = service.get_case(case_id, sess.operator)
    except WorkflowError:
        raise HTTPException(404, "case not found") from None
    return _render(
        request,
        "case.html",
        sess,
        case=case,
        departments=service.config.departments,
        error=error[:300] if error else None,
        dept_name=service.department_name,
    )


@router.post("/cases/{case_id}/action")
async def case_action(
    case_id: CaseId,
    service: ServiceDep,
    sess: PageSession,
    action: Annotated[str, Form(max_length=16)],
    csrf: Annotated[str, Form(max_length=128)] = "",
    reason: Annotated[str | None, Form(max_length=500)] = None,
    department: Annotated[str | None, Form(max_length=32)] = None,
    extend_hours: Annotated[str | None, Form(max_length=16)] = None,
    back: Annotated[str | None, Form(max_length=200)] = None,
    after_photo: UploadFile | None = None,
) -> Response:
    if not sess.csrf_ok(csrf):
        raise HTTPException(403, "form expired: reload the page")
    hours = None
    if extend_hours:
        try:
            hours = float(extend_hours)
        except ValueError:
            hours = -1.0
        if not 0 < hours <= 2000:
            return RedirectResponse(
                f"/ui/cases/{case_id}?error={quote('extend hours: a number between 0 and 2000')}", 303
            )
    photo = Upload(after_photo.file) if after_photo is not None and after_photo.filename else None
    try:
        await run_in_threadpool(
            service.transition, sess.operator, case_id, action, reason, department or None, hours, photo
        )
    except WorkflowError as exc:
        if status_of(exc) == 404:
            raise HTTPException(404, "case not found") from None
        return RedirectResponse(f"/ui/cases/{case_id}?error={quote(str(exc))}", status_code=303)
    target = _safe_next(back) if back else f"/ui/cases/{case_id}"
    return RedirectResponse(target, status_code=303)


@router.get("/stats", response_class=HTMLResponse)
def stats_page(request: Request, service: ServiceDep, sess: PageSession) -> Response:
    st = stats.compute(service)
    return _render(request, "stats.html", sess, st=st, plots=list(stats.PLOTS))


@router.get("/stats/{name}.png")
def stats_plot(name: str, service: ServiceDep, _sess: AssetSession) -> Response:
    if name not in stats.PLOTS:
        raise HTTPException(404, "no such plot")
    png = stats.PLOTS[name](stats.compute(service))
    return Response(png, media_type="image/png", headers={"Cache-Control": "no-store"})


@router.get("/export.zip")
def export_zip(service: ServiceDep, _sess: PageSession) -> Response:
    """The label export (same as `streetvision dispatch export-labels`) as a download."""
    tmp = FsPath(tempfile.mkdtemp(prefix="sv-export-"))
    export_labels(service, tmp / "labels")
    archive = shutil.make_archive(str(tmp / "streetvision-labels"), "zip", tmp / "labels")
    return FileResponse(
        archive,
        media_type="application/zip",
        filename="streetvision-labels.zip",
        background=BackgroundTask(shutil.rmtree, tmp, ignore_errors=True),
    )

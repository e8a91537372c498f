"""Operator web UI: server-rendered Jinja2 pages over the same service.

Session cookie (HttpOnly, SameSite=Strict) from the login form; every form
carries a CSRF token derived from the session token. Every page asks for the
session through one dependency, which sends a visitor without one to the login
page and back to the page afterwards."""

from __future__ import annotations

import hmac
import shutil
import tempfile
from dataclasses import asdict, dataclass, replace
from datetime import date, datetime, time, timedelta
from pathlib import Path as FsPath
from typing import Annotated, Any, Literal
from urllib.parse import quote, urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, FastAPI, Form, HTTPException, Path, Query, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.exception_handlers import http_exception_handler, request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import Field
from starlette.background import BackgroundTask
from starlette.exceptions import HTTPException as StarletteHTTPException

from vision.core.cases import NO_NUL_PATTERN
from vision.dispatch import PACKAGE_DIR, i18n, mapview, stats
from vision.dispatch.api import ui_text
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
from vision.dispatch.fleet import ALERT_NAMES, ALERT_VIOLATION
from vision.dispatch.schemas import CaseDetail, FleetCameraOut, FleetList
from vision.dispatch.security import csrf_token
from vision.dispatch.service import DispatchService, OperatorPrincipal, Upload
from vision.dispatch.throttle import TooManyAttempts
from vision.dispatch.workflow import DEPARTMENT_BOUND, IllegalTransition, NotPermitted, Role, Status, WorkflowError
from vision.dispatch.zone_drafts import DRAFT_MAX_CHARS, check_draft
from vision.dispatch.zone_versions import ZoneVersionInfo

router = APIRouter(prefix="/ui", include_in_schema=False, route_class=CredentialFirst)
templates = Jinja2Templates(directory=PACKAGE_DIR / "templates")
templates.env.add_extension("jinja2.ext.i18n")
templates.env.install_gettext_callables(  # type: ignore[attr-defined] # added by the i18n extension
    i18n.gettext, i18n.ngettext, newstyle=True, pgettext=i18n.pgettext, npgettext=i18n.npgettext
)
QUEUE_PAGE = 20  # cards per page of the review queue
LIST_PAGE = 50  # rows per page of the case list
BULK_MAX = 200  # cases one bulk review may name

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
    """Turns `LoginRequired` into the redirect to the login page, with `next=` the page asked for;
    and answers errors of UI pages (a missing case, a malformed filter) with an HTML page in the
    operator's language, while the API keeps its JSON errors."""

    async def _to_login(_request: Request, exc: Exception) -> RedirectResponse:
        assert isinstance(exc, LoginRequired)
        return RedirectResponse(f"/ui/login?next={quote(exc.path)}", status_code=303)

    async def _http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if not _is_ui(request):
            return await http_exception_handler(request, exc)
        return _error_page(request, exc.status_code, headers=getattr(exc, "headers", None))

    async def _invalid_request(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        if not _is_ui(request):
            return await request_validation_exception_handler(request, exc)
        fields = ", ".join(str(e["loc"][-1]) for e in exc.errors() if e.get("loc"))
        return _error_page(request, 422, detail=fields)

    app.add_exception_handler(LoginRequired, _to_login)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _invalid_request)


def _is_ui(request: Request) -> bool:
    """A page of the UI (its errors are HTML pages); its JSON (the map's GeoJSON) answers JSON errors."""
    path = request.url.path
    return (path == "/ui" or path.startswith("/ui/")) and not path.endswith(".geojson")


ERROR_TITLES = {
    401: i18n.N_("Please log in"),
    403: i18n.N_("Not allowed"),
    404: i18n.N_("Not found"),
    405: i18n.N_("Not allowed"),
    413: i18n.N_("Upload too large"),
    422: i18n.N_("The request could not be read"),
    429: i18n.N_("Too many requests"),
}
ERROR_TEXTS = {
    401: i18n.N_("Your session has ended. Log in again."),
    403: i18n.N_("The form has expired or your role may not do this. Reload the page and try again."),
    404: i18n.N_("This page or case does not exist."),
    405: i18n.N_("This page cannot be used this way."),
    413: i18n.N_("The file is larger than the center accepts."),
    422: i18n.N_("A value in the address or the form is not valid."),
    429: i18n.N_("Wait a moment before trying again."),
}


def _error_page(request: Request, code: int, detail: str = "", headers: dict[str, str] | None = None) -> Response:
    service: DispatchService = request.app.state.service
    sess = _find_session(request, service) if code != 401 else None
    return _render(
        request,
        "error.html",
        sess,
        status_code=code,
        code=code,
        title=ERROR_TITLES.get(code, i18n.N_("Something went wrong")),
        text=ERROR_TEXTS.get(code, i18n.N_("The request could not be completed.")),
        detail=detail,
        headers=headers,
    )


def _render(
    request: Request,
    name: str,
    sess: UiSession | None,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
    **ctx: Any,
) -> HTMLResponse:
    service: DispatchService = request.app.state.service
    tz = service.config.working_time.zone()
    locale = i18n.pick_locale(request.cookies.get(i18n.LANG_COOKIE))

    def local(dt: datetime | None, seconds: bool = False) -> str:
        """Times in the city's zone (the working calendar's), not UTC."""
        return dt.astimezone(tz).strftime("%Y-%m-%d %H:%M" + (":%S" if seconds else "")) if dt else "—"

    def event_label(case: Any) -> str:
        """A case's (or a violation type's) name from the taxonomy in the locale, else as the edge named it."""
        violation = case if isinstance(case, str) else case.violation
        if violation == ALERT_VIOLATION:  # a maintenance alert: of a box, or of one camera
            kind = "box" if isinstance(case, str) or not case.camera_id else "camera"
            return i18n.gettext(ALERT_NAMES[kind][1])
        ev = service.taxonomy.violations.get(violation)
        named = i18n.localized(ev.name, ev.name_en) if ev else None
        return named or (violation if isinstance(case, str) else case.event_name)

    def dept_name(dept_id: str | None) -> str:
        for d in service.config.departments:
            if d.id == dept_id:
                return i18n.localized(d.name, d.name_en) or d.id
        return dept_id or "—"

    def reject_reasons(violation: str) -> list[str]:
        ev = service.taxonomy.violations.get(violation)
        own = [i18n.localized(r.name, r.name_en) or r.name for r in ev.reject_reasons] if ev else []
        return own + [i18n.gettext(r) for r in ui_text.COMMON_REJECT_REASONS]

    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    ctx.update(
        op=sess.operator if sess else None,
        csrf=sess.csrf if sess else "",
        local=local,
        tzname=tz.key,
        locale=locale,
        html_lang=i18n.HTML_LANG[locale],
        locales=i18n.LOCALES,
        here=here,
        event_label=event_label,
        dept_name=dept_name,
        reject_reasons=reject_reasons,
        status_word=lambda v: ui_text.word(ui_text.STATUS, v),
        action_word=lambda v: ui_text.word(ui_text.ACTION, v),
        role_word=lambda v: ui_text.word(ui_text.ROLE, v),
        actor_word=lambda v: ui_text.word(ui_text.ACTOR_KIND, v),
        kind_word=lambda v: ui_text.word(ui_text.EVIDENCE_KIND, v),
        stage_word=lambda v: ui_text.word(ui_text.PHOTO_STAGE, v),
        source_word=lambda v: ui_text.word(ui_text.SOURCE, v),
        plate_colour_word=lambda v: ui_text.word(ui_text.PLATE_COLOUR, v),
        camera_event_word=lambda v: ui_text.word(ui_text.CAMERA_EVENT, v),
        camera_link_word=lambda v: ui_text.word(ui_text.CAMERA_LINK, v),
        disk_level_word=lambda v: ui_text.word(ui_text.DISK_LEVEL, v),
        zone_kind_word=lambda v: ui_text.word(ui_text.ZONE_KIND, v),
        zone_problem=ui_text.zone_problem,
        zone_kinds=list(ui_text.ZONE_KIND),
        camera_outcome_word=lambda v: ui_text.word(ui_text.CAMERA_OUTCOME, v),
        # the types whose cases name a vehicle: "no plate read" is news there, not elsewhere
        names_vehicle=lambda violation: violation in service.config.merge_by_plate,
    )
    with i18n.using(locale):  # the template is rendered here, inside the response's constructor
        return templates.TemplateResponse(request, name, ctx, status_code=status_code, headers=headers)


def _safe_next(nxt: str | None) -> str:
    return nxt if nxt and nxt.startswith("/ui/") and "//" not in nxt and "\\" not in nxt else "/ui/"


@router.get("/lang/{locale}")
def set_language(locale: str, next: str | None = None) -> Response:
    """The operator's language, kept a year in a cookie (a preference, not a credential)."""
    if locale not in i18n.LOCALES:
        raise HTTPException(404, "no such language")
    resp = RedirectResponse(_safe_next(next), status_code=303)
    resp.set_cookie(i18n.LANG_COOKIE, locale, max_age=365 * 86400, samesite="lax", path="/")
    return resp


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
            error=i18n.N_("Too many failed logins: try again in %(seconds)s s"),
            error_args={"seconds": f"{exc.retry_after_s:.0f}"},
        )
    except WorkflowError:
        return _render(
            request,
            "login.html",
            None,
            status_code=401,
            next=_safe_next(next),
            error=i18n.N_("Wrong username or password"),
            error_args={},
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


# ------------------------------------------------------------ finding cases
FilterText = Annotated[str, Query(max_length=64, pattern=NO_NUL_PATTERN)]
Page = Annotated[int, Query(ge=1, le=100_000)]


@dataclass(frozen=True)
class CaseFilter:
    """What an operator narrowed a list to; the same fields on the queue and the case list.
    Dates are the city's calendar days, both ends included, on the time the case arrived."""

    violation: str = ""
    camera: str = ""
    grid: str = ""
    department: str = ""
    status: str = ""
    since: str = ""
    until: str = ""
    q: str = ""
    overdue: bool = False

    def query(self, **changes: Any) -> str:
        """This filter as a query string (for paging links), with `changes` applied."""
        values = {k: v for k, v in asdict(self).items() if v} | {k: v for k, v in changes.items() if v}
        if values.get("overdue"):
            values["overdue"] = "true"
        return urlencode(values)

    def dates(self, tz: ZoneInfo) -> tuple[datetime | None, datetime | None, list[str]]:
        """The date range as [since 00:00, day after until 00:00) in the city's zone, and the fields that did not parse."""
        bad: list[str] = []

        def day(name: str, value: str) -> date | None:
            if not value:
                return None
            try:
                return date.fromisoformat(value)
            except ValueError:
                bad.append(name)
                return None

        d1, d2 = day("since", self.since), day("until", self.until)
        since = datetime.combine(d1, time(), tz) if d1 else None
        until = datetime.combine(d2 + timedelta(days=1), time(), tz) if d2 and d2 < date.max else None
        return since, until, bad

    def listing(
        self, service: DispatchService, statuses: list[str] | None, viewer: OperatorPrincipal, **kwargs: Any
    ) -> tuple[Any, list[str]]:
        since, until, bad = self.dates(service.config.working_time.zone())
        wanted = [self.status] if self.status in {s.value for s in Status} else statuses
        listing = service.list_cases(
            status=wanted,
            violation=self.violation or None,
            camera_id=self.camera or None,
            department=self.department or None,
            grid_prefix=self.grid or None,
            search=self.q.strip() or None,
            overdue=True if self.overdue else None,
            since=since,
            until=until,
            viewer=viewer,  # a department account: its own department's cases only
            **kwargs,
        )
        return listing, bad


def case_filter(
    violation: FilterText = "",
    camera: FilterText = "",
    grid: FilterText = "",
    department: FilterText = "",
    status: FilterText = "",
    since: FilterText = "",
    until: FilterText = "",
    q: Annotated[str, Query(max_length=100, pattern=NO_NUL_PATTERN)] = "",
    overdue: bool = False,
) -> CaseFilter:
    return CaseFilter(violation, camera, grid, department, status, since, until, q, overdue)


Filter = Annotated[CaseFilter, Depends(case_filter)]


def _pages(total: int, page: int, size: int) -> dict[str, int]:
    last = max(1, -(-total // size))
    return {"page": min(page, last), "last": last, "size": size, "total": total}


def _filter_choices(service: DispatchService) -> dict[str, Any]:
    return {
        "violations": list(service.taxonomy.violations),
        "departments": service.config.departments,
        "statuses": [s.value for s in Status],
        **service.seen_values(),
    }


def _latest_evidence(case: CaseDetail) -> tuple[list[Any], list[tuple[Any, list[Any]]]]:
    """The evidence of the latest occurrence (and the after photos), and the earlier
    occurrences with theirs, newest first: a case merged six times shows one set, not six."""
    if not case.occurrences:
        return list(case.evidence), []
    by_occ: dict[int | None, list[Any]] = {}
    for ev in case.evidence:
        by_occ.setdefault(ev.occurrence_id, []).append(ev)
    occs = sorted(case.occurrences, key=lambda o: (o.detected_at, o.id), reverse=True)
    latest = occs[0]
    shown = by_occ.get(latest.id, []) + by_occ.get(None, [])
    earlier = [(o, by_occ.get(o.id, [])) for o in occs[1:]]
    return shown, earlier


@router.get("/", response_class=HTMLResponse)
def queue(
    request: Request,
    service: ServiceDep,
    sess: PageSession,
    flt: Filter,
    page: Page = 1,
    done: int = 0,
    failed: int = 0,
) -> Response:
    """AI reports waiting for review, who waited longest first, a page at a time. A department
    or a field inspector reviews no AI reports: their start page is their workspace."""
    if sess.operator.role in WORKSPACE_STATUSES:
        return RedirectResponse("/ui/workspace", status_code=303)
    flt = replace(flt, status="")
    offset = (page - 1) * QUEUE_PAGE
    listing, bad = flt.listing(
        service, [Status.SUSPECTED.value], sess.operator, limit=QUEUE_PAGE, offset=offset, oldest_first=True
    )
    cards = []
    for c in listing.items:
        case = service.get_case(c.id, sess.operator)
        cards.append((case, _latest_evidence(case)[0]))
    return _render(
        request,
        "queue.html",
        sess,
        cards=cards,
        pages=_pages(listing.total, page, QUEUE_PAGE),
        flt=flt,
        bad_fields=bad,
        choices=_filter_choices(service),
        done=done,
        failed=failed,
    )


@router.get("/cases", response_class=HTMLResponse)
def cases(request: Request, service: ServiceDep, sess: PageSession, flt: Filter, page: Page = 1) -> Response:
    listing, bad = flt.listing(service, None, sess.operator, limit=LIST_PAGE, offset=(page - 1) * LIST_PAGE)
    return _render(
        request,
        "cases.html",
        sess,
        cases=listing.items,
        pages=_pages(listing.total, page, LIST_PAGE),
        flt=flt,
        bad_fields=bad,
        choices=_filter_choices(service),
    )


# What a department's and a field inspector's workspace lists: the department's dispatched
# cases (and its parked ones, apart), the handled cases waiting for verification in the field.
WORKSPACE_STATUSES: dict[Role, list[str]] = {
    Role.DEPARTMENT: [Status.DISPATCHED.value],
    Role.INSPECTOR: [Status.HANDLED.value],
}


@router.get("/workspace", response_class=HTMLResponse)
def workspace(request: Request, service: ServiceDep, sess: PageSession, page: Page = 1) -> Response:
    """A department's cases to handle (or an inspector's to verify), the soonest deadline first,
    the overdue and the urged (督办) marked; a department also sees its parked (挂账) cases."""
    role = sess.operator.role
    statuses = WORKSPACE_STATUSES.get(role, [Status.DISPATCHED.value])
    listing = service.list_cases(
        status=statuses,
        limit=LIST_PAGE,
        offset=(page - 1) * LIST_PAGE,
        viewer=sess.operator,
        deadline_first=role is not Role.INSPECTOR,
        oldest_first=role is Role.INSPECTOR,
    )
    parked = (
        service.list_cases(status=[Status.PARKED.value], limit=LIST_PAGE, viewer=sess.operator, deadline_first=True)
        if role is not Role.INSPECTOR
        else None
    )
    return _render(
        request,
        "workspace.html",
        sess,
        cases=listing.items,
        parked=parked.items if parked else [],
        pages=_pages(listing.total, page, LIST_PAGE),
        verifying=role is Role.INSPECTOR,
        flt=CaseFilter(),
    )


# ------------------------------------------------------------ one case
ERROR_MESSAGES = {
    "not_permitted": i18n.N_("Your role may not do this."),
    "illegal": i18n.N_("The case has moved on: this action is no longer possible. Reload to see its state."),
    "reason": i18n.N_("A reason is required for this action."),
    "department": i18n.N_("Unknown department."),
    "after_photo": i18n.N_("A photo of the handled site is required (JPEG or PNG)."),
    "extend_hours": i18n.N_("Extension: a number of working hours between 0 and 2000."),
    "parked_until": i18n.N_("Parking needs the date handling is expected by, from today up to ten years ahead."),
    "invalid": i18n.N_("The input was not accepted."),
}


def error_code(exc: WorkflowError) -> str:
    """A refusal of the service as a key of ERROR_MESSAGES (the page shows it translated)."""
    if isinstance(exc, NotPermitted):
        return "not_permitted"
    if isinstance(exc, IllegalTransition):
        return "illegal"
    field = str(exc).split(":", 1)[0]
    return field if field in ERROR_MESSAGES else "invalid"


@router.get("/cases/{case_id}", response_class=HTMLResponse)
def case_detail(
    request: Request,
    case_id: CaseId,
    service: ServiceDep,
    sess: PageSession,
    error: Annotated[str | None, Query(max_length=32)] = None,
) -> Response:
    try:
        case = service.get_case(case_id, sess.operator)
    except WorkflowError:
        raise HTTPException(404, "case not found") from None
    shown, earlier = _latest_evidence(case)
    return _render(
        request,
        "case.html",
        sess,
        case=case,
        shown=shown,
        earlier=earlier,
        departments=service.config.departments,
        error=ERROR_MESSAGES.get(error or "", ERROR_MESSAGES["invalid"]) if error else None,
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
    parked_until: Annotated[str | None, Form(max_length=16)] = None,
    back: Annotated[str | None, Form(max_length=500)] = None,
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
            return RedirectResponse(f"/ui/cases/{case_id}?error=extend_hours", 303)
    until = None
    if parked_until:
        try:
            until = date.fromisoformat(parked_until)
        except ValueError:
            return RedirectResponse(f"/ui/cases/{case_id}?error=parked_until", 303)
    photo = Upload(after_photo.file) if after_photo is not None and after_photo.filename else None
    try:
        await run_in_threadpool(
            service.transition, sess.operator, case_id, action, reason, department or None, hours, photo, until
        )
    except WorkflowError as exc:
        if status_of(exc) == 404:
            raise HTTPException(404, "case not found") from None
        return RedirectResponse(f"/ui/cases/{case_id}?error={error_code(exc)}", status_code=303)
    target = _safe_next(back) if back else f"/ui/cases/{case_id}"
    return RedirectResponse(target, status_code=303)


@router.post("/bulk")
def bulk_review(
    service: ServiceDep,
    sess: PageSession,
    action: Annotated[str, Form(max_length=16)],
    case_id: Annotated[list[Annotated[int, Field(ge=1, le=2**31 - 1)]] | None, Form(max_length=BULK_MAX)] = None,
    csrf: Annotated[str, Form(max_length=128)] = "",
    reason: Annotated[str | None, Form(max_length=500)] = None,
    back: Annotated[str | None, Form(max_length=500)] = None,
) -> Response:
    """Accept or reject the selected reports at once (one reason for all rejected). Each case
    moves on its own: one another reviewer took meanwhile is counted as failed, not fatal."""
    if not sess.csrf_ok(csrf):
        raise HTTPException(403, "form expired: reload the page")
    if action not in ("accept", "reject"):
        raise HTTPException(422, "bulk review: accept or reject")
    done = failed = 0
    for cid in dict.fromkeys(case_id or []):
        try:
            service.transition(sess.operator, cid, action, reason or None)
            done += 1
        except WorkflowError:
            failed += 1
    target = _safe_next(back)
    target += ("&" if "?" in target else "?") + urlencode({"done": done, "failed": failed})
    return RedirectResponse(target, status_code=303)


# ------------------------------------------------------------ statistics, export
def _not_for_departments(sess: UiSession) -> None:
    """The statistics and the label export cover every department's cases: not a department's to read."""
    if sess.operator.role in DEPARTMENT_BOUND:
        raise HTTPException(403, "not for a department account")


@router.get("/stats", response_class=HTMLResponse)
def stats_page(request: Request, service: ServiceDep, sess: PageSession) -> Response:
    _not_for_departments(sess)
    st = stats.compute(service)
    return _render(request, "stats.html", sess, st=st, plots=list(stats.PLOTS))


@router.get("/stats/{name}.png")
def stats_plot(request: Request, name: str, service: ServiceDep, sess: AssetSession) -> Response:
    _not_for_departments(sess)
    if name not in stats.PLOTS:
        raise HTTPException(404, "no such plot")
    with i18n.using(i18n.pick_locale(request.cookies.get(i18n.LANG_COOKIE))):
        png = stats.PLOTS[name](stats.compute(service), stats.Names.of(service))
    return Response(png, media_type="image/png", headers={"Cache-Control": "no-store"})


@router.get("/export.zip")
def export_zip(service: ServiceDep, sess: PageSession) -> Response:
    """The label export (same as `streetvision dispatch export-labels`) as a download."""
    _not_for_departments(sess)
    tmp = FsPath(tempfile.mkdtemp(prefix="sv-export-"))
    export_labels(service, tmp / "labels")
    archive = shutil.make_archive(str(tmp / "streetvision-labels"), "zip", tmp / "labels")
    return FileResponse(
        archive,
        media_type="application/zip",
        filename="streetvision-labels.zip",
        background=BackgroundTask(shutil.rmtree, tmp, ignore_errors=True),
    )


# ------------------------------------------------------------ the fleet
@router.get("/fleet", response_class=HTMLResponse)
def fleet_page(request: Request, service: ServiceDep, sess: PageSession) -> Response:
    """Every edge box and camera as their latest heartbeats tell, what is offline first."""
    fleet = FleetList.of(service.fleet_boxes(), service.clock(), service.config.fleet.box_silent_after_s)
    fleet.boxes.sort(key=lambda b: (b.online, all(c.watching for c in b.cameras), b.site_id))
    return _render(request, "fleet.html", sess, fleet=fleet, now=service.clock(), cfg=service.config.fleet)


def _fleet_camera(service: DispatchService, site_id: str, camera_id: str) -> FleetCameraOut:
    fleet = FleetList.of(service.fleet_boxes(site_id), service.clock(), service.config.fleet.box_silent_after_s)
    cam = next((c for b in fleet.boxes if b.site_id == site_id for c in b.cameras if c.camera_id == camera_id), None)
    if cam is None:
        raise HTTPException(404, "no such camera")
    return cam


@router.get("/fleet/{site_id}/{camera_id}", response_class=HTMLResponse)
def fleet_camera_page(
    request: Request, site_id: str, camera_id: str, service: ServiceDep, sess: PageSession
) -> Response:
    """One camera's latest picture, large, with the zones its box watches drawn on it; an
    administrator can draw zones on it and get them checked as the site file's YAML."""
    cam = _fleet_camera(service, site_id, camera_id)
    zones = [z.model_dump(mode="json") for z in cam.zones]
    return _render(
        request,
        "fleet_camera.html",
        sess,
        site_id=site_id,
        cam=cam,
        draft=zones,
        checked=None,
        published=_published(service, site_id, camera_id),
        just_published=None,
    )


def _published(service: DispatchService, site_id: str, camera_id: str) -> ZoneVersionInfo | None:
    """The latest zone version published for the camera, if any."""
    return next((v for v in service.latest_zones(site_id) if v.camera_id == camera_id), None)


@router.post("/fleet/{site_id}/{camera_id}/zones", response_class=HTMLResponse)
def fleet_camera_zones(
    request: Request,
    site_id: str,
    camera_id: str,
    service: ServiceDep,
    sess: PageSession,
    zones: Annotated[str, Form(max_length=DRAFT_MAX_CHARS)] = "[]",
    csrf: Annotated[str, Form(max_length=128)] = "",
    action: Annotated[Literal["check", "publish"], Form()] = "check",
) -> Response:
    """Zones drawn in the editor, checked as `config check` checks a site file: the page again
    with every problem, or with the camera's `zones:` as YAML for the box's site file (422 / 200).
    With `action=publish`, zones that pass are stored as the camera's next zone version, which
    its box picks up (201)."""
    if not sess.csrf_ok(csrf):
        raise HTTPException(403, "form expired: reload the page")
    if sess.operator.role != Role.ADMIN:
        raise HTTPException(403, "only an administrator edits zones")
    cam = _fleet_camera(service, site_id, camera_id)
    checked = check_draft(zones)
    just_published = None
    if action == "publish" and not checked.problems:
        just_published = service.publish_zones(sess.operator.username, site_id, camera_id, checked.valid)
    return _render(
        request,
        "fleet_camera.html",
        sess,
        status_code=422 if checked.problems else 201 if just_published else 200,
        site_id=site_id,
        cam=cam,
        draft=checked.zones,
        checked=checked,
        published=_published(service, site_id, camera_id),
        just_published=just_published,
    )


@router.get("/fleet/{site_id}/{camera_id}/frame.jpg")
def fleet_frame(site_id: str, camera_id: str, service: ServiceDep, sess: AssetSession) -> Response:  # noqa: ARG001 # any operator
    """A camera's latest picture, as its box sent it with a heartbeat."""
    sha = service.camera_frame(site_id, camera_id)
    if sha is None:
        raise HTTPException(404, "no picture of this camera")
    try:
        path = service.store.open_path(sha)
    except ValueError:
        raise HTTPException(404, "no picture of this camera")
    return FileResponse(path, media_type="image/jpeg", headers={"Cache-Control": "no-store"})


# ------------------------------------------------------------ the map
@router.get("/map", response_class=HTMLResponse)
def map_page(request: Request, service: ServiceDep, sess: PageSession, flt: Filter) -> Response:
    """Cases and cameras over the unit grids (Leaflet, served from the package; base tiles only
    from the city's own tile server, `map` in configs/dispatch.yaml). The points come from
    /ui/map.geojson with the same filter; a date that does not parse is shown and ignored, as
    on the case list."""
    _since, _until, bad = flt.dates(service.config.working_time.zone())
    data_flt = replace(flt, since="" if "since" in bad else flt.since, until="" if "until" in bad else flt.until)
    cfg = service.config.map
    csp = mapview.csp_with_images(service.settings.content_security_policy, mapview.tile_sources(cfg))
    return _render(
        request,
        "map.html",
        sess,
        headers={"Content-Security-Policy": csp} if csp else None,
        flt=flt,
        bad_fields=bad,
        choices=_filter_choices(service),
        data_url="/ui/map.geojson" + (f"?{data_flt.query()}" if data_flt.query() else ""),
        map_cfg=cfg,
        status_colours={s.value: mapview.status_colour(s.value) for s in Status},
        type_colours=mapview.type_colours(service.taxonomy.violations),
    )


@router.get("/map.geojson")
def map_data(request: Request, service: ServiceDep, sess: AssetSession, flt: Filter) -> Response:
    """The map's points as a GeoJSON FeatureCollection (cases newest first up to `map.max_points`,
    cameras, grid outlines) in the tiles' datum; 422 for a filter that does not parse."""
    tz = service.config.working_time.zone()
    since, until, bad = flt.dates(tz)
    if flt.status and flt.status not in {s.value for s in Status}:
        bad.append("status")
    if since and until and since >= until:
        bad.append("until")
    if bad:
        raise HTTPException(422, f"not valid: {', '.join(bad)}")
    cfg = service.config.map

    def local(dt: datetime | None) -> str:
        return dt.astimezone(tz).strftime("%Y-%m-%d %H:%M") if dt else "—"

    def type_label(case: Any) -> str:
        ev = service.taxonomy.violations.get(case.violation)
        return (i18n.localized(ev.name, ev.name_en) if ev else None) or case.event_name

    words = mapview.Words(type_label, lambda v: ui_text.word(ui_text.STATUS, v), local)
    with i18n.using(i18n.pick_locale(request.cookies.get(i18n.LANG_COOKIE))):
        listing, _bad = flt.listing(service, None, sess.operator, limit=cfg.max_points)
        colours = mapview.type_colours(service.taxonomy.violations)
        cases = mapview.case_features(listing.items, cfg.datum, colours, words)
        with service.ctx.read() as session:
            cameras = mapview.camera_features(session, cfg.datum, local, sess.operator.sees)
        grids = mapview.grid_features(cfg.grids, cfg.datum)
        body = mapview.collection(cases, cameras, grids, listing.total, cfg.max_points)
    return JSONResponse(body, media_type="application/geo+json", headers={"Cache-Control": "no-store"})

"""Case routes: intake from edge boxes, listing, detail, transitions, evidence."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, File, Form, HTTPException, Path, Query, Request, Response, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse
from pydantic import BaseModel, ValidationError
from starlette.datastructures import UploadFile as StarletteUpload

from vision.core.cases import NO_NUL_PATTERN, CaseLifecycle, CaseReport, in_timestamp_range
from vision.dispatch.api.deps import CredentialFirst, Device, ReadOperator, ServiceDep, WriteOperator
from vision.dispatch.schemas import (
    CaseDetail,
    CaseList,
    ErrorResponse,
    IntakeResult,
    LifecycleResult,
    TransitionRequest,
)
from vision.dispatch.service import Upload
from vision.dispatch.uploads import CASE_JSON_MAX_CHARS
from vision.dispatch.workflow import Action, Status

M = TypeVar("M", bound=BaseModel)

router = APIRouter(prefix="/api/v1", tags=["cases"], route_class=CredentialFirst)

DbId = Annotated[int, Path(ge=1, le=2**31 - 1, description="Database id")]

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorResponse},
    403: {"model": ErrorResponse},
    404: {"model": ErrorResponse},
    409: {"model": ErrorResponse},
    422: {"description": "Invalid input"},
}


@router.post(
    "/cases",
    status_code=201,
    response_model=IntakeResult,
    responses={
        200: {
            "model": IntakeResult,
            "description": "Replay of a known idempotency key, or a new occurrence merged into an open case.",
        },
        **ERRORS,
    },
    summary="Post a suspected case from an edge box",
    description="multipart/form-data: part `case` is a `vision.core.cases.CaseReport` as JSON; one file part per "
    "`case.evidence[].name`, whose SHA-256 and size must match the declaration.",
)
async def post_case(
    request: Request,
    response: Response,
    service: ServiceDep,
    device: Device,
    case: Annotated[str, Form(description="CaseReport JSON", max_length=CASE_JSON_MAX_CHARS)],
) -> IntakeResult:
    report = parsed(CaseReport, case, "case")
    files = await file_parts(request, "case")
    result = await run_in_threadpool(service.intake, device, report, files)
    if not result.created:
        response.status_code = 200
    return result


@router.post(
    "/lifecycle",
    status_code=201,
    response_model=LifecycleResult,
    responses={
        200: {"model": LifecycleResult, "description": "Replay of a known event idempotency key."},
        404: {"model": ErrorResponse, "description": "No case has `event.case_key` yet: retry later."},
        **{k: v for k, v in ERRORS.items() if k != 404},
    },
    summary="Post what the camera saw of a case's violation later: cleared, resumed or grew (自动核查)",
    description="multipart/form-data: part `event` is a `vision.core.cases.CaseLifecycle` as JSON; one file part "
    "per `event.evidence[].name` (the cleared place's snapshot), whose SHA-256 and size must match. 404 only when "
    "no case or occurrence has `event.case_key`; 409 when the case is of another site or camera.",
)
async def post_lifecycle(
    request: Request,
    response: Response,
    service: ServiceDep,
    device: Device,
    event: Annotated[str, Form(description="CaseLifecycle JSON", max_length=CASE_JSON_MAX_CHARS)],
) -> LifecycleResult:
    lifecycle = parsed(CaseLifecycle, event, "event")
    files = await file_parts(request, "event")
    result, created = await run_in_threadpool(service.record_lifecycle, device, lifecycle, files)
    if not created:
        response.status_code = 200
    return result


def parsed(model: type[M], text: str, part: str) -> M:
    """The JSON part `part` as `model`; a 422 naming the part's fields when it is not one."""
    try:
        return model.model_validate_json(text)
    except ValidationError as exc:
        raise HTTPException(
            422,
            [
                {"loc": [part, *e["loc"]], "msg": e["msg"], "type": e["type"]}
                for e in exc.errors(include_url=False, include_context=False)
            ],
        ) from None


async def file_parts(request: Request, json_part: str) -> dict[str, Upload]:
    """The evidence file parts of a multipart request (every part but the JSON one), by name."""
    form = await request.form()
    files: dict[str, Upload] = {}
    for name, value in form.multi_items():
        if name == json_part:
            continue
        if not isinstance(value, StarletteUpload):
            raise HTTPException(422, f"evidence '{name}': must be a file part")
        if name in files:
            raise HTTPException(422, f"evidence '{name}': sent twice")
        files[name] = Upload(value.file, value.content_type)
    return files


@router.get("/cases", response_model=CaseList, responses=ERRORS, summary="List cases, newest first")
def list_cases(
    service: ServiceDep,
    op: ReadOperator,
    status: Annotated[list[Status] | None, Query()] = None,
    violation: Annotated[str | None, Query(max_length=32, pattern=NO_NUL_PATTERN)] = None,
    camera_id: Annotated[str | None, Query(max_length=64, pattern=NO_NUL_PATTERN)] = None,
    overdue: bool | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    q: Annotated[
        str | None,
        Query(max_length=100, pattern=NO_NUL_PATTERN, description="Case number, text of address or camera, or plate."),
    ] = None,
    plate: Annotated[
        str | None,
        Query(max_length=32, pattern=NO_NUL_PATTERN, description="(Part of) a plate; 苏E·12345 = 苏e12345 = 苏E12345."),
    ] = None,
    camera_state: Annotated[
        Literal["present", "cleared"] | None, Query(description="What the camera last saw (自动核查).")
    ] = None,
) -> CaseList:
    if (since and since.tzinfo is None) or (until and until.tzinfo is None):
        raise HTTPException(422, "since/until: must carry a time zone")
    try:  # before the database converts them to UTC, which can overflow near year 1 or 9999
        since = in_timestamp_range(since) if since else None
        until = in_timestamp_range(until) if until else None
    except ValueError as exc:
        raise HTTPException(422, f"since/until: {exc}") from None
    return service.list_cases(
        [s.value for s in status or []],
        violation,
        camera_id,
        overdue,
        since,
        until,
        limit,
        offset,
        search=q.strip() if q else None,
        plate=plate,
        camera_state=camera_state,
        viewer=op,  # a department account lists its own department's cases only
    )


@router.get("/cases/{case_id}", response_model=CaseDetail, responses=ERRORS, summary="One case with its timeline")
def get_case(case_id: DbId, service: ServiceDep, op: ReadOperator) -> CaseDetail:
    return service.get_case(case_id, op)


@router.post(
    "/cases/{case_id}/transitions",
    response_model=CaseDetail,
    responses=ERRORS,
    summary="Move a case through the workflow (all actions but 'handle')",
)
def transition(case_id: DbId, body: TransitionRequest, service: ServiceDep, op: WriteOperator) -> CaseDetail:
    if body.action is Action.HANDLE:
        raise HTTPException(422, "action 'handle' needs an after photo: POST /api/v1/cases/{id}/handle")
    return service.transition(
        op, case_id, body.action, body.reason, body.department, body.extend_hours, parked_until=body.parked_until
    )


@router.post(
    "/cases/{case_id}/handle",
    response_model=CaseDetail,
    responses=ERRORS,
    summary="Record handling (处置) with an after photo",
)
def handle(
    case_id: DbId,
    service: ServiceDep,
    op: WriteOperator,
    after_photo: Annotated[UploadFile, File(description="JPEG or PNG of the site after handling")],
    reason: Annotated[str | None, Form(max_length=500, pattern=NO_NUL_PATTERN)] = None,
) -> CaseDetail:
    return service.transition(op, case_id, Action.HANDLE, reason=reason, after_photo=Upload(after_photo.file))


@router.post(
    "/cases/{case_id}/verify",
    response_model=CaseDetail,
    responses=ERRORS,
    summary="Verify (核查) a handled case with a photo of the site (required of a field inspector)",
)
def verify(
    case_id: DbId,
    service: ServiceDep,
    op: WriteOperator,
    photo: Annotated[UploadFile | None, File(description="JPEG or PNG of the site at verification")] = None,
    reason: Annotated[str | None, Form(max_length=500, pattern=NO_NUL_PATTERN)] = None,
) -> CaseDetail:
    upload = Upload(photo.file) if photo is not None else None
    return service.transition(op, case_id, Action.VERIFY, reason=reason, after_photo=upload)


@router.get(
    "/cases/{case_id}/evidence/{evidence_id}",
    response_class=FileResponse,
    responses={200: {"content": {"image/jpeg": {}, "image/png": {}, "video/mp4": {}}}, **ERRORS},
    summary="An evidence file (snapshot, clip, after photo)",
)
def evidence(case_id: DbId, evidence_id: DbId, service: ServiceDep, op: ReadOperator) -> FileResponse:
    path, ctype = service.evidence_file(case_id, evidence_id, op)
    return FileResponse(
        path, media_type=ctype, headers={"Cache-Control": "private, max-age=3600", "X-Content-Type-Options": "nosniff"}
    )

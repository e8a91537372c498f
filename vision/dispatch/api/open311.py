"""Open311 GeoReport v2 (JSON) under /open311/v2/.

Our states map to GeoReport's two: closed = closed (结案) or rejected (误报),
everything else open; `status_notes` carries the detailed state. Errors are
GeoReport's `[{code, description}]`. Coordinates are served only where the case
holds WGS84/CGCS2000 (GeoReport assumes WGS84; GCJ-02 points are withheld, not
silently passed on). Naive dates are taken as UTC. GET shows only the cases and
the location precision the city publishes (`open311.publish` in configs/dispatch.yaml:
by default accepted cases and later states, coordinates rounded to about 100 m).
What GeoReport has no field for goes into `extended_attributes` (the extension
Chicago and others serve): a vehicle case's plate, where the city publishes plates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal, get_args

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from vision.core.cases import ADDRESS_MAX, in_timestamp_range
from vision.core.plates import PlateColour
from vision.dispatch.api.deps import ServiceDep
from vision.dispatch.schemas import CaseRecord, CaseSource
from vision.dispatch.service import DispatchService
from vision.dispatch.workflow import FINAL, STATUS_LABELS, Status

router = APIRouter(prefix="/open311/v2", tags=["open311"])

# GeoReport's two states: final ones (结案 closed, 误报 rejected) are closed, the rest open.
RequestState = Literal["open", "closed"]
MAX_SPAN = timedelta(days=90)
MAX_RESULTS = 1000
WGS84_LIKE = {"WGS84", "CGCS2000"}
# GeoReport v2 lets every call name a jurisdiction; this server serves one, so the parameter
# is accepted (and length-checked) but unused: the `noqa: ARG001` where it appears says so.
JurisdictionId = Annotated[str | None, Query(max_length=64)]


class Open311Error(BaseModel):
    code: int
    description: str


class Service(BaseModel):
    service_code: str
    service_name: str
    description: str
    metadata: bool
    type: str
    keywords: str
    group: str


class ExtendedAttributes(BaseModel):
    """Our fields beyond GeoReport v2's (its `extended_attributes` extension)."""

    plate: str = Field(description="The vehicle's plate, e.g. 苏E12345 (published only where open311.publish.plates).")
    plate_colour: PlateColour


class ServiceRequest(BaseModel):
    service_request_id: str
    status: RequestState = Field(description="open | closed")
    status_notes: str | None
    service_name: str
    service_code: str
    description: str | None
    agency_responsible: str | None
    service_notice: str | None
    requested_datetime: str
    updated_datetime: str
    expected_datetime: str | None
    address: str | None
    address_id: str | None
    zipcode: str | None
    lat: float | None
    long: float | None
    media_url: str | None
    extended_attributes: ExtendedAttributes | None = Field(description="null when there is nothing more to publish.")


class RequestCreated(BaseModel):
    service_request_id: str
    service_notice: str | None
    account_id: str | None


ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": list[Open311Error]},
    403: {"model": list[Open311Error]},
    404: {"model": list[Open311Error]},
}


def error(code: int, description: str) -> JSONResponse:
    return JSONResponse([{"code": code, "description": description}], status_code=code)


def _iso(dt: datetime | None) -> str | None:
    return dt.astimezone(UTC).isoformat(timespec="seconds") if dt else None


def _parse_date(name: str, value: str) -> datetime:
    """An ISO 8601 date-time as UTC, within the range the search window's arithmetic
    (a missing end MAX_SPAN after the start) and the database can take."""
    try:
        dt = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(f"{name}: not an ISO 8601 date-time") from None
    try:
        return in_timestamp_range(dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt)
    except ValueError as exc:
        raise ValueError(f"{name}: {exc}") from None


def _window(start: datetime | None, end: datetime | None, now: datetime) -> tuple[datetime, datetime]:
    """The search window: the dates given, a missing one MAX_SPAN from the other, or the last MAX_SPAN."""
    if start is not None and end is not None:
        return start, end
    if start is not None:
        return start, start + MAX_SPAN
    if end is not None:
        return end - MAX_SPAN, end
    return now - MAX_SPAN, now


def _service_name(service: DispatchService, code: str) -> str:
    ev = service.taxonomy.violations.get(code)
    return f"{ev.name} {ev.name_en}" if ev else code


# What the public may see: violations, never the center's own maintenance alerts.
PUBLIC_SOURCES: list[CaseSource] = ["edge", "open311"]


def _published_statuses(service: DispatchService) -> list[str]:
    """The case states the city publishes (configs/dispatch.yaml `open311.publish`)."""
    return [st.value for st in service.config.open311.publish.statuses]


def _published_coordinate(service: DispatchService, value: float | None) -> float | None:
    """A coordinate as precise as the city publishes it."""
    decimals = service.config.open311.publish.location_decimals
    return value if value is None or decimals is None else round(value, decimals)


def to_request(service: DispatchService, case: CaseRecord) -> ServiceRequest:
    st = case.status
    dept = service.department_name(case.department) if st is not Status.SUSPECTED else None
    if st is Status.REJECTED:
        notes = f"{STATUS_LABELS[st]}: {case.reject_reason or ''}".strip(": ")
    else:
        notes = STATUS_LABELS[st] + (f" — {case.status_notes}" if case.status_notes else "")
    desc: str | None
    if case.source == "edge":
        desc = (
            f"AI camera report: {case.event_name} ({case.violation}) at camera {case.camera_id}, "
            f"confidence {case.confidence or 0:.2f}, {case.occurrence_count} occurrence(s)"
        )
    else:
        desc = case.description
    show_xy = case.crs in WGS84_LIKE
    extended = None
    if service.config.open311.publish.plates and case.plate_text and case.plate_colour:
        extended = ExtendedAttributes(plate=case.plate_text, plate_colour=case.plate_colour)
    return ServiceRequest(
        service_request_id=str(case.id),
        status="closed" if st in FINAL else "open",
        status_notes=notes,
        service_name=_service_name(service, case.violation),
        service_code=case.violation,
        description=desc,
        agency_responsible=dept,
        service_notice=None,
        requested_datetime=_iso(case.created_at) or "",
        updated_datetime=_iso(case.updated_at) or "",
        expected_datetime=_iso(case.deadline_at),
        address=case.address,
        address_id=case.grid_code,
        zipcode=None,
        lat=_published_coordinate(service, case.lat) if show_xy else None,
        long=_published_coordinate(service, case.lon) if show_xy else None,
        media_url=case.media_url,
        extended_attributes=extended,
    )


@router.get("/services.json", response_model=list[Service], summary="GeoReport v2 service list")
def services(service: ServiceDep, jurisdiction_id: JurisdictionId = None) -> list[Service]:  # noqa: ARG001 # one jurisdiction
    out = []
    for code, ev in service.taxonomy.violations.items():
        out.append(
            Service(
                service_code=code,
                service_name=f"{ev.name} {ev.name_en}",
                description=f"{ev.name_en} ({ev.category}); deadline {ev.deadline_working_hours:g} working hours",
                metadata=False,
                type="batch",
                keywords=",".join([code, *ev.codes.values()]),
                group=ev.category,
            )
        )
    return out


@router.get("/services/{service_code}.json", responses=ERRORS, summary="GeoReport v2 service definition")
def service_definition(service_code: str, service: ServiceDep) -> Any:
    """Our services take no extra attributes (metadata=false); the definition says so."""
    if service_code not in service.taxonomy.violations:
        return error(404, f"service_code: unknown service '{service_code}'")
    return {"service_code": service_code, "attributes": []}


@router.get(
    "/requests.json", response_model=list[ServiceRequest], responses=ERRORS, summary="GeoReport v2 request search"
)
def get_requests(
    service: ServiceDep,
    service_request_id: Annotated[str | None, Query(max_length=2000)] = None,
    service_code: Annotated[str | None, Query(max_length=2000)] = None,
    start_date: Annotated[str | None, Query(max_length=64)] = None,
    end_date: Annotated[str | None, Query(max_length=64)] = None,
    status: Annotated[str | None, Query(max_length=64)] = None,
    jurisdiction_id: JurisdictionId = None,  # noqa: ARG001 # one jurisdiction
) -> Any:
    if service_request_id:  # the other filters are ignored (GeoReport v2)
        try:
            ids = [int(x) for x in service_request_id.split(",") if x.strip()]
        except ValueError:
            return error(400, "service_request_id: comma-separated integers expected")
        if len(ids) > 1000 or any(i < 1 or i > 2**31 - 1 for i in ids):
            return error(400, "service_request_id: at most 1000 ids in range")
        return [
            to_request(service, c).model_dump()
            for c in service.cases_by_ids(ids, _published_statuses(service), PUBLIC_SOURCES)
        ]
    now = service.clock()
    try:
        given_start = _parse_date("start_date", start_date) if start_date else None
        given_end = _parse_date("end_date", end_date) if end_date else None
    except ValueError as exc:
        return error(400, str(exc))
    start, end = _window(given_start, given_end, now)
    if end < start:
        return error(400, "end_date: before start_date")
    if end - start > MAX_SPAN:
        return error(400, "start_date/end_date: span more than 90 days")
    if service_code and "\x00" in service_code:
        return error(400, "service_code: must not contain NUL characters")
    codes = [c.strip() for c in service_code.split(",") if c.strip()] if service_code else None
    final = None
    if status:
        wanted = {s.strip() for s in status.split(",") if s.strip()}
        if not wanted <= set(get_args(RequestState)):
            return error(400, "status: 'open' or 'closed'")
        if len(wanted) == 1:
            final = wanted == {"closed"}
    found = service.find_cases(
        created_from=start,
        created_to=end,
        violations=codes,
        final=final,
        limit=MAX_RESULTS,
        statuses=_published_statuses(service),
        sources=PUBLIC_SOURCES,
    )
    return [to_request(service, c).model_dump() for c in found]


@router.get(
    "/requests/{service_request_id}.json",
    response_model=list[ServiceRequest],
    responses=ERRORS,
    summary="GeoReport v2 single request",
)
def get_request(service_request_id: str, service: ServiceDep, jurisdiction_id: JurisdictionId = None) -> Any:  # noqa: ARG001 # one jurisdiction
    if not service_request_id.isdigit() or not (1 <= int(service_request_id) <= 2**31 - 1):
        return error(404, f"service request '{service_request_id}' not found")
    cases = service.cases_by_ids([int(service_request_id)], _published_statuses(service), PUBLIC_SOURCES)
    if not cases:
        return error(404, f"service request '{service_request_id}' not found")
    return [to_request(service, cases[0]).model_dump()]


_POST_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/x-www-form-urlencoded": {
                "schema": {
                    "type": "object",
                    "required": ["api_key", "service_code"],
                    "properties": {
                        "api_key": {"type": "string"},
                        "jurisdiction_id": {"type": "string"},
                        "service_code": {"type": "string"},
                        "lat": {"type": "number"},
                        "long": {"type": "number"},
                        "address_string": {"type": "string"},
                        "address_id": {"type": "string"},
                        "email": {"type": "string"},
                        "device_id": {"type": "string"},
                        "account_id": {"type": "string"},
                        "first_name": {"type": "string"},
                        "last_name": {"type": "string"},
                        "phone": {"type": "string"},
                        "description": {"type": "string", "maxLength": 4000},
                        "media_url": {"type": "string"},
                    },
                }
            }
        },
    }
}


@router.post(
    "/requests.json",
    status_code=201,
    response_model=list[RequestCreated],
    responses=ERRORS,
    openapi_extra=_POST_BODY,
    summary="GeoReport v2 create request (form-encoded, api_key)",
)
async def post_request(request: Request, service: ServiceDep) -> Any:
    try:
        form = await request.form(max_files=0, max_fields=200)
    except Exception:
        return error(400, "body must be application/x-www-form-urlencoded")
    f = {k: v for k, v in form.items() if isinstance(v, str)}
    api_key = f.get("api_key")
    if not api_key:
        return error(403, "api_key: required")
    client = await run_in_threadpool(service.authenticate_client, api_key, "open311")
    if client is None:
        return error(403, "api_key: invalid")
    nul = sorted(k for k, v in f.items() if "\x00" in k or "\x00" in v)
    if nul:  # PostgreSQL cannot store it
        return error(400, f"{nul[0].replace(chr(0), '')}: must not contain NUL characters")
    code = f.get("service_code", "").strip()
    if not code:
        return error(400, "service_code: required")
    if code not in service.taxonomy.violations:
        return error(404, f"service_code: unknown service '{code}'")
    lat = lon = None
    if f.get("lat") or f.get("long"):
        try:
            lat, lon = float(f.get("lat", "")), float(f.get("long", ""))
        except ValueError:
            return error(400, "lat/long: numbers expected")
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            return error(400, "lat/long: out of range")
    address = (f.get("address_string") or "").strip()[:ADDRESS_MAX] or None
    if lat is None and address is None and not f.get("address_id"):
        return error(400, "location: lat and long, address_string or address_id required")
    description = f.get("description")
    if description is not None and len(description) > 4000:
        return error(400, "description: at most 4000 characters")
    media_url = f.get("media_url") or None
    if media_url is not None and (len(media_url) > 1024 or not media_url.startswith(("http://", "https://"))):
        return error(400, "media_url: an http(s) URL of at most 1024 characters")
    case_id = await run_in_threadpool(
        service.create_citizen_request, client, code, lat, lon, address, description, media_url
    )
    return JSONResponse(
        [
            {
                "service_request_id": str(case_id),
                "service_notice": "received; an operator reviews it",
                "account_id": f.get("account_id"),
            }
        ],
        status_code=201,
    )

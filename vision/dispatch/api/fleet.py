"""Fleet routes: heartbeats from edge boxes, the fleet as JSON, Prometheus gauges per box
and camera."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request, Response
from fastapi.concurrency import run_in_threadpool

from vision.core.fleet import Heartbeat, HeartbeatAck
from vision.dispatch.api.cases import ERRORS, file_parts, parsed
from vision.dispatch.api.deps import CredentialFirst, Device, ReadOperator, ServiceDep
from vision.dispatch.fleet_metrics import fleet_metrics_text
from vision.dispatch.schemas import FleetList
from vision.dispatch.uploads import CASE_JSON_MAX_CHARS as _JSON_MAX

router = APIRouter(tags=["fleet"], route_class=CredentialFirst)


@router.post(
    "/api/v1/heartbeats",
    response_model=HeartbeatAck,
    responses=ERRORS,
    summary="Post an edge box's heartbeat (its cameras, disk, queue, models)",
    description="multipart/form-data: part `heartbeat` is a `vision.core.fleet.Heartbeat` as JSON; optional "
    "parts `frame:<camera_id>`, each a small JPEG of that camera's latest picture.",
)
async def post_heartbeat(
    request: Request,
    service: ServiceDep,
    device: Device,
    heartbeat: Annotated[str, Form(description="Heartbeat JSON", max_length=_JSON_MAX)],
) -> HeartbeatAck:
    hb = parsed(Heartbeat, heartbeat, "heartbeat")
    frames = await file_parts(request, "heartbeat")
    return await run_in_threadpool(service.record_heartbeat, device, hb, frames)


@router.get("/api/v1/fleet", response_model=FleetList, responses=ERRORS, summary="Every edge box and camera")
def list_fleet(service: ServiceDep, op: ReadOperator) -> FleetList:  # noqa: ARG001 # any operator
    return FleetList.of(service.fleet_boxes(), service.clock(), service.config.fleet.box_silent_after_s)


@router.get("/metrics", include_in_schema=False)
def metrics(service: ServiceDep) -> Response:
    """Prometheus text format: gauges per box and camera (restrict it at the reverse proxy)."""
    body, content_type = fleet_metrics_text(service)
    return Response(body, media_type=content_type)

"""Zone routes: an administrator publishes a camera's zones (checked as the box checks them) as
its next version, anyone reads a camera's versions, and each edge box asks for the latest zones
of its cameras (with its device token, like the model versions it should run)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path
from pydantic import BaseModel, Field

from vision.core.fleet import MAX_ZONES_PER_CAMERA, CameraZones
from vision.core.zone_shapes import NAME_PATTERN
from vision.dispatch.api.cases import ERRORS
from vision.dispatch.api.deps import AdminOperator, CredentialFirst, Device, ReadOperator, ServiceDep
from vision.dispatch.errors import InvalidInput
from vision.dispatch.zone_drafts import check_draft
from vision.dispatch.zone_versions import ZoneVersionInfo

router = APIRouter(prefix="/api/v1/zones", tags=["zones"], route_class=CredentialFirst)

SiteId = Annotated[str, Path(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")]
CameraId = Annotated[str, Path(pattern=NAME_PATTERN)]


class PublishRequest(BaseModel):
    zones: list[dict[str, Any]] = Field(
        max_length=MAX_ZONES_PER_CAMERA,
        description="The camera's zones as the editor draws them: name, kind, points ([x, y] in 0-1).",
    )


class ZoneVersionOut(BaseModel):
    site_id: str
    camera_id: str
    version: int
    zones: list[dict[str, Any]]
    published_at: datetime
    published_by: str


def _out(v: ZoneVersionInfo) -> ZoneVersionOut:
    return ZoneVersionOut(**v.__dict__)


@router.post(
    "/{site_id}/{camera_id}",
    status_code=201,
    response_model=ZoneVersionOut,
    responses=ERRORS,
    summary="Publish a camera's zones to its box (admin)",
    description="The zones are checked as the box's `config check` checks them (422 with every problem); "
    "they become the camera's next version, which its box picks up.",
)
def publish(
    site_id: SiteId, camera_id: CameraId, body: PublishRequest, service: ServiceDep, admin: AdminOperator
) -> ZoneVersionOut:
    checked = check_draft(json.dumps(body.zones))
    if checked.problems:
        raise InvalidInput(
            "; ".join(
                (f"zones.{p.index}.{p.field}" if p.index is not None else p.field) + f": {p.message}"
                for p in checked.problems
            )
        )
    return _out(service.publish_zones(admin.username, site_id, camera_id, checked.valid))


@router.get(
    "/assigned", response_model=list[CameraZones], responses=ERRORS, summary="The latest zones of this box's cameras"
)
def assigned(service: ServiceDep, device: Device) -> list[CameraZones]:
    if device.site_id is None:
        return []  # a device bound to no site is told nothing (it cannot say which box it is)
    return [
        CameraZones.model_validate(
            {
                "camera_id": v.camera_id,
                "version": v.version,
                "zones": v.zones,
                "published_at": v.published_at,
                "published_by": v.published_by,
            }
        )
        for v in service.latest_zones(device.site_id)
    ]


@router.get(
    "/{site_id}/{camera_id}",
    response_model=list[ZoneVersionOut],
    responses=ERRORS,
    summary="A camera's published zone versions, newest first",
)
def history(site_id: SiteId, camera_id: CameraId, service: ServiceDep, _op: ReadOperator) -> list[ZoneVersionOut]:
    return [_out(v) for v in service.zone_history(site_id, camera_id)]

"""Model roll-out routes: an admin uploads a version and rolls it out (to every box or a canary
list) or back; each edge box asks which versions it should run and downloads them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Path, Response, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field

from vision.dispatch.api.cases import ERRORS
from vision.dispatch.api.deps import AdminOperator, CredentialFirst, Device, ReadOperator, ServiceDep
from vision.dispatch.rollouts import CARD_MAX_BYTES
from vision.dispatch.uploads import Upload

router = APIRouter(prefix="/api/v1/models", tags=["models"], route_class=CredentialFirst)

ModelName = Annotated[str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")]
ModelVersion = Annotated[str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}$")]


class VersionOut(BaseModel):
    name: str
    version: str
    file_name: str
    sha256: str
    size_bytes: int
    signed: bool
    uploaded_at: datetime
    uploaded_by: str


class RolloutOut(BaseModel):
    id: int
    name: str
    version: str
    canary: list[str] | None = Field(description="The sites that run it; null: every box.")
    created_at: datetime
    created_by: str
    note: str | None


class ModelsOut(BaseModel):
    versions: list[VersionOut]
    rollouts: list[RolloutOut]


class RolloutRequest(BaseModel):
    version: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}$")
    canary: list[Annotated[str, Field(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")]] | None = Field(
        default=None, max_length=1000, description="Sites to run it first; leave out for every box."
    )
    note: str | None = Field(default=None, max_length=500, pattern=r"^[^\x00]*$")


class AssignedOut(BaseModel):
    name: str
    version: str
    file_name: str
    sha256: str
    size_bytes: int
    signature: str | None = Field(description="base64 Ed25519 signature of the card's bytes, if it was signed.")
    card_url: str
    model_url: str


@router.post(
    "",
    status_code=201,
    response_model=VersionOut,
    responses={200: {"model": VersionOut, "description": "The same version uploaded again."}, **ERRORS},
    summary="Upload a model version (admin)",
    description="multipart/form-data: `card` (card.yaml: name, version, file, sha256), `model` (the file the card "
    "names, whose sha256 must match) and optionally `signature` (base64 Ed25519 of the card's bytes).",
)
async def upload_model(
    response: Response,
    service: ServiceDep,
    admin: AdminOperator,
    card: Annotated[UploadFile, File(description="card.yaml")],
    model: Annotated[UploadFile, File(description="the model file the card names")],
    signature: Annotated[str | None, Form(max_length=200)] = None,
) -> Any:
    card_bytes = await card.read(CARD_MAX_BYTES + 1)
    info, created = await run_in_threadpool(
        service.upload_model, admin.username, card_bytes, Upload(model.file, model.content_type), signature
    )
    if not created:
        response.status_code = 200
    return VersionOut(**info.__dict__)


@router.get("", response_model=ModelsOut, responses=ERRORS, summary="Uploaded versions and roll-outs")
def list_models(service: ServiceDep, _op: ReadOperator) -> ModelsOut:
    versions, rollouts = service.model_versions()
    return ModelsOut(
        versions=[VersionOut(**v.__dict__) for v in versions], rollouts=[RolloutOut(**r.__dict__) for r in rollouts]
    )


@router.post(
    "/{name}/rollout", status_code=201, response_model=RolloutOut, responses=ERRORS, summary="Roll a version out"
)
def rollout(name: ModelName, body: RolloutRequest, service: ServiceDep, admin: AdminOperator) -> RolloutOut:
    return RolloutOut(**service.rollout_model(admin.username, name, body.version, body.canary, body.note).__dict__)


@router.post(
    "/{name}/rollback",
    status_code=201,
    response_model=RolloutOut,
    responses=ERRORS,
    summary="Every box back to the version every box ran before",
)
def rollback(name: ModelName, service: ServiceDep, admin: AdminOperator) -> RolloutOut:
    return RolloutOut(**service.rollback_model(admin.username, name).__dict__)


@router.get("/assigned", response_model=list[AssignedOut], responses=ERRORS, summary="What this box should run")
def assigned(service: ServiceDep, device: Device) -> list[AssignedOut]:
    site = device.site_id
    if site is None:
        return []  # a device bound to no site is assigned nothing (it cannot say which box it is)
    return [
        AssignedOut(
            name=a.name,
            version=a.version,
            file_name=a.file_name,
            sha256=a.sha256,
            size_bytes=a.size_bytes,
            signature=a.signature,
            card_url=f"/api/v1/models/{a.name}/{a.version}/card.yaml",
            model_url=f"/api/v1/models/{a.name}/{a.version}/model",
        )
        for a in service.assigned_models(site)
    ]


@router.get("/{name}/{version}/card.yaml", responses=ERRORS, summary="A version's card (for the boxes)")
def card_file(name: ModelName, version: ModelVersion, service: ServiceDep, _device: Device) -> FileResponse:
    return FileResponse(service.model_file(name, version, "card"), media_type="application/yaml")


@router.get("/{name}/{version}/model", responses=ERRORS, summary="A version's model file (for the boxes)")
def model_file(name: ModelName, version: ModelVersion, service: ServiceDep, _device: Device) -> FileResponse:
    return FileResponse(service.model_file(name, version, "model"), media_type="application/octet-stream")

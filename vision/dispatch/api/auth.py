"""Login, current operator, and admin management of operators and devices."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response
from fastapi.security import HTTPAuthorizationCredentials

from vision.dispatch.api.deps import AdminOperator, ReadOperator, ServiceDep, WriteOperator, operator_bearer
from vision.dispatch.schemas import (
    ClientCreate,
    ClientCreated,
    DepartmentPublic,
    ErrorResponse,
    LoginRequest,
    OperatorCreate,
    OperatorPublic,
    TokenResponse,
)

router = APIRouter(prefix="/api/v1", tags=["operators"])
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorResponse},
    403: {"model": ErrorResponse},
    409: {"model": ErrorResponse},
}


@router.post("/auth/login", response_model=TokenResponse, responses=ERRORS, summary="Operator login: bearer token")
def login(body: LoginRequest, service: ServiceDep) -> TokenResponse:
    token, expires, role = service.login(body.username, body.password, "api")
    return TokenResponse(access_token=token, expires_at=expires, role=role)


@router.post("/auth/logout", status_code=204, responses=ERRORS, summary="Revoke the calling bearer token")
def logout(
    service: ServiceDep,
    _op: WriteOperator,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(operator_bearer)],
) -> Response:
    if creds is not None:
        service.logout(creds.credentials)
    return Response(status_code=204)


@router.get("/me", response_model=OperatorPublic, responses=ERRORS)
def me(op: ReadOperator) -> OperatorPublic:
    return OperatorPublic(id=op.id, username=op.username, display_name=None, role=op.role, active=True)


@router.post(
    "/operators", status_code=201, response_model=OperatorPublic, responses=ERRORS, summary="Add an operator (admin)"
)
def add_operator(body: OperatorCreate, service: ServiceDep, _admin: AdminOperator) -> OperatorPublic:
    oid = service.create_operator(body.username, body.password, body.role, body.display_name)
    return OperatorPublic(id=oid, username=body.username, display_name=body.display_name, role=body.role, active=True)


@router.get("/operators", response_model=list[OperatorPublic], responses=ERRORS)
def list_operators(service: ServiceDep, _admin: AdminOperator) -> list[OperatorPublic]:
    return service.list_operators()


@router.post(
    "/clients",
    status_code=201,
    response_model=ClientCreated,
    responses=ERRORS,
    summary="Register an edge device or Open311 client (admin); the token is shown once",
)
def add_client(body: ClientCreate, service: ServiceDep, _admin: AdminOperator) -> ClientCreated:
    cid, token = service.create_client(body.name, body.kind, body.site_id)
    return ClientCreated(id=cid, name=body.name, kind=body.kind, token=token)


@router.get("/departments", response_model=list[DepartmentPublic], responses=ERRORS)
def departments(service: ServiceDep, _op: ReadOperator) -> list[DepartmentPublic]:
    return [DepartmentPublic(**d.model_dump()) for d in service.config.departments]

"""Login, current operator, and admin management of operators and devices:
adding them, changing passwords, deactivating operators, revoking and rotating
device tokens (each ending the credentials concerned at once)."""

from __future__ import annotations

import math
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Request, Response
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import BaseModel, ConfigDict, Field

from vision.dispatch.api.deps import (
    AdminOperator,
    CredentialFirst,
    ReadOperator,
    ServiceDep,
    WriteOperator,
    client_address,
    operator_bearer,
)
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
from vision.dispatch.throttle import TooManyAttempts

router = APIRouter(prefix="/api/v1", tags=["operators"], route_class=CredentialFirst)
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorResponse},
    403: {"model": ErrorResponse},
    409: {"model": ErrorResponse},
}
LOGIN_ERRORS: dict[int | str, dict[str, Any]] = {**ERRORS, 429: {"model": ErrorResponse}}
Username = Annotated[str, Path(min_length=1, max_length=64)]
ClientName = Annotated[str, Path(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]


class PasswordChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    password: str = Field(min_length=1, max_length=256)


def too_many_attempts(exc: TooManyAttempts) -> HTTPException:
    return HTTPException(429, str(exc), headers={"Retry-After": str(math.ceil(exc.retry_after_s))})


@router.post(
    "/auth/login", response_model=TokenResponse, responses=LOGIN_ERRORS, summary="Operator login: bearer token"
)
def login(body: LoginRequest, request: Request, service: ServiceDep) -> TokenResponse:
    """Repeated failures for a username or from an address are refused (429) for a growing delay."""
    try:
        token, expires, role = service.login(body.username, body.password, "api", client_address(request))
    except TooManyAttempts as exc:
        raise too_many_attempts(exc) from None
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
    return OperatorPublic(
        id=op.id, username=op.username, display_name=None, role=op.role, active=True, department=op.department
    )


@router.post(
    "/operators", status_code=201, response_model=OperatorPublic, responses=ERRORS, summary="Add an operator (admin)"
)
def add_operator(body: OperatorCreate, service: ServiceDep, _admin: AdminOperator) -> OperatorPublic:
    oid = service.create_operator(body.username, body.password, body.role, body.display_name, body.department)
    return OperatorPublic(
        id=oid,
        username=body.username,
        display_name=body.display_name,
        role=body.role,
        active=True,
        department=body.department,
    )


@router.get("/operators", response_model=list[OperatorPublic], responses=ERRORS)
def list_operators(service: ServiceDep, _admin: AdminOperator) -> list[OperatorPublic]:
    return service.list_operators()


@router.put(
    "/operators/{username}/password",
    status_code=204,
    responses=ERRORS,
    summary="Set an operator's password (admin); their tokens and sessions end",
)
def set_password(username: Username, body: PasswordChange, service: ServiceDep, _admin: AdminOperator) -> Response:
    service.set_password(username, body.password)
    return Response(status_code=204)


@router.post(
    "/operators/{username}/deactivate",
    status_code=204,
    responses=ERRORS,
    summary="Deactivate an operator (admin); their tokens and sessions end at once",
)
def deactivate_operator(username: Username, service: ServiceDep, _admin: AdminOperator) -> Response:
    service.set_operator_active(username, False)
    return Response(status_code=204)


@router.post("/operators/{username}/activate", status_code=204, responses=ERRORS, summary="Reactivate an operator")
def activate_operator(username: Username, service: ServiceDep, _admin: AdminOperator) -> Response:
    service.set_operator_active(username, True)
    return Response(status_code=204)


@router.post(
    "/clients/{name}/revoke",
    status_code=204,
    responses=ERRORS,
    summary="Revoke a device's or Open311 client's token (admin); it gets 401 at once",
)
def revoke_client(name: ClientName, service: ServiceDep, _admin: AdminOperator) -> Response:
    service.revoke_client(name)
    return Response(status_code=204)


@router.post(
    "/clients/{name}/rotate",
    response_model=ClientCreated,
    responses=ERRORS,
    summary="A new token for a client (admin); the old one stops working at once; shown once",
)
def rotate_client(name: ClientName, service: ServiceDep, _admin: AdminOperator) -> ClientCreated:
    issued = service.rotate_client_token(name)
    return ClientCreated(id=issued.id, name=issued.name, kind=issued.kind, token=issued.token)


@router.post(
    "/clients",
    status_code=201,
    response_model=ClientCreated,
    responses=ERRORS,
    summary="Register an edge device or Open311 client (admin); the token is shown once",
)
def add_client(body: ClientCreate, service: ServiceDep, _admin: AdminOperator) -> ClientCreated:
    cid, token = service.create_client(body.name, body.kind, body.site_id)  # a device needs its site_id
    return ClientCreated(id=cid, name=body.name, kind=body.kind, token=token)


@router.get("/departments", response_model=list[DepartmentPublic], responses=ERRORS)
def departments(service: ServiceDep, _op: ReadOperator) -> list[DepartmentPublic]:
    return [DepartmentPublic(**d.model_dump()) for d in service.config.departments]

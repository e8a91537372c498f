"""Request dependencies: the service and the caller's credential, as `Annotated` aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from vision.dispatch.service import ClientPrincipal, DispatchService, OperatorPrincipal
from vision.dispatch.workflow import Role

SESSION_COOKIE = "sv_session"

operator_bearer = HTTPBearer(
    auto_error=False, scheme_name="OperatorToken", description="Operator token from POST /api/v1/auth/login."
)
device_bearer = HTTPBearer(
    auto_error=False, scheme_name="DeviceToken", description="Per-device token from `streetvision dispatch add-device`."
)


def get_service(request: Request) -> DispatchService:
    service: DispatchService = request.app.state.service  # stored there by create_app
    return service


ServiceDep = Annotated[DispatchService, Depends(get_service)]


def client_address(request: Request) -> str | None:
    """The caller's address as the server sees it (behind a proxy: uvicorn's --proxy-headers),
    the key login throttling counts failures from one place by."""
    return request.client.host if request.client else None


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail, headers={"WWW-Authenticate": "Bearer"})


def _operator_from(
    request: Request, service: DispatchService, creds: HTTPAuthorizationCredentials | None, allow_cookie: bool
) -> OperatorPrincipal:
    token = creds.credentials if creds else None
    if token is None and allow_cookie:
        token = request.cookies.get(SESSION_COOKIE)
    if not token:
        raise _unauthorized("operator credential required")
    op = service.authenticate_operator(token)
    if op is None:
        raise _unauthorized("invalid or expired operator credential")
    return op


def reading_operator(
    request: Request,
    service: ServiceDep,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(operator_bearer)],
) -> OperatorPrincipal:
    """Any logged-in operator; the UI's session cookie counts (for <img>/<video> sources)."""
    return _operator_from(request, service, creds, allow_cookie=True)


def writing_operator(
    request: Request,
    service: ServiceDep,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(operator_bearer)],
) -> OperatorPrincipal:
    """API writes need the bearer token: a cookie alone could be a cross-site request."""
    return _operator_from(request, service, creds, allow_cookie=False)


def admin_operator(op: Annotated[OperatorPrincipal, Depends(writing_operator)]) -> OperatorPrincipal:
    if op.role is not Role.ADMIN:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "admin role required")
    return op


def device_client(
    service: ServiceDep, creds: Annotated[HTTPAuthorizationCredentials | None, Depends(device_bearer)]
) -> ClientPrincipal:
    if creds is None:
        raise _unauthorized("device credential required")
    client = service.authenticate_client(creds.credentials, "device")
    if client is None:
        raise _unauthorized("invalid device credential")
    return client


ReadOperator = Annotated[OperatorPrincipal, Depends(reading_operator)]
WriteOperator = Annotated[OperatorPrincipal, Depends(writing_operator)]
AdminOperator = Annotated[OperatorPrincipal, Depends(admin_operator)]
Device = Annotated[ClientPrincipal, Depends(device_client)]

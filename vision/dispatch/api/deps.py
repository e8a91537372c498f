"""Request dependencies: the service and the caller's credential, as `Annotated` aliases.

The credential is checked before the body is read. FastAPI reads a route's body
(spooling file parts to disk) before it solves any dependency, so a 500 MB POST
without a token would be taken in before its 401. The routers' route class,
`CredentialFirst`, therefore runs the credential dependencies a route uses
(those registered with `check_before_body`) from the headers alone first; when
FastAPI then calls them as dependencies they return what was found (once per
request). Role checks count too: a reviewer's upload to an admin route is 403
before its body is read. Open311's POST is the exception GeoReport makes: its
`api_key` is a form field, so only the body limit (body_limit.py) guards it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine, Iterator
from typing import Annotated, Any, TypeVar, cast

from fastapi import Depends, HTTPException, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from vision.dispatch.service import ClientPrincipal, DispatchService, OperatorPrincipal
from vision.dispatch.workflow import Role

SESSION_COOKIE = "sv_session"
T = TypeVar("T")

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


# ------------------------------------------------------------ before the body
_BEFORE_BODY: dict[Callable[..., Any], Callable[[Request], Awaitable[object]]] = {}
_FOUND = "streetvision.credentials"


def check_before_body(dependency: Callable[..., Any], bearer: HTTPBearer | None = None) -> None:
    """Registers a credential dependency taking `(request, service[, bearer credentials])`
    for `CredentialFirst` to run before the body is read."""

    async def early(request: Request) -> object:
        args: list[Any] = [request, get_service(request)]
        if bearer is not None:
            args.append(await bearer(request))
        return await run_in_threadpool(dependency, *args)  # it reads the database

    _BEFORE_BODY[dependency] = early


def once_per_request(request: Request, key: str, check: Callable[[], T]) -> T:
    """`check()`'s result for this request, computed once: the route class checks the
    credential before the body, the dependency called afterwards finds the result here.
    A refusal (an exception) is not kept; the request ends with it."""
    found: dict[str, Any] = request.scope.setdefault(_FOUND, {})
    if key not in found:
        found[key] = check()
    return cast(T, found[key])


def _credential_dependencies(dependant: Dependant) -> Iterator[Callable[..., Any]]:
    for sub in dependant.dependencies:
        yield from _credential_dependencies(sub)
        if sub.call in _BEFORE_BODY:
            yield sub.call


class CredentialFirst(APIRoute):
    """A route that checks its caller's credential before FastAPI reads the body (see the module)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        checks = [_BEFORE_BODY[call] for call in dict.fromkeys(_credential_dependencies(self.dependant))]
        if self.body_field is None or not checks:
            return handler  # no body to protect, or nothing to check

        async def checked(request: Request) -> Response:
            for check in checks:
                await check(request)
            return await handler(request)

        return checked


# ------------------------------------------------------------ credentials
def client_address(request: Request) -> str | None:
    """The caller's address as the server sees it (behind a proxy: uvicorn's --proxy-headers),
    the key login throttling counts failures from one place by."""
    return request.client.host if request.client else None


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail, headers={"WWW-Authenticate": "Bearer"})


def _operator_from(
    request: Request, service: DispatchService, creds: HTTPAuthorizationCredentials | None, allow_cookie: bool
) -> OperatorPrincipal:
    def check() -> OperatorPrincipal:
        token = creds.credentials if creds else None
        if token is None and allow_cookie:
            token = request.cookies.get(SESSION_COOKIE)
        if not token:
            raise _unauthorized("operator credential required")
        op = service.authenticate_operator(token)
        if op is None:
            raise _unauthorized("invalid or expired operator credential")
        return op

    return once_per_request(request, f"operator:{allow_cookie}", check)


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


def admin_operator(
    request: Request,
    service: ServiceDep,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(operator_bearer)],
) -> OperatorPrincipal:
    op = writing_operator(request, service, creds)
    if op.role is not Role.ADMIN:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "admin role required")
    return op


def device_client(
    request: Request,
    service: ServiceDep,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(device_bearer)],
) -> ClientPrincipal:
    def check() -> ClientPrincipal:
        if creds is None:
            raise _unauthorized("device credential required")
        client = service.authenticate_client(creds.credentials, "device")
        if client is None:
            raise _unauthorized("invalid device credential")
        return client

    return once_per_request(request, "device", check)


check_before_body(reading_operator, operator_bearer)
check_before_body(writing_operator, operator_bearer)
check_before_body(admin_operator, operator_bearer)
check_before_body(device_client, device_bearer)

ReadOperator = Annotated[OperatorPrincipal, Depends(reading_operator)]
WriteOperator = Annotated[OperatorPrincipal, Depends(writing_operator)]
AdminOperator = Annotated[OperatorPrincipal, Depends(admin_operator)]
Device = Annotated[ClientPrincipal, Depends(device_client)]

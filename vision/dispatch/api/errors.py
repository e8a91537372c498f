"""Service errors -> HTTP status codes, in one place."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from vision.dispatch.errors import (
    Conflict,
    IllegalTransition,
    InvalidInput,
    NotFound,
    NotPermitted,
    Unauthorized,
    WorkflowError,
)

STATUS_OF: list[tuple[type[Exception], int]] = [
    (NotFound, 404),
    (Unauthorized, 401),
    (NotPermitted, 403),
    (IllegalTransition, 409),
    (Conflict, 409),
    (InvalidInput, 422),
]


def status_of(exc: Exception) -> int:
    for cls, code in STATUS_OF:
        if isinstance(exc, cls):
            return code
    return 400


def install(app: FastAPI) -> None:
    async def _workflow_error(_request: Request, exc: Exception) -> JSONResponse:
        code = status_of(exc)
        headers = {"WWW-Authenticate": "Bearer"} if code == 401 else None
        return JSONResponse({"detail": str(exc)}, status_code=code, headers=headers)

    app.add_exception_handler(WorkflowError, _workflow_error)

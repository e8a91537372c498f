"""Service errors -> HTTP status codes, in one place.

A value the database refuses (too long for its column, out of an INTEGER's range,
a NUL character on PostgreSQL) is the client's input, not a server fault: it is
answered 422 on every backend by `data_refused`. The request schemas refuse such
values first; this is the net under them. Routes never name the database, so the
app registers it for SQLAlchemy's DataError (vision.dispatch.app)."""

from __future__ import annotations

import logging

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

DATA_REFUSED = "input refused by the database: a value too long, out of range or with a NUL character"

log = logging.getLogger(__name__)


def status_of(exc: Exception) -> int:
    for cls, code in STATUS_OF:
        if isinstance(exc, cls):
            return code
    return 400


async def data_refused(request: Request, exc: Exception) -> JSONResponse:
    """A value the database refused: 422 with a plain message (the database's own
    text, which may quote SQL, goes to the log only)."""
    orig = getattr(exc, "orig", None) or exc
    log.warning("%s %s: %s: %s", request.method, request.url.path, type(orig).__name__, str(orig)[:200])
    return JSONResponse({"detail": DATA_REFUSED}, status_code=422)


def install(app: FastAPI) -> None:
    async def _workflow_error(_request: Request, exc: Exception) -> JSONResponse:
        code = status_of(exc)
        headers = {"WWW-Authenticate": "Bearer"} if code == 401 else None
        return JSONResponse({"detail": str(exc)}, status_code=code, headers=headers)

    app.add_exception_handler(WorkflowError, _workflow_error)

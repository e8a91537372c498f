"""Request bodies no larger than their route needs: the routes that take files (a
case with its evidence, an after photo) up to `Settings.body_limit_bytes` (by
default the largest case an edge box may legitimately post), every other route up
to `Settings.max_form_bytes` (1 MiB), so a login or an Open311 POST, which are
answered before any credential, never takes a case-sized body in. A declared
Content-Length beyond the limit is answered 413 before a byte of the body is read;
a body without one (chunked) is counted as it arrives and answered 413 as soon as
it passes the limit, whatever the route was doing with it. Open311 paths answer in
GeoReport's error format.

A plain ASGI middleware, not BaseHTTPMiddleware: bodies stream through it, and
nothing is buffered on the way."""

from __future__ import annotations

import json
import re

from fastapi import FastAPI
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vision.dispatch.settings import Settings

OPEN311_PREFIX = "/open311/"
# (method, path) of the routes that take files; every other body is a form or JSON.
UPLOAD_ROUTES = (
    ("POST", re.compile(r"/api/v1/cases/?")),  # a case report with its evidence
    ("POST", re.compile(r"/api/v1/lifecycle/?")),  # a camera event with its snapshot
    ("POST", re.compile(r"/api/v1/cases/[^/]+/handle/?")),  # the after photo
    ("POST", re.compile(r"/ui/cases/[^/]+/action/?")),  # the UI's handle form, with its after photo
)


class BodyTooLarge(Exception):
    """The body passed the limit while the app was reading it."""


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int, max_form_bytes: int | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_form_bytes = min(max_bytes, max_form_bytes) if max_form_bytes is not None else max_bytes

    def limit_for(self, method: str, path: str) -> int:
        """The body limit of a request: the upload limit for routes that take files, else the form limit."""
        if any(method == m and pattern.fullmatch(path) for m, pattern in UPLOAD_ROUTES):
            return self.max_bytes
        return self.max_form_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope.get("method", ""), scope.get("path", ""))
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await self._refuse(scope, send, limit)
            return
        received = 0
        over = started = replaced = False

        async def counting_receive() -> Message:
            nonlocal received, over
            if over:
                raise BodyTooLarge
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    over = True
                    raise BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            # A route that caught the error answers with its own (400 "cannot parse"):
            # the client is told the real reason instead.
            nonlocal started, replaced
            if replaced:
                return
            if message["type"] == "http.response.start":
                if over:
                    replaced = True
                    await self._refuse(scope, send, limit)
                    return
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except BodyTooLarge:
            if started:
                raise
            if not replaced:
                await self._refuse(scope, send, limit)

    async def _refuse(self, scope: Scope, send: Send, limit: int) -> None:
        """413, and the connection closed: the rest of the body is not read."""
        detail = f"request body is larger than {limit} bytes"
        path: str = scope.get("path", "")
        payload = [{"code": 413, "description": detail}] if path.startswith(OPEN311_PREFIX) else {"detail": detail}
        body = json.dumps(payload).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _content_length(scope: Scope) -> int | None:
    """The declared body length; None when absent or not a number (the server refuses those)."""
    value = Headers(scope=scope).get("content-length")
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def install(app: FastAPI, settings: Settings) -> None:
    app.add_middleware(BodyLimit, max_bytes=settings.body_limit_bytes, max_form_bytes=settings.max_form_bytes)

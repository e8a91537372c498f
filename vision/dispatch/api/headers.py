"""Security headers on every response: a Content-Security-Policy (with
`frame-ancestors 'none'`, so no other site can frame the operator UI), no
referrer sent off-site, no content-type sniffing. The policy comes from
`Settings.content_security_policy`; the API docs pages (Swagger UI and ReDoc, served
from the package by fastapi-offline, start with an inline script) get the other
headers but no policy.

A plain ASGI middleware, so streamed responses (evidence video) pass unbuffered."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vision.dispatch.settings import Settings

DOCS_STATIC = "/docs-static"  # Swagger UI and ReDoc files (fastapi-offline)
DOCS_PATHS = ("/docs", "/redoc", DOCS_STATIC)


class SecurityHeaders:
    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.common: list[tuple[bytes, bytes]] = [
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"same-origin"),
        ]
        csp = settings.content_security_policy
        self.with_policy = self.common + ([(b"content-security-policy", csp.encode("latin-1"))] if csp else [])

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        extra = self.common if path.startswith(DOCS_PATHS) else self.with_policy

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                headers = list(message.get("headers", []))
                headers += [(name, value) for name, value in extra if name not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def install(app: FastAPI, settings: Settings) -> None:
    app.add_middleware(SecurityHeaders, settings=settings)

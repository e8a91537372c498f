"""The FastAPI application: wiring only (routes live in api/, logic in service)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from sqlalchemy.exc import DataError

from vision.dispatch import PACKAGE_DIR
from vision.dispatch.api import auth, body_limit, cases, errors, fleet, headers, models, open311, ui, zones
from vision.dispatch.api.headers import DOCS_STATIC
from vision.dispatch.collector import Periodic
from vision.dispatch.service import DispatchService
from vision.dispatch.settings import Settings


def create_app(settings: Settings | None = None, service: DispatchService | None = None) -> FastAPI:
    """An app over `service`, or over a new service built from `settings` (migrating
    the database first). The app closes a service it built itself on shutdown. While it
    runs, evidence past its retention time and files nobody will come back for are removed: at
    start, then every `settings.collect_interval_s`; silent edge boxes and cameras are looked for every
    `fleet.check_every_s` (maintenance alerts)."""
    own = service is None
    if service is None:
        service = DispatchService.from_settings(settings or Settings.from_env())

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        collector = Periodic(service.keep_house, service.settings.collect_interval_s).start()
        fleet = Periodic(service.check_fleet, service.config.fleet.check_every_s, name="fleet-check").start()
        try:
            yield
        finally:
            fleet.stop()
            collector.stop()
            if own:
                service.close()

    # Swagger UI and ReDoc served from the package (fastapi-offline), not a CDN: a city
    # intranet reaches no CDN, and /docs must still work there
    app = FastAPIOffline(
        static_url=DOCS_STATIC,
        favicon_url="/static/favicon.svg",
        title="StreetVision dispatch center",
        version="1",
        summary="Case intake from edge boxes, review, the 数字城管 workflow, Open311 GeoReport v2.",
        lifespan=lifespan,
    )
    app.state.service = service
    errors.install(app)
    app.add_exception_handler(DataError, errors.data_refused)  # value too long, out of range, NUL: 422
    body_limit.install(app, service.settings)  # inside the security headers: a 413 gets them too
    headers.install(app, service.settings)
    ui.install(app)
    app.include_router(cases.router)
    app.include_router(fleet.router)
    app.include_router(models.router)
    app.include_router(zones.router)
    app.include_router(auth.router)
    app.include_router(open311.router)
    app.include_router(ui.router)
    app.mount("/static", StaticFiles(directory=PACKAGE_DIR / "static"), name="static")

    @app.get("/healthz", tags=["meta"], summary="Liveness and database check")
    def healthz() -> dict[str, str]:
        service.check_database()
        return {"status": "ok"}

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> RedirectResponse:
        return RedirectResponse("/static/favicon.svg", status_code=301)

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/ui/", status_code=303)

    return app

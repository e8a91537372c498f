"""StreetVision dispatch center: case intake, review, the 数字城管 workflow, Open311.

Programmatic entry points (for the demo and tests):

    from vision.dispatch import Settings, DispatchService, create_app, bootstrap, DispatchServer
    settings = Settings(data_dir=tmp)                       # SQLite under data_dir by default
    admin_id = bootstrap.create_admin(settings, "admin", "password123")
    token = bootstrap.create_device(settings, "edge-01", "site-a")  # bearer token for the edge box
    with DispatchServer(settings) as server:                 # uvicorn in a thread, free port
        print(server.url)
    proc = spawn_server(settings)                            # or a `streetvision dispatch serve` subprocess
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

PACKAGE_DIR = Path(__file__).resolve().parent

from vision.dispatch.settings import Settings  # noqa: E402

__all__ = ["PACKAGE_DIR", "Settings", "create_app", "DispatchService", "DispatchServer", "spawn_server", "bootstrap"]


if TYPE_CHECKING:  # what __getattr__ below hands out, for the type checker
    from vision.dispatch import bootstrap
    from vision.dispatch.app import create_app
    from vision.dispatch.server import DispatchServer, spawn_server
    from vision.dispatch.service import DispatchService


def __getattr__(name: str) -> object:  # lazy: keep `import vision.dispatch` light for the CLI
    if name == "create_app":
        from vision.dispatch.app import create_app

        return create_app
    if name == "DispatchService":
        from vision.dispatch.service import DispatchService

        return DispatchService
    if name in ("DispatchServer", "spawn_server"):
        from vision.dispatch import server

        return getattr(server, name)
    if name == "bootstrap":
        import importlib

        return importlib.import_module("vision.dispatch.bootstrap")
    raise AttributeError(name)

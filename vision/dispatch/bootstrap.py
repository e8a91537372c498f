"""Create the first credentials without HTTP (CLI, demo, tests)."""

from __future__ import annotations

from vision.dispatch.schemas import ClientKind
from vision.dispatch.service import DispatchService
from vision.dispatch.settings import Settings
from vision.dispatch.workflow import Role


def _service(settings: Settings) -> DispatchService:
    from vision.dispatch.notify import Notifier

    return DispatchService.from_settings(settings, notifier=Notifier())


def create_operator(
    settings: Settings,
    username: str,
    password: str,
    role: Role | str = Role.ADMIN,
    display_name: str | None = None,
    department: str | None = None,
) -> int:
    """Adds an operator (migrating the database first if needed); returns its id. A department
    account (role 'department') names its configured department."""
    service = _service(settings)
    try:
        return service.create_operator(username, password, role, display_name, department)
    finally:
        service.close()


def create_admin(settings: Settings, username: str, password: str) -> int:
    return create_operator(settings, username, password, Role.ADMIN)


def create_device(
    settings: Settings, name: str, site_id: str | None = None, kind: ClientKind = "device", *, site_less: bool = False
) -> str:
    """Registers an edge device for `site_id` (or with kind='open311' an Open311 client); returns
    its token (shown once). A device for any site needs `site_less=True`."""
    service = _service(settings)
    try:
        return service.create_client(name, kind, site_id, site_less=site_less)[1]
    finally:
        service.close()

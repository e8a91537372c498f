"""`streetvision dispatch serve|migrate|add-user|add-device|export-labels`."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vision.dispatch.service import DispatchService
    from vision.dispatch.settings import Settings

Handler = Callable[[argparse.Namespace], int]


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", default=None, help="evidence and the default SQLite database (default var/dispatch)")
    p.add_argument(
        "--db", default=None, help="database URL, e.g. postgresql+psycopg://user@host/db (default SQLite in data dir)"
    )
    p.add_argument("--config", default=None, help="dispatch config YAML (default configs/dispatch.yaml)")
    p.add_argument("--taxonomy", default=None, help="event taxonomy YAML (default configs/taxonomy.yaml)")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("dispatch", help="the dispatch center: serve, manage users and devices, export labels")
    dsub = p.add_subparsers(dest="dispatch_command", required=True, metavar="ACTION")

    serve = dsub.add_parser("serve", help="run the web service (API, operator UI, Open311)")
    _common(serve)
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument(
        "--workers", type=int, default=1, help="uvicorn worker processes (stateless; share the database)"
    )
    serve.set_defaults(handler=_serve)

    mig = dsub.add_parser("migrate", help="bring the database schema up to date")
    _common(mig)
    mig.set_defaults(handler=_migrate)

    user = dsub.add_parser("add-user", help="add an operator (password from --password-env, or prompted)")
    _common(user)
    user.add_argument("username")
    user.add_argument("--role", choices=["reviewer", "dispatcher", "admin"], default="reviewer")
    user.add_argument("--display-name", default=None)
    user.add_argument(
        "--password-env", default=None, metavar="VAR", help="read the password from this environment variable"
    )
    user.set_defaults(handler=_add_user)

    dev = dsub.add_parser("add-device", help="register an edge device (or Open311 client); prints its token once")
    _common(dev)
    dev.add_argument("name")
    dev.add_argument("--site", default=None, help="restrict the device to this site_id")
    dev.add_argument("--open311", action="store_true", help="an Open311 client (api_key) instead of an edge device")
    dev.set_defaults(handler=_add_device)

    exp = dsub.add_parser("export-labels", help="write reviewed cases as a YOLO labelled frame set")
    _common(exp)
    exp.add_argument("out", help="output directory (images/, labels/, manifest.jsonl, data.yaml)")
    exp.set_defaults(handler=_export)


def _settings(args: argparse.Namespace) -> Settings:
    from vision.dispatch.settings import Settings

    return Settings.from_env(
        data_dir=args.data_dir, db_url=args.db, config_path=args.config, taxonomy_path=args.taxonomy
    )


def _service(args: argparse.Namespace) -> DispatchService:
    from vision.dispatch.notify import Notifier
    from vision.dispatch.service import DispatchService

    return DispatchService.from_settings(_settings(args), notifier=Notifier())


def _fail(msg: str) -> int:
    print(f"streetvision dispatch: {msg}", file=sys.stderr)
    return 1


def _guard(fn: Handler) -> Handler:
    """User errors (bad config, unreachable database, duplicates) as one line, not a traceback."""

    def wrapped(args: argparse.Namespace) -> int:
        from sqlalchemy.exc import OperationalError

        from vision.dispatch.config import ConfigError
        from vision.dispatch.workflow import WorkflowError

        try:
            return fn(args)
        except (ConfigError, WorkflowError) as exc:
            return _fail(str(exc))
        except OperationalError as exc:
            return _fail(f"database: {exc.orig}")

    return wrapped


@_guard
def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    settings = _settings(args)
    if args.workers > 1:
        # workers import the app by factory and read settings from the environment
        os.environ.update(
            {
                k: str(v)
                for k, v in {
                    "STREETVISION_DISPATCH_DATA_DIR": settings.data_dir,
                    "STREETVISION_DISPATCH_DB": settings.db_url,
                    "STREETVISION_DISPATCH_CONFIG": settings.config_path,
                    "STREETVISION_DISPATCH_TAXONOMY": settings.taxonomy_path,
                }.items()
                if v
            }
        )
        _service(args).close()  # migrate once, before the workers start
        uvicorn.run(
            "vision.dispatch.app:create_app",
            factory=True,
            host=args.host,
            port=args.port,
            workers=args.workers,
            proxy_headers=True,
        )
        return 0
    from vision.dispatch.app import create_app

    app = create_app(settings)
    print(f"dispatch center on http://{args.host}:{args.port}/ (data {settings.data_dir})", file=sys.stderr)
    uvicorn.run(app, host=args.host, port=args.port, proxy_headers=True)
    return 0


@_guard
def _migrate(args: argparse.Namespace) -> int:
    from vision.dispatch.db import make_engine, migrate

    settings = _settings(args)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.database_url)
    migrate(engine)
    engine.dispose()
    print("database schema is up to date")
    return 0


@_guard
def _add_user(args: argparse.Namespace) -> int:
    if args.password_env:
        password = os.environ.get(args.password_env)
        if not password:
            return _fail(f"environment variable {args.password_env} is empty or unset")
    else:
        password = getpass.getpass(f"password for {args.username}: ")
    service = _service(args)
    try:
        uid = service.create_operator(args.username, password, args.role, args.display_name)
    finally:
        service.close()
    print(f"operator {args.username} ({args.role}) created with id {uid}")
    return 0


@_guard
def _add_device(args: argparse.Namespace) -> int:
    service = _service(args)
    try:
        _, token = service.create_client(args.name, "open311" if args.open311 else "device", args.site)
    finally:
        service.close()
    print(f"# token for {args.name} (shown once; only its hash is stored):", file=sys.stderr)
    print(token)
    return 0


@_guard
def _export(args: argparse.Namespace) -> int:
    from vision.dispatch.export import export_labels

    service = _service(args)
    try:
        summary = export_labels(service, args.out)
    finally:
        service.close()
    print(
        f"{args.out}: {summary.positives} labelled, {summary.negatives} hard negative(s), "
        f"{len(summary.skipped)} skipped"
    )
    for cid, why in summary.skipped:
        print(f"  case {cid}: {why}", file=sys.stderr)
    return 0

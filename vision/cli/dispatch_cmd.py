"""`streetvision dispatch serve|migrate|add-user|set-password|deactivate-user|activate-user|
add-device|revoke-device|rotate-device|export-labels`.

Credentials can be taken back: a revoked or rotated device token, and every token
and UI session of a deactivated operator or one whose password changed, stop
working at once (the server checks the database on every request)."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vision.dispatch.schemas import ClientKind
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
    serve.add_argument(
        "--cookie-secure",
        choices=["auto", "true", "false"],
        default=None,
        help="session cookie Secure flag; auto (default): when the request came over HTTPS",
    )
    serve.set_defaults(handler=_serve)

    mig = dsub.add_parser("migrate", help="bring the database schema up to date")
    _common(mig)
    mig.set_defaults(handler=_migrate)

    user = dsub.add_parser("add-user", help="add an operator (password from --password-env, or prompted)")
    _common(user)
    user.add_argument("username")
    user.add_argument(
        "--role", choices=["reviewer", "dispatcher", "admin", "department", "inspector"], default="reviewer"
    )
    user.add_argument(
        "--department",
        default=None,
        metavar="ID",
        help="for --role department: the configured department (configs/dispatch.yaml) it handles cases for",
    )
    user.add_argument("--display-name", default=None)
    user.add_argument(
        "--password-env", default=None, metavar="VAR", help="read the password from this environment variable"
    )
    user.set_defaults(handler=_add_user)

    pw = dsub.add_parser("set-password", help="set an operator's password; their tokens and sessions end")
    _common(pw)
    pw.add_argument("username")
    pw.add_argument(
        "--password-env", default=None, metavar="VAR", help="read the password from this environment variable"
    )
    pw.set_defaults(handler=_set_password)

    for action, active, what in (
        ("deactivate-user", False, "deactivate an operator; their tokens and sessions end at once"),
        ("activate-user", True, "reactivate a deactivated operator"),
    ):
        act = dsub.add_parser(action, help=what)
        _common(act)
        act.add_argument("username")
        act.set_defaults(handler=_set_active, active=active)

    dev = dsub.add_parser("add-device", help="register an edge device (or Open311 client); prints its token once")
    _common(dev)
    dev.add_argument("name")
    dev.add_argument("--site", default=None, help="the site_id the device reports for (required for a device)")
    dev.add_argument(
        "--any-site", action="store_true", help="a device that may report for any site (tests and demos only)"
    )
    dev.add_argument("--open311", action="store_true", help="an Open311 client (api_key) instead of an edge device")
    dev.set_defaults(handler=_add_device)

    revoke = dsub.add_parser("revoke-device", help="revoke a device's (or Open311 client's) token at once")
    _common(revoke)
    revoke.add_argument("name")
    revoke.set_defaults(handler=_revoke_device)

    rotate = dsub.add_parser(
        "rotate-device", help="issue a new token for a device (or Open311 client); the old one stops working"
    )
    _common(rotate)
    rotate.add_argument("name")
    rotate.set_defaults(handler=_rotate_device)

    exp = dsub.add_parser("export-labels", help="write reviewed cases as a YOLO labelled frame set")
    _common(exp)
    exp.add_argument("out", help="output directory (images/, labels/, manifest.jsonl, data.yaml)")
    exp.set_defaults(handler=_export)

    expire = dsub.add_parser(
        "expire-evidence",
        help="delete the evidence files of finished cases past the config's retention times now "
        "(the server does it hourly); the cases and their history stay",
    )
    _common(expire)
    expire.add_argument("--dry-run", action="store_true", help="only say what would be deleted")
    expire.set_defaults(handler=_expire)


def _settings(args: argparse.Namespace) -> Settings:
    from vision.dispatch.settings import Settings, parse_cookie_secure

    cookie_secure = getattr(args, "cookie_secure", None)
    return Settings.from_env(
        data_dir=args.data_dir,
        db_url=args.db,
        config_path=args.config,
        taxonomy_path=args.taxonomy,
        cookie_secure=parse_cookie_secure(cookie_secure) if cookie_secure else None,
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
                    "STREETVISION_DISPATCH_COOKIE_SECURE": str(settings.cookie_secure).lower(),
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
    settings.ensure_data_dir()
    engine = make_engine(settings.database_url)
    migrate(engine)
    engine.dispose()
    print("database schema is up to date")
    return 0


def _password(args: argparse.Namespace) -> str | None:
    """The password from --password-env, or prompted; None (after saying why) when the variable is empty."""
    if args.password_env:
        password = os.environ.get(args.password_env)
        if not password:
            _fail(f"environment variable {args.password_env} is empty or unset")
            return None
        return password
    return getpass.getpass(f"password for {args.username}: ")


@_guard
def _add_user(args: argparse.Namespace) -> int:
    password = _password(args)
    if password is None:
        return 1
    service = _service(args)
    try:
        uid = service.create_operator(args.username, password, args.role, args.display_name, args.department)
    finally:
        service.close()
    bound = f", department {args.department}" if args.department else ""
    print(f"operator {args.username} ({args.role}{bound}) created with id {uid}")
    return 0


@_guard
def _add_device(args: argparse.Namespace) -> int:
    service = _service(args)
    try:
        kind: ClientKind = "open311" if args.open311 else "device"
        _, token = service.create_client(args.name, kind, args.site, site_less=args.any_site)
    finally:
        service.close()
    print(f"# token for {args.name} (shown once; only its hash is stored):", file=sys.stderr)
    print(token)
    return 0


@_guard
def _set_password(args: argparse.Namespace) -> int:
    password = _password(args)
    if password is None:
        return 1
    service = _service(args)
    try:
        service.set_password(args.username, password)
    finally:
        service.close()
    print(f"password of {args.username} changed; their tokens and sessions have ended")
    return 0


@_guard
def _set_active(args: argparse.Namespace) -> int:
    service = _service(args)
    try:
        service.set_operator_active(args.username, args.active)
    finally:
        service.close()
    if args.active:
        print(f"operator {args.username} is active again")
    else:
        print(f"operator {args.username} deactivated; their tokens and sessions have ended")
    return 0


@_guard
def _revoke_device(args: argparse.Namespace) -> int:
    service = _service(args)
    try:
        service.revoke_client(args.name)
    finally:
        service.close()
    print(f"token of {args.name} revoked (rotate-device issues a new one)")
    return 0


@_guard
def _rotate_device(args: argparse.Namespace) -> int:
    service = _service(args)
    try:
        issued = service.rotate_client_token(args.name)
    finally:
        service.close()
    print(f"# new token for {issued.name} (shown once; the old one no longer works):", file=sys.stderr)
    print(issued.token)
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


@_guard
def _expire(args: argparse.Namespace) -> int:
    service = _service(args)
    try:
        policy = service.config.retention
        expired = service.expire_evidence(dry_run=args.dry_run)
        collected = None if args.dry_run else service.collect_evidence()
    finally:
        service.close()
    keep = ", ".join(
        f"{what} {'for ever' if days is None else f'{days:g} days'}"
        for what, days in (("clips", policy.clip_days), ("images", policy.image_days))
    )
    verb = "would delete" if args.dry_run else "deleted"
    print(
        f"retention ({keep} after a case is closed or rejected): {verb} {expired.files} evidence file(s) "
        f"of {expired.cases} case(s), {expired.bytes / 1e6:.1f} MB"
        + (f"; {collected.orphans} file(s) no case names removed from disk" if collected else "")
    )
    return 0

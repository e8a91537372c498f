"""`streetvision outbox status|retry-failed`: look at and repair an edge box's case queue."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vision.edge.delivery.outbox import Outbox


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("outbox", help="show the case outbox of a site, or requeue failed cases")
    osub = p.add_subparsers(dest="outbox_command", required=True, metavar="ACTION")
    for name, handler, help_ in [
        ("status", _status, "counts by state and the cases not yet delivered"),
        ("retry-failed", _retry, "put cases refused permanently (4xx) back in the queue, e.g. after fixing the token"),
    ]:
        a = osub.add_parser(name, help=help_)
        where = a.add_mutually_exclusive_group(required=True)
        where.add_argument("--config", metavar="SITE.yaml", help="site config (uses its outbox.path)")
        where.add_argument("--path", help="outbox directory")
        if name == "status":
            a.add_argument("--json", action="store_true", help="machine-readable output")
        a.set_defaults(handler=handler)


def _open(args: argparse.Namespace, owner: bool) -> Outbox | None:
    """The outbox of `--config`'s site or at `--path`; None (the reason printed) when there is none."""
    from pathlib import Path

    from vision.edge.config import ConfigError, load_site
    from vision.edge.delivery.outbox import DB_FILE, Outbox

    if args.config:
        try:
            outbox = load_site(args.config).outbox
        except ConfigError as err:
            for loc, msg in err.errors:
                print(f"{err.path}: {loc}: {msg}", file=sys.stderr)
            return None
        path = Path(outbox.path)
        bounds = {
            "max_evidence_bytes": int(outbox.max_evidence_mb * (1 << 20)),
            "min_free_bytes": int(outbox.min_free_mb * (1 << 20)),
        }
    else:
        path = Path(args.path)
        bounds = {}  # the defaults: the floor shown is the default one
    if not (path / DB_FILE).is_file():
        print(f"no outbox at {path} ({DB_FILE} not found)", file=sys.stderr)
        return None
    return Outbox(path, owner=owner, **bounds)


def _status(args: argparse.Namespace) -> int:
    ob = _open(args, owner=False)
    if ob is None:
        return 1
    try:
        return _print_status(ob, as_json=args.json)
    finally:
        ob.close()


def _print_status(ob: Outbox, *, as_json: bool) -> int:
    counts = ob.counts()
    if as_json:
        pending = [c for c in ob.cases() if c["state"] != "sent"]
        json.dump(
            {
                "counts": counts,
                "evidence_bytes": ob.evidence_bytes(),
                "disk": _disk_json(ob),
                "undelivered": pending,
            },
            sys.stdout,
            indent=2,
        )
        print()
        return 0
    disk = ob.disk()
    print(
        f"{ob.directory}: "
        + ", ".join(f"{k} {v}" for k, v in counts.items())
        + f"; evidence {ob.evidence_bytes() / 1e6:.1f} MB"
        + f"; disk {disk.level}, {disk.free_bytes / 1e6:.1f} MB free of {disk.total_bytes / 1e6:.1f} MB"
        + f" (evidence pruned below {disk.min_free_bytes / 1e6:.1f} MB)"
    )
    for r in ob.records():
        if r.state == "sent":
            continue
        err = f" -- {r.last_error[:160]}" if r.last_error else ""
        print(f"  {r.state:7} {r.key} {r.camera_id}/{r.rule} attempts {r.attempts}{err}")
    return 0


def _disk_json(ob: Outbox) -> dict[str, object]:
    """The filesystem as a status reader sees it: free space and the floor (the daemon's error counters
    live in the daemon's process; its /healthz shows them)."""
    disk = ob.disk()
    return {
        "level": disk.level,
        "free_bytes": disk.free_bytes,
        "total_bytes": disk.total_bytes,
        "min_free_bytes": disk.min_free_bytes,
    }


def _retry(args: argparse.Namespace) -> int:
    ob = _open(args, owner=False)
    if ob is None:
        return 1
    try:
        n = ob.requeue_failed()
    finally:
        ob.close()
    print(f"requeued {n} failed case(s); a running daemon sends them at its next attempt")
    return 0

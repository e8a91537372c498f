"""`streetvision config check|schema`."""

from __future__ import annotations

import argparse
import json
import sys


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("config", help="check a site config or print its JSON Schema")
    csub = p.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    check = csub.add_parser("check", help="validate a site YAML file; exit 1 on errors")
    check.add_argument("file")
    check.add_argument("--no-models", action="store_true", help="skip checks that open model cards")
    check.set_defaults(handler=_check)
    schema = csub.add_parser("schema", help="print the site config JSON Schema")
    schema.set_defaults(handler=_schema)


def _check(args: argparse.Namespace) -> int:
    from vision.edge.config import ConfigError, load_site
    from vision.edge.config_check import check_site_files

    try:
        site = load_site(args.file)
        problems = [] if args.no_models else check_site_files(site)
    except ConfigError as err:
        for loc, msg in err.errors:
            print(f"{err.path}: {loc}: {msg}", file=sys.stderr)
        print(f"{err.path}: {len(err.errors)} error(s)", file=sys.stderr)
        return 1
    if problems:
        for loc, msg in problems:
            print(f"{args.file}: {loc}: {msg}", file=sys.stderr)
        print(f"{args.file}: {len(problems)} error(s)", file=sys.stderr)
        return 1
    n_zones = sum(len(c.zones) for c in site.cameras)
    print(f"{args.file}: ok ({len(site.cameras)} camera(s), {n_zones} zone(s), {len(site.rules)} rule(s))")
    return 0


def _schema(_args: argparse.Namespace) -> int:
    from vision.edge.config import site_json_schema

    json.dump(site_json_schema(), sys.stdout, indent=2, ensure_ascii=False)
    print()
    return 0

"""`streetvision run --config SITE.yaml`: the edge daemon."""

from __future__ import annotations

import argparse
import sys
from types import FrameType


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "run",
        help="run the edge daemon for a site (all cameras, rules, outbox, sender)",
        description="Runs until SIGTERM. A new version of the model (models/<name>/) is picked up within "
        "10 s, or at once on SIGHUP, without stopping the streams.",
    )
    p.add_argument("--config", required=True, metavar="SITE.yaml", help="site configuration file")
    p.add_argument(
        "--duration", type=float, default=None, metavar="S", help="stop after S seconds (default: run until SIGTERM)"
    )
    p.add_argument("--loop", action="store_true", help="replay file sources forever (a simulated live camera)")
    p.add_argument(
        "--offline",
        action="store_true",
        help="read file sources as fast as possible without dropping frames, then exit",
    )
    p.add_argument("--metrics-port", type=int, default=None, help="override metrics.port (0 = any free port)")
    p.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    import logging
    import signal
    import threading

    from vision.edge.config import ConfigError, load_site
    from vision.edge.config_check import check_site_files

    log = logging.getLogger("streetvision.run")
    try:
        site = load_site(args.config)
    except ConfigError as err:
        for loc, msg in err.errors:
            print(f"{err.path}: {loc}: {msg}", file=sys.stderr)
        return 1
    problems = check_site_files(site)
    if problems:
        for loc, msg in problems:
            print(f"{args.config}: {loc}: {msg}", file=sys.stderr)
        return 1
    if args.duration is not None and args.duration <= 0:
        print("--duration must be positive", file=sys.stderr)
        return 2

    from vision.edge.daemon import SiteRunner
    from vision.edge.detection import DetectorError

    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s: stopping (queued cases stay in the outbox)", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        runner = SiteRunner(site, live=not args.offline, loop=args.loop, metrics_port=args.metrics_port)
    except (DetectorError, ValueError, OSError) as exc:
        print(f"{args.config}: cannot start: {exc}", file=sys.stderr)
        return 1
    signal.signal(signal.SIGHUP, lambda *_: runner.request_reload())  # roll out a new model version
    from vision.edge.streams import SourceError

    try:
        summary = runner.run(stop, args.duration)
    except SourceError as exc:
        print(f"{args.config}: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # e.g. the metrics port is taken
        where = f"{site.metrics.host}:{args.metrics_port if args.metrics_port is not None else site.metrics.port}"
        print(f"{args.config}: cannot start (metrics on {where}?): {exc}", file=sys.stderr)
        return 1
    print(
        f"stopped ({summary.stopped_by}): {summary.frames} frames, {summary.processed} processed, "
        f"{summary.cases} case(s) queued; outbox {summary.outbox}"
    )
    return 0

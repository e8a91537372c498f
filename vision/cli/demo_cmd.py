"""`streetvision demo`: the whole system on the bundled footage with scripted violations."""

from __future__ import annotations

import argparse
import json
import sys
from types import FrameType


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "demo",
        help="serve the bundled footage with scripted violations as a live stream, run the daemon on it "
        "and an embedded dispatch center, and print the review UI's address",
    )
    p.add_argument("--headless", action="store_true", help="run unattended and print a summary at the end")
    p.add_argument(
        "--duration", type=float, default=None, metavar="S", help="stop after S seconds (default: until Ctrl-C)"
    )
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object on stdout")
    p.add_argument("--model", default=None, help="model name or .onnx file (default: the demo site's, coco-city)")
    p.add_argument("--site", default=None, metavar="SITE.yaml", help="site config (default: configs/site-demo.yaml)")
    p.add_argument(
        "--scenario", default=None, metavar="SCENE.yaml", help="scripted scene (default: configs/scenarios/demo.yaml)"
    )
    p.add_argument(
        "--data-dir",
        default=None,
        metavar="DIR",
        help="dispatch database, evidence and outbox (default: var/demo); emptied at start",
    )
    p.add_argument("--port", type=int, default=0, help="dispatch center port (default: a free one)")
    p.add_argument("--host", default="127.0.0.1", help="address the stream and the dispatch center listen on")
    p.add_argument("--password", default=None, help="password of the 'admin' operator (default: generated and printed)")
    p.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    import logging
    import signal
    import threading
    from pathlib import Path

    from vision.edge.config import ConfigError
    from vision.edge.detection import DetectorError
    from vision.scenarios.demo import ADMIN, Demo, DemoOptions

    if args.duration is not None and args.duration <= 0:
        print("demo: --duration must be positive", file=sys.stderr)
        return 2
    if args.port and not 0 < args.port < 65536:
        print("demo: --port must be 1-65535", file=sys.stderr)
        return 2
    if not logging.getLogger().isEnabledFor(logging.DEBUG):
        for name in ("vision", "alembic", "httpx", "uvicorn"):
            logging.getLogger(name).setLevel(logging.WARNING)  # the demo prints its own progress
    out = sys.stderr if args.json else sys.stdout

    def say(msg: str) -> None:
        print(msg, file=out, flush=True)

    options = DemoOptions(
        model=args.model,
        host=args.host,
        port=args.port,
        password=args.password,
        duration_s=args.duration,
        render_progress=sys.stderr.isatty() or not args.headless,
    )
    for name in ("site", "scenario", "data_dir"):
        if getattr(args, name):
            setattr(options, name, Path(getattr(args, name)))
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        say(
            f"{signal.Signals(signum).name}: stopping (the daemon finishes its cases, then the servers stop; "
            "again to quit at once)"
        )
        stop.set()
        signal.signal(signum, signal.SIG_DFL)

    demo = Demo(options, say)
    try:
        try:
            demo.prepare()  # Ctrl-C here is a KeyboardInterrupt: nothing is running yet but the servers
        except ConfigError as err:
            print(err, file=sys.stderr)
            return 2
        except (ValueError, OSError, LookupError, DetectorError) as exc:
            print(f"demo: cannot start: {exc}", file=sys.stderr)
            return 1
        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        say("")
        say(f"review UI:  {demo.review_url}   (user {ADMIN}, password {demo.password})")
        ready = demo.prepared()
        say(f"live camera: {ready.stream.url}   (open it in a browser to watch)")
        say(
            f"daemon: site {ready.site.site_id}, model {demo.model}; cases appear in the UI seconds after their dwell time"
        )
        say("stop with Ctrl-C" if args.duration is None else f"running for {args.duration:g} s")
        summary = demo.run(stop)
    finally:
        demo.close()
    data = summary.as_dict()
    if args.json:
        print(json.dumps(data, ensure_ascii=False))
        return 0
    if True:  # interactive runs end with the same summary
        say("")
        say(
            f"stopped ({summary.stopped_by}) after {summary.duration_s:.0f} s, {summary.frames_processed} frames processed"
        )
        say(
            f"cases per type: {json.dumps(data['cases_by_type'])}  (with evidence: {data['cases_with_evidence']}, "
            f"unexpected: {data['unexpected_cases']})"
        )
        for violation, lat in data["latency_s"].items():
            say(
                f"  {violation}: {lat:.1f} s from first shown to received, "
                f"{data['dwell_adjusted_latency_s'][violation]:.1f} s beyond the dwell"
            )
        if data["verifier"].get("dropped"):
            say(f"candidates the verifier dropped, per rule: {json.dumps(data['verifier']['dropped'])}")
            for look in data["verifier"]["recent"]:
                if not look["accepted"]:
                    say(f"  {look['t_s']:.1f} s {look['rule']}: {look['reason']}")
    return 0

"""`streetvision` command line: one sub-command module per job.

Each module in COMMAND_MODULES exposes `register(subparsers)`; modules keep
heavy imports (onnxruntime, torch, fastapi) inside their handlers so that
`streetvision config check` starts fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import signal
import sys

COMMAND_MODULES = [
    "vision.cli.data_cmd",
    "vision.cli.train_cmd",
    "vision.cli.quantize_cmd",
    "vision.cli.config_cmd",
    "vision.cli.detect_cmd",
    "vision.cli.dispatch_cmd",
    "vision.cli.models_cmd",
    "vision.cli.run_cmd",
    "vision.cli.outbox_cmd",
    "vision.cli.bench_cmd",
    "vision.cli.demo_cmd",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="streetvision", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        code = int(args.handler(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
        return code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `streetvision detect --json ... | head`: the reader left; stop quietly, as a killed writer would
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 128 + signal.SIGPIPE


if __name__ == "__main__":
    raise SystemExit(main())

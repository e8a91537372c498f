"""CLI start-up: seconds of imports before a command does its work, against a bare interpreter.

    .venv/bin/python benchmarks/cli_startup.py [--repeat 5]

Each command runs in a fresh interpreter with `-X importtime`; the figure is the sum of the
top-level imports' cumulative times (what `python -X importtime` prints), the median of
`--repeat` runs, after one warm-up run so the file cache is warm. The baseline is the same
interpreter running `pass` in the same run; commands are printed as that time and as a ratio
to `import numpy` (the floor of anything that touches an image or a box).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import REPO, print_machine

COMMANDS = {
    "python -c pass (baseline)": ["-c", "pass"],
    "python -c 'import numpy'": ["-c", "import numpy"],
    "streetvision --help": ["-m", "vision", "--help"],
    "streetvision outbox status --config": ["-m", "vision", "outbox", "status", "--config", "configs/site-demo.yaml"],
    "streetvision config check --help": ["-m", "vision", "config", "check", "--help"],
    "streetvision run --help": ["-m", "vision", "run", "--help"],
}


def import_seconds(args: list[str]) -> float:
    run = subprocess.run([sys.executable, "-X", "importtime", *args], cwd=REPO, capture_output=True, text=True)
    total_us = 0
    for line in run.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, cumulative, name = line.split("|")
        if not name.startswith("  "):  # top level: one space of indent
            total_us += int(cumulative.strip())
    return total_us / 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    print_machine()
    with tempfile.TemporaryDirectory() as tmp:
        COMMANDS["streetvision outbox status --path"] = ["-m", "vision", "outbox", "status", "--path", tmp]
        times = {}
        for label, argv in COMMANDS.items():
            import_seconds(argv)  # warm the file cache
            times[label] = statistics.median(import_seconds(argv) for _ in range(args.repeat))
    numpy_s = times["python -c 'import numpy'"]
    print(f"{'command':40s} {'imports s':>10s} {'× import numpy':>15s}")
    for label, seconds in times.items():
        print(f"{label:40s} {seconds:10.3f} {seconds / numpy_s:15.2f}")


if __name__ == "__main__":
    main()

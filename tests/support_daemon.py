"""The edge daemon as a real process for end-to-end tests: `streetvision run --config SITE`,
output captured, killed when the test ends (whatever happened)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

StartDaemon = Callable[..., subprocess.Popen[str]]


@contextmanager
def daemon_processes() -> Iterator[StartDaemon]:
    """Yields `start(site, env, *args)`: one daemon on `site` with `env` added to the environment
    (its device token, a models folder) and `args` after the config (`--loop`, `--duration N`)."""
    started: list[subprocess.Popen[str]] = []

    def start(site: Path, env: dict[str, str], *args: str) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [sys.executable, "-m", "vision", "run", "--config", str(site), *args],
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1", **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        started.append(proc)
        return proc

    try:
        yield start
    finally:
        for proc in started:
            if proc.poll() is None:
                proc.kill()
                proc.communicate(timeout=20)

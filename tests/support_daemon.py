"""The edge daemon as a real process for end-to-end tests: `streetvision run --config SITE`,
output captured, killed when the test ends (whatever happened)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

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


def until(what: str, check: Callable[[], Any], timeout: float, proc: subprocess.Popen[str]) -> Any:
    """What `check` gives once it is true, asked every 0.25 s; fails with the daemon's output when
    it exits first or `timeout` seconds pass (then the daemon is stopped)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        got = check()
        if got:
            return got
        if proc.poll() is not None:
            raise AssertionError(f"the daemon exited before {what}:\n{proc.communicate(timeout=20)[0][-4000:]}")
        time.sleep(0.25)
    proc.send_signal(signal.SIGTERM)
    raise AssertionError(f"no {what} after {timeout:.0f} s:\n{proc.communicate(timeout=60)[0][-4000:]}")

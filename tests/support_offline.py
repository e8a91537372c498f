"""Run a command with the network blocked and report every attempt to reach it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

GUARD_DIR = Path(__file__).resolve().parent / "offline_guard"


@dataclass
class OfflineRun:
    returncode: int
    stdout: str
    stderr: str
    attempts: str  # what the guard refused; empty when nothing tried to reach the network


def run_offline(args: list[str], tmp_path: Path, env: dict[str, str] | None = None, timeout: float = 600) -> OfflineRun:
    """Runs `args` (a Python console script or `python -m ...`) with non-loopback
    networking refused in-process, and in a private network namespace too where
    `unshare -n` is allowed (root here), so a C-level download also fails."""
    log = tmp_path / "net-attempts.log"
    log.write_text("")
    full_env = dict(os.environ)
    full_env.update(env or {})
    full_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(GUARD_DIR), full_env.get("PYTHONPATH")]))
    full_env["STREETVISION_NET_LOG"] = str(log)
    cmd = list(args)
    if shutil.which("unshare") and os.geteuid() == 0:
        probe = subprocess.run(["unshare", "-n", "true"], capture_output=True)
        if probe.returncode == 0:
            cmd = ["unshare", "-n", *cmd]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=full_env, timeout=timeout)
    return OfflineRun(proc.returncode, proc.stdout, proc.stderr, log.read_text())


PYTHON = sys.executable

"""The CLI starts without the heavy stack: `--help` and `outbox status` (which reads one SQLite
file) must not import the detectors, the tracker or the web service. Import *time* is measured
in benchmarks/cli_startup.py; here only what gets imported is checked."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
HEAVY = (
    "supervision",
    "trackers",
    "onnxruntime",
    "cv2",
    "av",
    "torch",
    "ultralytics",
    "fastapi",
    "sqlalchemy",
    "matplotlib",
)

_RUN = """
import contextlib, io, json, sys
from vision.cli import main
with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
    try:
        code = main(sys.argv[1:])
    except SystemExit as exit:
        code = exit.code
print(json.dumps({"code": code, "heavy": sorted(m for m in HEAVY if m in sys.modules)}))
""".replace("HEAVY", repr(HEAVY))


def _imports_of(*argv: str) -> dict:
    out = subprocess.run([sys.executable, "-c", _RUN, *argv], cwd=REPO, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["outbox", "status", "--config", "configs/site-demo.yaml", "--json"],
        ["config", "check", "--help"],
    ],
)
def test_light_commands_do_not_import_the_heavy_stack(argv, tmp_path):
    seen = _imports_of(*argv)
    assert seen["heavy"] == [], f"streetvision {' '.join(argv)} imported {seen['heavy']}"


def test_outbox_status_by_path_reads_the_queue_without_the_heavy_stack(tmp_path):
    from vision.edge.delivery.outbox import Outbox

    Outbox(tmp_path / "outbox").close()  # an empty queue, as a fresh edge box has
    seen = _imports_of("outbox", "status", "--path", str(tmp_path / "outbox"), "--json")
    assert seen["code"] == 0 and seen["heavy"] == []

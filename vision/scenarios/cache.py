"""Rendered scenarios kept under var/scenarios, keyed by what produced them.

Rendering costs about 1.3 CPU-seconds per second of video, so the demo and the
benchmark render a scenario once and reuse it until the script, the footage or
the rendering code changes (the key hashes all three).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from vision.core.paths import REPO_ROOT
from vision.scenarios.render import GroundTruth, render
from vision.scenarios.script import Scenario

if TYPE_CHECKING:
    from vision.edge.detection import Detector

CACHE_ROOT = REPO_ROOT / "var" / "scenarios"
_PACKAGE = Path(__file__).resolve().parent.parent  # vision/
STALE_TMP_S = 3600.0
# Code (and data) whose change alters the pixels or the truth of a rendered scenario: the compositor,
# the conditions and the background library's perspective points.
_CODE = [
    _PACKAGE / "scenarios" / "render.py",
    _PACKAGE / "scenarios" / "script.py",
    *sorted((_PACKAGE / "training" / "data" / "synth").glob("*.py")),
    REPO_ROOT / "datasets" / "backgrounds" / "MANIFEST.tsv",
]


@dataclass(frozen=True)
class Rendered:
    video: Path
    truth: GroundTruth
    cached: bool  # True when reused, not rendered now


def scenario_key(scenario: Scenario) -> str:
    """sha256 over the scenario (background, condition and seed included), the footage (size, mtime) and the rendering code."""
    h = hashlib.sha256(scenario.model_dump_json().encode())
    bg = scenario.background_path
    st = bg.stat()
    h.update(f"{bg.name}:{st.st_size}:{int(st.st_mtime)}".encode())
    for path in _CODE:
        if path.exists():
            h.update(path.name.encode())
            h.update(path.read_bytes())
    return h.hexdigest()


def rendered(
    scenario: Scenario, *, root: Path | None = None, progress: bool = True, detector: Detector | None = None
) -> Rendered:
    """The scenario's video and ground truth, rendering it first when not cached."""
    if not scenario.background_path.exists():
        raise FileNotFoundError(f"background footage not found: {scenario.background_path}")
    root = Path(root or CACHE_ROOT)
    final = root / f"{scenario.name}-{scenario_key(scenario)[:16]}"
    video, truth = final / f"{scenario.name}.mp4", final / f"{scenario.name}.truth.json"
    if video.exists() and truth.exists():
        return Rendered(video, GroundTruth.load(truth), True)
    for stale in root.glob(f".{scenario.name}-*.tmp*"):  # left by an interrupted render
        if time.time() - stale.stat().st_mtime > STALE_TMP_S:
            shutil.rmtree(stale, ignore_errors=True)
    tmp = root / f".{final.name}.tmp{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    render(scenario, tmp, detector=detector, progress=progress)
    try:
        os.replace(tmp, final)  # atomic: a reader never sees half a render
    except OSError:  # another process finished the same render first
        shutil.rmtree(tmp, ignore_errors=True)
    older = re.compile(rf"{re.escape(scenario.name)}-[0-9a-f]{{16}}")
    for other in root.iterdir():  # renders of an older script or code: never reused again
        if other != final and older.fullmatch(other.name):
            shutil.rmtree(other, ignore_errors=True)
    return Rendered(video, GroundTruth.load(truth), False)

"""Where models/, configs/ and datasets/ are found: the checkout, or STREETVISION_HOME for a wheel."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
_PRINT_ROOT = "from vision.core.paths import REPO_ROOT; from vision.core.model_registry import models_dir; print(REPO_ROOT); print(models_dir())"


def _root_seen(env: dict[str, str], cwd: Path, pythonpath: Path) -> list[str]:
    full = {k: v for k, v in os.environ.items() if k not in ("STREETVISION_HOME", "STREETVISION_MODELS")}
    full.update(env, PYTHONPATH=str(pythonpath))
    out = subprocess.run(
        [sys.executable, "-c", _PRINT_ROOT], env=full, cwd=cwd, capture_output=True, text=True, check=True
    )
    return out.stdout.split()


def test_a_checkout_finds_its_own_folders(tmp_path):
    assert _root_seen({}, tmp_path, REPO) == [str(REPO), str(REPO / "models")]


def test_an_installed_package_uses_streetvision_home_or_the_current_directory(tmp_path):
    # the package alone, as a wheel installs it: no pyproject.toml beside it
    site = tmp_path / "site-packages"
    shutil.copytree(REPO / "vision", site / "vision", ignore=shutil.ignore_patterns("__pycache__"))
    home = tmp_path / "streetvision-home"
    home.mkdir()
    assert _root_seen({"STREETVISION_HOME": str(home)}, tmp_path, site) == [str(home), str(home / "models")]
    work = tmp_path / "work"
    work.mkdir()
    assert _root_seen({}, work, site) == [str(work), str(work / "models")]

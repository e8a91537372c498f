"""Prepare ultralytics to run strictly offline; call before `import ultralytics`.

Why: ultralytics probes the network at import, HEADs GitHub for Arial.ttf on
every data set check (ignoring YOLO_OFFLINE), and pip-installs missing
requirements at run time. On an edge box or a CI runner without internet that
means stalls, surprise installs, or failures. The environment variables and the
settings file are read once, at import, so they must be in place first.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from vision.core.paths import REPO_ROOT

FONT_NAMES = ("Arial.ttf", "Arial.Unicode.ttf")
# Settings ultralytics reads from <config>/Ultralytics/settings.json; keys it
# does not find are filled with its defaults, these values are kept.
OFFLINE_SETTINGS = {
    "sync": False,
    "clearml": False,
    "comet": False,
    "dvc": False,
    "mlflow": False,
    "raytune": False,
    "tensorboard": False,
    "wandb": False,
    "vscode_msg": False,
    "openvino_msg": False,
}


def default_config_dir() -> Path:
    """Project-local (git-ignored) config dir; STREETVISION_ULTRALYTICS_DIR overrides."""
    return Path(os.environ.get("STREETVISION_ULTRALYTICS_DIR", REPO_ROOT / "var" / "ultralytics"))


def _font_source() -> Path:
    import matplotlib

    font = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
    if not font.is_file():
        raise FileNotFoundError(f"matplotlib's DejaVuSans.ttf not found at {font}; reinstall matplotlib")
    return font


def _write_settings(settings_file: Path) -> None:
    current: dict[str, Any] = {}
    if settings_file.is_file():
        try:
            current = json.loads(settings_file.read_text(encoding="utf-8")) or {}
        except (OSError, ValueError):
            current = {}
    merged = {**current, **OFFLINE_SETTINGS}
    if merged != current:
        settings_file.write_text(json.dumps(merged, indent=2), encoding="utf-8")


def prepare_offline(config_dir: Path | None = None) -> Path:
    """Set YOLO_OFFLINE/YOLO_AUTOINSTALL/YOLO_CONFIG_DIR, place a TTF font and
    settings with sync off; returns the config dir. Idempotent.

    If ultralytics is already imported, its settings object is updated too
    (environment variables it read at import cannot be changed any more).
    """
    config_dir = Path(config_dir) if config_dir is not None else default_config_dir()
    ul_dir = config_dir / "Ultralytics"
    ul_dir.mkdir(parents=True, exist_ok=True)
    os.environ["YOLO_OFFLINE"] = "1"
    os.environ["YOLO_AUTOINSTALL"] = "0"
    os.environ["YOLO_CONFIG_DIR"] = str(config_dir)
    src = None
    for name in FONT_NAMES:
        target = ul_dir / name
        if not target.is_file():
            src = src or _font_source()
            shutil.copyfile(src, target)
    _write_settings(ul_dir / "settings.json")
    if "ultralytics.utils" in sys.modules:
        settings = sys.modules["ultralytics.utils"].SETTINGS
        if any(settings.get(k) != v for k, v in OFFLINE_SETTINGS.items()):
            settings.update(OFFLINE_SETTINGS)
    return config_dir

"""Where the project's files live: models/, configs/, datasets/, var/.

A source checkout finds them beside the package. An installed wheel has no
checkout around it, so `STREETVISION_HOME` names the folder that holds them
(the current directory when unset); without this, a wheel looked for its
models inside site-packages.
"""

from __future__ import annotations

import os
from pathlib import Path

_CHECKOUT = Path(__file__).resolve().parents[2]


def project_root() -> Path:
    """The folder holding models/, configs/ and datasets/."""
    home = os.environ.get("STREETVISION_HOME")
    if home:
        return Path(home).resolve()
    if (_CHECKOUT / "pyproject.toml").is_file() and (_CHECKOUT / "vision").is_dir():
        return _CHECKOUT
    return Path.cwd()


REPO_ROOT = project_root()


def repo_relative(path: str | Path) -> str:
    """The path relative to the project root where it lies inside it, so cards and run records
    do not carry this machine's paths; else the absolute path."""
    p = Path(path).resolve()
    try:
        return p.relative_to(REPO_ROOT).as_posix()
    except ValueError:
        return str(p)

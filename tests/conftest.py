"""Shared test fixtures. Area-specific fixtures live in tests/support_*.py plugins."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
FOOTAGE = REPO / "datasets" / "footage" / "vtest.avi"

# Each area registers its fixture module here (one line each).
pytest_plugins: list[str] = ["tests.support_dispatch", "tests.support_streams", "tests.support_edge"]


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="session")
def footage_path() -> Path:
    assert FOOTAGE.is_file(), f"bundled footage missing: {FOOTAGE}"
    return FOOTAGE

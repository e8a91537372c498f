"""Process settings of one dispatch-center worker. Everything that differs
between deployments is here; workers are stateless (state lives in the database
and the evidence directory), so several may serve one database."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from vision.dispatch.config import DEFAULT_DISPATCH_CONFIG

ENV_PREFIX = "STREETVISION_DISPATCH_"
DEFAULT_DATA_DIR = Path("var/dispatch")  # /var/ is git-ignored


@dataclass(frozen=True)
class Settings:
    data_dir: Path = field(default_factory=lambda: DEFAULT_DATA_DIR)
    db_url: str | None = None  # default: SQLite file in data_dir
    config_path: Path = DEFAULT_DISPATCH_CONFIG
    taxonomy_path: Path | None = None  # default: the bundled configs/taxonomy.yaml
    token_ttl_s: int = 12 * 3600
    max_evidence_bytes: int = 64 * 1024 * 1024
    cookie_secure: bool = False  # set True behind HTTPS
    migrate_on_startup: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "data_dir", Path(self.data_dir).resolve())
        object.__setattr__(self, "config_path", Path(self.config_path))

    @property
    def database_url(self) -> str:
        return self.db_url or f"sqlite:///{self.data_dir / 'dispatch.db'}"

    @property
    def evidence_dir(self) -> Path:
        return self.data_dir / "evidence"

    @classmethod
    def from_env(
        cls,
        *,
        data_dir: str | Path | None = None,
        db_url: str | None = None,
        config_path: str | Path | None = None,
        taxonomy_path: str | Path | None = None,
    ) -> Settings:
        """Settings from STREETVISION_DISPATCH_* variables; a keyword that is not None wins over
        its variable, an unset or empty variable leaves the default."""
        data_dir = data_dir if data_dir is not None else _env("DATA_DIR")
        db_url = db_url if db_url is not None else _env("DB")
        config_path = config_path if config_path is not None else _env("CONFIG")
        taxonomy_path = taxonomy_path if taxonomy_path is not None else _env("TAXONOMY")
        return cls(
            data_dir=Path(data_dir) if data_dir is not None else DEFAULT_DATA_DIR,
            db_url=db_url,
            config_path=Path(config_path) if config_path is not None else DEFAULT_DISPATCH_CONFIG,
            taxonomy_path=Path(taxonomy_path) if taxonomy_path is not None else None,
        )


def _env(name: str) -> str | None:
    """The STREETVISION_DISPATCH_<name> variable; unset and empty both read as None."""
    return os.environ.get(ENV_PREFIX + name) or None

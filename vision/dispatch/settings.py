"""Process settings of one dispatch-center worker. Everything that differs
between deployments is here; workers are stateless (state lives in the database
and the evidence directory), so several may serve one database."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from vision.dispatch.config import DEFAULT_DISPATCH_CONFIG

ENV_PREFIX = "STREETVISION_DISPATCH_"


@dataclass(frozen=True)
class Settings:
    data_dir: Path = field(default_factory=lambda: Path("var/dispatch"))  # /var/ is git-ignored
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
    def from_env(cls, **overrides: object) -> "Settings":
        """Settings from STREETVISION_DISPATCH_* variables, overridden by non-None keywords."""
        env = {
            "data_dir": os.environ.get(ENV_PREFIX + "DATA_DIR"),
            "db_url": os.environ.get(ENV_PREFIX + "DB"),
            "config_path": os.environ.get(ENV_PREFIX + "CONFIG"),
            "taxonomy_path": os.environ.get(ENV_PREFIX + "TAXONOMY"),
        }
        values = {k: v for k, v in env.items() if v}
        values.update({k: v for k, v in overrides.items() if v is not None})
        if "taxonomy_path" in values:
            values["taxonomy_path"] = Path(str(values["taxonomy_path"]))
        return cls(**values)  # type: ignore[arg-type]

"""Process settings of one dispatch-center worker. Everything that differs
between deployments is here; workers are stateless (state lives in the database
and the evidence directory), so several may serve one database."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from vision.dispatch.config import DEFAULT_DISPATCH_CONFIG, ConfigError

ENV_PREFIX = "STREETVISION_DISPATCH_"
DEFAULT_DATA_DIR = Path("var/dispatch")  # /var/ is git-ignored
DATA_DIR_MODE = 0o700  # database, evidence photos and clips: the service's user only
# Evidence collection: an hour is far longer than any request stays in flight (the longest
# wait is SQLite's 30 s busy timeout); an hourly sweep bounds what a crash leaves behind.
DEFAULT_EVIDENCE_GRACE_S = 3600.0
DEFAULT_COLLECT_INTERVAL_S = 3600.0
# Routes that take no files (logins, workflow forms, JSON, Open311 POST) read at most this:
# the largest of them (a reject reason, an Open311 description) is a few kilobytes, and the
# credential-less ones (login, Open311 POST) must not take a case-sized body in first.
DEFAULT_MAX_FORM_BYTES = 1 << 20

# Session cookie `Secure` flag: "auto" sets it when the request came over HTTPS (directly,
# or through a proxy uvicorn trusts for X-Forwarded-Proto); True always; False never.
CookieSecure = bool | Literal["auto"]

# The operator UI loads only its own script, style and images, and no page may be framed.
DEFAULT_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; media-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


@dataclass(frozen=True)
class Settings:
    data_dir: Path = field(default_factory=lambda: DEFAULT_DATA_DIR)
    db_url: str | None = None  # default: SQLite file in data_dir
    config_path: Path = DEFAULT_DISPATCH_CONFIG
    taxonomy_path: Path | None = None  # default: the bundled configs/taxonomy.yaml
    token_ttl_s: int = 12 * 3600
    max_evidence_bytes: int = 64 * 1024 * 1024
    # The largest request body taken (413 beyond it); None: the largest legitimate case,
    # see `body_limit_bytes`.
    max_body_bytes: int | None = None
    # The largest body of a route that takes no files (413 beyond it).
    max_form_bytes: int = DEFAULT_MAX_FORM_BYTES
    # Staged uploads a crash left behind and stored files no row names are deleted once they
    # are older than the grace period (never an in-flight request's), at start and then
    # every `collect_interval_s` (0: at start only).
    evidence_grace_s: float = DEFAULT_EVIDENCE_GRACE_S
    collect_interval_s: float = DEFAULT_COLLECT_INTERVAL_S
    cookie_secure: CookieSecure = "auto"
    # Content-Security-Policy of every response but the API docs ("" sends none).
    content_security_policy: str = DEFAULT_CSP
    migrate_on_startup: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "data_dir", Path(self.data_dir).resolve())
        object.__setattr__(self, "config_path", Path(self.config_path))
        if self.max_body_bytes is not None and self.max_body_bytes < 1:
            raise ConfigError(f"max_body_bytes: a positive number of bytes, not {self.max_body_bytes}")
        if self.max_form_bytes < 1:
            raise ConfigError(f"max_form_bytes: a positive number of bytes, not {self.max_form_bytes}")
        if self.evidence_grace_s < 0 or self.collect_interval_s < 0:
            raise ConfigError("evidence_grace_s, collect_interval_s: seconds, not negative")

    @property
    def body_limit_bytes(self) -> int:
        """`max_body_bytes`, by default the largest case an edge box may legitimately post:
        as many evidence files as a CaseReport may declare, each of `max_evidence_bytes`,
        the report's JSON part and the multipart framing."""
        if self.max_body_bytes is not None:
            return self.max_body_bytes
        from vision.dispatch.uploads import CASE_PART_MAX_BYTES, MULTIPART_OVERHEAD_BYTES, evidence_files_max

        return evidence_files_max() * self.max_evidence_bytes + CASE_PART_MAX_BYTES + MULTIPART_OVERHEAD_BYTES

    @property
    def database_url(self) -> str:
        return self.db_url or f"sqlite:///{self.data_dir / 'dispatch.db'}"

    @property
    def evidence_dir(self) -> Path:
        return self.data_dir / "evidence"

    def ensure_data_dir(self) -> Path:
        """Creates the data directory readable by the service's user only, and takes
        group and other access away from an existing one (evidence shows people)."""
        self.data_dir.mkdir(mode=DATA_DIR_MODE, parents=True, exist_ok=True)
        if stat.S_IMODE(self.data_dir.stat().st_mode) & 0o077:
            try:
                self.data_dir.chmod(DATA_DIR_MODE)
            except PermissionError:  # not ours to change: leave it, the owner decides
                pass
        return self.data_dir

    def cookie_secure_for(self, scheme: str) -> bool:
        """Whether the session cookie gets `Secure` on a request that came with `scheme`."""
        return scheme == "https" if self.cookie_secure == "auto" else bool(self.cookie_secure)

    @classmethod
    def from_env(
        cls,
        *,
        data_dir: str | Path | None = None,
        db_url: str | None = None,
        config_path: str | Path | None = None,
        taxonomy_path: str | Path | None = None,
        cookie_secure: CookieSecure | None = None,
    ) -> Settings:
        """Settings from STREETVISION_DISPATCH_* variables; a keyword that is not None wins over
        its variable, an unset or empty variable leaves the default. COOKIE_SECURE is
        auto, true or false; CSP is the Content-Security-Policy, "off" for none;
        MAX_BODY_BYTES, MAX_FORM_BYTES, EVIDENCE_GRACE_S and COLLECT_INTERVAL_S are numbers."""
        data_dir = data_dir if data_dir is not None else _env("DATA_DIR")
        db_url = db_url if db_url is not None else _env("DB")
        config_path = config_path if config_path is not None else _env("CONFIG")
        taxonomy_path = taxonomy_path if taxonomy_path is not None else _env("TAXONOMY")
        if cookie_secure is None:
            cookie_secure = parse_cookie_secure(_env("COOKIE_SECURE") or "auto")
        csp = _env("CSP")
        body, grace, interval = _env("MAX_BODY_BYTES"), _env("EVIDENCE_GRACE_S"), _env("COLLECT_INTERVAL_S")
        form = _env("MAX_FORM_BYTES")
        return cls(
            data_dir=Path(data_dir) if data_dir is not None else DEFAULT_DATA_DIR,
            db_url=db_url,
            config_path=Path(config_path) if config_path is not None else DEFAULT_DISPATCH_CONFIG,
            taxonomy_path=Path(taxonomy_path) if taxonomy_path is not None else None,
            cookie_secure=cookie_secure,
            content_security_policy=DEFAULT_CSP if csp is None else ("" if csp == "off" else csp),
            max_body_bytes=int(_number("MAX_BODY_BYTES", body)) if body else None,
            max_form_bytes=int(_number("MAX_FORM_BYTES", form)) if form else DEFAULT_MAX_FORM_BYTES,
            evidence_grace_s=_number("EVIDENCE_GRACE_S", grace) if grace else DEFAULT_EVIDENCE_GRACE_S,
            collect_interval_s=_number("COLLECT_INTERVAL_S", interval) if interval else DEFAULT_COLLECT_INTERVAL_S,
        )


def parse_cookie_secure(value: str) -> CookieSecure:
    """'auto', or a yes/no word, as a `cookie_secure` setting; anything else is a ConfigError."""
    word = value.strip().lower()
    if word == "auto":
        return "auto"
    if word in ("1", "true", "yes", "on", "always"):
        return True
    if word in ("0", "false", "no", "off", "never"):
        return False
    raise ConfigError(f"cookie_secure: 'auto', 'true' or 'false', not '{value}'")


def _number(name: str, value: str) -> float:
    """A variable's value as a non-negative number; anything else is a ConfigError naming it."""
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if not 0 <= number < float("inf"):
        raise ConfigError(f"{ENV_PREFIX}{name}: a non-negative number, not '{value}'")
    return number


def _env(name: str) -> str | None:
    """The STREETVISION_DISPATCH_<name> variable; unset and empty both read as None."""
    return os.environ.get(ENV_PREFIX + name) or None

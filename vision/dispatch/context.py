"""What every part of the dispatch service shares: one session factory (so one
engine and one transaction style), the configuration, the evidence store, the
notifier and the clock. Held in one object so that a test moving the clock, or
a deployment swapping the notifier, changes it for all parts at once."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from vision.core.taxonomy import Taxonomy
from vision.dispatch.config import DispatchConfig
from vision.dispatch.notify import Notifier
from vision.dispatch.settings import Settings
from vision.dispatch.storage import EvidenceStore


@dataclass
class ServiceContext:
    sessions: sessionmaker[Session]
    config: DispatchConfig
    taxonomy: Taxonomy
    store: EvidenceStore
    notifier: Notifier
    settings: Settings
    clock: Callable[[], datetime]

    def session(self) -> Session:
        """A new session, to be used as `with ctx.session() as s:` (one per call: thread-safe)."""
        return self.sessions()

    @property
    def engine(self) -> Engine:
        bind = self.sessions.kw["bind"]
        assert isinstance(bind, Engine)
        return bind

    def check_database(self) -> None:
        """Raises when the database cannot be reached (for /healthz)."""
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    def close(self) -> None:
        self.notifier.close()
        self.engine.dispose()

"""What every part of the dispatch service shares: one session factory (so one
engine and one transaction style), the configuration, the evidence store, the
notifier and the clock. Held in one object so that a test moving the clock, or
a deployment swapping the notifier, changes it for all parts at once.

Every database call is a unit of work that says what it does: `read()` or
`write()`. On SQLite a read is a deferred transaction (a WAL snapshot: it never
waits for the writer, so lists, pages, Open311 GET and token checks answer while
an intake holds the write lock) and a write takes the lock at BEGIN (so a unit
that reads and then writes cannot fail half way because another writer got in)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, event, text
from sqlalchemy.orm import Session, sessionmaker

from vision.core.taxonomy import Taxonomy
from vision.dispatch.config import DispatchConfig
from vision.dispatch.db import for_writes
from vision.dispatch.notify import Notifier
from vision.dispatch.settings import Settings
from vision.dispatch.storage import EvidenceStore


class WriteInReadUnit(RuntimeError):
    """A read unit of work tried to write: on SQLite its deferred transaction would have to
    upgrade to the write lock, which fails when another writer got in first. Use `write()`."""


def _refuse_writes(_session: Session, _flush_context: Any, _instances: Any) -> None:
    raise WriteInReadUnit("a read unit of work may not write: open it with ServiceContext.write()")


@dataclass
class ServiceContext:
    sessions: sessionmaker[Session]
    config: DispatchConfig
    taxonomy: Taxonomy
    store: EvidenceStore
    notifier: Notifier
    settings: Settings
    clock: Callable[[], datetime]
    _writer: Engine = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._writer = for_writes(self.engine)

    def read(self) -> Session:
        """A unit of work that only reads, as `with ctx.read() as s:` (one per call: thread-safe).
        Flushing a change in it raises WriteInReadUnit."""
        session = self.sessions()
        event.listen(session, "before_flush", _refuse_writes)
        return session

    def write(self) -> Session:
        """A unit of work that writes, as `with ctx.write() as s:`; on SQLite it holds the
        write lock from BEGIN to commit, so keep slow work (hashing, uploads) before it."""
        return self.sessions(bind=self._writer)

    @property
    def engine(self) -> Engine:
        bind = self.sessions.kw["bind"]
        assert isinstance(bind, Engine)
        return bind

    def check_database(self) -> None:
        """Raises when the database cannot be reached (for /healthz; a read: never waits for the writer)."""
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    def close(self) -> None:
        self.notifier.close()
        self.engine.dispose()

"""Engine, sessions and migrations. Migrations run programmatically (on
startup or `streetvision dispatch migrate`) from the revisions in this package."""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# The execution option that marks a connection's transactions as a writing unit of work.
UNIT_OPTION = "streetvision_unit"
WRITE_UNIT = "write"
# The PostgreSQL advisory lock (hashed like the intake's) that serialises migrations of one database.
MIGRATION_LOCK = "streetvision/migrate"


def make_engine(url: str) -> Engine:
    """An engine for SQLite (file, WAL, foreign keys on) or PostgreSQL (`postgresql+psycopg://`).
    On SQLite transactions begin deferred (reads) unless the connection is a writing unit's
    (`for_writes`), which begins IMMEDIATE."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
            dbapi_conn.isolation_level = None  # we issue BEGIN ourselves (below)
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin(conn) -> None:  # type: ignore[no-untyped-def]
            # A unit that writes takes the write lock up front: a deferred transaction that
            # reads and then writes fails with "database is locked" when another writer got
            # in between (WAL snapshot upgrade). A unit that only reads begins deferred: a WAL
            # snapshot that neither waits for the writer nor holds it up.
            write = conn.get_execution_options().get(UNIT_OPTION) == WRITE_UNIT
            conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

        return engine
    return create_engine(url, pool_pre_ping=True)


def for_writes(engine: Engine) -> Engine:
    """The same engine (pool, dialect, events) for units of work that write: on SQLite their
    transactions begin IMMEDIATE, holding the write lock from the first statement. On
    PostgreSQL the option changes nothing (row locks and advisory locks serialise there)."""
    return engine.execution_options(**{UNIT_OPTION: WRITE_UNIT})


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions over `engine`; a writing unit of work binds them to `for_writes(engine)`."""
    return sessionmaker(engine, expire_on_commit=False)


def alembic_config(engine: Engine | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if engine is not None:
        cfg.attributes["engine"] = engine
    return cfg


def migrate(engine: Engine, revision: str = "head") -> None:
    """Brings the schema to `revision`; safe to run from several workers and nodes at once.
    On SQLite a migration is one IMMEDIATE transaction, so the second waits and then finds
    the schema up to date. On PostgreSQL two nodes starting together would both create the
    tables (one failing on a duplicate); an advisory lock held on a connection of its own
    around the upgrade lets one migrate while the others wait, and then find nothing to do."""
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    config = alembic_config(for_writes(engine))
    if engine.dialect.name != "postgresql":
        command.upgrade(config, revision)
        return
    with engine.connect() as lock:
        lock.execute(text("SELECT pg_advisory_lock(hashtextextended(:k, 0))"), {"k": MIGRATION_LOCK})
        lock.commit()  # a session lock: held until unlocked, not a transaction left open
        try:
            command.upgrade(config, revision)
        finally:
            lock.execute(text("SELECT pg_advisory_unlock(hashtextextended(:k, 0))"), {"k": MIGRATION_LOCK})
            lock.commit()

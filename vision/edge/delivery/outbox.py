"""The durable case outbox: SQLite (WAL) rows + evidence files, written before any send.

A case is first written here (evidence files fsynced and moved into place,
then one committed row with synchronous=FULL), and only then offered to the
sender. The sender marks rows sent or failed; a restart resumes the queued
ones. The idempotency key (UUID) travels with every attempt, so a resend after
a crash between "sent" and "marked sent" is a replay the dispatch center
answers with the existing case, never a duplicate.

Why SQLite WAL: one file, transactional, survives kill -9 and power loss with
synchronous=FULL, readers (metrics, `outbox status`) never block the writer,
and no broker to run on an edge box.

A case whose clip still needs seconds recorded after onset (a passing truck)
is made durable early in a pending area (its stills and case JSON, see
`put_pending`); if the daemon dies before the clip is done, the next open
queues it without the clip instead of losing it.

Disk use of evidence is bounded: beyond `max_evidence_bytes`, or when the
filesystem has less than `min_free_bytes` free (os.statvfs), the oldest files
are deleted (those of already-sent cases first) with a warning; case rows are
never deleted, so nothing is silently dropped.

A full disk (ENOSPC, SQLite's "database or disk is full") is expected on a
small edge box, not fatal: a failed commit is rolled back and the connection
reopened (a connection whose COMMIT failed is not trusted again), room is made
by pruning, and `put` then queues the case with the evidence that fits (the
clip first goes), down to the bare case record. Only when not even that fits
does it raise `OutboxFullError`; the caller keeps the case and tries again.
`disk()` tells `/metrics` and `/healthz` where the disk stands.

The same queue carries what the camera later sees of a case (`put_lifecycle`:
the violation cleared, resumed or grew, with a snapshot; 自动核查 at the center).
Such a row `follows` its case and is only due once that case is sent, so the
center never hears of a case's end before the case; when its case is refused
for good, so is the row.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Literal, TypeVar

from vision.core.cases import CaseLifecycle, CaseReport, EvidenceItem
from vision.core.evidence_files import EvidenceFile

log = logging.getLogger(__name__)

__all__ = [
    "Outbox",
    "OutboxItem",
    "OutboxFile",
    "OutboxRecord",
    "CaseState",
    "ItemKind",
    "STATES",
    "DB_FILE",
    "DiskState",
    "DiskLevel",
    "OutboxFullError",
    "is_disk_full",
    "DEFAULT_MIN_FREE_BYTES",
]

CaseState = Literal["queued", "sent", "failed"]
ItemKind = Literal["case", "lifecycle"]  # a CaseReport, or a CaseLifecycle event that follows one
DiskLevel = Literal["ok", "low", "full"]  # free space above the floor / below it / the last write failed for space
DEFAULT_MIN_FREE_BYTES = 64 << 20
_T = TypeVar("_T")
STATES: tuple[CaseState, ...] = ("queued", "sent", "failed")
SCHEMA_VERSION = 2  # 2: the `kind` and `follows` columns (lifecycle events)
DB_FILE = "outbox.sqlite3"  # inside the outbox directory, beside evidence/

_SCHEMA = """
CREATE TABLE IF NOT EXISTS cases (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    idempotency_key TEXT NOT NULL UNIQUE,
    camera_id TEXT NOT NULL,
    rule TEXT NOT NULL,
    violation TEXT NOT NULL,
    case_json TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('queued', 'sent', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    last_status INTEGER,
    last_error TEXT,
    sent_at TEXT,
    remote_id TEXT,
    kind TEXT NOT NULL DEFAULT 'case' CHECK (kind IN ('case', 'lifecycle')),
    follows TEXT
);
CREATE INDEX IF NOT EXISTS cases_due ON cases (state, next_attempt_at, seq);
CREATE INDEX IF NOT EXISTS cases_follows ON cases (follows);
CREATE TABLE IF NOT EXISTS evidence (
    idempotency_key TEXT NOT NULL REFERENCES cases (idempotency_key),
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    content_type TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    size_bytes INTEGER NOT NULL,
    path TEXT NOT NULL,
    pruned_at TEXT,
    PRIMARY KEY (idempotency_key, name)
);
"""

_MIGRATE_1_TO_2 = f"""
BEGIN IMMEDIATE;
ALTER TABLE cases ADD COLUMN kind TEXT NOT NULL DEFAULT 'case' CHECK (kind IN ('case', 'lifecycle'));
ALTER TABLE cases ADD COLUMN follows TEXT;
PRAGMA user_version={SCHEMA_VERSION};
COMMIT;
"""

# A queued row the sender may take: a case, or a lifecycle event whose case has been delivered.
_READY = (
    "(kind = 'case' OR EXISTS (SELECT 1 FROM cases c WHERE c.idempotency_key = cases.follows AND c.state = 'sent'))"
)


def _now_iso() -> str:
    return datetime.now(UTC).isoformat()


class OutboxFullError(OSError):
    """Not even the bare case record fits on the disk; the caller keeps the case and retries."""

    def __init__(self, message: str) -> None:
        super().__init__(errno.ENOSPC, message)


_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


def is_disk_full(exc: BaseException) -> bool:
    """Whether `exc` says the disk (or quota) is full: an OSError with ENOSPC/EDQUOT/EFBIG, or SQLite's
    SQLITE_FULL (and the I/O errors SQLite reports when it could not grow its journal or WAL)."""
    if isinstance(exc, OSError):
        return exc.errno in _FULL_ERRNOS
    if isinstance(exc, sqlite3.Error):
        code = getattr(exc, "sqlite_errorcode", None)
        if code is not None:
            return code & 0xFF in (sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR)
        text = str(exc).lower()
        return "disk is full" in text or "disk i/o error" in text
    return False


@dataclass(frozen=True)
class DiskState:
    """Where the outbox's filesystem stands, for `/metrics` and `/healthz`."""

    level: DiskLevel
    free_bytes: int  # available to this process (statvfs f_bavail)
    total_bytes: int
    min_free_bytes: int  # the floor below which evidence is pruned
    write_errors: int  # disk-full errors met (and survived) since start
    evidence_dropped: int  # evidence files not kept because they did not fit
    last_error: str | None

    def as_dict(self) -> dict[str, object]:
        return {
            "level": self.level,
            "free_bytes": self.free_bytes,
            "total_bytes": self.total_bytes,
            "min_free_bytes": self.min_free_bytes,
            "write_errors": self.write_errors,
            "evidence_dropped": self.evidence_dropped,
            "last_error": self.last_error,
        }


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass(frozen=True)
class OutboxFile:
    name: str
    content_type: str
    path: Path


@dataclass(frozen=True)
class OutboxItem:
    """A case as the sender posts it."""

    key: str
    case_json: str  # with the evidence list reduced to the files still on disk
    files: list[OutboxFile]
    attempts: int
    seq: int
    kind: ItemKind = "case"  # "lifecycle": `case_json` is a CaseLifecycle event

    def report(self) -> CaseReport:
        return CaseReport.model_validate_json(self.case_json)

    def lifecycle(self) -> CaseLifecycle:
        return CaseLifecycle.model_validate_json(self.case_json)


@dataclass(frozen=True)
class OutboxRecord:
    """Where one case stands in delivery (its row without the case JSON; see `Outbox.get` for that)."""

    key: str
    state: CaseState
    camera_id: str
    rule: str
    violation: str
    attempts: int
    last_status: int | None  # HTTP status of the last attempt; None before one, or when none came back
    last_error: str | None
    created_at: str
    sent_at: str | None
    remote_id: str | None  # the dispatch center's case id, once delivered
    kind: ItemKind = "case"
    follows: str | None = None  # a lifecycle event's case


# The fields `cases()` (and `outbox status --json`) show of a record.
_STATUS_FIELDS = (
    "key",
    "kind",
    "state",
    "attempts",
    "last_status",
    "last_error",
    "camera_id",
    "rule",
    "created_at",
    "sent_at",
    "follows",
)


class Outbox:
    def __init__(
        self,
        directory: Path | str,
        max_evidence_bytes: int = 2 << 30,
        *,
        owner: bool = True,
        min_free_bytes: int = DEFAULT_MIN_FREE_BYTES,
    ):
        """`owner`: this process writes the outbox (cleans crash leftovers at open); readers such
        as a status command pass False. `min_free_bytes`: evidence is pruned while the filesystem
        has less free."""
        self.directory = Path(directory)
        self.evidence_dir = self.directory / "evidence"
        self.staging_dir = self.evidence_dir / ".staging"
        self.pending_dir = self.evidence_dir / ".pending"
        self.staging_dir.mkdir(parents=True, exist_ok=True)
        self.pending_dir.mkdir(parents=True, exist_ok=True)
        self.max_evidence_bytes = int(max_evidence_bytes)
        self.min_free_bytes = int(min_free_bytes)
        self.pruned_files = 0
        self.write_errors = 0  # disk-full errors survived (see `disk`)
        self.evidence_dropped = 0  # evidence files `put` left out because they did not fit
        self._last_full: str | None = None  # the last disk-full error, cleared by the next good write
        self._lock = threading.RLock()
        self._closed = False
        self.db_path = self.directory / DB_FILE
        self._conn: sqlite3.Connection | None = self._connect()
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version == 1:  # an outbox of the build before lifecycle events: two columns more, rows kept
            self._db.executescript(_MIGRATE_1_TO_2)
            version = SCHEMA_VERSION
        self._db.executescript(_SCHEMA)
        if version == 0:
            self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        elif version != SCHEMA_VERSION:
            raise RuntimeError(f"outbox {self.directory}: schema version {version}, this build knows {SCHEMA_VERSION}")
        self.recovered: list[str] = []  # keys of cases queued from the pending area at open
        self.unrecovered: list[str] = []  # pending cases that did not fit at open; see `retry_unrecovered`
        if owner:
            self._clean_orphans()

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.db_path, check_same_thread=False, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA busy_timeout=10000")
        return conn

    def _reopen(self) -> None:
        """After a failed commit: roll back what may be left and start on a fresh connection."""
        with self._lock:
            if self._conn is None:
                return
            with contextlib.suppress(sqlite3.Error):
                self._conn.execute("ROLLBACK")
            with contextlib.suppress(sqlite3.Error):
                self._conn.close()
            self._conn = None
            try:
                self._conn = self._connect()
            except sqlite3.Error as exc:  # the next write tries again (see `_db`)
                log.error("outbox: cannot reopen %s (%s); retrying at the next write", self.db_path, exc)

    # --- writing -----------------------------------------------------------------------------------
    def staging(self, key: str) -> Path:
        """A directory to write a case's evidence files into before `put`."""
        path = self.staging_dir / str(key)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def put(self, case: CaseReport, files: Sequence[EvidenceFile]) -> str:
        return self._put(case, files, rule=case.rule, violation=case.violation)

    def put_lifecycle(self, event: CaseLifecycle, files: Sequence[EvidenceFile], *, rule: str, violation: str) -> str:
        """Queue what the camera saw of a case after it (cleared, resumed, grew), like `put`; it is sent only
        once its case (`event.case_key`) has been delivered. The same event again (its key is made of
        the violation, kind and moment) is already queued: a no-op."""
        key = str(event.idempotency_key)
        if self.record(key) is not None:
            shutil.rmtree(self.staging_dir / key, ignore_errors=True)
            return key
        return self._put(event, files, rule=rule, violation=violation)

    def _put(
        self, case: CaseReport | CaseLifecycle, files: Sequence[EvidenceFile], *, rule: str, violation: str
    ) -> str:
        """Queue a case durably. `files` are evidence files (objects with name, kind, content_type,
        path, sha256, size_bytes) already written, normally under `staging(key)`.

        On a full disk the case is queued with the files that fit (the largest, the clip, goes
        first), down to the bare record; `OutboxFullError` only when not even that fits (the files
        are then in the case's evidence directory, and a retry of `put` finds them there)."""
        key = str(case.idempotency_key)
        final_dir = self.evidence_dir / key
        final_dir.mkdir(parents=True, exist_ok=True)
        kept: list[EvidenceFile] = []
        for f in files:
            target = final_dir / f.name
            if Path(f.path) != target and Path(f.path).is_file():
                shutil.move(str(f.path), target)  # a rename: staging and pending are on the same filesystem
            if target.is_file():  # not there: dropped by an earlier try that did not fit
                kept.append(EvidenceFile(f.name, f.kind, f.content_type, target, f.sha256, f.size_bytes))
        _fsync_dir(final_dir)
        _fsync_dir(self.evidence_dir)
        while True:
            try:
                self._insert(case, kept, rule, violation)
                break
            except OutboxFullError:
                if not kept:
                    raise
                dropped = max(kept, key=lambda f: f.size_bytes)
                kept.remove(dropped)
                with contextlib.suppress(OSError):
                    os.unlink(dropped.path)
                self.evidence_dropped += 1
                log.warning("outbox: disk full; %s is queued without its %s", key, dropped.name)
        for leftover in (self.staging_dir / key, self.pending_dir / key):  # only after the row is committed
            if leftover.is_dir():
                shutil.rmtree(leftover, ignore_errors=True)
        self.enforce_disk_bound()
        return key

    def _insert(
        self, case: CaseReport | CaseLifecycle, files: Sequence[EvidenceFile], rule: str, violation: str
    ) -> None:
        key = str(case.idempotency_key)
        kind, follows = ("lifecycle", str(case.case_key)) if isinstance(case, CaseLifecycle) else ("case", None)
        rows = [(key, f.name, f.kind, f.content_type, f.sha256, f.size_bytes, str(f.path)) for f in files]
        items = [EvidenceItem(name=r[1], kind=r[2], content_type=r[3], sha256=r[4], size_bytes=r[5]) for r in rows]
        case = case.model_copy(update={"evidence": items})
        now = _now_iso()

        def insert(db: sqlite3.Connection) -> None:
            db.execute(
                "INSERT INTO cases (idempotency_key, camera_id, rule, violation, case_json, state, attempts,"
                " next_attempt_at, created_at, updated_at, kind, follows)"
                " VALUES (?, ?, ?, ?, ?, 'queued', 0, ?, ?, ?, ?, ?)",
                (key, case.camera_id, rule, violation, case.model_dump_json(), time.time(), now, now, kind, follows),
            )
            db.executemany(
                "INSERT INTO evidence (idempotency_key, name, kind, content_type, sha256, size_bytes, path)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                rows,
            )

        self._write(insert)

    # --- cases waiting for their clip --------------------------------------------------------------
    def pending(self, key: str) -> Path:
        """A directory for a case that is known but not complete yet (its clip is still being
        recorded). Unlike staging, it survives a crash: see `put_pending`."""
        path = self.pending_dir / str(key)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def put_pending(self, case: CaseReport) -> None:
        """Make a not-yet-complete case durable: its evidence files are already in
        `pending(key)`; the case JSON is written beside them (fsynced, atomically renamed).
        If the process dies before `put`, the next open queues it with those files."""
        directory = self.pending(str(case.idempotency_key))
        tmp = directory / "case.json.part"
        try:
            with open(tmp, "w", encoding="utf-8") as fh:
                fh.write(case.model_dump_json())
                fh.flush()
                os.fsync(fh.fileno())
        except OSError as exc:
            tmp.unlink(missing_ok=True)  # a partial file only takes the space that was missing
            if is_disk_full(exc):
                self.note_disk_full(exc)
            raise
        tmp.replace(directory / "case.json")
        _fsync_dir(directory)

    def _recover_pending(self, keys: set[str]) -> None:
        """Queue what a crash left pending, with the evidence it had (no clip)."""
        for directory in sorted(p for p in self.pending_dir.iterdir() if p.is_dir()):
            if directory.name in keys or not (directory / "case.json").is_file():
                shutil.rmtree(directory, ignore_errors=True)  # already queued, or never made durable
                continue
            if self._recover_one(directory):
                keys.add(directory.name)

    def retry_unrecovered(self) -> int:
        """Try again to queue the pending cases that did not fit at open; returns how many are queued now."""
        queued = 0
        for key in list(self.unrecovered):
            directory = self.pending_dir / key
            if not (directory / "case.json").is_file() or self.record(key) is not None:
                self.unrecovered.remove(key)
            elif self._recover_one(directory):
                queued += 1
        return queued

    def _recover_one(self, directory: Path) -> bool:
        key = directory.name
        case_file = directory / "case.json"
        try:
            case = CaseReport.model_validate_json(case_file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:  # left in place for a person to look at
            log.error("outbox: pending case %s cannot be read (%s); left in %s", key, exc, directory)
            return False
        files = []
        for item in case.evidence:  # a crash inside put() may have moved some files already
            for path in (directory / item.name, self.evidence_dir / key / item.name):
                if path.is_file():
                    files.append(
                        EvidenceFile(item.name, item.kind, item.content_type, path, item.sha256, item.size_bytes)
                    )
                    break
        try:
            self.put(case, files)
        except OutboxFullError as exc:
            if key not in self.unrecovered:
                self.unrecovered.append(key)
            log.error(
                "outbox: disk full; pending case %s stays in %s and is queued once it fits (%s)", key, directory, exc
            )
            return False
        if key in self.unrecovered:
            self.unrecovered.remove(key)
        self.recovered.append(key)
        log.warning(
            "outbox: case %s (%s on %s) was waiting for its clip when the daemon stopped; queued without it",
            key,
            case.violation,
            case.camera_id,
        )
        return True

    # --- the sender's side -------------------------------------------------------------------------
    def next_due(self, now: float | None = None) -> OutboxItem | None:
        """The oldest queued item whose next attempt is due (a lifecycle event only once its case is
        sent), as it is to be sent."""
        now = time.time() if now is None else now
        return self._item(
            "SELECT seq, idempotency_key, case_json, attempts, kind FROM cases"
            f" WHERE state = 'queued' AND next_attempt_at <= ? AND {_READY} ORDER BY seq LIMIT 1",
            (now,),
        )

    def _item(self, sql: str, args: tuple[object, ...]) -> OutboxItem | None:
        """The item the query selects (seq, key, case_json, attempts, kind) with its evidence files still on disk."""
        with self._lock:
            row = self._db.execute(sql, args).fetchone()
            if row is None:
                return None
            seq, key, case_json, attempts, kind = row
            ev = self._db.execute(
                "SELECT name, content_type, path FROM evidence WHERE idempotency_key = ? AND pruned_at IS NULL",
                (key,),
            ).fetchall()
        files = [OutboxFile(n, ct, Path(p)) for n, ct, p in ev if Path(p).is_file()]
        present = {f.name for f in files}
        case = json.loads(case_json)
        if len(present) != len(case.get("evidence", [])):
            case["evidence"] = [e for e in case["evidence"] if e["name"] in present]
            case_json = json.dumps(case, ensure_ascii=False)
        return OutboxItem(key, case_json, files, attempts, seq, kind)

    def next_attempt_in(self, now: float | None = None) -> float | None:
        """Seconds until the next queued case is due (0 if one is due now), None if none queued."""
        now = time.time() if now is None else now
        with self._lock:
            row = self._db.execute(
                f"SELECT MIN(next_attempt_at) FROM cases WHERE state = 'queued' AND {_READY}"
            ).fetchone()
        return None if row[0] is None else max(0.0, row[0] - now)

    def mark_sent(self, key: str, status: int, remote_id: str | None) -> None:
        now = _now_iso()
        self._write(
            lambda db: db.execute(
                "UPDATE cases SET state = 'sent', attempts = attempts + 1, last_status = ?, last_error = NULL,"
                " sent_at = ?, updated_at = ?, remote_id = ? WHERE idempotency_key = ?",
                (status, now, now, remote_id, key),
            )
        )

    def mark_retry(self, key: str, error: str, delay_s: float, status: int | None = None) -> None:
        self._write(
            lambda db: db.execute(
                "UPDATE cases SET attempts = attempts + 1, last_status = ?, last_error = ?, next_attempt_at = ?,"
                " updated_at = ? WHERE idempotency_key = ? AND state = 'queued'",
                (status, error[:1000], time.time() + delay_s, _now_iso(), key),
            )
        )

    def mark_failed(self, key: str, status: int | None, error: str) -> None:
        """Refused for good; the lifecycle events that follow a refused case can never be placed, so
        they fail with it (`requeue_failed` brings both back)."""
        now = _now_iso()

        def fail(db: sqlite3.Connection) -> None:
            db.execute(
                "UPDATE cases SET state = 'failed', attempts = attempts + 1, last_status = ?, last_error = ?,"
                " updated_at = ? WHERE idempotency_key = ?",
                (status, error[:1000], now, key),
            )
            db.execute(
                "UPDATE cases SET state = 'failed', last_error = ?, updated_at = ? WHERE follows = ? AND state = 'queued'",
                (f"its case {key} was refused", now, key),
            )

        self._write(fail)

    def requeue_failed(self) -> int:
        """Put permanently failed cases back in the queue (after fixing the cause, e.g. a token)."""
        cur = self._write(
            lambda db: db.execute(
                "UPDATE cases SET state = 'queued', next_attempt_at = ?, updated_at = ? WHERE state = 'failed'",
                (time.time(), _now_iso()),
            )
        )
        return cur.rowcount

    # --- reading -----------------------------------------------------------------------------------
    def counts(self) -> dict[str, int]:
        with self._lock:
            rows = self._db.execute("SELECT state, COUNT(*) FROM cases GROUP BY state").fetchall()
        out: dict[str, int] = dict.fromkeys(STATES, 0)
        out.update(dict(rows))
        return out

    def depth(self) -> int:
        return self.counts()["queued"]

    def evidence_bytes(self) -> int:
        with self._lock:
            return int(
                self._db.execute(
                    "SELECT COALESCE(SUM(size_bytes), 0) FROM evidence WHERE pruned_at IS NULL"
                ).fetchone()[0]
            )

    def records(self, state: CaseState | None = None) -> list[OutboxRecord]:
        """Every case (or those in `state`), oldest first."""
        return self._records(" WHERE state = ?", (state,)) if state else self._records("", ())

    def record(self, key: str) -> OutboxRecord | None:
        """Where the case with this idempotency key stands; None if the outbox has no such case."""
        found = self._records(" WHERE idempotency_key = ?", (key,))
        return found[0] if found else None

    def _records(self, where: str, args: tuple[object, ...]) -> list[OutboxRecord]:
        sql = (
            "SELECT idempotency_key, state, camera_id, rule, violation, attempts, last_status, last_error,"
            " created_at, sent_at, remote_id, kind, follows FROM cases"
        )
        with self._lock:
            rows = self._db.execute(sql + where + " ORDER BY seq", args).fetchall()
        return [OutboxRecord(*row) for row in rows]

    def get(self, key: str) -> OutboxItem | None:
        """The case with this idempotency key as the sender would post it now (whatever its state)."""
        return self._item(
            "SELECT seq, idempotency_key, case_json, attempts, kind FROM cases WHERE idempotency_key = ?", (key,)
        )

    def cases(self, state: CaseState | None = None) -> list[dict[str, object]]:
        """`records` as plain dicts of the fields `outbox status --json` shows."""
        return [{name: getattr(r, name) for name in _STATUS_FIELDS} for r in self.records(state)]

    # --- housekeeping ------------------------------------------------------------------------------
    def free_bytes(self) -> int:
        """Bytes of the outbox's filesystem this process may still use (statvfs f_bavail)."""
        st = os.statvfs(self.directory)
        return st.f_bavail * st.f_frsize

    def disk(self) -> DiskState:
        """The filesystem's state: "full" while the last write failed for space, "low" below the floor."""
        st = os.statvfs(self.directory)
        free = st.f_bavail * st.f_frsize
        level: DiskLevel = "full" if self._last_full else "low" if free < self.min_free_bytes else "ok"
        return DiskState(
            level=level,
            free_bytes=free,
            total_bytes=st.f_blocks * st.f_frsize,
            min_free_bytes=self.min_free_bytes,
            write_errors=self.write_errors,
            evidence_dropped=self.evidence_dropped,
            last_error=self._last_full,
        )

    def note_disk_full(self, exc: BaseException) -> None:
        """A write failed for space (here or in the case writer): counted and shown by `disk` until a write succeeds."""
        self.write_errors += 1
        self._last_full = f"{type(exc).__name__}: {exc}"[:300]

    def enforce_disk_bound(self) -> int:
        """Delete the oldest evidence files (sent cases' first) while evidence is over its byte bound
        or the filesystem has less than `min_free_bytes` free; returns files pruned."""
        return self._prune(self.min_free_bytes)

    def make_room(self) -> int:
        """After a write failed for space: prune as `enforce_disk_bound` does, and at least one file."""
        return self._prune(self.min_free_bytes, at_least_one=True)

    def _prune(self, min_free: int, *, at_least_one: bool = False) -> int:
        total = self.evidence_bytes()

        def wanted(pruned: int) -> bool:
            short_of_space = self.free_bytes() < min_free or (at_least_one and pruned == 0)
            return total > self.max_evidence_bytes or short_of_space

        if not wanted(0):
            return 0
        with self._lock:
            rows = self._db.execute(
                "SELECT e.idempotency_key, e.name, e.size_bytes, e.path, c.state FROM evidence e"
                " JOIN cases c ON c.idempotency_key = e.idempotency_key WHERE e.pruned_at IS NULL"
                " ORDER BY CASE c.state WHEN 'sent' THEN 0 ELSE 1 END, c.seq, e.size_bytes DESC"
            ).fetchall()
        pruned = 0
        for key, name, size, path, state in rows:
            if not wanted(pruned):
                break
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
            try:  # the file is gone either way; the mark is caught up by a later pass if it does not fit now
                with self._tx():
                    self._db.execute(
                        "UPDATE evidence SET pruned_at = ? WHERE idempotency_key = ? AND name = ?",
                        (_now_iso(), key, name),
                    )
            except sqlite3.Error as exc:
                if not is_disk_full(exc):
                    raise
                self._reopen()
            total -= size
            pruned += 1
            if state != "sent":
                log.warning(
                    "outbox short of disk (evidence bound %d MB, free-space floor %d MB): pruned %s of unsent"
                    " case %s; the case itself stays queued",
                    self.max_evidence_bytes >> 20,
                    min_free >> 20,
                    name,
                    key,
                )
        self.pruned_files += pruned
        return pruned

    def _clean_orphans(self) -> None:
        """Evidence directories without a case row are leftovers of a crash before the row was
        committed (the case was never queued, so it was never acknowledged either); those of a
        pending case that did not fit yet are kept for `retry_unrecovered`."""
        shutil.rmtree(self.staging_dir, ignore_errors=True)
        self.staging_dir.mkdir(parents=True, exist_ok=True)
        with self._lock:
            keys = {r[0] for r in self._db.execute("SELECT idempotency_key FROM cases")}
        self._recover_pending(keys)
        kept = keys | set(self.unrecovered) | {".staging", ".pending"}  # a case waiting for space keeps its files
        for child in self.evidence_dir.iterdir():
            if child.is_dir() and child.name not in kept:
                log.warning("outbox: removing evidence without a case row (crash before queueing): %s", child)
                shutil.rmtree(child, ignore_errors=True)

    class _Tx:
        def __init__(self, outbox: Outbox):
            self.outbox = outbox

        def __enter__(self) -> None:
            self.outbox._lock.acquire()
            try:
                self.outbox._db.execute("BEGIN IMMEDIATE")
            except BaseException:
                self.outbox._lock.release()
                raise

        def __exit__(
            self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
        ) -> None:
            try:
                self.outbox._db.execute("ROLLBACK" if exc_type else "COMMIT")
            finally:
                self.outbox._lock.release()

    def _tx(self) -> Outbox._Tx:
        return Outbox._Tx(self)

    def _write(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        """`work` in one write transaction. On a full disk: roll back, reopen the connection, make
        room and try once more; `OutboxFullError` if it still does not fit."""
        for attempt in (1, 2):
            try:
                with self._tx():
                    result = work(self._db)
            except sqlite3.Error as exc:
                if not is_disk_full(exc):
                    raise
                self.note_disk_full(exc)
                self._reopen()
                if attempt == 2:
                    raise OutboxFullError(f"outbox {self.directory}: {exc}") from exc
                log.warning("outbox: a write failed for space (%s); pruning evidence and trying again", exc)
                with contextlib.suppress(OSError, sqlite3.Error):
                    self.make_room()
                continue
            self._last_full = None
            return result
        raise AssertionError("unreachable")

    @property
    def _db(self) -> sqlite3.Connection:
        """The open connection (reopened if a failed reopen left none); after `close` it raises
        (using a closed outbox is the caller's bug)."""
        if self._closed:
            raise RuntimeError(f"outbox {self.directory} is closed")
        if self._conn is None:
            self._conn = self._connect()
        return self._conn

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._conn is not None:
                self._conn.close()
                self._conn = None

"""The evidence files of one request, committed with the rows that name them.

Files are staged (copied and hashed under temp names) before any transaction,
so no lock is held while a client's upload is read. They reach their content
address inside the writing transaction, just before it commits; when it does not
commit, the files this request added are taken out again, unless a row of
another request names the same content (content-addressed files are shared).

Moving a file in, taking it back out, and the collector deleting an orphan all
happen under one lock per content: on SQLite the write lock every writing unit
holds from BEGIN, on PostgreSQL an advisory lock per SHA-256. So a file is
never deleted between another request's move and its commit."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from types import TracebackType
from typing import BinaryIO

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from vision.dispatch import models as m
from vision.dispatch.context import ServiceContext
from vision.dispatch.storage import StagedFile

log = logging.getLogger(__name__)


def lock_contents(s: Session, shas: Iterable[str]) -> None:
    """Serialises moving in and deleting these contents against each other, until `s` ends.
    SQLite: nothing to do (a writing unit holds the database's write lock)."""
    if s.get_bind().dialect.name != "postgresql":
        return
    keys = [f"evidence/{sha}" for sha in sorted(set(shas))]
    if keys:  # one statement, the locks taken in one order everywhere: no deadlock between two batches
        s.execute(
            text(
                "SELECT count(pg_advisory_xact_lock(hashtextextended(k, 0))) "
                "FROM (SELECT unnest(CAST(:keys AS text[])) AS k ORDER BY 1) AS ordered"
            ),
            {"keys": keys},
        )


def named_contents(s: Session, shas: Iterable[str]) -> set[str]:
    """Those of `shas` that an evidence row, a camera's latest picture (fleet) or a model version
    (its file or its card) names."""
    wanted = sorted(set(shas))
    if not wanted:
        return set()
    named: set[str] = set()
    for column in (m.Evidence.sha256, m.EdgeCamera.frame_sha256, m.ModelVersion.sha256, m.ModelVersion.card_sha256):
        named |= {sha for sha in s.scalars(select(column).where(column.in_(wanted)).distinct()) if sha}
    return named


def remove_unnamed(ctx: ServiceContext, shas: Iterable[str]) -> int:
    """Deletes those of the stored `shas` that no row names, in one writing unit under their
    locks (so none is deleted between another request's move and its commit); returns how many."""
    wanted = sorted(set(shas))
    removed = 0
    with ctx.write() as s:
        lock_contents(s, wanted)
        for sha in set(wanted) - named_contents(s, wanted):
            ctx.store.remove(sha)
            removed += 1
        s.commit()
    return removed


class EvidenceBatch:
    """Use as `with EvidenceBatch(ctx) as batch:`; `stage` before the transaction, then
    `batch.commit(s)` in place of `s.commit()`. Leaving the block drops what was staged
    and never committed (a refused report, a failed transaction)."""

    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx
        self._staged: list[StagedFile] = []

    def stage(
        self, stream: BinaryIO, max_bytes: int, expect_sha256: str | None = None, expect_size: int | None = None
    ) -> StagedFile:
        """Copies one file in under a temp name (StorageError when it is too large or not as declared)."""
        staged = self.ctx.store.stage(stream, max_bytes, expect_sha256, expect_size)
        self._staged.append(staged)
        return staged

    def commit(self, s: Session) -> None:
        """Moves the staged files to their addresses and commits `s`, whose rows name them.
        On any failure `s` is rolled back, the files this batch added are taken out again,
        and the error is raised."""
        created: list[str] = []
        try:
            lock_contents(s, (f.sha256 for f in self._staged))
            for f in self._staged:
                if self.ctx.store.promote(f):
                    created.append(f.sha256)
            s.commit()
        except BaseException:
            try:
                s.rollback()
            except Exception:  # the connection is gone: the database rolls back on its own
                log.warning("rollback after a failed commit failed", exc_info=True)
            self._take_back(created)
            raise
        finally:
            self._staged = []

    def _take_back(self, created: list[str]) -> None:
        """Deletes the files this batch created that no row names (a row of another request,
        committed meanwhile, may name the same content). If the database cannot say, the
        files stay for the collector."""
        if not created:
            return
        try:
            remove_unnamed(self.ctx, created)
        except Exception as exc:
            log.warning("evidence of a failed transaction left to the collector (%s): %s", exc, created)

    def close(self) -> None:
        for f in self._staged:
            self.ctx.store.discard(f)
        self._staged = []

    def __enter__(self) -> EvidenceBatch:
        return self

    def __exit__(
        self, _type: type[BaseException] | None, _exc: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self.close()

"""Evidence retention: the files of finished cases are deleted after a set time, the record stays.

A district's center stores a snapshot and a clip with every case; kept for ever they fill any
disk (docs/SCALE.md). A case that is closed (结案) or was a false alarm (误报) keeps its row, its
history and what the reviewers decided; its video clips go after `retention.clip_days`, its
images (snapshots, crops, the after and verification photos) after `retention.image_days`,
counted from when it finished. Cases still in the workflow or parked (挂账) keep everything.

Each case whose files go gets an audit entry ("expire") naming how many files and bytes, so the
history says why the evidence is missing. The rows go here; the files themselves are removed
by the collector once no row names them (content is shared between cases: a file another case
still names stays). With several center nodes the rows are taken with `FOR UPDATE SKIP LOCKED`
on PostgreSQL, so a case is expired once even when two nodes run this at the same moment."""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, delete, func, or_, select
from sqlalchemy.orm import aliased
from sqlalchemy.orm.util import AliasedClass

from vision.dispatch import models as m
from vision.dispatch.config import RetentionConfig
from vision.dispatch.context import ServiceContext
from vision.dispatch.transitions import audit
from vision.dispatch.workflow import Status

log = logging.getLogger(__name__)
FINISHED = (Status.CLOSED.value, Status.REJECTED.value)
BATCH = 200  # cases per writing transaction: short lock holds


@dataclass(frozen=True)
class Expired:
    """What one pass removed (or would remove, on a dry run)."""

    cases: int
    files: int
    bytes: int


def _due(
    policy: RetentionConfig, case: type[m.Case] | AliasedClass[m.Case], now: datetime
) -> ColumnElement[bool] | None:
    """The WHERE clause of evidence rows past their time, or None when the policy keeps everything."""
    finished_at = func.coalesce(case.closed_at, case.updated_at)
    video = m.Evidence.content_type.like("video/%")
    parts = []
    if policy.clip_days is not None:
        parts.append(and_(video, finished_at < now - timedelta(days=policy.clip_days)))
    if policy.image_days is not None:
        parts.append(and_(~video, finished_at < now - timedelta(days=policy.image_days)))
    if not parts:
        return None
    return and_(case.status.in_(FINISHED), or_(*parts))


def expire_evidence(ctx: ServiceContext, dry_run: bool = False) -> Expired:
    """Deletes the evidence rows of finished cases that are past the retention times (their files
    follow with the collector) and writes one audit entry per case; `dry_run` only counts."""
    now = ctx.clock()
    due = _due(ctx.config.retention, m.Case, now)
    if due is None:
        return Expired(0, 0, 0)
    rows_due = select(m.Evidence.id, m.Evidence.case_id, m.Evidence.size_bytes).join(
        m.Case, m.Case.id == m.Evidence.case_id
    )
    rows_due = rows_due.where(due)
    if dry_run:
        with ctx.read() as s:
            rows = s.execute(rows_due).all()
        return Expired(len({r.case_id for r in rows}), len(rows), sum(r.size_bytes for r in rows))
    inner = aliased(m.Case)
    inner_due = _due(ctx.config.retention, inner, now)
    assert inner_due is not None
    cases_due = (
        select(m.Case.id, m.Case.status)
        .where(m.Case.id.in_(select(m.Evidence.case_id).join(inner, inner.id == m.Evidence.case_id).where(inner_due)))
        .order_by(m.Case.id)
        .limit(BATCH)
        .with_for_update(skip_locked=True)  # another center node is expiring these: leave them to it
    )
    cases = files = size = 0
    while True:
        with ctx.write() as s:
            status = {cid: Status(st) for cid, st in s.execute(cases_due).all()}
            if not status:
                break
            rows = s.execute(rows_due.where(m.Evidence.case_id.in_(status))).all()
            s.execute(delete(m.Evidence).where(m.Evidence.id.in_([r.id for r in rows])))
            per_case: dict[int, list[int]] = defaultdict(list)
            for r in rows:
                per_case[r.case_id].append(r.size_bytes)
            for case_id, sizes in per_case.items():
                st = status[case_id]
                s.add(
                    audit(
                        case_id, "expire", st, st, "retention", "system", now,
                        details={"files": len(sizes), "bytes": sum(sizes)},
                    )
                )  # fmt: skip
            s.commit()
        cases += len(per_case)
        files += len(rows)
        size += sum(r.size_bytes for r in rows)
    if files:
        log.info("retention: evidence of %d finished case(s) expired: %d file(s), %d bytes", cases, files, size)
    return Expired(cases, files, size)

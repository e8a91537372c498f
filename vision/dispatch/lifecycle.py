"""自动核查: what the camera saw of a violation after reporting it (`CaseLifecycle`, from the
same outbox as the case, exactly once per idempotency key), attached to the case the report
made or joined. The event is stored with its snapshot, the case keeps the camera's latest
state, and by the type's policy (`camera_verification` in configs/dispatch.yaml):

    cleared, handled case       automatic: the camera verifies it; suggest: a person is asked to
    cleared, dispatched case    waits for the handling (transitions.verify_if_cleared)
    cleared, before dispatch    the case is marked 自行消失 (gone by itself), no transition
    resumed, verified / closed  the camera reopens it (dispatched again, a new deadline)
    resumed, otherwise          the state is present again; a suggestion is withdrawn
    grew                        more objects joined: the case's count is raised, no transition

Policy off records the event and the camera's state only."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from vision.core.cases import CaseLifecycle
from vision.dispatch import models as m
from vision.dispatch.accounts import ClientPrincipal
from vision.dispatch.context import ServiceContext
from vision.dispatch.errors import Conflict, NotFound, NotPermitted
from vision.dispatch.intake import evidence_rows, stage_evidence
from vision.dispatch.notify import CaseEvent
from vision.dispatch.schemas import LifecycleOutcome, LifecycleResult
from vision.dispatch.staging import EvidenceBatch
from vision.dispatch.transitions import camera_step
from vision.dispatch.uploads import Upload
from vision.dispatch.workflow import Action, Status

BEFORE_DISPATCH = frozenset({Status.SUSPECTED, Status.ACCEPTED})
REOPENED_FROM = frozenset({Status.VERIFIED, Status.CLOSED})


class CameraLifecycle:
    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx

    def record(
        self, client: ClientPrincipal, event: CaseLifecycle, files: Mapping[str, Upload]
    ) -> tuple[LifecycleResult, bool]:
        """Stores one lifecycle event and applies it to its case; returns the answer and whether
        the event is new (False: a replay of a known key, answered as first). NotFound only when
        no case or occurrence has `event.case_key` (the edge retries later)."""
        if client.kind != "device":
            raise NotPermitted("only edge devices post lifecycle events")
        if client.site_id and client.site_id != event.site_id:
            raise NotPermitted(f"device '{client.name}' may only report for site '{client.site_id}'")
        key = str(event.idempotency_key)
        known = self._replay(key, client)
        if known is not None:
            return known, False
        case_id = self._case_of(event)
        with EvidenceBatch(self.ctx) as batch:
            stored = stage_evidence(self.ctx, event.evidence, files, batch, part="event")
            try:
                result, notices, created = self._record(client, event, case_id, stored, key, batch)
            except IntegrityError:
                again = self._replay(key, client)  # a concurrent post of the same event won
                if again is None:
                    raise
                return again, False
        for notice in notices:
            self.ctx.notifier.publish(notice)
        return result, created

    def _case_of(self, event: CaseLifecycle) -> int:
        """The case the event's report made or was merged into (409 when site or camera differ)."""
        with self.ctx.read() as s:
            row = s.execute(
                select(m.Case.id, m.Case.site_id, m.Case.camera_id)
                .join(m.Occurrence, m.Occurrence.case_id == m.Case.id)
                .where(m.Occurrence.idempotency_key == str(event.case_key))
            ).first()
        if row is None:
            raise NotFound(f"case_key: no case has a report {event.case_key} (yet)")
        if (row.site_id, row.camera_id) != (event.site_id, event.camera_id):
            raise Conflict(f"case_key: case {row.id} is of {row.site_id}/{row.camera_id}, not of this camera")
        return int(row.id)

    def _replay(self, key: str, client: ClientPrincipal) -> LifecycleResult | None:
        with self.ctx.read() as s:
            row = s.scalar(select(m.CameraEvent).where(m.CameraEvent.idempotency_key == key))
            if row is None:
                return None
            if row.client_id != client.id:
                raise Conflict("idempotency_key was already used by another device")
            return _result(row)

    def _record(
        self,
        client: ClientPrincipal,
        event: CaseLifecycle,
        case_id: int,
        stored: dict[str, str],
        key: str,
        batch: EvidenceBatch,
    ) -> tuple[LifecycleResult, list[CaseEvent], bool]:
        """One transaction: the event row, its snapshot rows (and files), its effect on the case;
        False as third when a concurrent post of the same event got there first."""
        now = self.ctx.clock()
        with self.ctx.write() as s:
            case = s.get(m.Case, case_id, with_for_update=True)
            assert case is not None  # cases are never deleted
            if s.scalar(select(m.CameraEvent.id).where(m.CameraEvent.idempotency_key == key)) is not None:
                s.rollback()  # a concurrent post of the same event committed while we waited for the lock
                again = self._replay(key, client)
                assert again is not None
                return again, [], False
            row = m.CameraEvent(
                case_id=case.id,
                idempotency_key=key,
                client_id=client.id,
                kind=event.kind,
                observed_at=event.observed_at,
                object_count=event.object_count,
                received_at=now,
                outcome="recorded",
            )
            s.add(row)
            s.flush()
            proof = evidence_rows(event.evidence, stored, case.id, "camera", now, event_id=row.id)
            s.add_all(proof)
            s.flush()
            outcome, notices = self._apply(s, case, event, key, [e.id for e in proof], now)
            row.outcome = outcome
            batch.commit(s)
            return _result(row), notices, True

    def _apply(
        self, s: Session, case: m.Case, event: CaseLifecycle, key: str, proof: list[int], now: datetime
    ) -> tuple[LifecycleOutcome, list[CaseEvent]]:
        """What the event does to its (locked) case, by the type's policy; the notifications of
        the camera's transitions."""
        if event.kind == "grew" and event.object_count is not None:  # a count is news even when late
            case.object_count = max(case.object_count, event.object_count)
            case.updated_at = now
        if case.camera_state_at is not None and event.observed_at < case.camera_state_at:
            return "stale", []  # an older observation than the state known: kept, not applied
        case.camera_state = "cleared" if event.kind == "cleared" else "present"
        case.camera_state_at = event.observed_at
        case.updated_at = now
        policy = self.ctx.config.camera_policy(case.violation)
        if policy == "off":
            return "recorded", []
        status = Status(case.status)
        details = {"event": key, "event_kind": event.kind, "observed_at": event.observed_at.isoformat()}
        if event.kind == "cleared":
            if status in BEFORE_DISPATCH:
                case.cleared_itself_at = event.observed_at
                return "cleared_itself", []
            if status is Status.DISPATCHED:
                return "pending", []
            if status is Status.HANDLED:
                if policy == "suggest":
                    case.camera_suggests_verify = True
                    return "suggested", []
                reason = f"camera event {key}: violation cleared"
                notice = camera_step(
                    self.ctx.config, s, case, Action.VERIFY, now, reason, {**details, "evidence": proof}
                )
                return "verified", [notice]
            return "recorded", []
        case.camera_suggests_verify = False
        case.cleared_itself_at = None
        if event.kind == "grew":  # still there, and more of it: the people handling it see the count
            return "recorded", []
        if status in REOPENED_FROM:
            reason = f"camera event {key}: violation seen again"
            return "reopened", [camera_step(self.ctx.config, s, case, Action.REOPEN, now, reason, details)]
        return "recorded", []


def _result(row: m.CameraEvent) -> LifecycleResult:
    return LifecycleResult(
        event_id=row.id,
        case_id=row.case_id,
        idempotency_key=row.idempotency_key,
        outcome=row.outcome,  # written from LifecycleOutcome only
    )

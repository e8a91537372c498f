"""Reading cases: the one place that turns table rows into the plain shapes of
`schemas.py`, so routes, Open311, statistics and the label export never see the ORM."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import Select, func, select
from sqlalchemy.orm import selectinload

from vision.core.plates import PLATE_SEARCH_PATTERN, normalise_plate
from vision.dispatch import models as m
from vision.dispatch.accounts import OperatorPrincipal
from vision.dispatch.context import ServiceContext
from vision.dispatch.errors import InvalidInput, NotFound
from vision.dispatch.schemas import (
    CameraCounts,
    CameraEventPublic,
    CaseDetail,
    CaseList,
    CaseRecord,
    CaseSource,
    CaseSummary,
    EvidencePublic,
    OccurrencePublic,
    TransitionPublic,
)
from vision.dispatch.storage import StorageError
from vision.dispatch.workflow import (
    CONFIRMED,
    DEPARTMENT_BOUND,
    DEPARTMENT_VISIBLE,
    FINAL,
    ON_THE_CLOCK,
    Action,
    Status,
    available_actions,
)


class Deadlined(Protocol):
    """Anything with a case's state and deadline (a row or a schema)."""

    @property
    def status(self) -> str: ...

    @property
    def deadline_at(self) -> datetime | None: ...


@dataclass(frozen=True)
class AuditEvent:
    """One audited action as the statistics read it."""

    case_id: int
    action: Action
    from_status: str | None
    to_status: str
    at: datetime
    actor: str
    details: dict[str, Any]


def is_overdue(case: Deadlined, now: datetime) -> bool:
    return Status(case.status) in ON_THE_CLOCK and case.deadline_at is not None and now > case.deadline_at


def plate_query(text: str) -> str | None:
    """What an operator typed as (part of) a plate, as plates are stored (苏e·123 -> 苏E123),
    or None when it cannot be part of one."""
    plate = normalise_plate(text)
    return plate if re.fullmatch(PLATE_SEARCH_PATTERN, plate) else None


def evidence_url(ev: m.Evidence) -> str:
    return f"/api/v1/cases/{ev.case_id}/evidence/{ev.id}"


def _columns(case: m.Case, fields: dict[str, Any], now: datetime) -> dict[str, Any]:
    data = {k: getattr(case, k) for k in fields if k != "overdue"}
    data["overdue"] = is_overdue(case, now)
    return data


def _summary(case: m.Case, now: datetime) -> CaseSummary:
    return CaseSummary(**_columns(case, CaseSummary.model_fields, now))


def _record(case: m.Case, now: datetime) -> CaseRecord:
    return CaseRecord(**_columns(case, CaseRecord.model_fields, now))


def _evidence(ev: m.Evidence) -> EvidencePublic:
    return EvidencePublic(
        **{k: getattr(ev, k) for k in EvidencePublic.model_fields if k != "url"}, url=evidence_url(ev)
    )


def _camera_event(event: m.CameraEvent) -> CameraEventPublic:
    return CameraEventPublic(
        id=event.id,
        idempotency_key=event.idempotency_key,
        kind=event.kind,  # written from CaseLifecycle.kind only
        observed_at=event.observed_at,
        object_count=event.object_count,
        received_at=event.received_at,
        outcome=event.outcome,  # written from LifecycleOutcome only
        evidence=[_evidence(e) for e in event.evidence],
    )


def _detail(case: m.Case, now: datetime, operator: OperatorPrincipal | None) -> CaseDetail:
    """Needs the case's occurrences, evidence and transitions loaded."""
    data = _columns(case, CaseSummary.model_fields, now)
    data.update(
        description=case.description,
        classes=list(case.classes or []),
        taxonomy_edition=case.taxonomy_edition,
        deadline_working_hours=case.deadline_working_hours,
        reviewed_at=case.reviewed_at,
        handled_at=case.handled_at,
        closed_at=case.closed_at,
        occurrences=[OccurrencePublic.model_validate(o) for o in case.occurrences],
        # the camera's snapshots are its events' proof, not the report's evidence
        evidence=[_evidence(e) for e in case.evidence if e.stage != "camera"],
        transitions=[TransitionPublic.model_validate(t) for t in case.transitions],
        camera_events=[_camera_event(e) for e in case.camera_events],
        available_actions=available_actions(Status(case.status), operator.role) if operator else [],
    )
    return CaseDetail(**data)


_TIMELINE = (
    selectinload(m.Case.occurrences),
    selectinload(m.Case.evidence),
    selectinload(m.Case.transitions),
    selectinload(m.Case.camera_events).selectinload(m.CameraEvent.evidence),
)


class CaseQueries:
    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx

    def list_cases(
        self,
        status: list[str] | None = None,
        violation: str | None = None,
        camera_id: str | None = None,
        overdue: bool | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 50,
        offset: int = 0,
        department: str | None = None,
        grid_prefix: str | None = None,
        search: str | None = None,
        oldest_first: bool = False,
        plate: str | None = None,
        camera_state: str | None = None,
        viewer: OperatorPrincipal | None = None,
        deadline_first: bool = False,
    ) -> CaseList:
        """Cases newest first (or oldest first: the review queue serves who waited longest);
        `since` inclusive, `until` exclusive, on the creation time. `search` finds a case id,
        text in the address or the camera id, or (part of) a plate; `plate` only (part of)
        a plate. Plates are compared normalised, so 苏E·12345 and 苏e12345 find 苏E12345.
        `camera_state`: what the camera last saw (present | cleared; 自动核查). A department
        `viewer` gets its own department's cases only; `deadline_first` orders by deadline
        (the soonest first, cases without one last: a department's workspace)."""
        now = self.ctx.clock()
        q = select(m.Case)
        if viewer is not None and viewer.role in DEPARTMENT_BOUND:
            visible = [st.value for st in DEPARTMENT_VISIBLE]
            q = q.where(m.Case.department == viewer.department, m.Case.status.in_(visible))
        if status:
            q = q.where(m.Case.status.in_(status))
        if violation:
            q = q.where(m.Case.violation == violation)
        if camera_id:
            q = q.where(m.Case.camera_id == camera_id)
        if department:
            q = q.where(m.Case.department == department)
        if grid_prefix:
            q = q.where(m.Case.grid_code.startswith(grid_prefix, autoescape=True))
        if search:
            found = m.Case.address.icontains(search, autoescape=True) | m.Case.camera_id.icontains(
                search, autoescape=True
            )
            digits = search.lstrip("#")
            if digits.isascii() and digits.isdigit() and len(digits) <= 10 and int(digits) <= 2**31 - 1:
                found = found | (m.Case.id == int(digits))
            plate_part = plate_query(search)
            if plate_part:
                found = found | m.Case.plate_text.contains(plate_part, autoescape=True)
            q = q.where(found)
        if plate:
            plate_part = plate_query(plate)
            if plate_part is None:
                raise InvalidInput("plate: not (part of) a plate: province, letters and digits")
            q = q.where(m.Case.plate_text.contains(plate_part, autoescape=True))
        if camera_state:
            q = q.where(m.Case.camera_state == camera_state)
        if since:
            q = q.where(m.Case.created_at >= since)
        if until:
            q = q.where(m.Case.created_at < until)
        if overdue is not None:
            late = (m.Case.status.in_([st.value for st in ON_THE_CLOCK])) & (m.Case.deadline_at < now)
            q = q.where(late if overdue else ~late | m.Case.deadline_at.is_(None))
        with self.ctx.read() as s:
            total = s.scalar(select(func.count()).select_from(q.subquery())) or 0
            order: tuple[Any, ...] = (
                (m.Case.created_at, m.Case.id) if oldest_first else (m.Case.created_at.desc(), m.Case.id.desc())
            )
            if deadline_first:
                order = (m.Case.deadline_at.is_(None), m.Case.deadline_at, m.Case.id)
            rows = s.scalars(q.order_by(*order).limit(limit).offset(offset))
            items = [_summary(c, now) for c in rows]
        return CaseList(total=total, items=items)

    def seen_values(self) -> dict[str, list[str]]:
        """The cameras and grid codes cases came from: the choices of the UI's filters."""
        with self.ctx.read() as s:
            cams = s.scalars(select(m.Case.camera_id).where(m.Case.camera_id.is_not(None)).distinct())
            grids = s.scalars(select(m.Case.grid_code).where(m.Case.grid_code.is_not(None)).distinct())
            return {"camera": sorted(c for c in cams if c), "grid": sorted(g for g in grids if g)}

    def get_case(self, case_id: int, operator: OperatorPrincipal | None = None) -> CaseDetail:
        """One case with its timeline; `available_actions` are the operator's (none without one)."""
        now = self.ctx.clock()
        with self.ctx.read() as s:
            case = s.get(m.Case, case_id, options=list(_TIMELINE))
            if case is None or (operator is not None and not operator.sees(case.department, case.status)):
                raise NotFound(f"case {case_id} does not exist")
            return _detail(case, now, operator)

    def evidence_file(
        self, case_id: int, evidence_id: int, viewer: OperatorPrincipal | None = None
    ) -> tuple[Path, str]:
        """Path and content type of one evidence file of a case (checked to be inside the store);
        a department `viewer` gets its own department's files only."""
        with self.ctx.read() as s:
            ev = s.get(m.Evidence, evidence_id)
            if ev is None or ev.case_id != case_id:
                raise NotFound("evidence not found")
            if viewer is not None:
                case = s.get(m.Case, case_id)
                if case is None or not viewer.sees(case.department, case.status):
                    raise NotFound("evidence not found")
            try:
                return self.ctx.store.open_path(ev.sha256), ev.content_type
            except StorageError as exc:
                raise NotFound(str(exc)) from None

    def cases_by_ids(
        self, ids: list[int], statuses: list[str] | None = None, sources: list[CaseSource] | None = None
    ) -> list[CaseRecord]:
        """The cases among `ids` that exist (and are in one of `statuses`, from one of `sources`,
        if given), by id."""
        q = select(m.Case).where(m.Case.id.in_(ids))
        if statuses is not None:
            q = q.where(m.Case.status.in_(statuses))
        if sources is not None:
            q = q.where(m.Case.source.in_(sources))
        return self._records(q.order_by(m.Case.id))

    def find_cases(
        self,
        created_from: datetime | None = None,
        created_to: datetime | None = None,
        violations: list[str] | None = None,
        final: bool | None = None,
        limit: int | None = None,
        statuses: list[str] | None = None,
        sources: list[CaseSource] | None = None,
    ) -> list[CaseRecord]:
        """Cases newest first, created within [created_from, created_to] (both inclusive),
        of the given violation types, final (结案/误报) or not, in one of `statuses`, from one
        of `sources`; no filter: every case."""
        q = select(m.Case)
        if sources is not None:
            q = q.where(m.Case.source.in_(sources))
        if statuses is not None:
            q = q.where(m.Case.status.in_(statuses))
        if created_from is not None:
            q = q.where(m.Case.created_at >= created_from)
        if created_to is not None:
            q = q.where(m.Case.created_at <= created_to)
        if violations is not None:
            q = q.where(m.Case.violation.in_(violations))
        if final is not None:
            finals = [st.value for st in FINAL]
            q = q.where(m.Case.status.in_(finals) if final else m.Case.status.not_in(finals))
        q = q.order_by(m.Case.created_at.desc(), m.Case.id.desc())
        return self._records(q if limit is None else q.limit(limit))

    def reviewed_cases(self, source: CaseSource = "edge") -> list[CaseDetail]:
        """Cases from `source` that review confirmed or rejected, with their timelines, by id."""
        now = self.ctx.clock()
        reviewed = [st.value for st in CONFIRMED | {Status.REJECTED}]
        with self.ctx.read() as s:
            cases = s.scalars(
                select(m.Case)
                .options(*_TIMELINE)
                .where(m.Case.status.in_(reviewed), m.Case.source == source)
                .order_by(m.Case.id)
            )
            return [_detail(c, now, None) for c in cases]

    def camera_counts(self) -> CameraCounts:
        """自动核查 in numbers: verifications and reopenings by the camera (its audited
        transitions), and cases whose violation cleared by itself before dispatch."""
        by_camera = (
            select(m.Transition.action, func.count())
            .where(m.Transition.actor_kind == "camera")
            .group_by(m.Transition.action)
        )
        with self.ctx.read() as s:
            counts = {str(action): int(n) for action, n in s.execute(by_camera)}
            cleared = s.scalar(select(func.count()).where(m.Case.cleared_itself_at.is_not(None))) or 0
        return CameraCounts(
            verified=counts.get(Action.VERIFY.value, 0),
            cleared_itself=int(cleared),
            reopened=counts.get(Action.REOPEN.value, 0),
        )

    def audit_events(self, actions: list[Action]) -> list[AuditEvent]:
        """The audited operator and camera actions of the given kinds, oldest first (the
        department scores are computed from the history, not from a case's latest state)."""
        q = (
            select(m.Transition)
            .where(m.Transition.action.in_([a.value for a in actions]))
            .order_by(m.Transition.at, m.Transition.id)
        )
        with self.ctx.read() as s:
            return [
                AuditEvent(
                    t.case_id, Action(t.action), t.from_status, t.to_status, t.at, t.actor, dict(t.details or {})
                )
                for t in s.scalars(q)
            ]

    def _records(self, q: Select[Any]) -> list[CaseRecord]:
        now = self.ctx.clock()
        with self.ctx.read() as s:
            return [_record(c, now) for c in s.scalars(q)]

"""Moving a case through the workflow: the permission and state checks (from
`workflow.plan`), each action's bookkeeping (deadlines, department, after
photo), and the audit record every change of a case leaves behind."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from vision.dispatch import models as m
from vision.dispatch.accounts import OperatorPrincipal
from vision.dispatch.config import DispatchConfig
from vision.dispatch.context import ServiceContext
from vision.dispatch.deadlines import add_working_hours, working_hours_between
from vision.dispatch.errors import InvalidInput, NotFound
from vision.dispatch.notify import CaseEvent
from vision.dispatch.queries import CaseQueries
from vision.dispatch.schemas import ActorKind, CaseDetail
from vision.dispatch.staging import EvidenceBatch
from vision.dispatch.storage import StagedFile, StorageError
from vision.dispatch.uploads import Upload, sniff_image
from vision.dispatch.workflow import REASON_REQUIRED, Action, Role, Status, Step, plan, plan_by_camera

# What an audit record says happened: a workflow action, a case's first report, a report joining it,
# or its evidence files deleted after the retention time (retention.py).
AuditAction = Action | Literal["report", "recur", "expire"]
# The actions whose reason is kept on the case as its current status note.
NOTED = frozenset({Action.REJECT, Action.SEND_BACK, Action.EXTEND, Action.PARK})
# The actions that take a photo of the site: the department's after photo (required) and the
# field inspector's photo of a verified site (required of the inspector, optional otherwise).
PHOTO_STAGE: dict[Action, str] = {Action.HANDLE: "after", Action.VERIFY: "verify"}
PARK_UNTIL_MAX_DAYS = 3660  # an expected date ten years ahead at most: a typo, not a plan


@dataclass(frozen=True)
class StagedPhoto:
    """An after photo, staged, with the image type its first bytes showed."""

    file: StagedFile
    content_type: str


def audit(
    case_id: int,
    action: AuditAction,
    src: Status | None,
    dst: Status,
    actor: str,
    kind: ActorKind,
    at: datetime,
    reason: str | None = None,
    details: dict[str, Any] | None = None,
) -> m.Transition:
    """The audit row of one change of a case: who, when, from which state to which, why."""
    return m.Transition(
        case_id=case_id,
        action=str(action),
        from_status=src.value if src else None,
        to_status=dst.value,
        actor=actor,
        actor_kind=kind,
        at=at,
        reason=reason,
        details=details or {},
    )


def _state_event(case: m.Case, action: Action, source: Status, actor: str) -> CaseEvent:
    """The notification of one change of a case's state (after the commit)."""
    return CaseEvent(
        "state",
        case.id,
        case.status,
        case.violation,
        case.camera_id,
        action=action.value,
        from_status=source.value,
        actor=actor,
        department=case.department,
        plate=case.plate_text,
        plate_colour=case.plate_colour,
    )


# ------------------------------------------------------------ 自动核查: the camera's own steps
def camera_step(
    config: DispatchConfig,
    s: Session,
    case: m.Case,
    action: Action,
    now: datetime,
    reason: str,
    details: dict[str, Any],
) -> CaseEvent:
    """The camera verifies or reopens `case` (locked in `s`): the same state machine and audit
    trail as an operator's action, the camera (its id, actor kind 'camera') as the actor. A
    reopened case is dispatched again with a new deadline counted from now."""
    step = plan_by_camera(action, Status(case.status))
    details = dict(details)
    if action is Action.VERIFY:
        case.camera_verified_at = now
    elif action is Action.REOPEN:
        case.deadline_at = add_working_hours(now, case.deadline_working_hours, config.working_time)
        case.handled_at = None  # the department handles it again; stats compare that to the new deadline
        case.closed_at = None
        case.camera_verified_at = None
        details.update(deadline_at=case.deadline_at.isoformat(), department=case.department)
    case.status = step.target.value
    case.updated_at = now
    case.status_notes = reason if action is Action.REOPEN else None
    case.camera_suggests_verify = False
    actor = case.camera_id or "camera"
    s.add(audit(case.id, action, step.source, step.target, actor, "camera", now, reason=reason, details=details))
    return _state_event(case, action, step.source, actor)


def verify_if_cleared(config: DispatchConfig, s: Session, case: m.Case, now: datetime) -> list[CaseEvent]:
    """Right after handling: when the camera's latest word is that the violation cleared, seen
    after the case was (last) dispatched, the camera verifies it (policy automatic) or suggests
    that a person does (suggest). The latest such event is named as the proof."""
    policy = config.camera_policy(case.violation)
    if policy == "off" or case.camera_state != "cleared" or case.camera_state_at is None:
        return []
    dispatched = s.scalar(
        select(func.max(m.Transition.at)).where(
            m.Transition.case_id == case.id,
            m.Transition.to_status == Status.DISPATCHED.value,
            m.Transition.from_status != Status.DISPATCHED.value,
        )
    )
    if dispatched is None or case.camera_state_at < dispatched:
        return []
    if policy == "suggest":
        case.camera_suggests_verify = True
        return []
    proof = s.scalars(
        select(m.CameraEvent)
        .where(m.CameraEvent.case_id == case.id, m.CameraEvent.kind == "cleared")
        .order_by(m.CameraEvent.observed_at.desc(), m.CameraEvent.id.desc())
        .limit(1)
    ).first()
    key = proof.idempotency_key if proof else None
    details: dict[str, Any] = {"event": key, "event_kind": "cleared", "after": "handle"}
    if proof is not None:
        details["evidence"] = [e.id for e in proof.evidence]
    return [camera_step(config, s, case, Action.VERIFY, now, f"camera event {key}: violation cleared", details)]


class Transitions:
    def __init__(self, ctx: ServiceContext, queries: CaseQueries) -> None:
        self.ctx = ctx
        self.queries = queries

    def transition(
        self,
        operator: OperatorPrincipal,
        case_id: int,
        action: Action | str,
        reason: str | None = None,
        department: str | None = None,
        extend_hours: float | None = None,
        after_photo: Upload | None = None,
        parked_until: date | None = None,
    ) -> CaseDetail:
        """Applies one workflow action; the permission and state checks, the audit
        record and the deadline bookkeeping all happen here. `after_photo` is the photo
        of the site: after handling (HANDLE) or at verification (VERIFY)."""
        try:
            action = Action(action)
        except ValueError:
            raise InvalidInput(f"action: unknown action '{action}'") from None
        reason = (reason or "").strip() or None
        if action in REASON_REQUIRED and not reason:
            raise InvalidInput(f"reason: required to {action}")
        now = self.ctx.clock()
        with EvidenceBatch(self.ctx) as batch:
            # staged before the transaction (no lock held while it is copied); a refusal is
            # raised in the transaction, after the permission and state checks, as before
            photo = self._stage_after_photo(after_photo, batch) if action in PHOTO_STAGE else None
            events = self._apply(
                operator, case_id, action, reason, department, extend_hours, photo, batch, now, parked_until
            )
        for event in events:
            self.ctx.notifier.publish(event)
        return self.queries.get_case(case_id, operator)

    def _apply(
        self,
        operator: OperatorPrincipal,
        case_id: int,
        action: Action,
        reason: str | None,
        department: str | None,
        extend_hours: float | None,
        photo: StagedPhoto | InvalidInput | None,
        batch: EvidenceBatch,
        now: datetime,
        parked_until: date | None = None,
    ) -> list[CaseEvent]:
        """The transaction of one action: checks, bookkeeping, audit record; the after photo's
        file is committed with its row. Handling a case whose violation the camera has seen
        cleared since dispatch is followed by the camera's verification (自动核查)."""
        with self.ctx.write() as s:
            case = s.get(m.Case, case_id, with_for_update=True)
            if case is None or not operator.sees(case.department, case.status):
                raise NotFound(f"case {case_id} does not exist")
            step = plan(action, Status(case.status), operator.role)
            details: dict[str, Any] = {}
            if action is Action.ACCEPT:
                case.reviewed_at = now
                case.deadline_at = add_working_hours(now, case.deadline_working_hours, self.ctx.config.working_time)
                details["deadline_at"] = case.deadline_at.isoformat()
            elif action is Action.REJECT:
                case.reviewed_at = now
                case.reject_reason = reason
            elif action is Action.DISPATCH:
                case.department = self._department(case, department)
                details["department"] = case.department
            elif action is Action.EXTEND:
                if extend_hours is None:
                    raise InvalidInput("extend_hours: required to extend")
                base = case.deadline_at or now
                case.deadline_at = add_working_hours(base, extend_hours, self.ctx.config.working_time)
                details.update(extend_hours=extend_hours, deadline_at=case.deadline_at.isoformat())
            elif action is Action.HANDLE:
                s.add(self._after_photo(case, photo, now))
                case.handled_at = now
                details["on_time"] = case.deadline_at is None or now <= case.deadline_at
            elif action is Action.VERIFY:
                if photo is not None or operator.role is Role.INSPECTOR:  # in the field: the photo is the proof
                    evidence = self._after_photo(case, photo, now, Action.VERIFY)
                    s.add(evidence)
            elif action is Action.PARK:
                details.update(self._park(case, parked_until, reason, now))
            elif action is Action.UNPARK:
                step = Step(action, step.source, Status(case.parked_from or step.target))
                details.update(self._unpark(case, now))
            elif action is Action.URGE:
                case.urge_count = (case.urge_count or 0) + 1
                case.urged_at = now
                case.urge_note = reason
                details["urge_count"] = case.urge_count
            elif action is Action.SEND_BACK and step.target is Status.ACCEPTED:
                details["from_department"] = case.department
            elif action is Action.CLOSE:
                case.closed_at = now
            case.status = step.target.value
            case.updated_at = now
            if action is not Action.URGE:  # an urge is a flag beside the state, not a new status note
                case.status_notes = reason if action in NOTED else None
            case.camera_suggests_verify = False  # a suggestion is for a handled case: any action ends it
            s.add(
                audit(
                    case.id,
                    action,
                    step.source,
                    step.target,
                    operator.username,
                    "operator",
                    now,
                    reason=reason,
                    details=details,
                )
            )
            events = [_state_event(case, action, step.source, operator.username)]
            if action is Action.HANDLE:
                events += verify_if_cleared(self.ctx.config, s, case, now)
            batch.commit(s)
            return events

    def _park(self, case: m.Case, until: date | None, reason: str | None, now: datetime) -> dict[str, Any]:
        """挂账: the case leaves the deadline clock; the working hours its deadline had left are kept."""
        if until is None:
            raise InvalidInput("parked_until: the date handling is expected by is required to park")
        today = now.astimezone(self.ctx.config.working_time.zone()).date()
        if until < today or until > today + timedelta(days=PARK_UNTIL_MAX_DAYS):
            raise InvalidInput("parked_until: a date from today up to ten years ahead")
        left = None
        if case.deadline_at is not None:
            left = working_hours_between(now, case.deadline_at, self.ctx.config.working_time)
        case.parked_from = case.status
        case.parked_at = now
        case.parked_until = until
        case.park_reason = reason
        case.parked_hours_left = left
        return {"parked_from": case.status, "parked_until": until.isoformat(), "hours_left": left}

    def _unpark(self, case: m.Case, now: datetime) -> dict[str, Any]:
        """Back on the clock: the deadline is the hours it had left when parked, counted from now."""
        details: dict[str, Any] = {"parked_since": case.parked_at.isoformat() if case.parked_at else None}
        if case.parked_hours_left is not None:
            case.deadline_at = add_working_hours(now, case.parked_hours_left, self.ctx.config.working_time)
            details["deadline_at"] = case.deadline_at.isoformat()
        case.parked_from = case.parked_at = case.parked_until = case.park_reason = None
        case.parked_hours_left = None
        return details

    def _department(self, case: m.Case, requested: str | None) -> str:
        """The department to dispatch to: the one asked for, else the case's, else the configured assignment."""
        config = self.ctx.config
        dept = requested or case.department or config.department_for(case.violation, case.grid_code)
        if dept not in config.department_ids():
            raise InvalidInput(f"department: unknown department '{dept}'")
        return dept

    def _stage_after_photo(self, photo: Upload | None, batch: EvidenceBatch) -> StagedPhoto | InvalidInput | None:
        """The photo of the handled site, staged; or why it cannot be (raised later, in order)."""
        if photo is None:
            return None
        ctype = sniff_image(photo.head())
        if ctype is None:
            return InvalidInput("after_photo: must be a JPEG or PNG image")
        try:
            return StagedPhoto(batch.stage(photo.stream, self.ctx.settings.max_evidence_bytes), ctype)
        except StorageError as exc:
            return InvalidInput(f"after_photo: {exc}")

    def _after_photo(
        self, case: m.Case, photo: StagedPhoto | InvalidInput | None, now: datetime, action: Action = Action.HANDLE
    ) -> m.Evidence:
        """The evidence row of the site's photo: 'after' handling, or 'verify' (the inspector's)."""
        if photo is None:
            raise InvalidInput(
                f"after_photo: a photo of the {'handled' if action is Action.HANDLE else 'verified'} site is required"
            )
        if isinstance(photo, InvalidInput):
            raise photo
        stage = PHOTO_STAGE[action]
        return m.Evidence(
            case_id=case.id,
            occurrence_id=None,
            stage=stage,
            name=f"{stage}_photo",
            kind="snapshot",
            content_type=photo.content_type,
            sha256=photo.file.sha256,
            size_bytes=photo.file.size_bytes,
            created_at=now,
        )

"""The dispatch center's service layer: intake, the case state machine,
credentials and permission checks. Routes only translate HTTP to these calls,
so everything here is tested without HTTP.

Errors: NotFound (404), Unauthorized (401), NotPermitted (403),
IllegalTransition / Conflict (409), InvalidInput (422)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy import Engine, func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload, sessionmaker

from vision.core.cases import CaseReport
from vision.dispatch import models as m
from vision.dispatch.config import DispatchConfig, load_dispatch_config
from vision.dispatch.db import make_engine, migrate, session_factory
from vision.dispatch.deadlines import add_working_hours
from vision.dispatch.notify import CaseEvent, Notifier
from vision.dispatch.schemas import (
    CaseDetail,
    CaseList,
    CaseSummary,
    EvidencePublic,
    IntakeResult,
    OccurrencePublic,
    TransitionPublic,
)
from vision.dispatch.security import burn_time, hash_password, new_token, token_hash, verify_password
from vision.dispatch.settings import Settings
from vision.dispatch.storage import EvidenceStore, StorageError
from vision.dispatch.workflow import (
    FINAL,
    MERGEABLE,
    ON_THE_CLOCK,
    REASON_REQUIRED,
    Action,
    IllegalTransition,
    NotPermitted,
    Role,
    Status,
    WorkflowError,
    available_actions,
    plan,
)
from vision.core.taxonomy import Taxonomy, load_taxonomy
from vision.core.geometry import box_iou

log = logging.getLogger(__name__)

__all__ = [
    "Conflict",
    "DispatchService",
    "IllegalTransition",
    "InvalidInput",
    "NotFound",
    "NotPermitted",
    "OperatorPrincipal",
    "ClientPrincipal",
    "Unauthorized",
    "WorkflowError",
]


class NotFound(WorkflowError):
    pass


class Unauthorized(WorkflowError):
    pass


class Conflict(WorkflowError):
    pass


class InvalidInput(WorkflowError):
    pass


@dataclass(frozen=True)
class OperatorPrincipal:
    id: int
    username: str
    role: Role
    token_kind: str  # api | session


@dataclass(frozen=True)
class ClientPrincipal:
    id: int
    name: str
    kind: str  # device | open311
    site_id: str | None


@dataclass(frozen=True)
class Upload:
    """A file handed in by a route: an open binary stream and what the client called its type."""

    stream: BinaryIO
    content_type: str | None = None


IMAGE_MAGIC = {b"\xff\xd8\xff": "image/jpeg", b"\x89PNG\r\n\x1a\n": "image/png"}


def sniff_image(head: bytes) -> str | None:
    for magic, ctype in IMAGE_MAGIC.items():
        if head.startswith(magic):
            return ctype
    return None


def content_matches(content_type: str, head: bytes) -> bool:
    """Declared type vs. the file's first bytes, so evidence is served as what it is."""
    if content_type == "video/mp4":
        return head[4:8] == b"ftyp"
    return sniff_image(head) == content_type


def _evidence_url(ev: m.Evidence) -> str:
    return f"/api/v1/cases/{ev.case_id}/evidence/{ev.id}"


class DispatchService:
    """One per process; thread-safe (a session per call)."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        config: DispatchConfig,
        taxonomy: Taxonomy,
        store: EvidenceStore,
        notifier: Notifier | None = None,
        settings: Settings | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.sessions = sessions
        self.config = config
        self.taxonomy = taxonomy
        self.store = store
        self.notifier = notifier or Notifier()
        self.settings = settings or Settings()
        self.clock = clock or (lambda: datetime.now(timezone.utc))

    # ------------------------------------------------------------------ setup
    @classmethod
    def from_settings(cls, settings: Settings, notifier: Notifier | None = None, migrate_db: bool = True) -> "DispatchService":
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        config = load_dispatch_config(settings.config_path)
        taxonomy = load_taxonomy(settings.taxonomy_path)
        engine = make_engine(settings.database_url)
        if migrate_db:
            migrate(engine)
        if notifier is None:
            notifier = Notifier.from_config(config.notifications)
        return cls(session_factory(engine), config, taxonomy, EvidenceStore(settings.evidence_dir), notifier, settings)

    @property
    def engine(self) -> Engine:
        bind = self.sessions.kw["bind"]
        assert isinstance(bind, Engine)
        return bind

    def close(self) -> None:
        self.notifier.close()
        self.engine.dispose()

    @contextmanager
    def _session(self) -> Iterator[Session]:
        with self.sessions() as session:
            yield session

    # ------------------------------------------------------------ credentials
    def create_operator(self, username: str, password: str, role: Role | str, display_name: str | None = None) -> int:
        role = Role(role)
        if len(password) < 8:
            raise InvalidInput("password: at least 8 characters")
        with self._session() as s:
            op = m.Operator(username=username, password_hash=hash_password(password), role=role.value, display_name=display_name)
            s.add(op)
            try:
                s.commit()
            except IntegrityError:
                raise Conflict(f"operator '{username}' exists") from None
            return op.id

    def set_password(self, username: str, password: str) -> None:
        with self._session() as s:
            op = s.scalar(select(m.Operator).where(m.Operator.username == username))
            if op is None:
                raise NotFound(f"operator '{username}' does not exist")
            op.password_hash = hash_password(password)
            s.commit()

    def list_operators(self) -> list[m.Operator]:
        with self._session() as s:
            return list(s.scalars(select(m.Operator).order_by(m.Operator.id)))

    def create_client(self, name: str, kind: str = "device", site_id: str | None = None) -> tuple[int, str]:
        """Registers an edge box ('device') or an Open311 client ('open311'); returns (id, token).
        The token is shown once: only its hash is stored."""
        if kind not in ("device", "open311"):
            raise InvalidInput("kind: 'device' or 'open311'")
        token = new_token("svd" if kind == "device" else "svo")
        with self._session() as s:
            c = m.Client(name=name, kind=kind, site_id=site_id, token_hash=token_hash(token))
            s.add(c)
            try:
                s.commit()
            except IntegrityError:
                raise Conflict(f"client '{name}' exists") from None
            return c.id, token

    def login(self, username: str, password: str, kind: str = "api") -> tuple[str, datetime, Role]:
        with self._session() as s:
            op = s.scalar(select(m.Operator).where(m.Operator.username == username))
            if op is None:
                burn_time(password)
                raise Unauthorized("wrong username or password")
            if not op.active or not verify_password(password, op.password_hash):
                raise Unauthorized("wrong username or password")
            token = new_token("svs" if kind == "session" else "sva")
            expires = self.clock() + timedelta(seconds=self.settings.token_ttl_s)
            s.add(m.ApiToken(token_hash=token_hash(token), operator_id=op.id, kind=kind, expires_at=expires))
            s.commit()
            return token, expires, Role(op.role)

    def logout(self, token: str) -> None:
        with self._session() as s:
            row = s.scalar(select(m.ApiToken).where(m.ApiToken.token_hash == token_hash(token)))
            if row is not None:
                s.delete(row)
                s.commit()

    def authenticate_operator(self, token: str) -> OperatorPrincipal | None:
        with self._session() as s:
            row = s.scalar(
                select(m.ApiToken)
                .options(selectinload(m.ApiToken.operator))
                .where(m.ApiToken.token_hash == token_hash(token))
            )
            if row is None or row.expires_at <= self.clock() or not row.operator.active:
                return None
            return OperatorPrincipal(row.operator.id, row.operator.username, Role(row.operator.role), row.kind)

    def authenticate_client(self, token: str, kind: str) -> ClientPrincipal | None:
        with self._session() as s:
            c = s.scalar(select(m.Client).where(m.Client.token_hash == token_hash(token)))
            if c is None or not c.active or c.kind != kind:
                return None
            return ClientPrincipal(c.id, c.name, c.kind, c.site_id)

    # ---------------------------------------------------------------- intake
    def intake(self, client: ClientPrincipal, report: CaseReport, files: Mapping[str, Upload]) -> IntakeResult:
        """Stores a report from an edge box: a replay returns the existing case, a
        report overlapping an open case of the same camera and type joins it."""
        if client.kind != "device":
            raise NotPermitted("only edge devices post case reports")
        if client.site_id and client.site_id != report.site_id:
            raise NotPermitted(f"device '{client.name}' may only report for site '{client.site_id}'")
        key = str(report.idempotency_key)
        existing = self._replay(key, client)
        if existing is not None:
            return existing
        try:
            ev_code = self.taxonomy.lookup(report.violation, report.taxonomy_edition)
        except KeyError as exc:
            raise InvalidInput(f"violation: {exc.args[0]}") from None
        stored = self._store_evidence(report, files)

        try:
            result, event = self._intake_tx(client, report, stored, ev_code.deadline_working_hours, key)
        except IntegrityError:
            again = self._replay(key, client)  # a concurrent replay won the race
            if again is None:
                raise
            return again
        if event is not None:
            self.notifier.publish(event)
        return result

    def _intake_tx(self, client: ClientPrincipal, report: CaseReport, stored: dict[str, str], deadline_hours: float,
                   key: str) -> tuple[IntakeResult, CaseEvent | None]:
        now = self.clock()
        with self._session() as s:
            case = self._find_open_case(s, report)
            if s.scalar(select(m.Occurrence.id).where(m.Occurrence.idempotency_key == key)) is not None:
                s.rollback()  # a concurrent replay committed while we waited for the lock
                again = self._replay(key, client)
                assert again is not None
                return again, None
            merged = case is not None
            if case is None:
                case = m.Case(
                    source="edge",
                    client_id=client.id,
                    status=Status.SUSPECTED.value,
                    violation=report.violation,
                    rule=report.rule,
                    event_code=report.event_code,
                    event_name=report.event_name,
                    taxonomy_edition=report.taxonomy_edition,
                    site_id=report.site_id,
                    camera_id=report.camera_id,
                    grid_code=report.grid_code,
                    zone=report.zone,
                    crs=report.location.crs,
                    lat=report.location.lat,
                    lon=report.location.lon,
                    address=report.location.address,
                    bbox=list(report.bbox),
                    confidence=report.confidence,
                    object_count=report.object_count,
                    classes=list(report.classes),
                    model_name=report.model_name,
                    model_version=report.model_version,
                    first_detected_at=report.detected_at,
                    last_detected_at=report.detected_at,
                    occurrence_count=1,
                    department=self.config.department_for(report.violation, report.grid_code),
                    deadline_working_hours=deadline_hours,
                    created_at=now,
                    updated_at=now,
                )
                s.add(case)
                s.flush()
                s.add(self._audit(case.id, "report", None, Status.SUSPECTED, client.name, "device", now,
                                  details={"confidence": report.confidence, "model": report.model_version,
                                           "verification": report.verification.model_dump() if report.verification else None}))
            else:
                case.occurrence_count += 1
                if report.detected_at >= case.last_detected_at:
                    case.last_detected_at = report.detected_at
                    case.bbox = list(report.bbox)
                case.confidence = max(case.confidence or 0.0, report.confidence)
                case.object_count = max(case.object_count, report.object_count)
                case.updated_at = now
                s.add(self._audit(case.id, "recur", case.status, Status(case.status), client.name, "device", now,
                                  details={"idempotency_key": key, "confidence": report.confidence}))
            occ = m.Occurrence(
                case_id=case.id,
                idempotency_key=key,
                client_id=client.id,
                detected_at=report.detected_at,
                onset_at=report.onset_at,
                bbox=list(report.bbox),
                confidence=report.confidence,
                dwell_s=report.dwell_s,
                report=report.model_dump(mode="json"),
                received_at=now,
            )
            s.add(occ)
            s.flush()
            for item in report.evidence:
                f = stored[item.name]
                s.add(m.Evidence(case_id=case.id, occurrence_id=occ.id, stage="report", name=item.name, kind=item.kind,
                                 content_type=item.content_type, sha256=f, size_bytes=item.size_bytes, created_at=now))
            s.commit()
            result = IntakeResult(case_id=case.id, occurrence_id=occ.id, created=not merged, merged=merged,
                                  status=Status(case.status))
            event = CaseEvent("occurrence" if merged else "new", case.id, case.status, case.violation, case.camera_id,
                              actor=client.name, department=case.department)
        return result, event

    def _replay(self, key: str, client: ClientPrincipal) -> IntakeResult | None:
        with self._session() as s:
            occ = s.scalar(select(m.Occurrence).options(selectinload(m.Occurrence.case)).where(m.Occurrence.idempotency_key == key))
            if occ is None:
                return None
            if occ.client_id != client.id:
                raise Conflict("idempotency_key was already used by another device")
            first = s.scalar(select(func.min(m.Occurrence.id)).where(m.Occurrence.case_id == occ.case_id))
            return IntakeResult(case_id=occ.case_id, occurrence_id=occ.id, created=False,
                                merged=first != occ.id, status=Status(occ.case.status))

    def _store_evidence(self, report: CaseReport, files: Mapping[str, Upload]) -> dict[str, str]:
        declared = [e.name for e in report.evidence]
        if len(set(declared)) != len(declared):
            raise InvalidInput("evidence: names must be unique")
        extra = sorted(set(files) - set(declared))
        if extra:
            raise InvalidInput(f"evidence: file part(s) {extra} are not declared in case.evidence")
        stored: dict[str, str] = {}
        for item in report.evidence:
            up = files.get(item.name)
            if up is None:
                raise InvalidInput(f"evidence '{item.name}': file part missing")
            if item.size_bytes > self.settings.max_evidence_bytes:
                raise InvalidInput(f"evidence '{item.name}': larger than {self.settings.max_evidence_bytes} bytes")
            head = up.stream.read(16)
            up.stream.seek(0)
            if not content_matches(item.content_type, head):
                raise InvalidInput(f"evidence '{item.name}': content is not {item.content_type}")
            try:
                f = self.store.put(up.stream, self.settings.max_evidence_bytes, item.sha256, item.size_bytes)
            except StorageError as exc:
                raise InvalidInput(f"evidence '{item.name}': {exc}") from None
            stored[item.name] = f.sha256
        return stored

    def _find_open_case(self, s: Session, report: CaseReport) -> m.Case | None:
        window = timedelta(seconds=self.config.occurrence_window_s)
        if s.get_bind().dialect.name == "postgresql":
            # serialise concurrent reports of one camera and type (SQLite serialises all writers)
            s.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))"),
                      {"k": f"{report.site_id}/{report.camera_id}/{report.violation}"})
        candidates = s.scalars(
            select(m.Case)
            .where(
                m.Case.camera_id == report.camera_id,
                m.Case.site_id == report.site_id,
                m.Case.violation == report.violation,
                m.Case.status.in_([st.value for st in MERGEABLE]),
                m.Case.last_detected_at >= report.detected_at - window,
                m.Case.first_detected_at <= report.detected_at + window,
            )
            .order_by(m.Case.last_detected_at.desc())
            .with_for_update()
        )
        for case in candidates:
            if case.bbox and report.bbox and box_iou(case.bbox, report.bbox)[0, 0] > 0:
                return case
        return None

    @staticmethod
    def _audit(case_id: int, action: str, src: Status | str | None, dst: Status, actor: str, kind: str, at: datetime,
               reason: str | None = None, details: dict[str, Any] | None = None) -> m.Transition:
        return m.Transition(case_id=case_id, action=action, from_status=str(src) if src else None, to_status=dst.value,
                            actor=actor, actor_kind=kind, at=at, reason=reason, details=details or {})

    # -------------------------------------------------------------- workflow
    def transition(
        self,
        operator: OperatorPrincipal,
        case_id: int,
        action: Action | str,
        reason: str | None = None,
        department: str | None = None,
        extend_hours: float | None = None,
        after_photo: Upload | None = None,
    ) -> CaseDetail:
        """Applies one workflow action; the permission and state checks, the audit
        record and the deadline bookkeeping all happen here."""
        try:
            action = Action(action)
        except ValueError:
            raise InvalidInput(f"action: unknown action '{action}'") from None
        reason = (reason or "").strip() or None
        if action in REASON_REQUIRED and not reason:
            raise InvalidInput(f"reason: required to {action}")
        now = self.clock()
        with self._session() as s:
            case = s.get(m.Case, case_id, with_for_update=True)
            if case is None:
                raise NotFound(f"case {case_id} does not exist")
            step = plan(action, Status(case.status), operator.role)
            details: dict[str, Any] = {}
            if action is Action.ACCEPT:
                case.reviewed_at = now
                case.deadline_at = add_working_hours(now, case.deadline_working_hours, self.config.working_time)
                details["deadline_at"] = case.deadline_at.isoformat()
            elif action is Action.REJECT:
                case.reviewed_at = now
                case.reject_reason = reason
            elif action is Action.DISPATCH:
                dept = department or case.department or self.config.department_for(case.violation, case.grid_code)
                if dept not in self.config.department_ids():
                    raise InvalidInput(f"department: unknown department '{dept}'")
                case.department = dept
                details["department"] = dept
            elif action is Action.EXTEND:
                if extend_hours is None:
                    raise InvalidInput("extend_hours: required to extend")
                base = case.deadline_at or now
                case.deadline_at = add_working_hours(base, extend_hours, self.config.working_time)
                details.update(extend_hours=extend_hours, deadline_at=case.deadline_at.isoformat())
            elif action is Action.HANDLE:
                if after_photo is None:
                    raise InvalidInput("after_photo: a photo of the handled site is required")
                head = after_photo.stream.read(16)
                after_photo.stream.seek(0)
                ctype = sniff_image(head)
                if ctype is None:
                    raise InvalidInput("after_photo: must be a JPEG or PNG image")
                try:
                    f = self.store.put(after_photo.stream, self.settings.max_evidence_bytes)
                except StorageError as exc:
                    raise InvalidInput(f"after_photo: {exc}") from None
                s.add(m.Evidence(case_id=case.id, occurrence_id=None, stage="after", name="after_photo",
                                 kind="snapshot", content_type=ctype, sha256=f.sha256, size_bytes=f.size_bytes,
                                 created_at=now))
                case.handled_at = now
                details["on_time"] = case.deadline_at is None or now <= case.deadline_at
            elif action is Action.SEND_BACK and step.target is Status.ACCEPTED:
                details["from_department"] = case.department
            elif action is Action.CLOSE:
                case.closed_at = now
            case.status = step.target.value
            case.updated_at = now
            case.status_notes = reason if action in (Action.REJECT, Action.SEND_BACK, Action.EXTEND) else None
            s.add(self._audit(case.id, action.value, step.source, step.target, operator.username, "operator", now,
                              reason=reason, details=details))
            s.commit()
            event = CaseEvent("state", case.id, case.status, case.violation, case.camera_id, action=action.value,
                              from_status=step.source.value, actor=operator.username, department=case.department)
        self.notifier.publish(event)
        return self.get_case(case_id, operator)

    # ---------------------------------------------------------------- reading
    def is_overdue(self, case: m.Case, now: datetime | None = None) -> bool:
        now = now or self.clock()
        return Status(case.status) in ON_THE_CLOCK and case.deadline_at is not None and now > case.deadline_at

    def _summary_fields(self, case: m.Case, now: datetime) -> dict[str, Any]:
        data = {k: getattr(case, k) for k in CaseSummary.model_fields if k != "overdue"}
        data["overdue"] = self.is_overdue(case, now)
        return data

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
    ) -> CaseList:
        now = self.clock()
        q = select(m.Case)
        if status:
            q = q.where(m.Case.status.in_(status))
        if violation:
            q = q.where(m.Case.violation == violation)
        if camera_id:
            q = q.where(m.Case.camera_id == camera_id)
        if since:
            q = q.where(m.Case.created_at >= since)
        if until:
            q = q.where(m.Case.created_at < until)
        if overdue is not None:
            late = (m.Case.status.in_([st.value for st in ON_THE_CLOCK])) & (m.Case.deadline_at < now)
            q = q.where(late if overdue else ~late | m.Case.deadline_at.is_(None))
        with self._session() as s:
            total = s.scalar(select(func.count()).select_from(q.subquery())) or 0
            rows = s.scalars(q.order_by(m.Case.created_at.desc(), m.Case.id.desc()).limit(limit).offset(offset))
            items = [CaseSummary(**self._summary_fields(c, now)) for c in rows]
        return CaseList(total=total, items=items)

    def get_case(self, case_id: int, operator: OperatorPrincipal | None = None) -> CaseDetail:
        now = self.clock()
        with self._session() as s:
            case = s.get(m.Case, case_id, options=[selectinload(m.Case.occurrences), selectinload(m.Case.evidence),
                                                   selectinload(m.Case.transitions)])
            if case is None:
                raise NotFound(f"case {case_id} does not exist")
            data = self._summary_fields(case, now)
            data.update(
                description=case.description,
                classes=list(case.classes or []),
                taxonomy_edition=case.taxonomy_edition,
                deadline_working_hours=case.deadline_working_hours,
                reviewed_at=case.reviewed_at,
                handled_at=case.handled_at,
                closed_at=case.closed_at,
                occurrences=[OccurrencePublic.model_validate(o) for o in case.occurrences],
                evidence=[EvidencePublic(**{k: getattr(e, k) for k in EvidencePublic.model_fields if k != "url"},
                                         url=_evidence_url(e)) for e in case.evidence],
                transitions=[TransitionPublic.model_validate(t) for t in case.transitions],
                available_actions=available_actions(Status(case.status), operator.role) if operator else [],
            )
            return CaseDetail(**data)

    def evidence_file(self, case_id: int, evidence_id: int) -> tuple[Path, str]:
        """Path and content type of one evidence file of a case (checked to be inside the store)."""
        with self._session() as s:
            ev = s.get(m.Evidence, evidence_id)
            if ev is None or ev.case_id != case_id:
                raise NotFound("evidence not found")
            try:
                return self.store.open_path(ev.sha256), ev.content_type
            except StorageError as exc:
                raise NotFound(str(exc)) from None

    # ---------------------------------------------------------------- Open311
    def create_citizen_request(
        self,
        client: ClientPrincipal,
        service_code: str,
        lat: float | None,
        lon: float | None,
        address: str | None,
        description: str | None,
        media_url: str | None,
    ) -> int:
        """A request from an Open311 client enters as a suspected case for review."""
        if client.kind != "open311":
            raise NotPermitted("this api_key may not create requests")
        if service_code not in self.taxonomy.violations:
            raise InvalidInput(f"service_code: unknown service '{service_code}'")
        ev = self.taxonomy.violations[service_code]
        now = self.clock()
        with self._session() as s:
            case = m.Case(
                source="open311", client_id=client.id, status=Status.SUSPECTED.value, violation=service_code,
                event_code=None, event_name=ev.name, crs="WGS84", lat=lat, lon=lon, address=address,
                description=description, media_url=media_url, object_count=1, classes=[],
                first_detected_at=now, last_detected_at=now, occurrence_count=1,
                department=self.config.department_for(service_code, None),
                deadline_working_hours=ev.deadline_working_hours, created_at=now, updated_at=now,
            )
            s.add(case)
            s.flush()
            s.add(self._audit(case.id, "report", None, Status.SUSPECTED, client.name, "open311", now))
            s.commit()
            event = CaseEvent("new", case.id, case.status, case.violation, None, actor=client.name,
                              department=case.department)
            case_id = case.id
        self.notifier.publish(event)
        return case_id

    def cases_by_ids(self, ids: list[int]) -> list[m.Case]:
        with self._session() as s:
            return list(s.scalars(select(m.Case).where(m.Case.id.in_(ids)).order_by(m.Case.id)))

    def query_cases(self, where: list[Any], limit: int = 1000) -> list[m.Case]:
        with self._session() as s:
            return list(s.scalars(select(m.Case).where(*where).order_by(m.Case.created_at.desc()).limit(limit)))

    def department_name(self, dept_id: str | None) -> str | None:
        for d in self.config.departments:
            if d.id == dept_id:
                return d.name
        return dept_id

    def final(self, status: str) -> bool:
        return Status(status) in FINAL

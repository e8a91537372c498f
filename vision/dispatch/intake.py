"""Cases coming in: an edge box's report (evidence checked and staged first, then
committed with the rows that name it; a replay of a known idempotency key answered
with the case it made, a report of the same thing at the same camera merged into
the open case: by box overlap, or for vehicle cases by the plate read) and a
citizen's Open311 request. Both enter as suspected cases waiting for review."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from vision.core.cases import CaseReport, EvidenceItem, PlateReading
from vision.core.geometry import box_iou
from vision.dispatch import models as m
from vision.dispatch.accounts import ClientPrincipal
from vision.dispatch.context import ServiceContext
from vision.dispatch.errors import Conflict, InvalidInput, NotPermitted
from vision.dispatch.notify import CaseEvent
from vision.dispatch.schemas import EvidenceStage, IntakeResult
from vision.dispatch.staging import EvidenceBatch
from vision.dispatch.storage import StorageError
from vision.dispatch.transitions import audit
from vision.dispatch.uploads import Upload, content_matches
from vision.dispatch.workflow import MERGEABLE, Status


class CaseIntake:
    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx

    # ------------------------------------------------------------- edge boxes
    def intake(self, client: ClientPrincipal, report: CaseReport, files: Mapping[str, Upload]) -> IntakeResult:
        """Stores a report from an edge box: a replay returns the existing case, a
        report of the same thing as an open case of the same camera and type joins it."""
        if client.kind != "device":
            raise NotPermitted("only edge devices post case reports")
        if client.site_id and client.site_id != report.site_id:
            raise NotPermitted(f"device '{client.name}' may only report for site '{client.site_id}'")
        key = str(report.idempotency_key)
        existing = self._replay(key, client)
        if existing is not None:
            return existing
        try:
            ev_code = self.ctx.taxonomy.lookup(report.violation, report.taxonomy_edition)
        except KeyError as exc:
            raise InvalidInput(f"violation: {exc.args[0]}") from None
        with EvidenceBatch(self.ctx) as batch:
            stored = stage_evidence(self.ctx, report.evidence, files, batch)
            try:
                result, event = self._record(client, report, stored, ev_code.deadline_working_hours, key, batch)
            except IntegrityError:
                again = self._replay(key, client)  # a concurrent replay won the race
                if again is None:
                    raise
                return again
        if event is not None:
            self.ctx.notifier.publish(event)
        return result

    def _record(
        self,
        client: ClientPrincipal,
        report: CaseReport,
        stored: dict[str, str],
        deadline_hours: float,
        key: str,
        batch: EvidenceBatch,
    ) -> tuple[IntakeResult, CaseEvent | None]:
        """One transaction: a new case or one more occurrence of an open one, with its
        evidence rows and, as it commits, their files. No event when a concurrent replay
        got there first."""
        now = self.ctx.clock()
        with self.ctx.write() as s:
            case = self._find_open_case(s, report)
            if s.scalar(select(m.Occurrence.id).where(m.Occurrence.idempotency_key == key)) is not None:
                s.rollback()  # a concurrent replay committed while we waited for the lock
                again = self._replay(key, client)
                assert again is not None
                return again, None
            merged = case is not None
            if case is None:
                case = self._new_case(s, client, report, deadline_hours, now)
            else:
                case.occurrence_count += 1
                if report.detected_at >= case.last_detected_at:
                    case.last_detected_at = report.detected_at
                    case.bbox = list(report.bbox)
                case.confidence = max(case.confidence or 0.0, report.confidence)
                case.object_count = max(case.object_count, report.object_count)
                if report.plate is not None and (
                    case.plate_confidence is None or report.plate.confidence > case.plate_confidence
                ):
                    _set_plate(case, report.plate)
                case.updated_at = now
                status = Status(case.status)
                s.add(
                    audit(
                        case.id,
                        "recur",
                        status,
                        status,
                        client.name,
                        "device",
                        now,
                        details={"idempotency_key": key, "confidence": report.confidence},
                    )
                )
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
            s.add_all(evidence_rows(report.evidence, stored, case.id, "report", now, occurrence_id=occ.id))
            batch.commit(s)
            result = IntakeResult(
                case_id=case.id, occurrence_id=occ.id, created=not merged, merged=merged, status=Status(case.status)
            )
            event = CaseEvent(
                "occurrence" if merged else "new",
                case.id,
                case.status,
                case.violation,
                case.camera_id,
                actor=client.name,
                department=case.department,
                plate=case.plate_text,
                plate_colour=case.plate_colour,
            )
        return result, event

    def _new_case(
        self, s: Session, client: ClientPrincipal, report: CaseReport, deadline_hours: float, now: datetime
    ) -> m.Case:
        """A suspected case from the report's first occurrence, with its 'report' audit record."""
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
            department=self.ctx.config.department_for(report.violation, report.grid_code),
            deadline_working_hours=deadline_hours,
            created_at=now,
            updated_at=now,
        )
        if report.plate is not None:
            _set_plate(case, report.plate)
        s.add(case)
        s.flush()
        s.add(
            audit(
                case.id,
                "report",
                None,
                Status.SUSPECTED,
                client.name,
                "device",
                now,
                details={
                    "confidence": report.confidence,
                    "model": report.model_version,
                    "verification": report.verification.model_dump() if report.verification else None,
                },
            )
        )
        return case

    def _replay(self, key: str, client: ClientPrincipal) -> IntakeResult | None:
        """The answer already given for `key`, or None when it is new."""
        with self.ctx.read() as s:
            occ = s.scalar(
                select(m.Occurrence).options(selectinload(m.Occurrence.case)).where(m.Occurrence.idempotency_key == key)
            )
            if occ is None:
                return None
            if occ.client_id != client.id:
                raise Conflict("idempotency_key was already used by another device")
            first = s.scalar(select(func.min(m.Occurrence.id)).where(m.Occurrence.case_id == occ.case_id))
            return IntakeResult(
                case_id=occ.case_id,
                occurrence_id=occ.id,
                created=False,
                merged=first != occ.id,
                status=Status(occ.case.status),
            )

    def _find_open_case(self, s: Session, report: CaseReport) -> m.Case | None:
        """The open case this report joins: same site, camera and type, within the
        occurrence window, and the same thing (locked for the transaction). The same
        thing is an overlapping box; for the vehicle types of `merge_by_plate` it is
        the same plate, wherever in the frame: two trucks leaving by one exit are two
        cases, one truck passing twice is one, and a truck whose plate was not read
        is a case of its own (its box proves nothing about which truck it was)."""
        window = timedelta(seconds=self.ctx.config.occurrence_window_s)
        if s.get_bind().dialect.name == "postgresql":
            # serialise concurrent reports of one camera and type (SQLite serialises all writers)
            s.execute(
                text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))"),
                {"k": f"{report.site_id}/{report.camera_id}/{report.violation}"},
            )
        q = select(m.Case).where(
            m.Case.camera_id == report.camera_id,
            m.Case.site_id == report.site_id,
            m.Case.violation == report.violation,
            m.Case.status.in_([st.value for st in MERGEABLE]),
            m.Case.last_detected_at >= report.detected_at - window,
            m.Case.first_detected_at <= report.detected_at + window,
        )
        by_plate = report.violation in self.ctx.config.merge_by_plate
        if by_plate:
            if report.plate is None:
                return None
            q = q.where(m.Case.plate_text == report.plate.text)
        candidates = s.scalars(q.order_by(m.Case.last_detected_at.desc(), m.Case.id.desc()).with_for_update())
        for case in candidates:
            if by_plate or (case.bbox and report.bbox and box_iou(case.bbox, report.bbox)[0, 0] > 0):
                return case
        return None

    # --------------------------------------------------------------- Open311
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
        if service_code not in self.ctx.taxonomy.violations:
            raise InvalidInput(f"service_code: unknown service '{service_code}'")
        ev = self.ctx.taxonomy.violations[service_code]
        now = self.ctx.clock()
        with self.ctx.write() as s:
            case = m.Case(
                source="open311",
                client_id=client.id,
                status=Status.SUSPECTED.value,
                violation=service_code,
                event_code=None,
                event_name=ev.name,
                crs="WGS84",
                lat=lat,
                lon=lon,
                address=address,
                description=description,
                media_url=media_url,
                object_count=1,
                classes=[],
                first_detected_at=now,
                last_detected_at=now,
                occurrence_count=1,
                department=self.ctx.config.department_for(service_code, None),
                deadline_working_hours=ev.deadline_working_hours,
                created_at=now,
                updated_at=now,
            )
            s.add(case)
            s.flush()
            s.add(audit(case.id, "report", None, Status.SUSPECTED, client.name, "open311", now))
            s.commit()
            event = CaseEvent(
                "new", case.id, case.status, case.violation, None, actor=client.name, department=case.department
            )
            case_id = case.id
        self.ctx.notifier.publish(event)
        return case_id


def stage_evidence(
    ctx: ServiceContext,
    declared: Sequence[EvidenceItem],
    files: Mapping[str, Upload],
    batch: EvidenceBatch,
    part: str = "case",
) -> dict[str, str]:
    """Checks every declared file (of a case report, or of a camera event: `part` names the
    JSON part in messages) against its file part and stages it, before the transaction: no
    lock is held while it is copied and hashed. Returns name -> sha256; InvalidInput names
    the file that is missing, undeclared, too large or not what it says."""
    max_bytes = ctx.settings.max_evidence_bytes
    names = [e.name for e in declared]
    if len(set(names)) != len(names):
        raise InvalidInput("evidence: names must be unique")
    extra = sorted(set(files) - set(names))
    if extra:
        raise InvalidInput(f"evidence: file part(s) {extra} are not declared in {part}.evidence")
    stored: dict[str, str] = {}
    for item in declared:
        up = files.get(item.name)
        if up is None:
            raise InvalidInput(f"evidence '{item.name}': file part missing")
        if item.size_bytes > max_bytes:
            raise InvalidInput(f"evidence '{item.name}': larger than {max_bytes} bytes")
        if not content_matches(item.content_type, up.head()):
            raise InvalidInput(f"evidence '{item.name}': content is not {item.content_type}")
        try:
            f = batch.stage(up.stream, max_bytes, item.sha256, item.size_bytes)
        except StorageError as exc:
            raise InvalidInput(f"evidence '{item.name}': {exc}") from None
        stored[item.name] = f.sha256
    return stored


def evidence_rows(
    declared: Sequence[EvidenceItem],
    stored: Mapping[str, str],
    case_id: int,
    stage: EvidenceStage,
    now: datetime,
    *,
    occurrence_id: int | None = None,
    event_id: int | None = None,
) -> list[m.Evidence]:
    """The evidence rows of files `stage_evidence` stored (name -> sha256), of a report's
    occurrence or of a camera event."""
    return [
        m.Evidence(
            case_id=case_id,
            occurrence_id=occurrence_id,
            event_id=event_id,
            stage=stage,
            name=item.name,
            kind=item.kind,
            content_type=item.content_type,
            sha256=stored[item.name],
            size_bytes=item.size_bytes,
            created_at=now,
        )
        for item in declared
    ]


def _set_plate(case: m.Case, plate: PlateReading) -> None:
    """The case names the vehicle by this reading (its first, or a more confident one)."""
    case.plate_text = plate.text
    case.plate_colour = plate.colour
    case.plate_confidence = plate.confidence
    case.plate_rows = plate.rows

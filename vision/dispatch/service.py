"""The dispatch center's service: the one object routes, the CLI and the demo
call. Routes only translate HTTP to these calls, so everything is tested
without HTTP. It holds no logic of its own; it composes the parts that do:

    accounts.py     operators, machine clients, login/logout, token checks
    intake.py       edge-box reports (evidence, replay, merge) and Open311 requests
    lifecycle.py    the camera's cleared / resumed / grew events of a case (自动核查)
    fleet.py        edge boxes' heartbeats, cameras offline, maintenance alerts
    rollouts.py     model versions uploaded, rolled out to the boxes (or a canary list) and back
    zone_versions.py  each camera's zones published from the zone editor to its box, and their history
    transitions.py  the workflow actions and their audit records
    queries.py      reading cases as the plain shapes of schemas.py
    retention.py    evidence of finished cases deleted after the configured days (the record stays)
    collector.py    stale staged uploads and evidence files no row names

Errors (errors.py): NotFound (404), Unauthorized (401), NotPermitted (403),
IllegalTransition / Conflict (409), InvalidInput (422)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from vision.core.taxonomy import Taxonomy, load_taxonomy
from vision.dispatch.accounts import Accounts, ClientPrincipal, OperatorPrincipal
from vision.dispatch.collector import Collected, collect_evidence
from vision.dispatch.config import DispatchConfig, load_dispatch_config
from vision.dispatch.context import ServiceContext
from vision.dispatch.db import make_engine, migrate, session_factory
from vision.dispatch.fleet import Fleet
from vision.dispatch.intake import CaseIntake
from vision.dispatch.lifecycle import CameraLifecycle
from vision.dispatch.notify import Notifier
from vision.dispatch.queries import CaseQueries, Deadlined, is_overdue
from vision.dispatch.retention import Expired, expire_evidence
from vision.dispatch.rollouts import ModelRollouts
from vision.dispatch.settings import Settings
from vision.dispatch.storage import EvidenceStore
from vision.dispatch.transitions import Transitions
from vision.dispatch.uploads import Upload
from vision.dispatch.workflow import FINAL, Status
from vision.dispatch.zone_versions import ZoneVersions

__all__ = [
    "ClientPrincipal",
    "DispatchService",
    "OperatorPrincipal",
    "Upload",
]


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
        self.ctx = ServiceContext(
            sessions=sessions,
            config=config,
            taxonomy=taxonomy,
            store=store,
            notifier=notifier or Notifier(),
            settings=settings or Settings(),
            clock=clock or (lambda: datetime.now(UTC)),
        )
        self.accounts = Accounts(self.ctx)
        self.queries = CaseQueries(self.ctx)
        self.case_intake = CaseIntake(self.ctx)
        self.camera_lifecycle = CameraLifecycle(self.ctx)
        self.fleet = Fleet(self.ctx)
        self.model_rollouts = ModelRollouts(self.ctx)
        self.zone_versions = ZoneVersions(self.ctx)
        self.transitions = Transitions(self.ctx, self.queries)
        self._forward_operations()

    # ------------------------------------------------------------------ setup
    @classmethod
    def from_settings(
        cls, settings: Settings, notifier: Notifier | None = None, migrate_db: bool = True
    ) -> DispatchService:
        settings.ensure_data_dir()
        config = load_dispatch_config(settings.config_path)
        taxonomy = load_taxonomy(settings.taxonomy_path)
        engine = make_engine(settings.database_url)
        if migrate_db:
            migrate(engine)
        if notifier is None:
            notifier = Notifier.from_config(config.notifications)
        return cls(session_factory(engine), config, taxonomy, EvidenceStore(settings.evidence_dir), notifier, settings)

    # What the parts share, readable (and the clock settable, for tests) on the service.
    @property
    def sessions(self) -> sessionmaker[Session]:
        return self.ctx.sessions

    @property
    def config(self) -> DispatchConfig:
        return self.ctx.config

    @property
    def taxonomy(self) -> Taxonomy:
        return self.ctx.taxonomy

    @property
    def store(self) -> EvidenceStore:
        return self.ctx.store

    @property
    def notifier(self) -> Notifier:
        return self.ctx.notifier

    @property
    def settings(self) -> Settings:
        return self.ctx.settings

    @property
    def clock(self) -> Callable[[], datetime]:
        return self.ctx.clock

    @clock.setter
    def clock(self, clock: Callable[[], datetime]) -> None:
        self.ctx.clock = clock

    @property
    def engine(self) -> Engine:
        return self.ctx.engine

    def check_database(self) -> None:
        """Raises when the database cannot be reached."""
        self.ctx.check_database()

    def close(self) -> None:
        self.ctx.close()

    def collect_evidence(self, now: float | None = None) -> Collected:
        """Removes staged uploads a crash left behind and evidence files no row names, once
        older than `settings.evidence_grace_s` (the server runs it at start and on a schedule)."""
        return collect_evidence(self.ctx, self.settings.evidence_grace_s, now)

    def expire_evidence(self, dry_run: bool = False) -> Expired:
        """Deletes the evidence of finished cases past `retention` (the files go with the next collection)."""
        return expire_evidence(self.ctx, dry_run)

    def keep_house(self) -> None:
        """The server's periodic clean-up: evidence past its retention time, then the files no row names."""
        self.expire_evidence()
        self.collect_evidence()

    # ------------------------------------------------------------ the facade
    # Each operation is its part's own method, so it has one signature and one docstring.
    def _forward_operations(self) -> None:
        accounts, queries, intake, transitions = self.accounts, self.queries, self.case_intake, self.transitions
        # operators, device and Open311 clients, tokens
        self.create_operator = accounts.create_operator
        self.set_password = accounts.set_password
        self.list_operators = accounts.list_operators
        self.create_client = accounts.create_client
        self.login = accounts.login
        self.logout = accounts.logout
        self.authenticate_operator = accounts.authenticate_operator
        self.authenticate_client = accounts.authenticate_client
        self.set_operator_active = accounts.set_operator_active
        self.revoke_client = accounts.revoke_client
        self.rotate_client_token = accounts.rotate_client_token
        # reports from edge boxes and Open311 clients
        self.intake = intake.intake
        self.create_citizen_request = intake.create_citizen_request
        self.record_lifecycle = self.camera_lifecycle.record
        # fleet health
        self.record_heartbeat = self.fleet.record
        self.check_fleet = self.fleet.check
        self.fleet_boxes = self.fleet.boxes
        self.camera_frame = self.fleet.frame_sha256
        self.offline_hours = self.fleet.offline_hours
        # model roll-out
        self.upload_model = self.model_rollouts.upload
        self.rollout_model = self.model_rollouts.rollout
        self.rollback_model = self.model_rollouts.rollback
        self.assigned_models = self.model_rollouts.assigned
        self.model_versions = self.model_rollouts.versions
        self.model_file = self.model_rollouts.file
        # zones published to the boxes
        self.publish_zones = self.zone_versions.publish
        self.latest_zones = self.zone_versions.latest
        self.zone_history = self.zone_versions.history
        # the workflow
        self.transition = transitions.transition
        # reading
        self.list_cases = queries.list_cases
        self.get_case = queries.get_case
        self.seen_values = queries.seen_values
        self.evidence_file = queries.evidence_file
        self.cases_by_ids = queries.cases_by_ids
        self.find_cases = queries.find_cases
        self.reviewed_cases = queries.reviewed_cases
        self.camera_counts = queries.camera_counts
        self.audit_events = queries.audit_events

    def is_overdue(self, case: Deadlined, now: datetime | None = None) -> bool:
        return is_overdue(case, now or self.clock())

    def department_name(self, dept_id: str | None) -> str | None:
        return self.config.department_name(dept_id)

    def final(self, status: str) -> bool:
        return Status(status) in FINAL

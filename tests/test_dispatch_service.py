"""The service layer without HTTP: the state machine table, permissions,
deadlines on the working calendar, configuration errors, migrations."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml

from vision.dispatch.config import ConfigError, DispatchConfig, WorkingTime, load_dispatch_config
from vision.dispatch.deadlines import add_working_hours
from vision.dispatch.workflow import (
    ONLY_FROM,
    PERMISSIONS,
    TRANSITIONS,
    Action,
    IllegalTransition,
    NotPermitted,
    Role,
    Status,
    available_actions,
    plan,
)

SH = timezone(timedelta(hours=8))

HAPPY = [
    (Action.ACCEPT, Status.SUSPECTED, Status.ACCEPTED),
    (Action.DISPATCH, Status.ACCEPTED, Status.DISPATCHED),
    (Action.HANDLE, Status.DISPATCHED, Status.HANDLED),
    (Action.VERIFY, Status.HANDLED, Status.VERIFIED),
    (Action.CLOSE, Status.VERIFIED, Status.CLOSED),
]


@pytest.mark.parametrize("action, source, target", HAPPY)
def test_happy_path_for_admin(action: Action, source: Status, target: Status) -> None:
    assert plan(action, source, Role.ADMIN).target is target


@pytest.mark.parametrize("action", list(Action))
@pytest.mark.parametrize("status", list(Status))
@pytest.mark.parametrize("role", list(Role))
def test_every_combination_is_allowed_or_refused_for_a_reason(action: Action, status: Status, role: Role) -> None:
    allowed_role = role in PERMISSIONS[action] and status in ONLY_FROM.get((action, role), {status})
    target = TRANSITIONS.get((action, status))
    if not allowed_role:
        with pytest.raises(NotPermitted):
            plan(action, status, role)
    elif target is None:
        with pytest.raises(IllegalTransition):
            plan(action, status, role)
    else:
        assert plan(action, status, role).target is target


@pytest.mark.parametrize("status", [Status.CLOSED, Status.REJECTED])
def test_final_states_have_no_way_out(status: Status) -> None:
    assert available_actions(status, Role.ADMIN) == []


def test_roles_see_their_own_actions() -> None:
    assert available_actions(Status.SUSPECTED, Role.REVIEWER) == [Action.ACCEPT, Action.REJECT]
    assert available_actions(Status.SUSPECTED, Role.DISPATCHER) == []
    assert available_actions(Status.DISPATCHED, Role.DISPATCHER) == [
        Action.SEND_BACK,
        Action.EXTEND,
        Action.HANDLE,
        Action.PARK,
    ]
    assert available_actions(Status.HANDLED, Role.REVIEWER) == [Action.SEND_BACK, Action.VERIFY]
    assert available_actions(Status.DISPATCHED, Role.REVIEWER) == [Action.SEND_BACK, Action.URGE]
    # the department handles; the field inspector verifies or sends back a handled case, nothing else
    assert available_actions(Status.DISPATCHED, Role.DEPARTMENT) == [Action.HANDLE]
    assert available_actions(Status.HANDLED, Role.DEPARTMENT) == []
    assert available_actions(Status.HANDLED, Role.INSPECTOR) == [Action.SEND_BACK, Action.VERIFY]
    assert available_actions(Status.DISPATCHED, Role.INSPECTOR) == []
    assert available_actions(Status.PARKED, Role.DISPATCHER) == [Action.UNPARK]
    assert available_actions(Status.PARKED, Role.DEPARTMENT) == []


CAL = WorkingTime(
    timezone="Asia/Shanghai", weekdays=["mon", "tue", "wed", "thu", "fri"], periods=["08:30-12:00", "13:30-17:30"]
)


@pytest.mark.parametrize(
    "start, hours, expected",
    [
        (datetime(2026, 11, 23, 9, 0, tzinfo=SH), 2, datetime(2026, 11, 23, 11, 0, tzinfo=SH)),  # Monday morning
        (datetime(2026, 11, 23, 11, 0, tzinfo=SH), 2, datetime(2026, 11, 23, 14, 30, tzinfo=SH)),  # over lunch
        (datetime(2026, 11, 23, 17, 0, tzinfo=SH), 1, datetime(2026, 11, 24, 9, 0, tzinfo=SH)),  # overnight
        (datetime(2026, 11, 27, 17, 0, tzinfo=SH), 4, datetime(2026, 11, 30, 12, 0, tzinfo=SH)),  # Friday -> Monday
        (datetime(2026, 11, 28, 10, 0, tzinfo=SH), 0.5, datetime(2026, 11, 30, 9, 0, tzinfo=SH)),  # Saturday
        (datetime(2026, 11, 23, 20, 0, tzinfo=SH), 7.5, datetime(2026, 11, 24, 17, 30, tzinfo=SH)),  # a full day
        (datetime(2026, 11, 23, 9, 0, tzinfo=SH), 0, datetime(2026, 11, 23, 9, 0, tzinfo=SH)),
    ],
)
def test_working_hours(start: datetime, hours: float, expected: datetime) -> None:
    assert add_working_hours(start.astimezone(UTC), hours, CAL) == expected


def test_working_hours_need_aware_time() -> None:
    with pytest.raises(ValueError):
        add_working_hours(datetime(2026, 1, 1, 9), 1, CAL)


def test_bundled_config_is_valid_and_assigns() -> None:
    cfg = load_dispatch_config()
    assert cfg.department_for("exposed_garbage", "310101001001001") == "sanitation"
    assert cfg.department_for("road_occupation", None) == cfg.default_department
    assert set(cfg.label_classes) == {"street_vending", "exposed_garbage", "non_motor_parking", "muddy_truck"}


def test_grid_prefix_assignment() -> None:
    cfg = DispatchConfig.model_validate(
        {
            "departments": [{"id": "a", "name": "A"}, {"id": "b", "name": "B"}],
            "assignment": [{"grid_prefix": "310101", "department": "b"}],
            "default_department": "a",
        }
    )
    assert cfg.department_for("street_vending", "310101001001001") == "b"
    assert cfg.department_for("street_vending", "310102001001001") == "a"


@pytest.mark.parametrize(
    "patch, field",
    [
        ({"default_department": "nobody"}, "default_department"),
        ({"assignment": [{"violation": "x", "department": "ghost"}]}, "assignment[0].department"),
        ({"working_time": {"periods": ["17:00-09:00"]}}, "working_time.periods"),
        ({"working_time": {"timezone": "Mars/Olympus"}}, "working_time.timezone"),
        ({"occurrence_window": 5}, "occurrence_window"),
        ({"notifications": {"webhooks": [{"url": "ftp://x"}]}}, "notifications.webhooks.0.url"),
    ],
)
def test_config_errors_name_the_field(tmp_path: Path, patch: dict, field: str) -> None:
    data = yaml.safe_load(load_dispatch_config.__globals__["DEFAULT_DISPATCH_CONFIG"].read_text())
    data.update(patch)
    path = tmp_path / "d.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    with pytest.raises(ConfigError) as err:
        load_dispatch_config(path)
    assert str(path) in str(err.value)
    assert field.split("[")[0].split(".")[0] in str(err.value)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_migrations_match_the_models(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from vision.dispatch.db import make_engine, migrate
    from vision.dispatch.models import Base

    url = (
        f"sqlite:///{tmp_path / 'm.db'}"
        if backend == "sqlite"
        else request.getfixturevalue("pg_server").fresh_database()
    )
    engine = make_engine(url)
    migrate(engine)
    migrate(engine)  # idempotent
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": False}), Base.metadata)
    engine.dispose()
    assert diff == []

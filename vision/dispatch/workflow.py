"""The case state machine (数字城管 workflow) and who may drive it.

Pure data and functions: no database, no HTTP. The service layer asks
`plan(action, status, role)` and either gets the target state or an error
that maps to 409 (not allowed from this state) or 403 (not allowed for this role).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Status(StrEnum):
    SUSPECTED = "suspected"  # 疑似: AI report waiting for review
    ACCEPTED = "accepted"  # 立案
    DISPATCHED = "dispatched"  # 派遣
    HANDLED = "handled"  # 处置 (with an after photo)
    VERIFIED = "verified"  # 核查
    CLOSED = "closed"  # 结案
    REJECTED = "rejected"  # 误报
    PARKED = "parked"  # 挂账: cannot be handled within any extension (major works); off the deadline clock


class Action(StrEnum):
    ACCEPT = "accept"
    REJECT = "reject"
    DISPATCH = "dispatch"
    SEND_BACK = "send_back"  # 回退
    EXTEND = "extend"  # 延期
    HANDLE = "handle"
    VERIFY = "verify"
    CLOSE = "close"
    REOPEN = "reopen"  # 重新派遣: the camera saw the violation come back after verification
    PARK = "park"  # 挂账
    UNPARK = "unpark"  # 取消挂账: back to the state it was parked from
    URGE = "urge"  # 督办: a supervisor presses the department; the status stays


class Role(StrEnum):
    REVIEWER = "reviewer"  # 坐席/监督员: reviews AI reports, verifies, closes
    DISPATCHER = "dispatcher"  # 派遣员: dispatches, sends back, extends, records handling
    ADMIN = "admin"  # everything, plus users and devices
    DEPARTMENT = "department"  # 处置部门: one department's account; sees and handles its own cases only
    INSPECTOR = "inspector"  # 核查员 in the field: verifies handled cases with a photo, or sends them back


STATUS_LABELS: dict[Status, str] = {
    Status.SUSPECTED: "疑似 suspected",
    Status.ACCEPTED: "立案 accepted",
    Status.DISPATCHED: "派遣 dispatched",
    Status.HANDLED: "处置 handled",
    Status.VERIFIED: "核查 verified",
    Status.CLOSED: "结案 closed",
    Status.REJECTED: "误报 rejected",
    Status.PARKED: "挂账 parked",
}

ACTION_LABELS: dict[Action, str] = {
    Action.ACCEPT: "立案 Accept",
    Action.REJECT: "误报 Reject",
    Action.DISPATCH: "派遣 Dispatch",
    Action.SEND_BACK: "回退 Send back",
    Action.EXTEND: "延期 Extend",
    Action.HANDLE: "处置 Handled",
    Action.VERIFY: "核查 Verify",
    Action.CLOSE: "结案 Close",
    Action.REOPEN: "重新派遣 Reopen",
    Action.PARK: "挂账 Park",
    Action.UNPARK: "取消挂账 Unpark",
    Action.URGE: "督办 Urge",
}

# (action, from) -> to
TRANSITIONS: dict[tuple[Action, Status], Status] = {
    (Action.ACCEPT, Status.SUSPECTED): Status.ACCEPTED,
    (Action.REJECT, Status.SUSPECTED): Status.REJECTED,
    (Action.DISPATCH, Status.ACCEPTED): Status.DISPATCHED,
    (Action.SEND_BACK, Status.DISPATCHED): Status.ACCEPTED,  # wrong department
    (Action.SEND_BACK, Status.HANDLED): Status.DISPATCHED,  # verification failed: redo
    (Action.EXTEND, Status.ACCEPTED): Status.ACCEPTED,
    (Action.EXTEND, Status.DISPATCHED): Status.DISPATCHED,
    (Action.HANDLE, Status.DISPATCHED): Status.HANDLED,
    (Action.VERIFY, Status.HANDLED): Status.VERIFIED,
    (Action.CLOSE, Status.VERIFIED): Status.CLOSED,
    # the violation came back (the camera saw it resume): the department deals with it again
    (Action.REOPEN, Status.VERIFIED): Status.DISPATCHED,
    (Action.REOPEN, Status.CLOSED): Status.DISPATCHED,
    # 挂账: off the clock until un-parked; UNPARK returns to the state it came from (the case's
    # `parked_from`, ACCEPTED or DISPATCHED), the table names the usual one
    (Action.PARK, Status.ACCEPTED): Status.PARKED,
    (Action.PARK, Status.DISPATCHED): Status.PARKED,
    (Action.UNPARK, Status.PARKED): Status.DISPATCHED,
    # 督办: a flag and an audited event, not a state: the case stays where it is
    (Action.URGE, Status.ACCEPTED): Status.ACCEPTED,
    (Action.URGE, Status.DISPATCHED): Status.DISPATCHED,
}

PERMISSIONS: dict[Action, frozenset[Role]] = {
    Action.ACCEPT: frozenset({Role.REVIEWER, Role.ADMIN}),
    Action.REJECT: frozenset({Role.REVIEWER, Role.ADMIN}),
    Action.DISPATCH: frozenset({Role.DISPATCHER, Role.ADMIN}),
    Action.SEND_BACK: frozenset({Role.DISPATCHER, Role.REVIEWER, Role.INSPECTOR, Role.ADMIN}),
    Action.EXTEND: frozenset({Role.DISPATCHER, Role.ADMIN}),
    # the department records its own handling; the dispatcher keeps it for handling reported by phone
    Action.HANDLE: frozenset({Role.DEPARTMENT, Role.DISPATCHER, Role.ADMIN}),
    Action.VERIFY: frozenset({Role.REVIEWER, Role.INSPECTOR, Role.ADMIN}),
    Action.CLOSE: frozenset({Role.REVIEWER, Role.DISPATCHER, Role.ADMIN}),
    Action.REOPEN: frozenset(),  # the camera's alone (plan_by_camera): no operator reopens a case
    Action.PARK: frozenset({Role.DISPATCHER, Role.ADMIN}),
    Action.UNPARK: frozenset({Role.DISPATCHER, Role.ADMIN}),
    Action.URGE: frozenset({Role.REVIEWER, Role.ADMIN}),  # the command center's supervisors
}

# Roles that may take an action only from some states: the field inspector sends back a
# handled case whose problem is still there, never a dispatched one (wrong department).
ONLY_FROM: dict[tuple[Action, Role], frozenset[Status]] = {
    (Action.SEND_BACK, Role.INSPECTOR): frozenset({Status.HANDLED}),
}

# Roles bound to one department: they see and act on that department's cases only, and only
# once dispatched to it (a suspected or accepted case names the department it would go to).
DEPARTMENT_BOUND = frozenset({Role.DEPARTMENT})
DEPARTMENT_VISIBLE = frozenset({Status.DISPATCHED, Status.HANDLED, Status.VERIFIED, Status.CLOSED, Status.PARKED})

# What the camera may do to a case on its own (自动核查): verify a handled case whose
# violation it saw cleared, reopen a verified or closed one whose violation came back.
CAMERA_ACTIONS = frozenset({Action.VERIFY, Action.REOPEN})

# Actions that must say why (audited reason).
REASON_REQUIRED = frozenset({Action.REJECT, Action.SEND_BACK, Action.EXTEND, Action.PARK, Action.URGE})

# Open for occurrence merging: a new report of the same thing joins these.
MERGEABLE = frozenset({Status.SUSPECTED, Status.ACCEPTED, Status.DISPATCHED, Status.HANDLED, Status.PARKED})
# The deadline clock runs in these states (the department has not reported back yet).
ON_THE_CLOCK = frozenset({Status.ACCEPTED, Status.DISPATCHED})
FINAL = frozenset({Status.CLOSED, Status.REJECTED})
# Accepted (立案) and every state after it: review found the AI report right.
CONFIRMED = frozenset(
    {Status.ACCEPTED, Status.DISPATCHED, Status.HANDLED, Status.VERIFIED, Status.CLOSED, Status.PARKED}
)


class WorkflowError(Exception):
    """Base of the errors the service raises for refused transitions."""


class IllegalTransition(WorkflowError):
    """The action does not apply to the case's current state (HTTP 409)."""


class NotPermitted(WorkflowError):
    """The operator's role may not take this action (HTTP 403)."""


@dataclass(frozen=True)
class Step:
    action: Action
    source: Status
    target: Status


def permitted(action: Action, status: Status, role: Role) -> bool:
    """Whether `role` may take `action` at all, and from `status` (ONLY_FROM)."""
    if role not in PERMISSIONS[action]:
        return False
    only = ONLY_FROM.get((action, role))
    return only is None or status in only


def plan(action: Action, status: Status, role: Role) -> Step:
    """The step `action` takes from `status` for `role`, or the reason it is refused."""
    if not permitted(action, status, role):
        raise NotPermitted(
            f"role '{role}' may not {action}" + (f" a {status} case" if role in PERMISSIONS[action] else "")
        )
    target = TRANSITIONS.get((action, status))
    if target is None:
        raise IllegalTransition(f"cannot {action} a case that is {status}")
    return Step(action, status, target)


def plan_by_camera(action: Action, status: Status) -> Step:
    """The step the camera's own `action` takes from `status`, or the reason it is refused."""
    if action not in CAMERA_ACTIONS:
        raise NotPermitted(f"the camera may not {action}")
    target = TRANSITIONS.get((action, status))
    if target is None:
        raise IllegalTransition(f"cannot {action} a case that is {status}")
    return Step(action, status, target)


def available_actions(status: Status, role: Role) -> list[Action]:
    """Actions `role` can take on a case in `status`, in workflow order (for the UI)."""
    return [a for a in Action if (a, status) in TRANSITIONS and permitted(a, status, role)]

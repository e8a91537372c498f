"""The service's refusals, one class per kind of failure, so every caller (HTTP
routes, the CLI, tests) tells them apart by type and `api/errors.py` maps each
to one HTTP status: NotFound 404, Unauthorized 401, NotPermitted 403,
IllegalTransition / Conflict 409, InvalidInput 422."""

from __future__ import annotations

from vision.dispatch.workflow import IllegalTransition, NotPermitted, WorkflowError

__all__ = ["Conflict", "IllegalTransition", "InvalidInput", "NotFound", "NotPermitted", "Unauthorized", "WorkflowError"]


class NotFound(WorkflowError):
    """No such case, evidence file or operator."""


class Unauthorized(WorkflowError):
    """Wrong credentials."""


class Conflict(WorkflowError):
    """A name or idempotency key that is already taken."""


class InvalidInput(WorkflowError):
    """A value the service cannot accept (the message names the field)."""

"""Event taxonomy: violation type -> standard event code, name and deadline.

Shared by the edge (to stamp codes on cases) and the dispatch center (to set
deadlines). Cities override the bundled file with their own.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from vision.core.paths import REPO_ROOT

DEFAULT_TAXONOMY = REPO_ROOT / "configs" / "taxonomy.yaml"


class Edition(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    status: str = "current"


class RejectReason(BaseModel):
    """A usual false-alarm cause of one event type, offered to the reviewer who rejects a report."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    name_en: str = Field(min_length=1, max_length=200)


class EventType(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    name_en: str
    category: str
    codes: dict[str, str] = Field(description="Edition id -> event code.")
    deadline_working_hours: float = Field(gt=0)
    reject_reasons: list[RejectReason] = Field(default_factory=list)


class EventCode(BaseModel):
    violation: str
    edition: str
    code: str | None
    name: str
    deadline_working_hours: float


class Taxonomy(BaseModel):
    model_config = ConfigDict(extra="forbid")
    editions: list[Edition]
    violations: dict[str, EventType]

    @model_validator(mode="after")
    def _codes_name_known_editions(self) -> Taxonomy:
        known = {e.id for e in self.editions}
        for key, ev in self.violations.items():
            for edition in ev.codes:
                if edition not in known:
                    raise ValueError(f"violations.{key}.codes: unknown edition '{edition}'")
        return self

    def lookup(self, violation: str, edition: str) -> EventCode:
        """The code of a violation type in one edition (None where that edition has no code)."""
        try:
            ev = self.violations[violation]
        except KeyError:
            raise KeyError(f"violation type '{violation}' is not in the taxonomy") from None
        return EventCode(
            violation=violation,
            edition=edition,
            code=ev.codes.get(edition),
            name=ev.name,
            deadline_working_hours=ev.deadline_working_hours,
        )


def load_taxonomy(path: Path | str | None = None) -> Taxonomy:
    path = Path(path) if path else DEFAULT_TAXONOMY
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return Taxonomy.model_validate(data)

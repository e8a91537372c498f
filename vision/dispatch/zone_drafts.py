"""Zones drawn on a camera's picture in the web UI, checked as the box's `config check` checks
them (vision.core.zone_shapes) and written out as the YAML of the camera's `zones:` in its
site file, or published as the camera's next zone version, which its box picks up
(zone_versions.py)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import yaml
from pydantic import ValidationError

from vision.core.fleet import MAX_ZONE_POINTS, MAX_ZONES_PER_CAMERA
from vision.core.zone_shapes import ZoneConfig

DRAFT_MAX_CHARS = 64 << 10
DRAFT_FIELDS = {"name", "kind", "points"}  # a zone as the editor draws it (and the heartbeat carries it)


@dataclass(frozen=True)
class DraftProblem:
    """One thing wrong with a draft: which zone (its position and name, when known) and why."""

    index: int | None
    name: str | None
    field: str
    message: str


@dataclass(frozen=True)
class CheckedDraft:
    zones: list[dict[str, Any]]  # as drawn (for the editor to show again), valid or not
    problems: list[DraftProblem]
    yaml: str | None  # the site file's `zones:` when there is no problem
    valid: list[ZoneConfig] = field(default_factory=list)  # the zones as the box reads them, when no problem


def check_draft(text: str) -> CheckedDraft:
    """The zones of the editor's JSON, with every problem found (not only the first)."""
    if len(text) > DRAFT_MAX_CHARS:
        return CheckedDraft([], [DraftProblem(None, None, "zones", f"more than {DRAFT_MAX_CHARS} characters")], None)
    try:
        raw = json.loads(text or "[]")
    except ValueError as exc:
        return CheckedDraft([], [DraftProblem(None, None, "zones", f"not JSON: {exc}")], None)
    if not isinstance(raw, list) or not all(isinstance(z, dict) for z in raw):
        return CheckedDraft([], [DraftProblem(None, None, "zones", "a list of zones")], None)
    problems: list[DraftProblem] = []
    if len(raw) > MAX_ZONES_PER_CAMERA:
        problems.append(DraftProblem(None, None, "zones", f"at most {MAX_ZONES_PER_CAMERA} zones"))
    good: list[ZoneConfig] = []
    for i, z in enumerate(raw[:MAX_ZONES_PER_CAMERA]):
        name = z.get("name") if isinstance(z.get("name"), str) else None
        points = z.get("points")
        if isinstance(points, list) and len(points) > MAX_ZONE_POINTS:
            problems.append(DraftProblem(i, name, "points", f"at most {MAX_ZONE_POINTS} points"))
            continue
        unknown = sorted(set(z) - DRAFT_FIELDS)
        if unknown:
            problems.append(DraftProblem(i, name, unknown[0], "Extra inputs are not permitted"))
            continue
        try:  # the box's own zone model: the editor's `points` are its `polygon`
            good.append(ZoneConfig.model_validate({("polygon" if k == "points" else k): v for k, v in z.items()}))
        except ValidationError as exc:
            for err in exc.errors():
                loc = ["points" if p == "polygon" else str(p) for p in err["loc"] if not isinstance(p, int)]
                problems.append(
                    DraftProblem(i, name, ".".join(loc) or "polygon", err["msg"].removeprefix("Value error, "))
                )
    seen: set[str] = set()
    for i, z in enumerate(raw[:MAX_ZONES_PER_CAMERA]):
        name = z.get("name")
        if isinstance(name, str) and name in seen:
            problems.append(DraftProblem(i, name, "name", "two zones have this name"))
        seen.add(str(name))
    shown = [
        {"name": str(z.get("name", "")), "kind": str(z.get("kind", "")), "points": _points(z.get("points"))}
        for z in raw[:MAX_ZONES_PER_CAMERA]
    ]
    if problems:
        return CheckedDraft(shown, problems, None)
    site_zones = [
        {"name": z.name, "kind": z.kind, "polygon": [[round(x, 3), round(y, 3)] for x, y in z.polygon]} for z in good
    ]
    text_yaml = yaml.safe_dump({"zones": site_zones}, default_flow_style=None, sort_keys=False, allow_unicode=True)
    return CheckedDraft(shown, [], text_yaml, good)


def _points(value: Any) -> list[list[float]]:
    """The points of a zone as drawn, for showing it again; what is not a pair of numbers is left out."""
    if not isinstance(value, list):
        return []
    out = []
    for p in value[:MAX_ZONE_POINTS]:
        if isinstance(p, list | tuple) and len(p) == 2 and all(isinstance(v, int | float) for v in p):
            out.append([float(p[0]), float(p[1])])
    return out

"""A camera's zone and what makes it drawable: one model for the box's site file (`config
check`), its heartbeat and the center's zone editor, so a zone the editor accepts is one the
box accepts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from vision.core.cases import ID_MAX
from vision.core.geometry import segments_intersect

ZoneKind = Literal["no_vending", "no_parking", "bike_bay", "garbage_watch", "site_exit"]
# zone (and camera) names: what the case reports and the center's ids allow
NAME_PATTERN = rf"^[A-Za-z0-9][A-Za-z0-9_.-]{{0,{ID_MAX - 1}}}$"
ZoneName = Annotated[str, Field(pattern=NAME_PATTERN)]
RelPoint = tuple[
    Annotated[float, Field(ge=0.0, le=1.0)],
    Annotated[float, Field(ge=0.0, le=1.0)],
]


def polygon_area(points: Sequence[tuple[float, float]]) -> float:
    pts = list(points)
    area = 0.0
    for (x1, y1), (x2, y2) in zip(pts, pts[1:] + pts[:1], strict=True):
        area += x1 * y2 - x2 * y1
    return abs(area) / 2.0


def zone_shape_problem(kind: str, points: Sequence[tuple[float, float]]) -> str | None:
    """Why these points (0-1 image coordinates) are not a zone of this kind, or None: a polygon
    of at least 3 points whose edges do not cross and whose area is not zero; a `site_exit` may
    also be a line of two distinct points."""
    pts = [(float(x), float(y)) for x, y in points]
    if kind == "site_exit" and len(pts) == 2:
        return "polygon: a line needs two distinct points" if pts[0] == pts[1] else None
    if len(pts) < 3:
        return f"polygon: needs at least 3 points, got {len(pts)}" + (
            " (a site_exit may also be a line of 2 points)" if kind != "site_exit" else ""
        )
    n = len(pts)
    edges = [(pts[i], pts[(i + 1) % n]) for i in range(n)]
    for i in range(n):
        for j in range(i + 1, n):
            if j == i + 1 or (i == 0 and j == n - 1):
                continue  # neighbouring edges share a vertex
            if segments_intersect([edges[i][0]], [edges[i][1]], edges[j][0], edges[j][1])[0]:
                return f"polygon: edges {i} and {j} cross (self-intersecting polygon)"
    if polygon_area(pts) < 1e-6:
        return "polygon: has zero area (points are collinear or repeated)"
    return None


class ZoneConfig(BaseModel):
    """A region of the image in relative 0-1 coordinates (x right, y down).

    A `site_exit` zone may be a line of two points: trucks are counted when
    their anchor crosses it."""

    model_config = ConfigDict(extra="forbid")

    name: ZoneName
    kind: ZoneKind
    polygon: list[RelPoint] = Field(description="Vertices as [x, y] in 0-1 image coordinates.")

    @model_validator(mode="after")
    def _valid_shape(self) -> ZoneConfig:
        problem = zone_shape_problem(self.kind, [(x, y) for x, y in self.polygon])
        if problem:
            raise ValueError(problem)
        return self

    @property
    def is_line(self) -> bool:
        return len(self.polygon) == 2

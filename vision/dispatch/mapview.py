"""The operator map's data (/ui/map.geojson): cases, cameras and unit grid outlines as
one GeoJSON FeatureCollection, every point converted to the datum the map's tiles are
drawn in (`map.datum` in configs/dispatch.yaml; vision/core/geo.py), so a WGS84 case
lands on its street on a GCJ-02 (AutoNavi, Tencent) base map too.

GeoJSON positions are [lon, lat]. Features say their layer in `properties.layer`
(case | camera | grid); the collection carries how many cases matched, how many are
drawn and a notice in the operator's language when the cap left some out."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import func, select

from vision.core.geo import convert
from vision.dispatch import i18n
from vision.dispatch import models as m
from vision.dispatch.config import MapConfig
from vision.dispatch.schemas import CaseSummary

# Case colours by state: waiting (amber), in the city's hands (blues), done (greens), false alarm (grey).
STATUS_COLOURS: dict[str, str] = {
    "suspected": "#f59e0b",
    "accepted": "#2563eb",
    "dispatched": "#7c3aed",
    "handled": "#0891b2",
    "verified": "#22c55e",
    "closed": "#166534",
    "rejected": "#9ca3af",
    "parked": "#92400e",
}
# Case colours by violation type, in the taxonomy's order.
TYPE_PALETTE = ("#dc2626", "#2563eb", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#ca8a04", "#db2777")
OTHER_COLOUR = "#374151"


def status_colour(status: str) -> str:
    return STATUS_COLOURS.get(status, OTHER_COLOUR)


def type_colours(violations: Iterable[str]) -> dict[str, str]:
    """A colour per violation type, stable in the taxonomy's order."""
    return {v: TYPE_PALETTE[i % len(TYPE_PALETTE)] for i, v in enumerate(violations)}


def _point(lat: float, lon: float, crs: str, datum: str) -> list[float]:
    """A [lon, lat] GeoJSON position in the tiles' datum; 7 decimals (about a centimetre)."""
    try:
        lat, lon = convert(lat, lon, crs, datum)
    except ValueError:  # a datum the intake would not take: drawn as it is rather than dropped
        pass
    return [round(lon, 7), round(lat, 7)]


@dataclass(frozen=True)
class Words:
    """How the operator reads a case's type, state and time (the UI's own functions)."""

    type_label: Callable[[CaseSummary], str]
    status_label: Callable[[str], str]
    local: Callable[[datetime | None], str]


def case_features(
    cases: Iterable[CaseSummary], datum: str, colours: dict[str, str], words: Words
) -> list[dict[str, Any]]:
    """The located cases as points; a case without coordinates is left out."""
    out = []
    for c in cases:
        if c.lat is None or c.lon is None:
            continue
        status = c.status.value if hasattr(c.status, "value") else str(c.status)
        out.append(
            {
                "type": "Feature",
                "id": f"case-{c.id}",
                "geometry": {"type": "Point", "coordinates": _point(c.lat, c.lon, c.crs, datum)},
                "properties": {
                    "layer": "case",
                    "id": c.id,
                    "url": f"/ui/cases/{c.id}",
                    "violation": c.violation,
                    "type": words.type_label(c),
                    "status": status,
                    "status_label": words.status_label(status),
                    "time": words.local(c.first_detected_at),
                    "overdue": c.overdue,
                    "status_colour": status_colour(status),
                    "type_colour": colours.get(c.violation, OTHER_COLOUR),
                },
            }
        )
    return out


def camera_features(
    session: Any, datum: str, local: Callable[[datetime | None], str], visible: Callable[[str | None], bool]
) -> list[dict[str, Any]]:
    """Every camera the cases `visible` (a department account: its own department's) came
    from, at the mean of their locations (a fixed camera reports one place, so the mean is
    that place), with its number of cases and the latest one's arrival."""
    q = (
        select(
            m.Case.site_id,
            m.Case.camera_id,
            m.Case.crs,
            m.Case.department,
            func.avg(m.Case.lat),
            func.avg(m.Case.lon),
            func.count(),
            func.max(m.Case.created_at),  # max() keeps the column's type: an aware datetime
        )
        .where(m.Case.camera_id.is_not(None), m.Case.lat.is_not(None), m.Case.lon.is_not(None))
        .group_by(m.Case.site_id, m.Case.camera_id, m.Case.crs, m.Case.department)
    )
    cams: dict[tuple[str | None, str], dict[str, Any]] = {}
    for site_id, camera_id, crs, department, lat, lon, n, last in session.execute(q):
        if not visible(department):
            continue
        lon_lat = _point(float(lat), float(lon), crs, datum)
        cam = cams.setdefault((site_id, camera_id), {"n": 0, "lon": 0.0, "lat": 0.0, "last": last})
        cam["lon"] += lon_lat[0] * n
        cam["lat"] += lon_lat[1] * n
        cam["n"] += n
        cam["last"] = max(cam["last"], last)
    return [
        {
            "type": "Feature",
            "id": f"camera-{site_id}-{camera_id}",
            "geometry": {
                "type": "Point",
                "coordinates": [round(c["lon"] / c["n"], 7), round(c["lat"] / c["n"], 7)],
            },
            "properties": {
                "layer": "camera",
                "camera_id": camera_id,
                "site_id": site_id,
                "cases": int(c["n"]),
                "time": local(c["last"]),
            },
        }
        for (site_id, camera_id), c in sorted(cams.items(), key=lambda kv: (kv[0][0] or "", kv[0][1]))
    ]


@cache
def _grid_file(path: Path, mtime_ns: int) -> list[dict[str, Any]]:  # noqa: ARG001 # mtime: re-read on change
    data = json.loads(path.read_text(encoding="utf-8"))
    return [f for f in data.get("features", []) if isinstance(f, dict) and isinstance(f.get("geometry"), dict)]


def _convert_coords(coords: Any, datum: str) -> Any:
    if coords and isinstance(coords[0], (int, float)):
        lat, lon = convert(float(coords[1]), float(coords[0]), "WGS84", datum)
        return [round(lon, 7), round(lat, 7)]
    return [_convert_coords(c, datum) for c in coords]


def grid_features(path: Path | None, datum: str) -> list[dict[str, Any]]:
    """The unit grid outlines (GeoJSON is WGS84 by definition), in the tiles' datum."""
    if path is None:
        return []
    out = []
    for f in _grid_file(path, path.stat().st_mtime_ns):
        geom = f["geometry"]
        props = f.get("properties") or {}
        out.append(
            {
                "type": "Feature",
                "geometry": {
                    "type": geom.get("type"),
                    "coordinates": _convert_coords(geom.get("coordinates", []), datum),
                },
                "properties": {
                    "layer": "grid",
                    "grid_code": str(props.get("grid_code", "")),
                    "name": str(props.get("name", "")),
                },
            }
        )
    return out


def collection(
    cases: list[dict[str, Any]], cameras: list[dict[str, Any]], grids: list[dict[str, Any]], total: int, cap: int
) -> dict[str, Any]:
    """The FeatureCollection the map draws, with the counts and the notice when the cap bit."""
    shown = len(cases)
    capped = total > cap
    notice = ""
    if capped:
        notice = i18n.gettext(
            "Showing the newest %(shown)s of %(total)s matching cases: narrow the filter (dates, type) to see the others."
        ) % {"shown": f"{min(cap, total):,}", "total": f"{total:,}"}
    return {
        "type": "FeatureCollection",
        "features": grids + cameras + cases,
        "total": total,
        "shown": shown,
        "capped": capped,
        "notice": notice,
    }


def tile_sources(cfg: MapConfig) -> list[str]:
    """The origins the tile URL reaches (one per subdomain): what the page's img-src must allow."""
    if not cfg.tiles or cfg.tiles.startswith("/"):
        return []
    urls = [cfg.tiles.replace("{s}", s) for s in cfg.subdomains] if "{s}" in cfg.tiles else [cfg.tiles]
    out = []
    for u in urls:
        parts = urlsplit(u)
        origin = f"{parts.scheme}://{parts.netloc}"
        if origin not in out:
            out.append(origin)
    return out


def csp_with_images(csp: str, sources: list[str]) -> str:
    """The policy with `sources` added to img-src (the tile server); unchanged without any or without a policy."""
    if not csp or not sources:
        return csp
    directives = [d.strip() for d in csp.split(";") if d.strip()]
    for i, d in enumerate(directives):
        if d.split()[0] == "img-src":
            directives[i] = " ".join([d, *sources])
            break
    else:
        directives.append(" ".join(["img-src", "'self'", *sources]))
    return "; ".join(directives)

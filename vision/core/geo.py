"""Datum conversion between WGS84 and China's GCJ-02 (and Baidu's BD-09).

Why: Chinese web maps (AutoNavi/Gaode, Tencent; Baidu on top of it) draw their tiles
in GCJ-02, which is WGS84 shifted by a published nonlinear formula by a few hundred
metres; a WGS84 point drawn on such tiles lands beside the street it is on. Cameras and
cases say which datum their lat/lon is in (`vision.core.cases.Location.crs`), the map
says which datum its tiles are in, and points are converted from one to the other.

- wgs84 -> gcj02: the standard published formula (as in eviltransform and every
  Chinese map SDK), exact by definition;
- gcj02 -> wgs84: there is no closed form; a fixed-point iteration on the forward
  formula converges to well under 1e-7 degrees (about a centimetre) in a few steps;
- BD-09 <-> GCJ-02: Baidu's published rotation-and-scale of GCJ-02;
- outside China (the usual bounding box) GCJ-02 is WGS84: identity.

CGCS2000, China's official geodetic datum, agrees with WGS84 to centimetres and is
treated as WGS84. Coordinates are (lat, lon) in degrees throughout."""

from __future__ import annotations

import math
from typing import Literal

Datum = Literal["WGS84", "GCJ-02", "BD-09", "CGCS2000"]
DATUMS: tuple[str, ...] = ("WGS84", "GCJ-02", "BD-09", "CGCS2000")

_A = 6378245.0  # Krasovsky 1940 semi-major axis, as the formula has it
_EE = 0.00669342162296594323  # its first eccentricity squared
_X_PI = math.pi * 3000.0 / 180.0  # BD-09's constant
INVERSE_TOLERANCE_DEG = 1e-9  # gcj02_to_wgs84 stops when a step changes less than this
INVERSE_MAX_STEPS = 30


def out_of_china(lat: float, lon: float) -> bool:
    """Outside the box GCJ-02 is defined on (the published formula's own test): no shift there."""
    return not (72.004 <= lon <= 137.8347 and 0.8293 <= lat <= 55.8271)


def _shift_lat(x: float, y: float) -> float:
    r = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * math.sqrt(abs(x))
    r += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    r += (20.0 * math.sin(y * math.pi) + 40.0 * math.sin(y / 3.0 * math.pi)) * 2.0 / 3.0
    r += (160.0 * math.sin(y / 12.0 * math.pi) + 320.0 * math.sin(y * math.pi / 30.0)) * 2.0 / 3.0
    return r


def _shift_lon(x: float, y: float) -> float:
    r = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * math.sqrt(abs(x))
    r += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    r += (20.0 * math.sin(x * math.pi) + 40.0 * math.sin(x / 3.0 * math.pi)) * 2.0 / 3.0
    r += (150.0 * math.sin(x / 12.0 * math.pi) + 300.0 * math.sin(x / 30.0 * math.pi)) * 2.0 / 3.0
    return r


def _delta(lat: float, lon: float) -> tuple[float, float]:
    """GCJ-02 minus WGS84 at the WGS84 point (lat, lon), in degrees."""
    d_lat = _shift_lat(lon - 105.0, lat - 35.0)
    d_lon = _shift_lon(lon - 105.0, lat - 35.0)
    rad = lat / 180.0 * math.pi
    magic = 1.0 - _EE * math.sin(rad) ** 2
    sqrt_magic = math.sqrt(magic)
    d_lat = d_lat * 180.0 / ((_A * (1.0 - _EE)) / (magic * sqrt_magic) * math.pi)
    d_lon = d_lon * 180.0 / (_A / sqrt_magic * math.cos(rad) * math.pi)
    return d_lat, d_lon


def wgs84_to_gcj02(lat: float, lon: float) -> tuple[float, float]:
    """A WGS84 point as GCJ-02 (the published forward formula)."""
    if out_of_china(lat, lon):
        return lat, lon
    d_lat, d_lon = _delta(lat, lon)
    return lat + d_lat, lon + d_lon


def gcj02_to_wgs84(lat: float, lon: float) -> tuple[float, float]:
    """A GCJ-02 point as WGS84: the WGS84 point whose forward shift lands on it, by
    fixed-point iteration (the shift varies slowly, so each step gains orders of magnitude)."""
    if out_of_china(lat, lon):
        return lat, lon
    w_lat, w_lon = lat, lon
    for _ in range(INVERSE_MAX_STEPS):
        g_lat, g_lon = wgs84_to_gcj02(w_lat, w_lon)
        step_lat, step_lon = lat - g_lat, lon - g_lon
        w_lat, w_lon = w_lat + step_lat, w_lon + step_lon
        if abs(step_lat) < INVERSE_TOLERANCE_DEG and abs(step_lon) < INVERSE_TOLERANCE_DEG:
            break
    return w_lat, w_lon


def gcj02_to_bd09(lat: float, lon: float) -> tuple[float, float]:
    """A GCJ-02 point as Baidu's BD-09."""
    z = math.hypot(lon, lat) + 0.00002 * math.sin(lat * _X_PI)
    theta = math.atan2(lat, lon) + 0.000003 * math.cos(lon * _X_PI)
    return z * math.sin(theta) + 0.006, z * math.cos(theta) + 0.0065


def bd09_to_gcj02(lat: float, lon: float) -> tuple[float, float]:
    """A BD-09 point as GCJ-02 (Baidu's published inverse, good to about 1e-6 degrees)."""
    x, y = lon - 0.0065, lat - 0.006
    z = math.hypot(x, y) - 0.00002 * math.sin(y * _X_PI)
    theta = math.atan2(y, x) - 0.000003 * math.cos(x * _X_PI)
    return z * math.sin(theta), z * math.cos(theta)


def _canonical(datum: str) -> str:
    d = datum.strip().upper().replace("_", "-")
    if d in ("WGS84", "WGS-84", "CGCS2000", "EPSG:4326"):
        return "WGS84"
    if d in ("GCJ-02", "GCJ02"):
        return "GCJ-02"
    if d in ("BD-09", "BD09"):
        return "BD-09"
    raise ValueError(f"unknown datum '{datum}' (known: {', '.join(DATUMS)})")


def convert(lat: float, lon: float, source: str, target: str) -> tuple[float, float]:
    """(lat, lon) in datum `source` as datum `target`; both one of DATUMS."""
    src, dst = _canonical(source), _canonical(target)
    if src == dst:
        return lat, lon
    if src == "BD-09":
        lat, lon = bd09_to_gcj02(lat, lon)
        src = "GCJ-02"
    if src == "GCJ-02" and dst == "WGS84":
        return gcj02_to_wgs84(lat, lon)
    if src == "WGS84":
        lat, lon = wgs84_to_gcj02(lat, lon)
    # now in GCJ-02
    return gcj02_to_bd09(lat, lon) if dst == "BD-09" else (lat, lon)


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres (haversine, mean Earth radius): how far a shift moves a point."""
    r = 6371008.8
    p1, p2 = math.radians(lat1), math.radians(lat2)
    a = math.sin((p2 - p1) / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    return 2 * r * math.asin(math.sqrt(a))

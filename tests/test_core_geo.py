"""Datum conversion (vision/core/geo.py): the published GCJ-02 reference pairs, the
iterative inverse to under 1e-6 degrees, the size of the shift, identity outside China."""

from __future__ import annotations

import itertools

import pytest

from vision.core.geo import (
    bd09_to_gcj02,
    convert,
    distance_m,
    gcj02_to_bd09,
    gcj02_to_wgs84,
    out_of_china,
    wgs84_to_gcj02,
)

# (WGS84, GCJ-02) pairs published with the formula's reference implementations (eviltransform's tests)
REFERENCE = [
    ((31.1774276, 121.5272106), (31.17530398364597, 121.531541859215)),  # Shanghai
    ((22.543847, 113.912316), (22.540796131694766, 113.9171764808363)),  # Shenzhen
    ((39.911954, 116.377817), (39.91334545536069, 116.38404722455657)),  # Beijing
]


@pytest.mark.parametrize(("wgs", "gcj"), REFERENCE)
def test_forward_formula_matches_the_published_pairs(wgs: tuple[float, float], gcj: tuple[float, float]) -> None:
    assert wgs84_to_gcj02(*wgs) == pytest.approx(gcj, abs=1e-12)


@pytest.mark.parametrize(("wgs", "gcj"), REFERENCE)
def test_inverse_recovers_the_wgs84_point(wgs: tuple[float, float], gcj: tuple[float, float]) -> None:
    lat, lon = gcj02_to_wgs84(*gcj)
    assert abs(lat - wgs[0]) < 1e-6 and abs(lon - wgs[1]) < 1e-6
    assert distance_m(lat, lon, *wgs) < 0.01  # centimetres


def test_round_trip_error_over_china_is_below_1e_6_degrees() -> None:
    worst = 0.0
    for lat, lon in itertools.product(range(18, 54, 3), range(74, 136, 4)):
        p = (lat + 0.123, lon + 0.456)
        back = gcj02_to_wgs84(*wgs84_to_gcj02(*p))
        worst = max(worst, abs(back[0] - p[0]), abs(back[1] - p[1]))
    assert worst < 1e-6


def test_the_shift_is_hundreds_of_metres() -> None:
    beijing = (39.9087, 116.3975)  # Tiananmen
    shift = distance_m(*beijing, *wgs84_to_gcj02(*beijing))
    assert 300 < shift < 800, shift
    demo = (31.2304, 121.4737)  # the demo site (configs/site-demo.yaml), Shanghai
    g = wgs84_to_gcj02(*demo)
    assert 400 < distance_m(*demo, *g) < 700 and g[1] > demo[1] and g[0] < demo[0]  # east and a little south


@pytest.mark.parametrize("point", [(52.52, 13.405), (40.7128, -74.006), (-33.86, 151.21), (0.5, 100.0), (60.0, 100.0)])
def test_identity_outside_china(point: tuple[float, float]) -> None:
    assert out_of_china(*point)
    assert wgs84_to_gcj02(*point) == point and gcj02_to_wgs84(*point) == point
    assert convert(*point, "WGS84", "GCJ-02") == point


def test_bd09_round_trip_and_its_offset() -> None:
    g = (31.2304, 121.4737)
    bd = gcj02_to_bd09(*g)
    assert bd09_to_gcj02(*bd) == pytest.approx(g, abs=2e-6)
    assert 500 < distance_m(*g, *bd) < 1000  # Baidu's extra shift: another few hundred metres


def test_convert_between_named_datums() -> None:
    wgs, gcj = REFERENCE[0]
    assert convert(*wgs, "WGS84", "GCJ-02") == wgs84_to_gcj02(*wgs)
    assert convert(*wgs, "CGCS2000", "gcj02") == wgs84_to_gcj02(*wgs)
    assert convert(*gcj, "GCJ-02", "WGS84") == gcj02_to_wgs84(*gcj)
    assert convert(*gcj, "GCJ-02", "GCJ-02") == gcj
    assert convert(*wgs, "WGS84", "BD-09") == gcj02_to_bd09(*wgs84_to_gcj02(*wgs))
    with pytest.raises(ValueError, match="unknown datum"):
        convert(*wgs, "OSGB36", "WGS84")

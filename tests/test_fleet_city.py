"""A simulated city against the real center (issue 15's check, shortened): edge boxes as light
clients send heartbeats and bursts of cases (some twice, as after a lost answer) into
`streetvision dispatch serve --workers 2` on a real PostgreSQL. Every case delivered is stored
once; the cameras the simulation takes offline and the box it silences become maintenance
alerts within the configured time and close once they are back. The full-size run (50 boxes x
10 cameras, 5 minutes) is `benchmarks/fleet_city.py`; its figures are in docs/PERFORMANCE.md."""

from __future__ import annotations

import pytest

from benchmarks.fleet_city import CityCenter, FleetLimits, Plan, run_city, verify
from tests.support_dispatch import PgServer

pytestmark = pytest.mark.slow


@pytest.mark.timeout(240)
def test_a_simulated_city_loses_nothing_and_every_outage_is_an_alert_that_clears(pg_server: PgServer) -> None:
    plan = Plan(boxes=12, cameras=10, heartbeat_s=1.0, duration_s=36, burst_every_s=3, offline_boxes=2, silent_boxes=1)
    limits = FleetLimits.for_plan(plan)  # offline / silent after 3 s, checked every 0.5 s
    db = pg_server.fresh_database()
    with CityCenter(db, plan, workers=2, limits=limits) as (url, tokens):
        out = run_city(url, tokens, plan)
        verdict = verify(db, out)
    assert out.errors == []
    assert len(out.delivered) > 50
    assert (verdict.lost, verdict.duplicated, verdict.stored) == (0, 0, len(out.delivered))
    # 2 boxes x 2 cameras offline, 1 box silent: each one alert, and nothing else
    assert set(verdict.alerts) == set(out.offline_at) and len(verdict.alerts) == 5
    slack = limits.check_every_s + 2 * plan.heartbeat_s + 1.0  # a heartbeat's and a check's period, and the load
    for key, (opened, closed) in verdict.alerts.items():
        limit = limits.box_silent_after_s if key[1] is None else limits.camera_offline_after_s
        assert opened is not None and opened <= limit + slack, (key, opened)
        assert closed is not None and closed <= slack, (key, closed)
    pg_server.drop(db)

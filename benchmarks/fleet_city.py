"""A simulated city against a real dispatch center: many edge boxes, heartbeats, bursts of cases,
cameras taken offline and a box that falls silent.

    .venv/bin/python benchmarks/fleet_city.py [--boxes 50] [--cameras 10] [--heartbeat-s 10] [--minutes 5] [--workers 2]
    .venv/bin/python benchmarks/fleet_city.py --quick

Starts a private PostgreSQL 15 cluster and `streetvision dispatch serve --workers N` on it
(benchmarks/dispatch_intake.py), registers one device token per box, then runs every box as a
light client thread (not a daemon): a heartbeat with its cameras every `--heartbeat-s`, and now
and then a burst of cases (each with a small JPEG snapshot), some of them sent twice as a box
does when an answer is lost. A third of the way in, the first boxes report two cameras offline
and one box stops talking; two thirds of the way in, they come back. At the end the database
is read: every case delivered is stored once (0 lost, 0 duplicated), and each offline camera and
the silent box became a maintenance alert within the configured time and closed after it was
back. Prints cases/s, intake latency p50/p95, heartbeat latency p95 and the alert delays.
The same simulation, shorter, is tests/test_fleet_city.py.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import statistics
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parent.parent


@dataclass
class Plan:
    boxes: int = 50
    cameras: int = 10
    heartbeat_s: float = 10.0
    duration_s: float = 300.0
    burst_every_s: float = 20.0  # mean seconds between two bursts of one box
    burst_cases: int = 3
    resend_share: float = 0.1  # cases sent a second time (an answer lost on the way)
    offline_boxes: int = 3  # boxes whose first two cameras go offline for the middle third
    silent_boxes: int = 1  # boxes that stop talking for the middle third (after the offline ones)
    seed: int = 7


@dataclass
class Outcome:
    delivered: dict[str, int] = field(default_factory=dict)  # idempotency key -> case id the center answered
    case_latency_s: list[float] = field(default_factory=list)
    heartbeat_latency_s: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    offline_at: dict[tuple[str, str | None], float] = field(default_factory=dict)  # (site, camera|None) -> wall time
    back_at: dict[tuple[str, str | None], float] = field(default_factory=dict)
    wall_s: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)


def snapshot_jpeg() -> bytes:
    import cv2
    import numpy as np

    rng = np.random.default_rng(0)
    image = (rng.random((360, 640, 3)) * 255).astype(np.uint8)
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 70])
    assert ok
    return buf.tobytes()


def _case(site: str, camera: str, jpeg: bytes, n: int) -> dict[str, Any]:
    now = datetime.now(UTC).isoformat()
    x = (n % 8) / 10
    return {
        "idempotency_key": str(uuid.uuid4()),
        "site_id": site,
        "camera_id": camera,
        "rule": "vending",
        "violation": "street_vending",
        "event_code": "0401",
        "event_name": "无照经营游商",
        "taxonomy_edition": "GB/T 30428.2-2013",
        "detected_at": now,
        "onset_at": now,
        "location": {"crs": "WGS84", "lat": 31.23, "lon": 121.47},
        "grid_code": "310101001001001",
        "zone": "plaza",
        "bbox": [x, 0.1, x + 0.05, 0.2],
        "confidence": 0.8,
        "object_count": 1,
        "dwell_s": 60,
        "classes": ["vendor_stall"],
        "model_name": "sim",
        "model_version": "1",
        "evidence": [
            {
                "name": "snapshot.jpg",
                "kind": "snapshot",
                "content_type": "image/jpeg",
                "sha256": hashlib.sha256(jpeg).hexdigest(),
                "size_bytes": len(jpeg),
            }
        ],
    }


class Box(threading.Thread):
    def __init__(self, n: int, url: str, token: str, plan: Plan, jpeg: bytes, out: Outcome, t0: float) -> None:
        super().__init__(name=f"box-{n}", daemon=True)
        self.n, self.plan, self.jpeg, self.out, self.t0 = n, plan, jpeg, out, t0
        self.site = f"box-{n:03d}"
        self.cameras = [f"cam-{c:02d}" for c in range(plan.cameras)]
        self.client = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
        self.rng = random.Random(plan.seed * 1000 + n)
        self.started = datetime.now(UTC).isoformat()
        self.offline = n < plan.offline_boxes
        self.silent = plan.offline_boxes <= n < plan.offline_boxes + plan.silent_boxes
        self.cases_sent = 0
        self.last_beat = time.time()

    def run(self) -> None:
        """Cases in this thread, heartbeats in another: as on a real box, a slow case post does not
        hold back the sign of life."""
        beats = threading.Thread(target=self.heartbeats, name=f"{self.name}-heartbeat", daemon=True)
        beats.start()
        p = self.plan
        end = self.t0 + p.duration_s
        if p.burst_every_s <= 0:  # heartbeats only
            beats.join()
            self.client.close()
            return
        next_burst = time.monotonic() + self.rng.expovariate(1 / p.burst_every_s)
        while time.monotonic() < end:
            time.sleep(max(0.0, min(next_burst, end) - time.monotonic()))
            if time.monotonic() >= end:
                break
            for _ in range(p.burst_cases):
                self.post_case()
            next_burst += self.rng.expovariate(1 / p.burst_every_s)
        beats.join()
        self.client.close()

    def heartbeats(self) -> None:
        p = self.plan
        end = self.t0 + p.duration_s
        next_beat = time.monotonic() + self.rng.random() * p.heartbeat_s  # boxes do not start in step
        while (now := time.monotonic()) < end:
            time.sleep(max(0.0, min(next_beat, end) - now))
            if time.monotonic() >= end:
                break
            middle = 1 / 3 <= (time.monotonic() - self.t0) / p.duration_s < 2 / 3
            key = (self.site, None)
            if self.silent and middle:
                with self.out.lock:
                    self.out.offline_at.setdefault(key, self.last_beat)  # silent since its last beat
            else:
                self.beat(middle)
                self.last_beat = time.time()
                if self.silent and key in self.out.offline_at:
                    with self.out.lock:
                        self.out.back_at.setdefault(key, time.time())
            next_beat += p.heartbeat_s

    def beat(self, middle: bool) -> None:
        states = dict.fromkeys(self.cameras, "online")
        if self.offline and middle:
            for c in self.cameras[:2]:
                states[c] = "offline"
        body = {
            "site_id": self.site,
            "sent_at": datetime.now(UTC).isoformat(),
            "started_at": self.started,
            "software_version": "sim",
            "config_sha256": "0" * 64,
            "disk_free_bytes": 10_000_000_000,
            "disk_level": "ok",
            "queue_depth": 0,
            "models": [{"name": "sim", "version": "1"}],
            "cameras": [
                {"camera_id": c, "state": s, "fps": 2.0 if s == "online" else 0.0, "decode_errors": 0, "reconnects": 0}
                for c, s in states.items()
            ],
        }
        t = time.perf_counter()
        try:
            r = self.client.post(
                "/api/v1/heartbeats", files=[("heartbeat", (None, json.dumps(body), "application/json"))]
            )
        except httpx.HTTPError as exc:
            self._error(f"heartbeat: {exc}")
            return
        with self.out.lock:
            self.out.heartbeat_latency_s.append(time.perf_counter() - t)
            if self.offline:
                for c in self.cameras[:2]:
                    key = (self.site, c)
                    if middle:  # from the heartbeat that told the center
                        self.out.offline_at.setdefault(key, time.time())
                    elif key in self.out.offline_at:
                        self.out.back_at.setdefault(key, time.time())
        if r.status_code != 200:
            self._error(f"heartbeat: HTTP {r.status_code} {r.text[:200]}")

    def post_case(self) -> None:
        self.cases_sent += 1
        report = _case(self.site, self.rng.choice(self.cameras), self.jpeg, self.cases_sent)
        sends = 2 if self.rng.random() < self.plan.resend_share else 1
        for _ in range(sends):
            files = [
                ("case", (None, json.dumps(report), "application/json")),
                ("snapshot.jpg", ("snapshot.jpg", self.jpeg, "image/jpeg")),
            ]
            t = time.perf_counter()
            try:
                r = self.client.post("/api/v1/cases", files=files)
            except httpx.HTTPError as exc:
                self._error(f"case: {exc}")
                continue
            if r.status_code not in (200, 201):
                self._error(f"case: HTTP {r.status_code} {r.text[:200]}")
                continue
            with self.out.lock:
                self.out.case_latency_s.append(time.perf_counter() - t)
                cid = r.json()["case_id"]
                if self.out.delivered.setdefault(report["idempotency_key"], cid) != cid:
                    self.out.errors.append(f"case {report['idempotency_key']}: answered as two cases")

    def _error(self, what: str) -> None:
        with self.out.lock:
            self.out.errors.append(f"{self.site} {what}")


def run_city(url: str, tokens: list[str], plan: Plan) -> Outcome:
    """Runs every box until `plan.duration_s` is over; the boxes' own record of what happened."""
    jpeg = snapshot_jpeg()
    out = Outcome()
    t0 = time.monotonic()
    boxes = [Box(n, url, tokens[n], plan, jpeg, out, t0) for n in range(plan.boxes)]
    for b in boxes:
        b.start()
    for b in boxes:
        b.join(plan.duration_s + 120)
    out.wall_s = time.monotonic() - t0
    return out


@dataclass
class Verdict:
    stored: int
    lost: int
    duplicated: int
    alerts: dict[tuple[str, str | None], tuple[float | None, float | None]]  # -> (opened after, closed after) s


def verify(db_url: str, out: Outcome) -> Verdict:
    """What the center's database holds against what the boxes were told."""
    from sqlalchemy import create_engine, text

    engine = create_engine(db_url)
    with engine.connect() as c:
        rows = c.execute(text("SELECT o.idempotency_key, o.case_id FROM occurrences o")).all()
        alert_rows = c.execute(
            text(
                "SELECT c.site_id, c.camera_id, c.created_at, c.closed_at FROM cases c "
                "WHERE c.violation = 'device_offline' ORDER BY c.id"
            )
        ).all()
    engine.dispose()
    stored: dict[str, list[int]] = {}
    for key, cid in rows:
        stored.setdefault(str(key), []).append(cid)
    lost = sum(1 for k in out.delivered if k not in stored)
    duplicated = sum(len(v) - 1 for v in stored.values()) + sum(
        1 for k, cid in out.delivered.items() if k in stored and stored[k] != [cid]
    )
    alerts: dict[tuple[str, str | None], tuple[float | None, float | None]] = {}
    for site, camera, created, closed in alert_rows:
        key = (site, camera)
        went = out.offline_at.get(key)
        back = out.back_at.get(key)
        opened_after = created.timestamp() - went if went is not None else None
        closed_after = closed.timestamp() - back if (closed is not None and back is not None) else None
        alerts[key] = (opened_after, closed_after)
    return Verdict(stored=len(stored), lost=lost, duplicated=duplicated, alerts=alerts)


@dataclass
class Footprint:
    """What the run left on disk: rows and bytes per table (indexes and TOAST included), evidence files."""

    tables: list[tuple[str, int, int]]  # (table, rows, bytes)
    database_bytes: int
    evidence_files: int
    evidence_bytes: int


def footprint(db_url: str, data_dir: Path) -> Footprint:
    from sqlalchemy import create_engine, inspect, text

    engine = create_engine(db_url)
    tables = []
    with engine.connect() as c:
        for name in inspect(c).get_table_names():
            rows = c.execute(text(f'SELECT count(*) FROM "{name}"')).scalar_one()
            size = c.execute(text("SELECT pg_total_relation_size(:t)"), {"t": name}).scalar_one()
            tables.append((name, int(rows), int(size)))
        database = c.execute(text("SELECT pg_database_size(current_database())")).scalar_one()
    engine.dispose()
    files = [f for f in data_dir.rglob("*") if f.is_file()]  # evidence, camera pictures, staging leftovers
    return Footprint(
        sorted(tables, key=lambda t: -t[2]), int(database), len(files), sum(f.stat().st_size for f in files)
    )


def main() -> None:
    sys.path.insert(0, str(REPO / "benchmarks"))
    sys.path.insert(0, str(REPO))
    from common import print_machine
    from dispatch_intake import Postgres, tree_cpu_s

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--boxes", type=int, default=50)
    ap.add_argument("--cameras", type=int, default=10)
    ap.add_argument("--heartbeat-s", type=float, default=10.0)
    ap.add_argument("--minutes", type=float, default=5.0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--burst-every-s", type=float, default=20.0, help="mean s between a box's bursts; 0: no cases")
    ap.add_argument("--quick", action="store_true", help="10 boxes, 1 minute, heartbeats every 2 s")
    args = ap.parse_args()
    plan = Plan(
        boxes=args.boxes,
        cameras=args.cameras,
        heartbeat_s=args.heartbeat_s,
        duration_s=args.minutes * 60,
        burst_every_s=args.burst_every_s,
    )
    if args.quick:
        plan = Plan(boxes=10, cameras=10, heartbeat_s=2.0, duration_s=60, burst_every_s=5)
    limits = FleetLimits.for_plan(plan)
    print_machine()
    pg = Postgres()
    try:
        center = CityCenter(pg.url, plan, args.workers, limits)
        with center as (url, tokens):
            server0, pg0 = tree_cpu_s([center.server.pid]), tree_cpu_s(pg.pids())
            out = run_city(url, tokens, plan)
            cpu = (tree_cpu_s([center.server.pid]) - server0, tree_cpu_s(pg.pids()) - pg0)
            verdict = verify(pg.url, out)
            disk = footprint(pg.url, center.tmp / "data")
    finally:
        pg.stop()
    report(plan, args.workers, out, verdict, limits)
    heartbeats = len(out.heartbeat_latency_s)
    print(
        f"CPU over the run: center {cpu[0]:.1f} s, PostgreSQL {cpu[1]:.1f} s "
        f"({100 * (cpu[0] + cpu[1]) / out.wall_s:.0f} % of one core) for {len(out.case_latency_s)} case posts "
        f"and {heartbeats} heartbeats"
    )
    print(
        f"on disk: PostgreSQL database {disk.database_bytes / 1e6:.1f} MB, evidence {disk.evidence_files} files "
        f"{disk.evidence_bytes / 1e6:.1f} MB ({disk.evidence_bytes / max(1, verdict.stored) / 1e3:.0f} KB per stored case)"
    )
    print("  table                      rows        bytes")
    for name, rows, size in disk.tables:
        if rows:
            print(f"  {name:<24} {rows:>6} {size / 1e3:>10.0f} KB")


@dataclass(frozen=True)
class FleetLimits:
    """The center's fleet times for a simulation: silence noticed within a few heartbeats."""

    camera_offline_after_s: float
    box_silent_after_s: float
    check_every_s: float

    @classmethod
    def for_plan(cls, plan: Plan) -> FleetLimits:
        return cls(3 * plan.heartbeat_s, 3 * plan.heartbeat_s, plan.heartbeat_s / 2)


class CityCenter:
    """`streetvision dispatch serve --workers N` on `db_url` with the fleet times of `limits`, one
    device token per box; use as `with CityCenter(...) as (url, tokens):`."""

    def __init__(self, db_url: str, plan: Plan, workers: int, limits: FleetLimits) -> None:
        self.db_url, self.plan, self.workers, self.limits = db_url, plan, workers, limits

    def __enter__(self) -> tuple[str, list[str]]:
        import dataclasses
        import subprocess
        import tempfile

        import yaml

        from vision.dispatch.server import free_port, wait_healthy
        from vision.dispatch.service import DispatchService
        from vision.dispatch.settings import Settings

        self.tmp = Path(tempfile.mkdtemp(prefix="sv-city-"))
        cfg = yaml.safe_load((REPO / "configs" / "dispatch.yaml").read_text(encoding="utf-8"))
        cfg["map"]["grids"] = str(REPO / "configs" / cfg["map"]["grids"])
        cfg["fleet"].update(dataclasses.asdict(self.limits))
        config = self.tmp / "dispatch.yaml"
        config.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
        settings = Settings(data_dir=self.tmp / "data", db_url=self.db_url, config_path=config)
        service = DispatchService.from_settings(settings)  # migrates the schema
        tokens = [service.create_client(f"box-{n:03d}", "device", f"box-{n:03d}")[1] for n in range(self.plan.boxes)]
        service.close()
        port = free_port()
        self.log = open(self.tmp / "server.log", "wb")  # noqa: SIM115 - the server writes it until it stops
        self.server = subprocess.Popen(
            [sys.executable, "-m", "vision", "dispatch", "serve", "--db", self.db_url]
            + ["--data-dir", str(self.tmp / "data"), "--config", str(config)]
            + ["--port", str(port), "--workers", str(self.workers)],
            cwd=REPO,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        url = f"http://127.0.0.1:{port}"
        wait_healthy(url, 60, self.server)
        return url, tokens

    def server_log(self) -> str:
        return (self.tmp / "server.log").read_text(encoding="utf-8", errors="replace")

    def __exit__(self, *_exc: object) -> None:
        import os
        import shutil
        import signal
        import subprocess

        try:
            os.killpg(self.server.pid, signal.SIGTERM)
            self.server.wait(timeout=30)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            self.server.kill()
            self.server.wait(timeout=30)
        self.log.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


def report(plan: Plan, workers: int, out: Outcome, v: Verdict, limits: FleetLimits) -> None:
    lat = sorted(out.case_latency_s)
    hb = sorted(out.heartbeat_latency_s)

    def q(xs: list[float], p: float) -> float:
        return 1000 * xs[min(len(xs) - 1, int(p * len(xs)))] if xs else float("nan")

    print(
        f"{plan.boxes} boxes x {plan.cameras} cameras, heartbeat every {plan.heartbeat_s:g} s, "
        f"{out.wall_s:.0f} s, center with {workers} worker(s) on PostgreSQL"
    )
    print(
        f"cases: {len(out.delivered)} delivered ({len(lat)} posts, resends included), {v.stored} stored, "
        f"{v.lost} lost, {v.duplicated} duplicated; {len(out.delivered) / out.wall_s:.1f} cases/s; "
        + (f"intake p50 {q(lat, 0.5):.0f} ms, p95 {q(lat, 0.95):.0f} ms" if lat else "none posted (--burst-every-s 0)")
    )
    print(f"heartbeats: {len(hb)}, {len(hb) / out.wall_s:.1f}/s, p50 {q(hb, 0.5):.0f} ms, p95 {q(hb, 0.95):.0f} ms")
    print(
        f"alerts (camera offline after {limits.camera_offline_after_s:g} s, box silent after "
        f"{limits.box_silent_after_s:g} s, checked every {limits.check_every_s:g} s):"
    )
    for key, (opened, closed) in sorted(v.alerts.items(), key=lambda kv: (kv[0][0], kv[0][1] or "")):
        print(
            f"  {key[0]} {key[1] or '(the box)'}: opened {opened:.1f} s after, closed "
            + ("with the heartbeat that said it was back" if closed < 0.5 else f"{closed:.1f} s after it was back")
            if opened is not None and closed is not None
            else f"  {key}: opened {opened}, closed {closed}"
        )
    missing = set(out.offline_at) - set(v.alerts)
    print(f"offline without an alert: {sorted(missing, key=str) or 'none'}; client errors: {len(out.errors)}")
    for e in out.errors[:5]:
        print("  ", e)
    if out.case_latency_s:
        print(f"mean intake latency {1000 * statistics.fmean(out.case_latency_s):.0f} ms")


if __name__ == "__main__":
    main()

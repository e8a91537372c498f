"""Dispatch-center intake: cases per second, each with evidence, on PostgreSQL.

    .venv/bin/python benchmarks/dispatch_intake.py [--cases 300] [--concurrency 8] [--workers 1,2,4]
    .venv/bin/python benchmarks/dispatch_intake.py --quick

Starts a private PostgreSQL 15 cluster (initdb + pg_ctl on 127.0.0.1, a free port, a temp
dir; durable defaults: fsync and synchronous_commit on), and for each `--workers` count a
fresh database, one edge device and `streetvision dispatch serve --db postgresql+psycopg://...
--workers N` as a subprocess, and posts
`--cases` distinct CaseReports (one camera id each, so none merge) from `--concurrency`
client threads over HTTP, each with a 1920x1080 JPEG snapshot of the footage and a
5 s 640x360 H.264 MP4 clip, as an edge box sends them. Reports cases/s, request latency
p50/p95, and the CPU of the server, PostgreSQL and the client (the client shares the
machine, so a dedicated server would do at least as well); with several worker counts, each
one's cases/s as a ratio to the first, measured in the same run.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import pwd
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import BENCH_DIR, REPO, CpuClock, load_frames, print_machine

PG_BIN = Path("/usr/lib/postgresql/15/bin")


def _as_postgres(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


class Postgres:
    """A throwaway cluster; stop() removes it."""

    def __init__(self) -> None:
        if not (PG_BIN / "initdb").exists():
            raise SystemExit(f"PostgreSQL 15 not found at {PG_BIN} (apt-get install postgresql-15)")
        from vision.dispatch.server import free_port

        self.tmp = Path(tempfile.mkdtemp(prefix="sv-bench-pg-"))
        self.data = self.tmp / "data"
        self.user = "postgres" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name
        if os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")
            os.chown(self.tmp, pw.pw_uid, pw.pw_gid)
        self.port = free_port()
        subprocess.run(
            _as_postgres(
                [
                    str(PG_BIN / "initdb"),
                    "-D",
                    str(self.data),
                    "-A",
                    "trust",
                    "-U",
                    self.user,
                    "-E",
                    "UTF8",
                    "--locale=C",
                ]
            ),
            check=True,
            capture_output=True,
        )
        opts = f"-p {self.port} -k {self.tmp} -c listen_addresses=127.0.0.1"
        subprocess.run(
            _as_postgres(
                [
                    str(PG_BIN / "pg_ctl"),
                    "-D",
                    str(self.data),
                    "-o",
                    opts,
                    "-l",
                    str(self.tmp / "pg.log"),
                    "-w",
                    "-t",
                    "60",
                    "start",
                ]
            ),
            check=True,
            capture_output=True,
        )
        import psycopg

        with psycopg.connect(f"host=127.0.0.1 port={self.port} user={self.user} dbname=postgres", autocommit=True) as c:
            c.execute("CREATE DATABASE sv_bench")
        self.url = f"postgresql+psycopg://{self.user}@127.0.0.1:{self.port}/sv_bench"

    def fresh(self, name: str) -> str:
        """A new empty database on the cluster; its URL."""
        import psycopg

        with psycopg.connect(f"host=127.0.0.1 port={self.port} user={self.user} dbname=postgres", autocommit=True) as c:
            c.execute(f"CREATE DATABASE {name}")
        return f"postgresql+psycopg://{self.user}@127.0.0.1:{self.port}/{name}"

    def pids(self) -> list[int]:
        import psutil

        pid = int((self.data / "postmaster.pid").read_text().split()[0])
        root = psutil.Process(pid)
        return [root.pid, *(c.pid for c in root.children(recursive=True))]

    def stop(self) -> None:
        subprocess.run(
            _as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"]),
            check=False,
            capture_output=True,
        )
        shutil.rmtree(self.tmp, ignore_errors=True)


def tree_cpu_s(pids: list[int]) -> float:
    """CPU seconds of processes and their children (live ones; PostgreSQL backends live per connection)."""
    import psutil

    total = 0.0
    seen: set[int] = set()
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            for p in [proc, *proc.children(recursive=True)]:
                if p.pid in seen:
                    continue
                seen.add(p.pid)
                t = p.cpu_times()
                total += t.user + t.system
        except psutil.NoSuchProcess:
            continue
    return total


def evidence() -> dict[str, tuple[str, str, bytes]]:
    """A 1080p JPEG snapshot and a 5 s clip of the footage (made once, cached)."""
    import cv2

    cache = BENCH_DIR / "evidence"
    cache.mkdir(parents=True, exist_ok=True)
    jpg, mp4 = cache / "snapshot-1080p.jpg", cache / "clip-5s-360p.mp4"
    frames = None
    if not jpg.is_file():
        frames = frames or load_frames(50)
        _ok, buf = cv2.imencode(".jpg", cv2.resize(frames[0], (1920, 1080)), [cv2.IMWRITE_JPEG_QUALITY, 85])
        jpg.write_bytes(buf.tobytes())
    if not mp4.is_file():
        import av

        frames = frames or load_frames(50)
        with av.open(str(mp4), "w", format="mp4", options={"movflags": "+faststart"}) as container:
            stream = container.add_stream("libx264", rate=10)
            stream.width, stream.height, stream.pix_fmt = 640, 360, "yuv420p"
            stream.options = {"preset": "veryfast"}
            for f in frames:
                frame = av.VideoFrame.from_ndarray(cv2.resize(f, (640, 360)), format="bgr24")
                for packet in stream.encode(frame):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
    return {"snapshot": ("snapshot", "image/jpeg", jpg.read_bytes()), "clip": ("clip", "video/mp4", mp4.read_bytes())}


def case_report(i: int, ev: dict[str, tuple[str, str, bytes]]) -> dict:
    """A CaseReport (vision.core.cases) as the edge sends it; camera i so that no two merge."""
    now = datetime.now(UTC)
    return {
        "idempotency_key": str(uuid.uuid4()),
        "site_id": "site-a",
        "camera_id": f"cam-{i:05d}",
        "violation": "street_vending",
        "rule": "street_vending_rule",
        "event_code": "0401",
        "event_name": "无照经营游商",
        "taxonomy_edition": "GB/T 30428.2-2013",
        "location": {"crs": "WGS84", "lat": 31.2304, "lon": 121.4737, "address": "南京东路 100 号"},
        "grid_code": "310101001001001",
        "zone": "sidewalk",
        "bbox": [0.2, 0.3, 0.4, 0.6],
        "object_count": 1,
        "classes": ["person"],
        "confidence": 0.87,
        "onset_at": (now - timedelta(minutes=4)).isoformat(),
        "detected_at": now.isoformat(),
        "dwell_s": 240.0,
        "model_name": "city-v1",
        "model_version": "bench",
        "evidence": [
            {
                "name": n,
                "kind": kind,
                "content_type": ctype,
                "sha256": hashlib.sha256(data).hexdigest(),
                "size_bytes": len(data),
            }
            for n, (kind, ctype, data) in ev.items()
        ],
    }


def measure(pg: Postgres, workers: int, args: argparse.Namespace, ev: dict[str, tuple[str, str, bytes]]) -> dict:
    """One server with `workers` processes on a fresh database of `pg`: the intake figures."""
    import httpx

    from vision.dispatch.server import free_port, wait_healthy
    from vision.dispatch.service import DispatchService
    from vision.dispatch.settings import Settings

    data_dir = Path(tempfile.mkdtemp(prefix="sv-bench-dispatch-"))
    db_url = pg.fresh(f"sv_bench_w{workers}")
    server = None
    try:
        settings = Settings(data_dir=data_dir, db_url=db_url)
        service = DispatchService.from_settings(settings)  # migrates the schema
        _, token = service.create_client("bench-edge", "device", "site-a")
        service.close()
        port = free_port()
        log = open(BENCH_DIR / f"dispatch-server-w{workers}.log", "wb")  # noqa: SIM115 (the server keeps it until exit)
        server = subprocess.Popen(
            [sys.executable, "-m", "vision", "dispatch", "serve", "--db", db_url, "--data-dir", str(data_dir)]
            + ["--port", str(port), "--workers", str(workers)],
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        url = f"http://127.0.0.1:{port}"
        wait_healthy(url, 60, server)
        headers = {"Authorization": f"Bearer {token}"}
        local = threading.local()

        def post(i: int) -> tuple[int, float]:
            client = getattr(local, "client", None)
            if client is None:
                client = local.client = httpx.Client(base_url=url, headers=headers, timeout=60)
            files = [("case", (None, json.dumps(case_report(i, ev)), None))]
            files += [(n, (n, data, ctype)) for n, (_k, ctype, data) in ev.items()]
            t0 = time.perf_counter()
            resp = client.post("/api/v1/cases", files=files)
            return resp.status_code, time.perf_counter() - t0

        with ThreadPoolExecutor(args.concurrency) as pool:  # warm-up: connections, first queries, every worker
            list(pool.map(post, range(4 * args.concurrency)))
        server_pids, pg_pids = [server.pid], pg.pids()
        s0, p0 = tree_cpu_s(server_pids), tree_cpu_s(pg_pids)
        clock = CpuClock().start()
        first = 4 * args.concurrency
        with ThreadPoolExecutor(args.concurrency) as pool:
            results = list(pool.map(post, range(first, first + args.cases)))
        client_cpu, wall = clock.read()
        server_cpu, pg_cpu = tree_cpu_s(server_pids) - s0, tree_cpu_s(pg_pids) - p0
        codes = {c: sum(1 for code, _ in results if code == c) for c in sorted({c for c, _ in results})}
        lat = sorted(t for _, t in results)
        created = codes.get(201, 0)
        return {
            "workers": workers,
            "codes": codes,
            "rate": created / wall,
            "wall": wall,
            "created": created,
            "p50": 1000 * statistics.median(lat),
            "p95": 1000 * lat[int(0.95 * (len(lat) - 1))],
            "server_ms": 1000 * server_cpu / max(created, 1),
            "pg_ms": 1000 * pg_cpu / max(created, 1),
            "client_ms": 1000 * client_cpu / max(created, 1),
        }
    finally:
        if server is not None and server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
        shutil.rmtree(data_dir, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=300)
    ap.add_argument("--concurrency", type=int, default=8, help="client threads posting at once")
    ap.add_argument(
        "--workers", default="1", help="uvicorn worker processes of the server; several (1,2,4): one run each"
    )
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    if args.quick:
        args.cases, args.concurrency = 30, 4
    counts = [int(w) for w in str(args.workers).split(",") if w.strip()]
    ev = evidence()
    pg = Postgres()
    try:
        print_machine()
        sizes = {n: len(d) for n, (_k, _c, d) in ev.items()}
        print(
            f"PostgreSQL 15 (durable defaults), client threads={args.concurrency}, {args.cases} cases per run, "
            f"evidence per case: {sizes} bytes"
        )
        runs = []
        for workers in counts:
            r = measure(pg, workers, args, ev)
            runs.append(r)
            print(
                f"\nworkers={workers}: HTTP status counts {r['codes']}\n"
                f"intake            {r['rate']:8.1f} cases/s with evidence ({r['created']} created in {r['wall']:.1f} s)\n"
                f"latency           p50 {r['p50']:.0f} ms, p95 {r['p95']:.0f} ms\n"
                f"CPU per case      server {r['server_ms']:.1f} ms, PostgreSQL {r['pg_ms']:.1f} ms, "
                f"client {r['client_ms']:.1f} ms\n"
                f"per day at this rate: {r['rate'] * 86400:,.0f} cases; load average {os.getloadavg()[0]:.2f}"
            )
        if len(runs) > 1:
            base = runs[0]["rate"]
            print("\nworkers  cases/s  ratio to workers=" + str(runs[0]["workers"]))
            for r in runs:
                print(f"{r['workers']:7d}  {r['rate']:7.1f}  {r['rate'] / base:5.2f}")
    finally:
        pg.stop()


if __name__ == "__main__":
    main()

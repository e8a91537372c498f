"""Device intake latency on the default SQLite center, alone and under a wrong-login flood.

    .venv/bin/python benchmarks/login_flood.py [--cases 60] [--flooders 8]

Runs `streetvision dispatch serve` (SQLite in a temp data dir) as a subprocess, registers
one edge device, and posts `--cases` distinct CaseReports (no evidence, one camera id each
so none merge) one after another, first with nothing else going on, then while
`--flooders` threads send wrong passwords to POST /api/v1/auth/login as fast as the
server answers (401 until throttled, then 429). Prints intake p50/p95 of both runs, their
ratios, the flood's answer counts and the machine's load average. Before login throttling
(issue 11) four such loops took intake p50 from 25 ms to 5.3 s.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
from common import print_machine

from tests.support_dispatch import case_report, multipart
from vision.dispatch import bootstrap
from vision.dispatch.server import spawn_server
from vision.dispatch.settings import Settings

PASSWORD = "benchmark-password-1"


def intake_latencies_s(url: str, token: str, cases: int, tag: str) -> list[float]:
    out = []
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60) as client:
        for i in range(cases):
            report = case_report(camera_id=f"{tag}-{i:04d}")
            t0 = time.perf_counter()
            r = client.post("/api/v1/cases", **multipart(report))
            out.append(time.perf_counter() - t0)
            if r.status_code not in (200, 201):
                raise RuntimeError(f"intake answered {r.status_code}: {r.text[:200]}")
    return out


def flood(url: str, stop: threading.Event, answers: Counter[int], lock: threading.Lock) -> None:
    with httpx.Client(base_url=url, timeout=60) as client:
        while not stop.is_set():
            try:
                code = client.post("/api/v1/auth/login", json={"username": "admin", "password": "guess"}).status_code
            except httpx.HTTPError:
                code = 0
            with lock:
                answers[code] += 1


def p(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1] if len(values) > 1 else values[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=60)
    ap.add_argument("--flooders", type=int, default=8)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="sv-login-flood-") as tmp:
        settings = Settings(data_dir=Path(tmp) / "data")
        bootstrap.create_admin(settings, "admin", PASSWORD)
        token = bootstrap.create_device(settings, "bench-edge", "site-a")
        proc, url = spawn_server(settings)
        try:
            intake_latencies_s(url, token, 5, "warm")
            quiet = intake_latencies_s(url, token, args.cases, "quiet")
            stop, lock, answers = threading.Event(), threading.Lock(), Counter[int]()
            threads = [
                threading.Thread(target=flood, args=(url, stop, answers, lock), daemon=True)
                for _ in range(args.flooders)
            ]
            for t in threads:
                t.start()
            time.sleep(1.0)  # let the flood reach the throttle
            try:
                flooded = intake_latencies_s(url, token, args.cases, "flood")
            finally:
                stop.set()
                for t in threads:
                    t.join(timeout=60)
        finally:
            proc.terminate()
            proc.wait(10)

    print_machine()
    print(f"intake, {args.cases} cases each, SQLite, {args.flooders} wrong-login flooders")
    for name, lat in (("alone", quiet), ("flooded", flooded)):
        print(f"  {name:8s} p50 {p(lat, 50) * 1000:7.1f} ms   p95 {p(lat, 95) * 1000:7.1f} ms")
    print(f"  ratio    p50 x{p(flooded, 50) / p(quiet, 50):.2f}   p95 x{p(flooded, 95) / p(quiet, 95):.2f}")
    print(f"  flood answers: {dict(sorted(answers.items()))}")


if __name__ == "__main__":
    main()

"""Two dispatch-center nodes as docs/DEPLOY.md runs them: two real `streetvision dispatch
serve` processes, configured the way the systemd units configure them (STREETVISION_DISPATCH_*
variables), on one PostgreSQL database and one evidence directory (the NFS mount), with MQTT
notifications to one broker.

- started at the same moment on an empty database, both migrate it and come up (and, in the
  fast lane, three `dispatch migrate` processes at once: each succeeds);
- the same case (one idempotency key) posted to both at once, from raw HTTP clients and from
  two real edge outboxes, is stored once: one case row, one occurrence, one set of evidence
  rows and files, no staged upload left behind, one "new" notification; every answer names
  the same case;
- a case posted to one node is read, its evidence downloaded and its state changed through
  the other, with an operator token issued by either.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
import psycopg
import pytest
import yaml

from tests.support_dispatch import Broker, PgServer, case_report, free_port, make_h264_mp4, make_jpeg, multipart
from tests.support_edge import make_case
from vision.core.evidence_files import EvidenceFile
from vision.dispatch.server import wait_healthy
from vision.edge.delivery.outbox import Outbox
from vision.edge.delivery.sender import Sender

STREETVISION = Path(sys.executable).with_name("streetvision")  # the entry point the systemd units run
CONFIG = Path(__file__).resolve().parent.parent / "configs" / "dispatch.yaml"
DB_NAME = "sv_two_centers"
OPS_PASSWORD = "two-nodes-one-database"
PIPES: dict[str, Any] = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True}


@dataclass
class Centers:
    urls: list[str]
    procs: list[subprocess.Popen[bytes]]
    logs: list[Path]
    db_dsn: str  # psycopg's, for counting rows behind the nodes' backs
    evidence_dir: Path
    device_token: str
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (topic, payload) off the broker

    @property
    def device(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.device_token}"}

    def login(self, node: int) -> dict[str, str]:
        r = httpx.post(self.urls[node] + "/api/v1/auth/login", json={"username": "ops", "password": OPS_PASSWORD})
        assert r.status_code == 200, r.text
        return {"Authorization": f"Bearer {r.json()['access_token']}"}

    def sql(self, query: str, *params: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.db_dsn) as conn:
            return conn.execute(query, params).fetchall()

    def stored_files(self) -> set[str]:
        return {p.name for p in self.evidence_dir.glob("??/*") if p.is_file()}

    def named_files(self) -> set[str]:
        return {sha for (sha,) in self.sql("SELECT DISTINCT sha256 FROM evidence")}

    def staged_files(self) -> list[Path]:
        return list(self.evidence_dir.glob(".upload-*"))


def _node_config(tmp: Path, broker: Broker) -> Path:
    """The shipped dispatch.yaml with MQTT notifications to the test broker."""
    data = yaml.safe_load(CONFIG.read_text())
    data["notifications"] = {
        "mqtt": {"enabled": True, "host": broker.host, "port": broker.port, "topic_prefix": "sv-two", "qos": 1},
        "webhooks": [],
    }
    if data.get("map", {}).get("grids"):  # a path relative to the config file: name the shipped one
        data["map"]["grids"] = str(CONFIG.parent / data["map"]["grids"])
    path = tmp / "dispatch.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    return path


def _tail(path: Path, lines: int = 30) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else "(no log)"


@pytest.fixture(scope="module")
def centers(pg_server: PgServer, mqtt_broker: Broker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Centers]:
    assert STREETVISION.is_file(), f"{STREETVISION}: the package is not installed in this venv (pip install -e .)"
    tmp = tmp_path_factory.mktemp("two-centers")
    pg_server.drop(pg_server.url(DB_NAME))
    pg_server._admin(f"CREATE DATABASE {DB_NAME}")  # empty: the nodes migrate it
    db_url = pg_server.url(DB_NAME)
    shared = tmp / "shared"  # what every node mounts (NFS in docs/DEPLOY.md)
    env = {
        **os.environ,
        "STREETVISION_DISPATCH_DB": db_url,
        "STREETVISION_DISPATCH_DATA_DIR": str(shared),
        "STREETVISION_DISPATCH_CONFIG": str(_node_config(tmp, mqtt_broker)),
    }
    ports = [free_port(), free_port()]
    logs = [tmp / f"node{i}.log" for i in range(2)]
    procs: list[subprocess.Popen[bytes]] = []
    sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    try:
        for port, log in zip(ports, logs, strict=True):  # both at once, as systemd starts them after a deploy
            with open(log, "wb") as out:
                procs.append(
                    subprocess.Popen(
                        [str(STREETVISION), "dispatch", "serve", "--host", "127.0.0.1", "--port", str(port)],
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        env=env,
                    )
                )
        urls = [f"http://127.0.0.1:{port}" for port in ports]
        for url, proc, log in zip(urls, procs, logs, strict=True):
            try:
                wait_healthy(url, 60, proc)
            except (RuntimeError, TimeoutError) as exc:
                pytest.fail(f"node {url} did not come up: {exc}\n{_tail(log)}")
        # the device and an operator, made with the same command and settings an admin uses
        admin = [
            subprocess.Popen([str(STREETVISION), "dispatch", *args], env={**env, "SV_OPS_PW": OPS_PASSWORD}, **PIPES)
            for args in (
                ["add-device", "edge-01", "--site", "site-a"],
                ["add-user", "ops", "--role", "admin", "--password-env", "SV_OPS_PW"],
            )
        ]
        (token, err), (_, err2) = (p.communicate(timeout=60) for p in admin)
        assert [p.returncode for p in admin] == [0, 0], err + err2
        token = token.strip()
        centers = Centers(
            urls,
            procs,
            logs,
            f"host=127.0.0.1 port={pg_server.port} user={pg_server.user} dbname={DB_NAME}",
            shared / "evidence",
            token,
        )
        subscribed = threading.Event()
        sub.on_message = lambda _c, _u, msg: centers.events.append((msg.topic, json.loads(msg.payload)))
        sub.on_subscribe = lambda *_a: subscribed.set()
        sub.connect(mqtt_broker.host, mqtt_broker.port)
        sub.subscribe("sv-two/cases/#", qos=1)
        sub.loop_start()
        assert subscribed.wait(10), "no SUBACK from the broker"
        yield centers
    finally:
        sub.loop_stop()
        sub.disconnect()
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        pg_server.drop(db_url)


def test_migrate_from_several_processes_at_once(pg_server: PgServer, tmp_path: Path) -> None:
    """`dispatch migrate` (what every node does on start) three times at once on an empty
    PostgreSQL database: each one succeeds, and the schema is at the head once."""
    from alembic.script import ScriptDirectory

    from vision.dispatch.db import alembic_config

    name = "sv_migrate_race"
    pg_server.drop(pg_server.url(name))
    pg_server._admin(f"CREATE DATABASE {name}")
    try:
        env = {**os.environ, "STREETVISION_DISPATCH_DB": pg_server.url(name)}
        procs = [
            subprocess.Popen(
                [str(STREETVISION), "dispatch", "migrate", "--data-dir", str(tmp_path / str(i))], env=env, **PIPES
            )
            for i in range(3)
        ]
        results = [(p.communicate(timeout=120), p.returncode) for p in procs]
        assert [rc for _, rc in results] == [0, 0, 0], [err[-2000:] for (_, err), _ in results]
        head = ScriptDirectory.from_config(alembic_config()).get_current_head()
        with psycopg.connect(f"host=127.0.0.1 port={pg_server.port} user={pg_server.user} dbname={name}") as conn:
            assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [(head,)]
    finally:
        pg_server.drop(pg_server.url(name))


def _post_at_once(centers: Centers, nodes: list[int], report: dict[str, Any], ev: dict[str, Any]) -> list[Any]:
    """Posts `report` to each of `nodes` from its own thread, all released together; the responses."""
    barrier = threading.Barrier(len(nodes))
    answers: list[Any] = [None] * len(nodes)

    def post(i: int) -> None:
        with httpx.Client(timeout=60) as client:
            barrier.wait()
            answers[i] = client.post(
                centers.urls[nodes[i]] + "/api/v1/cases", headers=centers.device, **multipart(report, ev)
            )

    threads = [threading.Thread(target=post, args=(i,)) for i in range(len(nodes))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(90)
    return answers


def _wait(pred: Any, timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < end, "timed out waiting"
        time.sleep(0.02)


@pytest.mark.slow  # two server processes, like test_dispatch_cli's
def test_nodes_started_together_migrate_one_empty_database(centers: Centers) -> None:
    from alembic.script import ScriptDirectory

    from vision.dispatch.db import alembic_config

    assert all(p.poll() is None for p in centers.procs), [_tail(log) for log in centers.logs]
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert centers.sql("SELECT version_num FROM alembic_version") == [(head,)]
    for log in centers.logs:
        assert "Traceback" not in log.read_text(errors="replace"), _tail(log)


@pytest.mark.slow  # two server processes, like test_dispatch_cli's
def test_the_same_case_posted_to_both_nodes_at_once_is_stored_once(centers: Centers) -> None:
    clip = make_h264_mp4(1.0)
    rounds = 6
    keys, expected_files = [], set()
    for n in range(rounds):
        jpeg = make_jpeg(seed=100 + n)
        ev = {"snapshot.jpg": ("snapshot", "image/jpeg", jpeg), "clip.mp4": ("clip", "video/mp4", clip)}
        report = case_report(ev, camera_id=f"cam-race-{n}", key=str(uuid.uuid4()))
        keys.append(report["idempotency_key"])
        expected_files |= {hashlib.sha256(jpeg).hexdigest(), hashlib.sha256(clip).hexdigest()}
        answers = _post_at_once(centers, [0, 1, 0, 1], report, ev)
        assert sorted(a.status_code for a in answers) == [200, 200, 200, 201], [a.text for a in answers]
        bodies = [a.json() for a in answers]
        assert len({(b["case_id"], b["occurrence_id"]) for b in bodies}) == 1, bodies
        assert sum(b["created"] for b in bodies) == 1 and not any(b["merged"] for b in bodies)

    # behind the nodes' backs: one occurrence per key, one case per key, one set of evidence rows
    occurrences = centers.sql("SELECT idempotency_key, case_id FROM occurrences WHERE idempotency_key = ANY(%s)", keys)
    assert sorted(k for k, _ in occurrences) == sorted(keys)
    case_ids = [c for _, c in occurrences]
    assert len(set(case_ids)) == rounds
    assert centers.sql("SELECT count(*) FROM cases WHERE camera_id LIKE %s", "cam-race-%") == [(rounds,)]
    rows = centers.sql("SELECT case_id, name, sha256 FROM evidence WHERE case_id = ANY(%s)", case_ids)
    assert len(rows) == 2 * rounds and len({(c, n) for c, n, _ in rows}) == 2 * rounds
    # one file per content in the shared directory, nothing staged left behind by the losers
    assert {sha for _, _, sha in rows} == expected_files
    stored = centers.stored_files()
    assert expected_files <= stored and stored == centers.named_files()  # and no file that no row names
    assert centers.staged_files() == []
    # one "new" notification per case, from whichever node committed it
    _wait(lambda: len({e["case_id"] for t, e in centers.events if e["case_id"] in case_ids}) == rounds)
    time.sleep(0.5)  # a duplicate would arrive by now
    news = sorted(e["case_id"] for t, e in centers.events if t == "sv-two/cases/new" and e["case_id"] in case_ids)
    assert news == sorted(case_ids)
    assert not [e for t, e in centers.events if e["case_id"] in case_ids and t != "sv-two/cases/new"]


def _queue(outbox: Outbox, case: Any, jpeg: bytes) -> None:
    """The edge's case with its snapshot, queued as the daemon queues it."""
    stage = outbox.staging(str(case.idempotency_key))
    stage.mkdir(parents=True, exist_ok=True)
    (stage / "snapshot.jpg").write_bytes(jpeg)
    sha = hashlib.sha256(jpeg).hexdigest()
    outbox.put(case, [EvidenceFile("snapshot.jpg", "snapshot", "image/jpeg", stage / "snapshot.jpg", sha, len(jpeg))])


@pytest.mark.slow  # two server processes, like test_dispatch_cli's
def test_two_edge_outboxes_replaying_one_case_through_both_nodes(centers: Centers, tmp_path: Path) -> None:
    """A box that sent a case through the proxy to one node, lost the answer and sent it again
    (the proxy now picking the other node): two outboxes hold the one edge case and drain at once."""
    case = make_case(site_id="site-a", camera_id="cam-edge")
    jpeg = make_jpeg(seed=7)
    outboxes = [Outbox(tmp_path / f"outbox{i}") for i in range(2)]
    for ob in outboxes:
        _queue(ob, case, jpeg)
    senders = [Sender(ob, url, centers.device_token) for ob, url in zip(outboxes, centers.urls, strict=True)]
    barrier = threading.Barrier(2)
    drained = [0, 0]

    def drain(i: int) -> None:
        barrier.wait()
        drained[i] = senders[i].drain()

    threads = [threading.Thread(target=drain, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert drained == [1, 1]
    records = [ob.record(str(case.idempotency_key)) for ob in outboxes]
    assert all(r is not None and r.state == "sent" for r in records), records
    assert sorted(r.last_status for r in records if r) == [200, 201]
    assert len({r.remote_id for r in records if r}) == 1
    assert centers.sql("SELECT count(*) FROM occurrences WHERE idempotency_key = %s", str(case.idempotency_key)) == [
        (1,)
    ]
    assert centers.sql("SELECT count(*) FROM cases WHERE camera_id = 'cam-edge'") == [(1,)]
    for s in senders:
        s.stop()
    for ob in outboxes:
        ob.close()


@pytest.mark.slow  # two server processes, like test_dispatch_cli's
def test_a_case_posted_to_one_node_is_read_through_the_other(centers: Centers) -> None:
    jpeg = make_jpeg(seed=42)
    ev = {"snapshot.jpg": ("snapshot", "image/jpeg", jpeg)}
    report = case_report(ev, camera_id="cam-read")
    r = httpx.post(centers.urls[0] + "/api/v1/cases", headers=centers.device, **multipart(report, ev))
    assert r.status_code == 201, r.text
    case_id = r.json()["case_id"]

    on_b = centers.login(1)  # a token issued by node B ...
    detail = httpx.get(f"{centers.urls[1]}/api/v1/cases/{case_id}", headers=on_b)
    assert detail.status_code == 200, detail.text
    body = detail.json()
    assert (body["camera_id"], body["status"], body["violation"]) == ("cam-read", "suspected", "street_vending")
    assert [o["idempotency_key"] for o in body["occurrences"]] == [report["idempotency_key"]]
    (snap,) = body["evidence"]
    assert httpx.get(centers.urls[1] + snap["url"], headers=on_b).content == jpeg  # the file node A stored
    stored = centers.stored_files()
    assert snap["sha256"] in stored and stored == centers.named_files()
    listed = httpx.get(centers.urls[1] + "/api/v1/cases", params={"camera_id": "cam-read"}, headers=on_b).json()
    assert case_id in [c["id"] for c in listed["items"]]

    # ... works on node A; a change made through B is what A reads next
    moved = httpx.post(f"{centers.urls[1]}/api/v1/cases/{case_id}/transitions", json={"action": "accept"}, headers=on_b)
    assert moved.status_code == 200, moved.text
    on_a = httpx.get(f"{centers.urls[0]}/api/v1/cases/{case_id}", headers=on_b).json()
    assert on_a["status"] == "accepted"
    assert [t["action"] for t in on_a["transitions"]][-1] == "accept"
    # a token issued by A works on B as well
    again = httpx.get(f"{centers.urls[1]}/api/v1/cases/{case_id}", headers=centers.login(0))
    assert again.status_code == 200 and again.json()["status"] == "accepted"

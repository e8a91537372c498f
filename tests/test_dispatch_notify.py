"""Case events on a real mosquitto and on a webhook, published after the commit."""

from __future__ import annotations

import hashlib
import hmac
import http.server
import json
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import yaml
from sqlalchemy import create_engine, text

from tests.support_dispatch import build_dispatch, case_report, free_port

CONFIG = Path(__file__).resolve().parent.parent / "configs" / "dispatch.yaml"


def _config(tmp_path: Path, mqtt_port: int | None, webhook: str | None) -> Path:
    data = yaml.safe_load(CONFIG.read_text())
    data["notifications"] = {
        "mqtt": {
            "enabled": mqtt_port is not None,
            "host": "127.0.0.1",
            "port": mqtt_port or 1,
            "topic_prefix": "sv-test",
            "qos": 1,
        },
        "webhooks": [{"url": webhook, "secret": "s3cret"}] if webhook else [],
    }
    if data.get("map", {}).get("grids"):  # a path relative to the config file: name the shipped one
        data["map"]["grids"] = str(CONFIG.parent / data["map"]["grids"])
    path = tmp_path / "dispatch.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    return path


class Hook(http.server.BaseHTTPRequestHandler):
    received: list[tuple[dict, str, bytes]] = []

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Hook.received.append((json.loads(body), self.headers.get("X-StreetVision-Signature", ""), body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def _wait(pred, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < end, "timed out waiting"
        time.sleep(0.02)


def test_mqtt_and_webhook_events_follow_the_commit(tmp_path: Path, mqtt_broker, fast_passwords) -> None:
    db = tmp_path / "dispatch.db"
    hook = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    Hook.received = []
    reader = create_engine(f"sqlite:///{db}")
    seen: list[tuple[str, dict, str | None]] = []

    def on_message(_c, _u, msg) -> None:  # type: ignore[no-untyped-def]
        event = json.loads(msg.payload)
        with reader.connect() as conn:  # the row must already be there when the message arrives
            status = conn.execute(text("SELECT status FROM cases WHERE id = :i"), {"i": event["case_id"]}).scalar()
        seen.append((msg.topic, event, status))

    sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    subscribed = threading.Event()
    sub.on_message = on_message
    sub.on_subscribe = lambda *a: subscribed.set()
    sub.connect(mqtt_broker.host, mqtt_broker.port)
    sub.subscribe("sv-test/cases/#", qos=1)
    sub.loop_start()
    assert subscribed.wait(10)

    d = build_dispatch(
        tmp_path,
        f"sqlite:///{db}",
        config_path=_config(tmp_path, mqtt_broker.port, f"http://127.0.0.1:{hook.server_port}/hook"),
    )
    try:
        with d.client:
            cid = d.post_case(case_report()).json()["case_id"]
            d.post_case(case_report(bbox=(0.25, 0.3, 0.45, 0.6)))  # merges: occurrence event
            d.act(cid, "accept", "reviewer")
            d.act(cid, "dispatch", "dispatcher")
            d.service.notifier.flush()
            _wait(lambda: len(seen) == 4 and len(Hook.received) == 4)
    finally:
        d.service.close()
        sub.loop_stop()
        sub.disconnect()
        hook.shutdown()
        reader.dispose()

    assert [t for t, _, _ in seen] == [
        "sv-test/cases/new",
        "sv-test/cases/occurrence",
        "sv-test/cases/state",
        "sv-test/cases/state",
    ]
    assert [(e["type"], e["status"]) for _, e, _ in seen] == [
        ("new", "suspected"),
        ("occurrence", "suspected"),
        ("state", "accepted"),
        ("state", "dispatched"),
    ]
    # each message arrived after its row was committed (the reader saw the case, in that state or later)
    order = ["suspected", "accepted", "dispatched"]
    for _, event, status_in_db in seen:
        assert status_in_db is not None and order.index(status_in_db) >= order.index(event["status"])
    accept = seen[2][1]
    assert accept["action"] == "accept" and accept["from_status"] == "suspected" and accept["actor"] == "reviewer"
    assert seen[3][1]["department"] == "urban_mgmt" and all(e["case_id"] == cid for _, e, _ in seen)
    for _event, sig, body in Hook.received:
        assert hmac.compare_digest(sig, hmac.new(b"s3cret", body, hashlib.sha256).hexdigest())
    assert [e["type"] for e, _, _ in Hook.received] == ["new", "occurrence", "state", "state"]


def test_unreachable_broker_never_blocks_requests(tmp_path: Path, fast_passwords) -> None:
    d = build_dispatch(tmp_path, f"sqlite:///{tmp_path / 'd.db'}", config_path=_config(tmp_path, free_port(), None))
    try:
        with d.client:
            t0 = time.monotonic()
            r = d.post_case(case_report())
            assert r.status_code == 201
            assert d.act(r.json()["case_id"], "accept").status_code == 200
            assert time.monotonic() - t0 < 3
    finally:
        t0 = time.monotonic()
        d.service.notifier.flush(timeout=1)
        for sink in d.service.notifier.sinks:
            sink.close()
        assert time.monotonic() - t0 < 15


def test_full_queue_drops_and_counts() -> None:
    from vision.dispatch.notify import CaseEvent, Notifier

    class Slow:
        def __init__(self) -> None:
            self.gate = threading.Event()

        def send(self, event: CaseEvent) -> None:
            self.gate.wait(5)

        def close(self) -> None:
            self.gate.set()

    slow = Slow()
    n = Notifier([slow], maxsize=2)
    for i in range(6):
        n.publish(CaseEvent("new", i, "suspected", "street_vending", "cam"))
    assert n.dropped >= 3
    slow.gate.set()
    n.close()

"""Case event notifications: MQTT and webhooks.

The database row is the record; these only tell other systems that something
changed, after the commit. Delivery runs on a background thread with a bounded
queue, so a slow broker or webhook never holds up a request; dropped events are
counted."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import queue
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

import httpx

from vision.dispatch.config import MqttConfig, Notifications, WebhookConfig

log = logging.getLogger(__name__)


CaseEventType = Literal["new", "occurrence", "state"]  # a case opened, a report joined it, its state changed


@dataclass(frozen=True)
class CaseEvent:
    type: CaseEventType
    case_id: int
    status: str
    violation: str
    camera_id: str | None
    action: str | None = None
    from_status: str | None = None
    actor: str | None = None
    department: str | None = None
    plate: str | None = None  # the vehicle's plate text, for cases that name one (muddy trucks)
    plate_colour: str | None = None
    at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())

    def payload(self) -> bytes:
        return json.dumps(asdict(self), ensure_ascii=False, sort_keys=True).encode("utf-8")


class Sink(Protocol):
    def send(self, event: CaseEvent) -> None: ...
    def close(self) -> None: ...


class MqttSink:
    """Publishes to `<prefix>/cases/<type>` (QoS from config); paho reconnects on its own."""

    def __init__(self, cfg: MqttConfig, client_id: str = "") -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        self.cfg = cfg
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
        if cfg.username:
            self.client.username_pw_set(cfg.username, cfg.password)
        self.client.reconnect_delay_set(1, 30)
        self.client.connect_async(cfg.host, cfg.port, keepalive=30)
        self.client.loop_start()

    def send(self, event: CaseEvent) -> None:
        info = self.client.publish(f"{self.cfg.topic_prefix}/cases/{event.type}", event.payload(), qos=self.cfg.qos)
        if self.cfg.qos > 0:
            info.wait_for_publish(timeout=10)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


class WebhookSink:
    """POSTs the event JSON; signs it with HMAC-SHA256 when a secret is set; retries 3 times."""

    def __init__(self, cfg: WebhookConfig) -> None:
        self.cfg = cfg
        self.http = httpx.Client(timeout=10)

    def send(self, event: CaseEvent) -> None:
        body = event.payload()
        headers = {"Content-Type": "application/json", "X-StreetVision-Event": event.type}
        if self.cfg.secret:
            headers["X-StreetVision-Signature"] = hmac.new(self.cfg.secret.encode(), body, hashlib.sha256).hexdigest()
        for attempt in range(3):
            try:
                r = self.http.post(self.cfg.url, content=body, headers=headers)
                if r.status_code < 500:
                    return
            except httpx.HTTPError as exc:
                log.warning("webhook %s: %s", self.cfg.url, exc)
            time.sleep(0.5 * 2**attempt)
        log.error("webhook %s: giving up on event %s of case %s", self.cfg.url, event.type, event.case_id)

    def close(self) -> None:
        self.http.close()


class Notifier:
    """Fan-out of case events to sinks on one background thread."""

    def __init__(self, sinks: list[Sink] | None = None, maxsize: int = 1000) -> None:
        self.sinks = list(sinks or [])
        self.dropped = 0
        self._q: queue.Queue[CaseEvent | None] = queue.Queue(maxsize=maxsize)
        self._thread: threading.Thread | None = None
        if self.sinks:
            self._thread = threading.Thread(target=self._run, name="dispatch-notify", daemon=True)
            self._thread.start()

    @classmethod
    def from_config(cls, cfg: Notifications) -> Notifier:
        sinks: list[Sink] = []
        if cfg.mqtt.enabled:
            sinks.append(MqttSink(cfg.mqtt))
        sinks.extend(WebhookSink(w) for w in cfg.webhooks)
        return cls(sinks)

    def publish(self, event: CaseEvent) -> None:
        if not self.sinks:
            return
        try:
            self._q.put_nowait(event)
        except queue.Full:
            self.dropped += 1
            log.warning("notification queue full: dropped %s event of case %s", event.type, event.case_id)

    def _run(self) -> None:
        while (event := self._q.get()) is not None:
            for sink in self.sinks:
                try:
                    sink.send(event)
                except Exception:  # one broken sink must not stop the others
                    log.exception("notification sink %s failed", type(sink).__name__)
            self._q.task_done()
        self._q.task_done()

    def flush(self, timeout: float = 10) -> None:
        """Waits until queued events were handed to every sink (tests, shutdown)."""
        end = time.monotonic() + timeout
        while self._q.unfinished_tasks and time.monotonic() < end:
            time.sleep(0.02)

    def close(self) -> None:
        if self._thread is not None:
            self.flush()
            self._q.put(None)
            self._thread.join(timeout=5)
            self._thread = None
        for sink in self.sinks:
            sink.close()


def as_dict(event: CaseEvent) -> dict[str, Any]:
    return asdict(event)

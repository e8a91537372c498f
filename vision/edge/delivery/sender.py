"""Posts queued cases to the dispatch center, one at a time, in queue order.

`POST {url}/api/v1/cases`, multipart: part `case` (CaseReport JSON) plus one
file part per evidence item, `Authorization: Bearer <token>`. 201 (new) and
200 (replay of a known idempotency key) both mean delivered. Connection
errors, timeouts, 5xx, 408 and 429 are retried with exponential backoff and
jitter; any other 4xx is permanent: the case is marked failed (kept, logged
loudly, counted) so one bad case never blocks the queue.

What the camera sees of a case afterwards (cleared, resumed, grew) goes the same
way to `POST {url}/api/v1/lifecycle`, part `event` (CaseLifecycle JSON), with
the same answers; the outbox offers it only after its case was delivered.
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
from dataclasses import dataclass, field
from typing import IO, Literal, Protocol

import httpx

from vision.core.backoff import backoff_delay
from vision.edge.delivery.outbox import Outbox, OutboxFullError, OutboxItem

log = logging.getLogger(__name__)

__all__ = ["DispatchSettings", "Sender", "SenderStats", "SendOutcome", "device_headers", "device_token"]

RETRYABLE_4XX = {408, 429}

# One part of the multipart POST: (part name, (file name or None, content, content type)).
_Part = tuple[str, tuple[str | None, IO[bytes] | bytes, str]]

# What one attempt did to a case: delivered, left queued for a retry after a backoff, or refused
# for good (kept as 'failed'). Why it was not delivered is in the outbox row's `last_error`.
SendOutcome = Literal["sent", "retry", "failed"]


@dataclass
class SenderStats:
    sent: int = 0
    replays: int = 0
    retries: int = 0
    permanent_failures: int = 0
    last_error: str | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(
        self,
        *,
        sent: int = 0,
        replays: int = 0,
        retries: int = 0,
        permanent_failures: int = 0,
        last_error: str | None = None,
    ) -> None:
        """Add to the counters (from the sender thread; read from others); `last_error` replaces the last one."""
        with self._lock:
            self.sent += sent
            self.replays += replays
            self.retries += retries
            self.permanent_failures += permanent_failures
            if last_error is not None:
                self.last_error = last_error


class DispatchSettings(Protocol):
    """What `Sender.from_config` reads of the site's `dispatch` section (vision.edge.config.DispatchConfig;
    delivery does not import the site config, which sits above it)."""

    @property
    def url(self) -> str: ...
    @property
    def token(self) -> str | None: ...
    @property
    def token_env(self) -> str | None: ...
    @property
    def device_id(self) -> str | None: ...
    @property
    def timeout_s(self) -> float: ...
    @property
    def backoff_initial_s(self) -> float: ...
    @property
    def backoff_max_s(self) -> float: ...


def device_token(dispatch: DispatchSettings) -> str | None:
    """The box's token: from the environment variable `token_env` when the site names one."""
    import os

    if not dispatch.token_env:
        return dispatch.token
    token = os.environ.get(dispatch.token_env)
    if not token:
        # every case would come back 401 and be marked failed: refuse to start instead
        raise ValueError(f"dispatch.token_env: environment variable {dispatch.token_env} is not set")
    return token


def device_headers(token: str | None, device_id: str | None) -> dict[str, str]:
    """The headers every request of the box carries (cases, events, heartbeats)."""
    headers = {"User-Agent": "streetvision-edge"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if device_id:
        headers["X-Device-Id"] = device_id
    return headers


class Sender:
    def __init__(
        self,
        outbox: Outbox,
        url: str,
        token: str | None,
        *,
        timeout_s: float = 10.0,
        backoff_initial_s: float = 1.0,
        backoff_max_s: float = 300.0,
        device_id: str | None = None,
        rng: random.Random | None = None,
        transport: httpx.BaseTransport | None = None,
    ):
        self.outbox = outbox
        self.endpoint = url.rstrip("/") + "/api/v1/cases"
        self.lifecycle_endpoint = url.rstrip("/") + "/api/v1/lifecycle"
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self.rng = rng or random.Random()
        self.stats = SenderStats()
        self._client = httpx.Client(
            headers=device_headers(token, device_id), timeout=httpx.Timeout(timeout_s), transport=transport
        )
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @classmethod
    def from_config(cls, outbox: Outbox, dispatch: DispatchSettings, site_id: str) -> Sender:
        """A sender for the site's `dispatch` section; the token from `token_env` when the site names one."""
        return cls(
            outbox,
            dispatch.url,
            device_token(dispatch),
            timeout_s=dispatch.timeout_s,
            backoff_initial_s=dispatch.backoff_initial_s,
            backoff_max_s=dispatch.backoff_max_s,
            device_id=dispatch.device_id or site_id,
        )

    # --- one attempt --------------------------------------------------------------------------------
    def send(self, item: OutboxItem) -> SendOutcome:
        """Try one case (or lifecycle event) once and record the outcome (and any error) in the outbox."""
        endpoint, part = (self.lifecycle_endpoint, "event") if item.kind == "lifecycle" else (self.endpoint, "case")
        with contextlib.ExitStack() as stack:
            parts: list[_Part] = [(part, (None, item.case_json.encode("utf-8"), "application/json"))]
            try:
                for f in item.files:
                    fh = stack.enter_context(open(f.path, "rb"))
                    parts.append((f.name, (f.name, fh, f.content_type)))
            except OSError as exc:  # pruned between listing and opening: send what is left next time
                return self._retry(item, f"evidence file vanished: {exc}", None)
            try:
                resp = self._client.post(endpoint, files=parts)
            except httpx.TransportError as exc:
                return self._retry(item, f"{type(exc).__name__}: {exc}", None)
        status = resp.status_code
        if status in (200, 201):
            remote_id = None
            with contextlib.suppress(ValueError, AttributeError):
                body = resp.json()
                rid = body.get("case_id")  # vision.core.cases: the dispatch center's IntakeResult
                remote_id = str(rid) if rid is not None else None
                if body.get("idempotency_key") not in (None, item.key):
                    log.warning(
                        "dispatch answered case %s with idempotency key %s", item.key, body.get("idempotency_key")
                    )
            self.outbox.mark_sent(item.key, status, remote_id)
            self.stats.add(sent=1, replays=int(status == 200))
            log.info(
                "%s %s delivered (%s, dispatch case %s)",
                "case" if item.kind == "case" else "lifecycle event",
                item.key,
                "replay" if status == 200 else "new",
                remote_id,
            )
            return "sent"
        detail = resp.text[:300]
        if status >= 500 or status in RETRYABLE_4XX:
            retry_after = None
            with contextlib.suppress(TypeError, ValueError):
                retry_after = float(resp.headers.get("Retry-After"))
            return self._retry(item, f"HTTP {status}: {detail}", status, retry_after)
        self.outbox.mark_failed(item.key, status, f"HTTP {status}: {detail}")
        self.stats.add(permanent_failures=1, last_error=f"HTTP {status}")
        log.error(
            "case %s REFUSED by dispatch (HTTP %d, permanent): %s -- kept in the outbox as 'failed'",
            item.key,
            status,
            detail,
        )
        return "failed"

    def _retry(self, item: OutboxItem, error: str, status: int | None, retry_after: float | None = None) -> SendOutcome:
        delay = backoff_delay(item.attempts + 1, self.backoff_initial_s, self.backoff_max_s, self.rng)
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.backoff_max_s))
        self.outbox.mark_retry(item.key, error, delay, status)
        self.stats.add(retries=1, last_error=error[:200])
        log.warning("case %s not delivered (%s); retry %d in %.1f s", item.key, error[:200], item.attempts + 1, delay)
        return "retry"

    def drain(self) -> int:
        """Send every case that is due now (stops at the first retry). Returns cases sent."""
        sent = 0
        while not self._stop.is_set():
            item = self.outbox.next_due()
            if item is None:
                break
            outcome = self.send(item)
            if outcome == "sent":
                sent += 1
            elif outcome == "retry":
                break  # the dispatch center is unwell: wait for the backoff, keep order
        return sent

    # --- the thread ---------------------------------------------------------------------------------
    def start(self) -> Sender:
        self._thread = threading.Thread(target=self._run, name="case-sender", daemon=True)
        self._thread.start()
        return self

    def wake(self) -> None:
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.drain()
            except OutboxFullError as exc:  # the attempt could not be recorded: the case stays queued
                log.warning("sender: disk full, send bookkeeping postponed (%s)", exc)
                self._stop.wait(5.0)
            except Exception:  # noqa: BLE001 - the sender must outlive any one bad case
                log.exception("sender: unexpected error; retrying shortly")
                self._stop.wait(1.0)
            wait = self.outbox.next_attempt_in()
            self._wake.wait(timeout=min(wait if wait is not None else 30.0, 30.0) if wait != 0 else 0.05)
            self._wake.clear()

    def stop(self, timeout: float = 15.0) -> None:
        """Stop after the request in flight (bounded by the HTTP timeout); queued cases stay queued."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._client.close()

"""Login throttling: wrong passwords per username and per client address are
refused for a growing delay, without a password check; the right password
during the delay does not simply work; a success clears the username."""

from __future__ import annotations

import pytest

from tests.support_dispatch import PASSWORD, Dispatch
from vision.dispatch import security
from vision.dispatch.errors import Unauthorized
from vision.dispatch.throttle import LoginThrottle, ThrottlePolicy, TooManyAttempts


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _fail(throttle: LoginThrottle, times: int, user: str = "alice", address: str | None = "10.0.0.1") -> None:
    for _ in range(times):
        throttle.check(user, address)
        throttle.failed(user, address)


def test_delay_grows_after_the_free_failures_and_is_capped() -> None:
    policy = ThrottlePolicy(free_failures_per_user=3, first_delay_s=1, max_delay_s=60)
    assert [policy.delay_after(n, 3) for n in range(1, 10)] == [0, 0, 0, 1, 2, 4, 8, 16, 32]
    assert policy.delay_after(200, 3) == 60


def test_username_blocked_then_released_after_the_delay() -> None:
    clock = FakeClock()
    throttle = LoginThrottle(ThrottlePolicy(free_failures_per_user=3, first_delay_s=2), clock)
    _fail(throttle, 3)
    throttle.failed("alice", "10.0.0.1")  # the 4th: 2 s
    with pytest.raises(TooManyAttempts) as exc:
        throttle.check("ALICE", "10.9.9.9")  # username counts case-insensitively, from any address
    assert exc.value.scope == "user" and exc.value.retry_after_s == pytest.approx(2)
    clock.now += 2.01
    throttle.check("alice", "10.0.0.1")
    throttle.failed("alice", "10.0.0.1")  # the 5th: 4 s
    clock.now += 3
    with pytest.raises(TooManyAttempts):
        throttle.check("alice", None)
    clock.now += 1.01
    throttle.check("alice", None)
    throttle.succeeded("alice")
    _fail(throttle, 3)  # counting starts afresh after a success


def test_address_blocked_across_usernames() -> None:
    clock = FakeClock()
    throttle = LoginThrottle(ThrottlePolicy(free_failures_per_user=100, free_failures_per_address=5), clock)
    for i in range(6):
        throttle.check(f"user{i}", "10.0.0.7")
        throttle.failed(f"user{i}", "10.0.0.7")
    with pytest.raises(TooManyAttempts) as exc:
        throttle.check("someone-else", "10.0.0.7")
    assert exc.value.scope == "address"
    throttle.check("someone-else", "10.0.0.8")  # another address is not affected
    throttle.succeeded("user0")  # one valid account does not clear the address
    with pytest.raises(TooManyAttempts):
        throttle.check("user0", "10.0.0.7")


def test_quiet_keys_are_forgotten_and_memory_is_bounded() -> None:
    clock = FakeClock()
    throttle = LoginThrottle(ThrottlePolicy(free_failures_per_user=1, forget_after_s=60, max_keys=10), clock)
    _fail(throttle, 2, address=None)
    clock.now += 61
    throttle.check("alice", None)  # the delay (1 s) is long over
    throttle.failed("alice", None)  # and the count restarted: this failure is free again
    throttle.check("alice", None)
    for i in range(50):
        throttle.failed(f"u{i}", None)
    assert len(throttle._failures) <= 10


def test_service_refuses_without_checking_the_password(dispatch: Dispatch, monkeypatch: pytest.MonkeyPatch) -> None:
    service = dispatch.service
    for _ in range(200):
        try:
            service.login("reviewer", "wrong-password", "api", "10.1.1.1")
        except TooManyAttempts:
            pass
        except Unauthorized:
            pass
    checks: list[str] = []
    real_verify = security.verify_password
    monkeypatch.setattr(
        "vision.dispatch.accounts.verify_password", lambda pw, h: checks.append(pw) or real_verify(pw, h)
    )
    with pytest.raises(TooManyAttempts):
        service.login("reviewer", PASSWORD, "api", "10.2.2.2")  # right password, other address: still refused
    assert checks == []  # no argon2 work while blocked
    # another operator from another address is unaffected
    assert service.login("dispatcher", PASSWORD, "api", "10.3.3.3")[0]


def test_http_login_answers_429_with_retry_after(dispatch: Dispatch) -> None:
    wrong = {"username": "admin", "password": "not-the-password"}
    codes = [dispatch.client.post("/api/v1/auth/login", json=wrong).status_code for _ in range(200)]
    assert codes[0] == 401 and codes[-1] == 429 and set(codes) <= {401, 429}
    r = dispatch.client.post("/api/v1/auth/login", json={"username": "admin", "password": PASSWORD})
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
    assert "access_token" not in r.text
    # the UI login form is throttled by the same counters
    r = dispatch.client.post("/ui/login", data={"username": "admin", "password": PASSWORD}, follow_redirects=False)
    assert r.status_code == 429 and "sv_session" not in r.headers.get("set-cookie", "")
    # tokens issued before the flood keep working; cases keep coming in
    assert dispatch.client.get("/api/v1/me", headers=dispatch.auth("admin")).status_code == 200


def test_wait_lets_the_right_password_in(dispatch: Dispatch) -> None:
    clock = FakeClock()
    dispatch.service.accounts.throttle.clock = clock
    for _ in range(10):
        dispatch.client.post("/api/v1/auth/login", json={"username": "reviewer", "password": "wrong-password"})
    right = {"username": "reviewer", "password": PASSWORD}
    assert dispatch.client.post("/api/v1/auth/login", json=right).status_code == 429
    clock.now += ThrottlePolicy().max_delay_s + 1
    r = dispatch.client.post("/api/v1/auth/login", json=right)
    assert r.status_code == 200 and r.json()["access_token"]

"""Schemathesis fuzzing of the dispatch center's OpenAPI, in-process (ASGI):
no request, however malformed, may produce a 5xx. Bounded to stay well under a minute."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from tests.support_dispatch import Dispatch, build_dispatch, case_report

pytestmark = pytest.mark.slow  # Schemathesis walks the whole API


@pytest.fixture(scope="module")
def fuzz_target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dispatch]:
    from pwdlib import PasswordHash
    from pwdlib.hashers.argon2 import Argon2Hasher

    from vision.dispatch import security

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(
            security, "_hasher", lambda: PasswordHash((Argon2Hasher(time_cost=1, memory_cost=1024, parallelism=1),))
        )
        tmp = tmp_path_factory.mktemp("fuzz")
        d = build_dispatch(tmp, f"sqlite:///{tmp / 'fuzz.db'}")
        with d.client:
            cid = d.post_case(case_report()).json()["case_id"]  # something to find behind ids 1..
            d.act(cid, "accept")
            yield d
        d.service.close()


def test_no_server_errors(fuzz_target: Dispatch) -> None:
    """Every operation, valid-shaped and invalid-shaped requests: never a 5xx."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", fuzz_target.client.app)
    failures: list[str] = []
    calls: Counter[str] = Counter()
    operations = [result.ok() for result in schema.get_all_operations()]
    for operation in operations:
        for mode in GenerationMode:

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=25, deadline=None, database=None, derandomize=True, suppress_health_check=list(HealthCheck)
            )
            def call(case) -> None:  # type: ignore[no-untyped-def]
                device_write = case.path == "/api/v1/cases" and case.method.upper() == "POST"
                headers = fuzz_target.device if device_write else fuzz_target.auth("admin")
                response = case.call(headers=headers)
                calls[case.operation.label] += 1
                if response.status_code >= 500:
                    failures.append(
                        f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:300]}"
                    )

            try:
                call()
            except Unsatisfiable:  # some operations have no invalid shape to generate
                pass
    assert len(operations) >= 15
    assert sum(calls.values()) >= 10 * len(operations), calls
    assert not failures, "\n".join(failures[:10])


def test_openapi_documents_the_api(fuzz_target: Dispatch) -> None:
    spec = fuzz_target.client.get("/openapi.json").json()
    paths = set(spec["paths"])
    assert {
        "/api/v1/cases",
        "/api/v1/cases/{case_id}",
        "/api/v1/cases/{case_id}/transitions",
        "/open311/v2/services.json",
        "/open311/v2/requests.json",
        "/open311/v2/requests/{service_request_id}.json",
    } <= paths
    assert not any(p.startswith("/ui") for p in paths)
    assert {"OperatorToken", "DeviceToken"} <= set(spec["components"]["securitySchemes"])

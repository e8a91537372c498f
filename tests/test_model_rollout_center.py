"""Model roll-out at the dispatch center (issue 15 item 2), on SQLite and on a real PostgreSQL: an
admin uploads a version (card + file, signed or not); a roll-out names it for every box or a
canary list; a box is told the version for its own site and downloads exactly the bytes
uploaded; a roll-back is one call; bad uploads are 4xx naming the field."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support_dispatch import Dispatch, build_dispatch
from vision.core.signing import generate_key, sign, verify


def version(
    name: str = "crop-verifier", v: str = "1.1.0", payload: bytes = b"weights-1", **card: Any
) -> tuple[bytes, bytes]:
    """(card bytes, model bytes) of a made-up version."""
    body = {"name": name, "version": v, "file": "head.npz", "sha256": hashlib.sha256(payload).hexdigest(), **card}
    return yaml.safe_dump(body, sort_keys=False).encode(), payload


def upload(d: Dispatch, card: bytes, model: bytes, signature: str | None = None, role: str = "admin") -> Any:
    data = {"signature": signature} if signature else {}
    files = {"card": ("card.yaml", card, "application/yaml"), "model": ("head.npz", model, "application/octet-stream")}
    return d.client.post("/api/v1/models", files=files, data=data, headers=d.auth(role))


def assigned(d: Dispatch, token: str) -> list[dict[str, Any]]:
    r = d.client.get("/api/v1/models/assigned", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    return r.json()


def test_upload_rollout_to_a_canary_then_everyone_then_back(dispatch: Dispatch, tmp_path: Path) -> None:
    key = tmp_path / "release.key"
    public = generate_key(key)
    other_box = dispatch.service.create_client("edge-02", "device", "site-b")[1]
    card1, model1 = version(v="1.1.0", payload=b"weights-1")
    card2, model2 = version(v="1.2.0", payload=b"weights-2")
    r = upload(dispatch, card1, model1, sign(card1, key))
    assert r.status_code == 201, r.text
    assert r.json()["signed"] and r.json()["sha256"] == hashlib.sha256(model1).hexdigest()
    assert upload(dispatch, card1, model1, sign(card1, key)).status_code == 200  # the same again: a replay
    assert upload(dispatch, card2, model2).status_code == 201
    assert assigned(dispatch, dispatch.device_token) == []  # uploaded is not rolled out

    assert (
        dispatch.client.post(
            "/api/v1/models/crop-verifier/rollout", json={"version": "1.1.0"}, headers=dispatch.auth("admin")
        ).status_code
        == 201
    )
    r = dispatch.client.post(
        "/api/v1/models/crop-verifier/rollout",
        json={"version": "1.2.0", "canary": ["site-a"]},
        headers=dispatch.auth("admin"),
    )
    assert r.status_code == 201 and r.json()["canary"] == ["site-a"]
    (mine,) = assigned(dispatch, dispatch.device_token)
    (theirs,) = assigned(dispatch, other_box)
    assert (mine["version"], theirs["version"]) == ("1.2.0", "1.1.0")  # the canary first, the others keep theirs
    # what a box downloads is what was uploaded, and the card's signature verifies with the public key
    assert dispatch.client.get(theirs["model_url"], headers={"Authorization": f"Bearer {other_box}"}).content == model1
    card = dispatch.client.get(theirs["card_url"], headers={"Authorization": f"Bearer {other_box}"}).content
    assert card == card1 and verify(card, theirs["signature"], [public]) == 0
    assert mine["signature"] is None

    assert (
        dispatch.client.post(
            "/api/v1/models/crop-verifier/rollout", json={"version": "1.2.0"}, headers=dispatch.auth("admin")
        ).status_code
        == 201
    )
    assert assigned(dispatch, other_box)[0]["version"] == "1.2.0"
    r = dispatch.client.post("/api/v1/models/crop-verifier/rollback", headers=dispatch.auth("admin"))
    assert r.status_code == 201 and r.json()["version"] == "1.1.0" and r.json()["canary"] is None
    assert [a["version"] for a in assigned(dispatch, dispatch.device_token)] == ["1.1.0"]
    listed = dispatch.client.get("/api/v1/models", headers=dispatch.auth("reviewer")).json()
    assert [v["version"] for v in listed["versions"]] == ["1.2.0", "1.1.0"] and len(listed["rollouts"]) == 4
    # model files are kept: the evidence collector leaves what a version names
    assert dispatch.service.collect_evidence(now=10**10).orphans == 0
    assert dispatch.client.get(theirs["model_url"], headers={"Authorization": f"Bearer {other_box}"}).content == model1


@pytest.mark.parametrize(
    ("card", "model", "signature", "status", "says"),
    [
        (*version(payload=b"x"), None, 201, ""),
        (version(payload=b"x")[0], b"tampered", None, 422, "sha256"),
        (b"name: [unclosed", b"x", None, 422, "card"),
        (version(name="../etc", payload=b"x")[0], b"x", None, 422, "card.name"),
        (version(payload=b"x", file="card.yaml")[0], b"x", None, 422, "card.file"),
        (version(payload=b"x")[0], b"x", "not-a-signature", 422, "signature"),
    ],
)
def test_bad_uploads_are_refused_naming_the_field(
    dispatch: Dispatch, card: bytes, model: bytes, signature: str | None, status: int, says: str
) -> None:
    r = upload(dispatch, card, model, signature)
    assert r.status_code == status, r.text
    assert says in r.text


def test_a_version_is_never_replaced_and_only_admins_roll_out(dispatch: Dispatch) -> None:
    assert upload(dispatch, *version(payload=b"one")).status_code == 201
    r = upload(dispatch, *version(payload=b"two"))
    assert r.status_code == 409 and "new version" in r.text
    assert upload(dispatch, *version(v="9.9.9", payload=b"y"), role="reviewer").status_code == 403
    r = dispatch.client.post(
        "/api/v1/models/crop-verifier/rollout", json={"version": "1.1.0"}, headers=dispatch.auth("dispatcher")
    )
    assert r.status_code == 403
    r = dispatch.client.post(
        "/api/v1/models/crop-verifier/rollout", json={"version": "7.0.0"}, headers=dispatch.auth("admin")
    )
    assert r.status_code == 404
    r = dispatch.client.post("/api/v1/models/crop-verifier/rollback", headers=dispatch.auth("admin"))
    assert r.status_code == 404  # never rolled out
    assert dispatch.client.get("/api/v1/models/assigned", headers=dispatch.auth("admin")).status_code in (401, 403)
    assert dispatch.client.get("/api/v1/models/crop-verifier/1.1.0/model").status_code == 401


@pytest.fixture
def dispatch(tmp_path: Path, db_url: str, fast_passwords: None) -> Iterator[Dispatch]:
    d = build_dispatch(tmp_path, db_url)
    with d.client:
        yield d
    d.service.close()

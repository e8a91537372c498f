"""Model roll-out end to end with the real processes (issue 15 item 2): the real edge daemon
(`python -m vision run`, its models in a copy of models/) streams the demo footage and reports
to a real dispatch center on 127.0.0.1. A new, signed version of its crop classifier is
uploaded and rolled out to this box as a canary: the box downloads it, checks sha256 and
signature, and its daemon swaps it in without stopping the camera; the heartbeat then reports
the new sha256. A version whose file was altered on the center, and one signed by a key the box
does not trust, are refused and the box keeps its model. A roll-back brings the old one back."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from tests.support_daemon import daemon_processes, until
from tests.support_dispatch import free_port
from vision.core.signing import generate_key, sign
from vision.dispatch.app import create_app
from vision.dispatch.server import DispatchServer
from vision.dispatch.service import DispatchService
from vision.dispatch.settings import Settings
from vision.dispatch.uploads import Upload

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
TOKEN_ENV = "STREETVISION_DEVICE_TOKEN"
MODEL = "crop-verifier"


def new_version(models: Path, out: Path, version: str, key: Path, nudge: float) -> Path:
    """A new version of the crop classifier: its head's weights nudged, its card saying so, signed."""
    src = models / MODEL
    shutil.copytree(src, out)
    card = yaml.safe_load((src / "card.yaml").read_text(encoding="utf-8"))
    with np.load(src / card["file"], allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["weight"] = arrays["weight"] * (1.0 + nudge)
    np.savez(out / card["file"], **arrays)
    card.update(version=version, sha256=hashlib.sha256((out / card["file"]).read_bytes()).hexdigest())
    (out / "card.yaml").write_text(yaml.safe_dump(card, allow_unicode=True, sort_keys=False), encoding="utf-8")
    (out / "card.yaml.sig").write_text(sign((out / "card.yaml").read_bytes(), key), encoding="ascii")
    return out


def upload(service: DispatchService, directory: Path) -> str:
    card = (directory / "card.yaml").read_bytes()
    sig = (directory / "card.yaml.sig").read_text(encoding="ascii")
    with open(directory / yaml.safe_load(card)["file"], "rb") as f:
        info, _ = service.upload_model("test", card, Upload(f), sig)
    return info.sha256


@pytest.fixture
def daemon() -> Iterator[Callable[..., subprocess.Popen[str]]]:
    with daemon_processes() as start:
        yield lambda site, token, models: start(site, {TOKEN_ENV: token, "STREETVISION_MODELS": str(models)}, "--loop")


@pytest.mark.timeout(300)
def test_a_canary_box_takes_a_signed_version_live_and_refuses_tampered_ones(
    tmp_path: Path, daemon: Callable[..., subprocess.Popen[str]]
) -> None:
    models = tmp_path / "models"
    shutil.copytree(REPO / "models", models, ignore=shutil.ignore_patterns("*.png", "*.md", "city-v1", "coco-nanodet"))
    key = tmp_path / "release.key"
    public = generate_key(key)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    settings = Settings(data_dir=tmp_path / "center", db_url=f"sqlite:///{tmp_path / 'dispatch.db'}")
    service = DispatchService.from_settings(settings)
    _, token = service.create_client("box", "device", "demo-site")
    site = yaml.safe_load((REPO / "configs" / "site-demo.yaml").read_text(encoding="utf-8"))
    site["cameras"][0]["source"] = str(REPO / "datasets" / "footage" / "vtest.avi")
    site["dispatch"] = {"url": url, "token_env": TOKEN_ENV, "heartbeat_s": 0.5, "frame_every_s": 0}
    site["model_updates"] = {"check_every_s": 1, "trusted_keys": [public]}
    site["outbox"] = {"path": str(tmp_path / "outbox")}
    site["metrics"] = {"host": "127.0.0.1", "port": 0}
    site_path = tmp_path / "site.yaml"
    site_path.write_text(yaml.safe_dump(site, allow_unicode=True, sort_keys=False), encoding="utf-8")
    original = yaml.safe_load((models / MODEL / "card.yaml").read_text(encoding="utf-8"))

    def running() -> tuple[str, str | None, dict[str, Any]] | None:
        boxes = service.fleet_boxes()
        if not boxes:
            return None
        (m,) = [m for m in boxes[0].models if m["name"] == MODEL]
        cam = boxes[0].cameras[0]
        return str(m["version"]), m.get("sha256"), {"state": cam.state, "last_frame_at": cam.last_frame_at}

    with DispatchServer(app=create_app(service=service), port=port):
        # the version every box runs today, uploaded and rolled out to all: nothing for this box to do
        upload(service, new_version(models, tmp_path / "v-orig", original["version"], key, 0.0))
        service.rollout_model("test", MODEL, original["version"], None)
        proc = daemon(site_path, token, models)
        until("a heartbeat", lambda: (r := running()) and r[2]["state"] == "online", 90, proc)
        assert running()[:2] == (original["version"], original["sha256"])  # type: ignore[index]

        # a signed new version, to this box as a canary: taken live
        new_sha = upload(service, new_version(models, tmp_path / "v2", "1.0.1-test", key, 0.01))
        service.rollout_model("test", MODEL, "1.0.1-test", ["demo-site"])
        until("the new version running", lambda: (r := running()) and r[:2] == ("1.0.1-test", new_sha), 60, proc)
        seen = running()[2]["last_frame_at"]  # type: ignore[index]
        until("frames after the swap", lambda: (r := running()) and r[2]["last_frame_at"] > seen, 30, proc)
        assert (models / MODEL / "previous" / "card.yaml").is_file()

        # altered on the center after upload: the sha256 does not match, refused
        altered = tmp_path / "v3"
        sha3 = upload(service, new_version(models, altered, "1.0.2-test", key, 0.02))
        stored = service.store.path_for(sha3)
        os.chmod(stored, 0o644)
        stored.write_bytes(stored.read_bytes()[:-10] + b"0123456789")
        service.rollout_model("test", MODEL, "1.0.2-test", ["demo-site"])
        # signed by a key the box does not trust: refused
        other = tmp_path / "other.key"
        generate_key(other)
        stranger = new_version(models, tmp_path / "v4", "1.0.3-test", key, 0.03)
        (stranger / "card.yaml.sig").write_text(sign((stranger / "card.yaml").read_bytes(), other), encoding="ascii")
        time.sleep(3)  # a few checks of the box
        assert running()[:2] == ("1.0.1-test", new_sha)  # type: ignore[index]
        upload(service, stranger)
        service.rollout_model("test", MODEL, "1.0.3-test", ["demo-site"])
        time.sleep(3)
        assert running()[:2] == ("1.0.1-test", new_sha)  # type: ignore[index]

        # roll-back: every box to the version every box ran before
        service.rollback_model("test", MODEL)
        until(
            "the old version back",
            lambda: (r := running()) and r[:2] == (original["version"], original["sha256"]),
            60,
            proc,
        )
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out[-3000:]
    assert "1.0.2-test REFUSED: the model file has sha256" in out
    assert "1.0.3-test REFUSED: signature: the signature does not verify with any trusted key" in out
    service.close()

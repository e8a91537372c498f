"""A new model version is rolled out to a running daemon without stopping its streams."""

from __future__ import annotations

import shutil
import threading
from functools import partial

import pytest
import yaml

import vision.edge.daemon as daemon
from tests.support_edge import site_dict, wait_for
from vision.core.model_registry import load_card
from vision.edge.config import parse_site
from vision.edge.daemon import rollout

WAIT = partial(wait_for, timeout=30.0, step=0.1)


@pytest.fixture
def models_dir(tmp_path, monkeypatch, repo_root):
    root = tmp_path / "models"
    shutil.copytree(repo_root / "models" / "coco-nanodet", root / "coco-nanodet")
    monkeypatch.setenv("STREETVISION_MODELS", str(root))
    monkeypatch.setattr(rollout, "MODEL_CHECK_S", 0.3)
    return root


def set_card(models_dir, **changes):
    card_file = models_dir / "coco-nanodet" / "card.yaml"
    card = yaml.safe_load(card_file.read_text())
    card.update(changes)
    card_file.write_text(yaml.safe_dump(card, allow_unicode=True))


def running_site(footage_path, tmp_path):
    data = site_dict([], [])
    data["cameras"][0]["source"] = str(footage_path)
    data["cameras"][0]["sampling"] = {"detect_fps": 5}
    data["metrics"] = {"enabled": False}
    site = parse_site(data)
    runner = daemon.SiteRunner(site, live=True, loop=True, outbox_dir=tmp_path / "outbox")
    stop = threading.Event()
    thread = threading.Thread(target=runner.run, args=(stop, 60), daemon=True)
    thread.start()
    return runner, stop, thread


def test_new_version_is_picked_up_and_streams_keep_running(models_dir, footage_path, tmp_path):
    runner, stop, thread = running_site(footage_path, tmp_path)
    try:
        assert WAIT(lambda: runner.summary.processed >= 3)
        reader = runner.readers["cam1"]
        assert runner.detector.version == "1.0.0"
        set_card(models_dir, version="1.0.1")
        assert WAIT(lambda: runner.detector.version == "1.0.1"), "new card not picked up"
        processed_at_swap = runner.summary.processed
        assert WAIT(lambda: runner.summary.processed >= processed_at_swap + 3), "no frames after the swap"
        assert runner.readers["cam1"] is reader and reader.status().reconnects == 0
        assert runner.summary.model_reloads == 1
    finally:
        stop.set()
        thread.join(30)


def test_broken_new_version_keeps_the_running_model(models_dir, footage_path, tmp_path):
    runner, stop, thread = running_site(footage_path, tmp_path)
    try:
        assert WAIT(lambda: runner.summary.processed >= 3)
        set_card(models_dir, version="2.0.0", sha256="0" * 64)  # card does not match the file
        assert WAIT(lambda: runner.rollout.refused >= 1), "the new version was never tried"
        before = runner.summary.processed
        assert runner.detector.version == "1.0.0" and runner.summary.model_reloads == 0
        assert WAIT(lambda: runner.summary.processed >= before + 3)
        set_card(models_dir, version="2.0.1", sha256=load_sha(models_dir))  # fixed: rolled out on request
        runner.request_reload()
        assert WAIT(lambda: runner.detector.version == "2.0.1")
    finally:
        stop.set()
        thread.join(30)


def load_sha(models_dir):
    from vision.core.model_registry import sha256_file

    return sha256_file(models_dir / "coco-nanodet" / "model.onnx")


def test_a_card_that_does_not_know_its_directory_is_stamped_where_its_model_is(models_dir, monkeypatch):
    """A card not read from a directory (`directory` None) is looked for where `ModelCard.path` looks."""
    stamp = rollout.model_stamp("coco-nanodet")
    assert stamp is not None and stamp[0][0] == str(models_dir / "coco-nanodet" / "card.yaml")
    monkeypatch.setattr(rollout, "load_card", lambda name: load_card(name).model_copy(update={"directory": None}))
    assert rollout.model_stamp("coco-nanodet") == stamp
    set_card(models_dir, version="1.0.1")
    assert rollout.model_stamp("coco-nanodet") != stamp, "a new card is still noticed"


def test_a_new_version_of_a_violation_types_own_head_is_swapped_in(tmp_path, monkeypatch, repo_root):
    """The truck head rolls out like the default one: a new card is picked up at the next check, and
    the verdicts of that violation type are stamped with it; a broken one is refused."""
    from vision.edge.config import load_site
    from vision.edge.daemon.detectors import open_site_verifier

    root = tmp_path / "models"
    for name in ("coco-city", "crop-verifier", "crop-verifier-trucks", "effnet-lite0-imagenet"):
        shutil.copytree(repo_root / "models" / name, root / name)
    monkeypatch.setenv("STREETVISION_MODELS", str(root))
    monkeypatch.setattr(rollout, "MODEL_CHECK_S", 0.0)
    site = load_site(repo_root / "configs" / "site-demo.yaml")
    verifier = open_site_verifier(site)
    assert verifier is not None
    watcher = rollout.ModelRollout(site, None, None, verifier, enabled=True)  # type: ignore[arg-type]
    assert watcher.check() == 0  # nothing changed
    card_file = root / "crop-verifier-trucks" / "card.yaml"
    card = yaml.safe_load(card_file.read_text())
    card_file.write_text(yaml.safe_dump({**card, "version": "9.0.0"}, allow_unicode=True))
    assert watcher.check() == 1
    assert verifier.classifier_for("muddy_truck").version == "9.0.0"
    assert verifier.classifier.name == "crop-verifier"  # the default head stays
    card_file.write_text(yaml.safe_dump({**card, "version": "9.0.1", "sha256": "0" * 64}, allow_unicode=True))
    assert watcher.check() == 0 and watcher.refused == 1
    assert verifier.classifier_for("muddy_truck").version == "9.0.0"  # the running head keeps verifying

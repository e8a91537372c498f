"""Installs the model versions the dispatch center assigns this box (vision.dispatch.rollouts).

Every `check_every_s`: `GET /api/v1/models/assigned`; for each model this site runs whose
assigned version or sha256 differs from its card under models/<name>/, download the card and
the model file into a temporary file beside it, then check, before anything is replaced:
- the card names the assigned model, version, file and sha256;
- the file's sha256 and size are the assigned ones;
- the card's Ed25519 signature verifies with a key in `model_updates.trusted_keys` (unless
  the site set `require_signature: false`).
Only then is the old version copied to models/<name>/previous/ and the new file and card moved
into place (os.replace: never half written), and the daemon asked to reload (rollout.py swaps
it between two batches; streams keep running). A version that fails a check is refused, logged
and counted, and not fetched again; the running one stays.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from vision.core.signing import SIGNATURE_SUFFIX, SignatureError, verify
from vision.edge.delivery.periodic import Periodic

log = logging.getLogger(__name__)

__all__ = ["ModelUpdater", "UpdateStats"]

CARD_FILE = "card.yaml"
PREVIOUS_DIR = "previous"


class Refused(Exception):
    """A version that failed a check; the message says which."""


@dataclass
class UpdateStats:
    installed: list[str] = field(default_factory=list)  # "name version" in the order installed
    refused: dict[str, str] = field(default_factory=dict)  # "name version sha256" -> why
    errors: int = 0  # checks that could not reach the center or read its answer


class ModelUpdater:
    def __init__(
        self,
        url: str,
        headers: Mapping[str, str],
        models_root: Path,
        names: list[str],
        *,
        trusted_keys: list[str],
        require_signature: bool,
        on_installed: Callable[[], None],
        interval_s: float,
        timeout_s: float = 60.0,
    ) -> None:
        self.url = url.rstrip("/")
        self.root = models_root
        self.names = set(names)
        self.trusted_keys = trusted_keys
        self.require_signature = require_signature
        self.on_installed = on_installed
        self.interval_s = interval_s
        self.stats = UpdateStats()
        self._client = httpx.Client(headers=dict(headers), timeout=httpx.Timeout(timeout_s))
        self._thread = Periodic("model-updates", interval_s, self.check, log)

    # ------------------------------------------------------------ one check
    def check(self) -> list[str]:
        """Asks the center once and installs what is new; returns the "name version"s installed."""
        try:
            resp = self._client.get(f"{self.url}/api/v1/models/assigned")
            resp.raise_for_status()
            assigned = resp.json()
        except (httpx.HTTPError, ValueError) as exc:
            self.stats.errors += 1
            log.warning("model updates: cannot ask the center (%s)", exc)
            return []
        installed = []
        for a in assigned:
            name = str(a.get("name", ""))
            if name not in self.names:
                continue  # a model this site does not run
            key = f"{name} {a.get('version')} {a.get('sha256')}"
            if key in self.stats.refused or self._runs(a):
                continue
            try:
                self._install(a)
            except Refused as exc:
                self.stats.refused[key] = str(exc)
                log.error("model %s %s REFUSED: %s -- the running version stays", name, a.get("version"), exc)
                continue
            except (httpx.HTTPError, OSError) as exc:
                self.stats.errors += 1
                log.warning("model %s %s: download failed (%s); trying again later", name, a.get("version"), exc)
                continue
            installed.append(f"{name} {a['version']}")
        if installed:
            self.stats.installed += installed
            self.on_installed()
        return installed

    def _runs(self, a: Mapping[str, Any]) -> bool:
        """Whether models/<name>/ already holds the assigned version (its card and its file)."""
        try:
            card = yaml.safe_load((self.root / a["name"] / CARD_FILE).read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError):
            return False
        return isinstance(card, dict) and str(card.get("version")) == a["version"] and card.get("sha256") == a["sha256"]

    def _install(self, a: Mapping[str, Any]) -> None:
        name, version, sha, size = a["name"], a["version"], a["sha256"], int(a["size_bytes"])
        card_bytes = self._client.get(self.url + a["card_url"]).raise_for_status().content
        card = yaml.safe_load(card_bytes.decode("utf-8"))
        if not isinstance(card, dict):
            raise Refused("the card is not a YAML mapping")
        for key, want in (("name", name), ("version", version), ("sha256", sha), ("file", a["file_name"])):
            if str(card.get(key)) != str(want):
                raise Refused(f"the card says {key} {card.get(key)!r}, the assignment {want!r}")
        file_name = str(card["file"])
        if "/" in file_name or file_name in (CARD_FILE, PREVIOUS_DIR) or file_name.startswith("."):
            raise Refused(f"the card names the file {file_name!r}")
        signature = a.get("signature")
        if self.trusted_keys and signature:
            try:
                verify(card_bytes, str(signature), self.trusted_keys)
            except SignatureError as exc:
                raise Refused(f"signature: {exc}") from None
        elif self.require_signature:
            raise Refused("the card is not signed by a trusted key (model_updates.require_signature)")
        directory = self.root / name
        directory.mkdir(parents=True, exist_ok=True)
        incoming = directory / f".incoming-{os.getpid()}-{file_name}"
        try:
            digest, got = hashlib.sha256(), 0
            with self._client.stream("GET", self.url + a["model_url"]) as resp, open(incoming, "wb") as out:
                resp.raise_for_status()
                for chunk in resp.iter_bytes(1 << 20):
                    got += len(chunk)
                    if got > size:
                        raise Refused(f"the model file is larger than the {size} bytes assigned")
                    digest.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            if got != size or digest.hexdigest() != sha:
                raise Refused(f"the model file has sha256 {digest.hexdigest()} ({got} bytes), assigned {sha} ({size})")
            self._keep_previous(directory)
            os.replace(incoming, directory / file_name)
            _write_atomically(directory / CARD_FILE, card_bytes)
            sig_file = directory / (CARD_FILE + SIGNATURE_SUFFIX)
            if signature:
                _write_atomically(sig_file, str(signature).encode("ascii"))
            else:
                sig_file.unlink(missing_ok=True)
        finally:
            incoming.unlink(missing_ok=True)
        log.info("model %s %s installed (sha256 %s); the daemon reloads it", name, version, sha[:12])

    def _keep_previous(self, directory: Path) -> None:
        """The running version's card and file, copied aside (a box can be rolled back by hand offline)."""
        try:
            card = yaml.safe_load((directory / CARD_FILE).read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError):
            return
        if not isinstance(card, dict) or not isinstance(card.get("file"), str):
            return
        previous = directory / PREVIOUS_DIR
        shutil.rmtree(previous, ignore_errors=True)
        previous.mkdir()
        for part in (CARD_FILE, card["file"], CARD_FILE + SIGNATURE_SUFFIX):
            with contextlib.suppress(FileNotFoundError):
                shutil.copy2(directory / part, previous / part)

    # ------------------------------------------------------------ the thread
    def start(self) -> ModelUpdater:
        self._thread.start()
        return self

    def stop(self, timeout: float = 15.0) -> None:
        self._thread.stop(timeout)
        self._client.close()


def _write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)

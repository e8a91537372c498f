"""New model versions rolled out to a running daemon without stopping its streams.

Copy a new version into `models/<name>/`: every `MODEL_CHECK_S` the loop asks
`ModelRollout.check()` (between two batches), which compares each model's stamp (sizes
and modification times of its card and model file) with the one it runs. A changed
stamp, or a SIGHUP (`request()`: at the next batch, whatever the stamps), loads the new
version, sha256-verified by its card, and swaps it into its route; the camera readers
never notice. A version that fails to load is logged and refused: the running one stays,
and the same bad files are not tried again at every check. The crop classifier of the
verifier is rolled out the same way. Only models the daemon opened itself are rolled out:
a detector the caller supplied (tests, the scenario suite) stays as given.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from vision.core.model_registry import ModelNotFound, card_dir, load_card, models_dir
from vision.edge.config import SiteConfig
from vision.edge.daemon.detectors import open_route_detector, open_site_verifier
from vision.edge.detection.pool import DetectorPool, WorkerPlan
from vision.edge.detection.routing import RoutedDetections
from vision.edge.verify.classifier import CropClassifier
from vision.edge.verify.verifier import Verifier

log = logging.getLogger("vision.edge.daemon")

__all__ = ["MODEL_CHECK_S", "ModelRollout", "Stamp", "classifier_stamp", "model_stamp"]

MODEL_CHECK_S = 10.0  # how often the daemon looks for a new version of its models

Stamp = tuple[tuple[str, int, int], ...]  # (file, size, mtime_ns) of each file a version is made of


def _stamp(files: list[Path]) -> Stamp | None:
    """None when a file is missing (a version half copied in)."""
    stamp = []
    for f in files:
        try:
            st = f.stat()
        except OSError:
            return None
        stamp.append((str(f), st.st_size, st.st_mtime_ns))
    return tuple(stamp)


def model_stamp(model: str) -> Stamp | None:
    """What changes when a detector is rolled out: its model file, or its card and the file the card names."""
    path = Path(model)
    if path.suffix in (".onnx", ".pt"):
        return _stamp([path])
    try:
        card = load_card(model)
    except (ModelNotFound, OSError, ValueError):
        return None
    # A card read from disk knows its directory; one that does not lives where its model file is looked for.
    card_dir = card.directory if card.directory is not None else models_dir() / card.name
    return _stamp([card_dir / "card.yaml", card.path])


def classifier_stamp(model: str) -> Stamp | None:
    """What changes when a crop classifier is rolled out: its card and its trained head."""
    base = card_dir(model)
    return _stamp([base / "card.yaml", base / "head.npz"])


def verifier_stamp(site: SiteConfig) -> tuple[Stamp | None, ...]:
    """The stamps of every head the site's verifier uses (its model, and those of some violation types)."""
    if site.verifier is None:
        return ()
    models = [site.verifier.model, *sorted(set(site.verifier.models_by_violation.values()))]
    return tuple(classifier_stamp(m) for m in models)


class ModelRollout:
    """Watches the site's models and swaps new versions into the running routes and verifier."""

    def __init__(
        self, site: SiteConfig, models: RoutedDetections, plan: WorkerPlan, verifier: Verifier | None, *, enabled: bool
    ) -> None:
        """`enabled`: the daemon opened the detectors itself (from `site`), so it may replace them."""
        self.site = site
        self.models = models
        self.plan = plan
        self.verifier = verifier
        self.enabled = enabled
        self.reloads = 0  # versions swapped in
        self.refused = 0  # new versions that failed to load (the running one stayed)
        self._stamps = [model_stamp(r.model) for r in site.detector.routes] if enabled else []
        self._verifier_stamp = verifier_stamp(site) if enabled else ()
        self._next_check = time.monotonic() + MODEL_CHECK_S
        self._requested = threading.Event()

    def request(self) -> None:
        """Load every model again at the next check (SIGHUP); any thread."""
        self._requested.set()

    def check(self) -> int:
        """On the loop, between two batches: roll out what changed (everything when requested).
        Returns the number of versions swapped in."""
        if not self.enabled:
            return 0
        now = time.monotonic()
        forced = self._requested.is_set()
        if not forced:
            if now < self._next_check:
                return 0
            self._next_check = now + MODEL_CHECK_S
        self._requested.clear()
        before = self.reloads
        self._check_verifier(forced)
        for i, cfg in enumerate(self.site.detector.routes):
            stamp = model_stamp(cfg.model)
            if forced or stamp != self._stamps[i]:
                self._reload_route(i, stamp)
        return self.reloads - before

    def _check_verifier(self, forced: bool) -> None:
        """A new crop classifier version is swapped in like a detector; a bad one is refused."""
        if self.site.verifier is None or self.verifier is None:
            return
        stamp = verifier_stamp(self.site)
        if not forced and stamp == self._verifier_stamp:
            return
        self._verifier_stamp = stamp
        old = self.verifier.heads()
        try:
            new = open_site_verifier(self.site)
        except Exception as exc:  # noqa: BLE001 - keep verifying with the running versions
            self.refused += 1
            log.error(
                "crop classifier %s could not be reloaded, keeping %s: %s",
                self.site.verifier.model,
                _versions(old),
                exc,
            )
            return
        if new is None or (_versions(new.heads()) == _versions(old) and not forced):
            return
        # one assignment each, on the loop between two batches: a look uses the old heads or the new ones
        self.verifier.classifier, self.verifier.by_violation = new.classifier, new.by_violation
        self.reloads += 1
        log.info("crop classifier reloaded: %s -> %s", _versions(old), _versions(new.heads()))

    def _reload_route(self, i: int, stamp: Stamp | None) -> None:
        cfg = self.site.detector.routes[i]
        route = self.models.routes[i]
        old_name, old_version = route.name, route.version
        self._stamps[i] = stamp  # a bad version is not tried again until its files change
        try:
            new = open_route_detector(self.site, cfg, self.plan)
        except Exception as exc:  # noqa: BLE001 - a half-copied or bad model must not stop the cameras
            self.refused += 1
            log.error("model %s could not be reloaded, keeping %s %s: %s", cfg.model, old_name, old_version, exc)
            return
        old_pool, route.detector, route.pool = route.pool, new, DetectorPool(new, self.plan.workers)
        old_pool.close()
        route._tiles.clear()  # the tiles follow the model's input size
        self.reloads += 1
        log.info(
            "model reloaded: %s %s -> %s %s (streams kept running)", old_name, old_version, route.name, route.version
        )


def _versions(heads: list[CropClassifier]) -> str:
    return ", ".join(f"{c.name} {c.version}" for c in heads)

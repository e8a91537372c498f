"""The site's detectors, their routes and its crop verifier, opened from the site config.

The daemon, the scenario suite and the benchmarks open them here, so a model runs with
the thresholds and ONNX Runtime threads the site would give it (`detector.models`
routes, `detector.workers` / `detector.threads`, `verifier`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np
import supervision as sv

from vision.edge.config import ModelRouteConfig, MuddyTruckRuleConfig, SiteConfig, route_min_confidence
from vision.edge.detection.pool import DetectorPool, WorkerPlan, plan_workers
from vision.edge.detection.routing import ModelRoute
from vision.edge.verify.verifier import Verifier

if TYPE_CHECKING:
    from vision.edge.casework.plate_step import PlateStep
    from vision.edge.detection import Detector

__all__ = [
    "RoutePool",
    "SiteDetector",
    "open_route_detector",
    "open_site_detectors",
    "open_site_detector",
    "open_site_verifier",
    "model_routes",
    "pool_workers",
]


@runtime_checkable
class SiteDetector(Protocol):
    """What the daemon needs of a detector: a batch call, and the name and version stamped on cases.

    `vision.edge.detection.Detector` has it; so does a caller's stand-in (tests, a counting wrapper),
    which need not detect one image at a time. `class_names`, where a detector has them, tells which
    classes it serves."""

    @property
    def name(self) -> str: ...
    @property
    def version(self) -> str: ...
    def detect_batch(self, images: list[np.ndarray]) -> list[sv.Detections]: ...


class RoutePool(Protocol):
    """A route's detector pool as the loop uses it (`DetectorPool`, or a caller's wrapper of one)."""

    def detect_batch(self, images: list[np.ndarray]) -> list[sv.Detections]: ...
    def close(self) -> None: ...


def open_route_detector(site: SiteConfig, route: ModelRouteConfig, plan: WorkerPlan) -> Detector:
    """The detector of one `detector.models` route (loaded and sha256-checked by its card)."""
    from vision.edge.detection import open_detector

    return open_detector(
        route.model,
        min_confidence=route_min_confidence(site, route),
        threads=plan.threads,
        runtime=site.detector.runtime,
        workers=plan.workers,
    )


def open_site_detectors(site: SiteConfig, plan: WorkerPlan | None = None) -> list[Detector]:
    """One detector per `detector.models` route, each with the ONNX Runtime threads its worker plan gives."""
    cfg = site.detector
    plan = plan or plan_workers(cfg.workers, cfg.threads, len([c for c in site.cameras if c.enabled]))
    return [open_route_detector(site, route, plan) for route in cfg.routes]


def open_site_detector(site: SiteConfig, plan: WorkerPlan | None = None) -> Detector:
    """The site's first (primary) detector."""
    return open_site_detectors(site, plan)[0]


def model_routes(site: SiteConfig, detectors: Sequence[SiteDetector], plan: WorkerPlan) -> list[ModelRoute]:
    """A route per detector: the classes it serves, how often it looks, its pool of workers.

    Detectors the caller opened itself (tests, one shared by the scenario suite) that do not
    match the site's routes one to one each serve every class."""
    configs = site.detector.routes
    if len(detectors) != len(configs):
        configs = [ModelRouteConfig(model=str(getattr(d, "name", "model"))) for d in detectors]
    routes: list[ModelRoute] = []
    for det, cfg in zip(detectors, configs, strict=True):
        routes.append(
            ModelRoute(
                detector=det,
                pool=DetectorPool(det, plan.workers),
                classes=frozenset(cfg.classes) if cfg.classes is not None else None,
                every_s=cfg.every_s,
                min_confidence=route_min_confidence(site, cfg, set(getattr(det, "class_names", []) or [])),
                zoom_every_s=cfg.zoom_every_s,
                zones={c.id: [z.polygon for z in c.zones] for c in site.cameras},
            )
        )
    return routes


def open_site_verifier(site: SiteConfig) -> Verifier | None:
    """The site's crop verifier, or None when the site has no `verifier` section."""
    if site.verifier is None:
        return None
    from vision.edge.verify import CropClassifier, load_classifier
    from vision.edge.verify.classifier import load_classifier_card

    classifier = load_classifier(site.verifier.model, threads=site.verifier.threads)
    # heads of their own for some violation types: on the default's backbone session (one set of image features)
    by_violation: dict[str, CropClassifier] = {
        violation: CropClassifier(load_classifier_card(model), classifier.embedder)
        for violation, model in site.verifier.heads_for({r.type for r in site.rules}).items()
    }
    return Verifier(
        classifier,
        min_score={r.rule_name: r.verify_min_score for r in site.rules},
        judge_views=site.verifier.judge_views,
        by_violation=by_violation,
    )


def open_site_plates(site: SiteConfig) -> PlateStep | None:
    """The plate step of the site's muddy-truck cases, or None when no rule reads plates."""
    if site.plates is None or not any(isinstance(r, MuddyTruckRuleConfig) and r.read_plates for r in site.rules):
        return None
    from vision.edge.casework.plate_step import PlateStep

    return PlateStep.load(site.plates)


def pool_workers(route: ModelRoute) -> int:
    """Frames the route's pool detects at once: a `DetectorPool`'s workers (a caller's wrapper of one
    passes them on); 1 for a pool that does not say."""
    return int(getattr(route.pool, "workers", 1))

"""Which model the demo and the benchmark run: the site's, or the COCO base model while it is missing.

The demo must work on a fresh clone before `city-v1` is trained, so a missing
registry model falls back to `coco-nanodet` with a note saying what it cannot
see; an explicit `--model` never falls back.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

FALLBACK = "coco-nanodet"


def pick_model(site_model: str, override: str | None = None) -> tuple[str, str | None]:
    """(model to run, note for the user or None)."""
    from vision.core.model_registry import ModelNotFound, load_card

    if override:
        if Path(override).suffix in (".onnx", ".pt"):
            if not Path(override).is_file():
                raise ValueError(f"--model: file not found: {override}")
        else:
            try:
                load_card(override)
            except ModelNotFound as exc:
                raise ValueError(f"--model: {exc}") from None
        return override, None
    if Path(site_model).suffix in (".onnx", ".pt"):
        return site_model, None
    try:
        load_card(site_model)
    except ModelNotFound:
        return FALLBACK, (
            f"model '{site_model}' is not in models/: running the COCO base model '{FALLBACK}', which sees bikes and "
            "trucks but no stalls, garbage or mud (train city-v1 or pass --model PATH.onnx)"
        )
    return site_model, None


def override_model(site_data: dict[str, Any], model: str) -> dict[str, Any]:
    """A site document (model_dump) running one model for every class instead of its own models."""
    site_data["detector"]["model"] = model
    site_data["detector"]["models"] = None
    return site_data


def parse_swaps(pairs: list[str]) -> dict[str, str]:
    """`OLD=NEW` arguments as {old: new}; NEW must be a model under models/."""
    from vision.core.model_registry import ModelNotFound, load_card

    swaps: dict[str, str] = {}
    for pair in pairs:
        old, sep, new = pair.partition("=")
        if not sep or not old.strip() or not new.strip():
            raise ValueError(f"--swap-model: '{pair}' is not OLD=NEW (e.g. coco-city=coco-city-int8)")
        try:
            load_card(new.strip())
        except ModelNotFound as exc:
            raise ValueError(f"--swap-model: {exc}") from None
        swaps[old.strip()] = new.strip()
    return swaps


def swap_models(site_data: dict[str, Any], swaps: dict[str, str]) -> dict[str, Any]:
    """A site document (model_dump) with each route's model replaced where `swaps` names it; every
    other setting of the route (classes, rate, zoom, threshold) is kept, so two variants of one
    model are compared on the same site."""
    from vision.edge.config import DEFAULT_MODEL

    detector = site_data["detector"]
    routes = detector.get("models") or [{"model": detector.get("model") or DEFAULT_MODEL}]
    names = sorted({r["model"] for r in routes})
    unknown = sorted(set(swaps) - set(names))
    if unknown:
        raise ValueError(f"--swap-model: {', '.join(unknown)} is not among the site's models ({', '.join(names)})")
    for route in routes:
        route["model"] = swaps.get(route["model"], route["model"])
    if not detector.get("models"):
        detector["model"] = routes[0]["model"]
    return site_data

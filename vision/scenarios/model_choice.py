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

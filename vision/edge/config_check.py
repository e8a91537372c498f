"""Checks of a site config that need files: model cards, taxonomy.

Kept out of the pydantic validators so that validating a document never does I/O.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from vision.core.model_registry import ModelNotFound, card_dir, load_card
from vision.edge.config import SiteConfig


def model_classes(model: str) -> list[str]:
    """Class names of a model given by registry name or by file path."""
    path = Path(model)
    if path.suffix in {".onnx", ".pt"} and path.is_file():
        from vision.edge.detection import open_detector

        return list(open_detector(model).class_names)
    return list(load_card(model).classes)


def check_site_files(site: SiteConfig) -> list[tuple[str, str]]:
    """(field path, message) for every problem; empty when the site can run."""
    problems: list[tuple[str, str]] = []
    if site.detector.runtime == "openvino":
        import importlib.util

        if importlib.util.find_spec("openvino") is None:
            problems.append(
                ("detector.runtime", "'openvino' is not installed on this box: pip install 'streetvision[openvino]'")
            )
    served: dict[str, str] = {}  # class -> model serving it
    multi = site.detector.models is not None
    for i, route in enumerate(site.detector.routes):
        where = f"detector.models.{i}.model" if multi else "detector.model"
        try:
            classes = model_classes(route.model)
        except (ModelNotFound, OSError, ValueError) as exc:
            problems.append((where, str(exc)))
            continue
        unknown = [c for c in route.classes or [] if c not in classes]
        if unknown:
            problems.append(
                (f"detector.models.{i}.classes", f"model '{route.model}' has no class(es) {', '.join(unknown)}")
            )
        for name in route.classes or classes:
            if name in classes and name not in served:
                served[name] = route.model
    if problems:
        return problems
    models = " + ".join(f"'{r.model}'" for r in site.detector.routes)
    for i, rule in enumerate(site.rules):
        fields = {"classes": rule.classes}
        for extra in ("mud_classes", "goods_classes"):
            if getattr(rule, extra, None):
                fields[extra] = getattr(rule, extra)
        for field, wanted in fields.items():
            missing = [c for c in wanted if c not in served]
            if missing:
                problems.append(
                    (
                        f"rules.{i}.{field}",
                        f"rule '{rule.rule_name}' needs class(es) {', '.join(missing)} that {models} "
                        f"do(es) not serve ({len(served)} classes served; add a model that has them under "
                        "detector.models, or train one, see README 'Model lifecycle')",
                    )
                )
    problems += _verifier_problems(site)
    if site.taxonomy:
        from vision.core.taxonomy import load_taxonomy

        try:
            tax = load_taxonomy(site.taxonomy)
        except Exception as exc:  # noqa: BLE001 - any parse error is reported with its field
            problems.append(("taxonomy", f"cannot load {site.taxonomy}: {exc}"))
        else:
            for i, rule in enumerate(site.rules):
                if rule.type not in tax.violations:
                    problems.append((f"rules.{i}.type", f"'{rule.type}' is not in taxonomy {site.taxonomy}"))
    return problems


def _verifier_problems(site: SiteConfig) -> list[tuple[str, str]]:
    """Every head the verifier would load has its card and its trained head, and shares the default head's
    backbone (the heads of some violation types reuse its image features). Read from the cards alone: the
    classifier itself lives above this module (vision/edge/verify)."""
    if site.verifier is None:
        return []
    heads = [("verifier.model", site.verifier.model)] + [
        (f"verifier.models_by_violation.{violation}", model)
        for violation, model in site.verifier.heads_for({r.type for r in site.rules}).items()
    ]
    problems: list[tuple[str, str]] = []
    backbones: dict[str, tuple[str, str, str]] = {}  # field -> (head name, backbone, its sha256)
    for field, model in heads:
        directory = card_dir(model)
        try:
            card = yaml.safe_load((directory / "card.yaml").read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            problems.append((field, f"no crop classifier '{model}' ({directory / 'card.yaml'}: {exc})"))
            continue
        head = directory / str(card.get("file", "head.npz")) if isinstance(card, dict) else None
        if head is None or not head.is_file():
            problems.append((field, f"crop classifier '{model}' has no trained head ({head})"))
            continue
        backbones[field] = (str(card.get("name", model)), str(card.get("backbone")), str(card.get("backbone_sha256")))
    default = backbones.get("verifier.model")
    for field, (name, backbone, sha) in backbones.items():
        if default is not None and sha != default[2]:
            problems.append(
                (
                    field,
                    f"crop classifier '{name}' was trained on backbone {backbone} ({sha[:12]}…), the site's "
                    f"verifier.model '{default[0]}' on {default[1]} ({default[2][:12]}…): they must share it",
                )
            )
    return problems

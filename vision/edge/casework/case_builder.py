"""Violation + evidence files + site facts -> the CaseReport sent to dispatch.

The only place where rule output meets the taxonomy and the model's
provenance; timestamps leave here as UTC ISO 8601.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC
from typing import TypeVar

from vision.core.cases import CaseReport, ConfidenceSample, EvidenceItem, Verification
from vision.core.evidence_files import EvidenceFile
from vision.core.taxonomy import Taxonomy
from vision.edge.config import CameraConfig, SiteConfig
from vision.edge.rules.base import Violation

MAX_HISTORY = 1000  # CaseReport.confidence_history limit

_Sample = TypeVar("_Sample")


def _thin(samples: list[_Sample], limit: int) -> list[_Sample]:
    """At most `limit` samples, evenly spaced, the last one kept."""
    if len(samples) <= limit:
        return samples
    step = len(samples) / limit
    return [samples[int(i * step)] for i in range(limit - 1)] + [samples[-1]]


def build_case(
    violation: Violation,
    *,
    site: SiteConfig,
    camera: CameraConfig,
    taxonomy: Taxonomy,
    model_name: str,
    model_version: str,
    evidence: Sequence[EvidenceFile],
) -> CaseReport:
    code = taxonomy.lookup(violation.violation_type, site.taxonomy_edition)
    history = _thin(violation.confidence_history, MAX_HISTORY)
    return CaseReport(
        idempotency_key=violation.id,
        site_id=site.site_id,
        camera_id=camera.id,
        violation=violation.violation_type,
        rule=violation.rule,
        event_code=code.code,
        event_name=code.name,
        taxonomy_edition=site.taxonomy_edition,
        location=camera.location,
        grid_code=camera.grid_code,
        zone=violation.zone,
        bbox=violation.bbox_rel,
        object_count=max(1, violation.object_count),
        classes=violation.classes,
        confidence=violation.confidence,
        confidence_history=[
            ConfidenceSample(t=s.at.astimezone(UTC), score=min(max(s.score, 0.0), 1.0)) for s in history
        ],
        onset_at=violation.onset_at,
        detected_at=violation.detected_at,
        dwell_s=round(violation.dwell_s, 3),
        model_name=model_name,
        model_version=model_version,
        verification=Verification.model_validate(violation.verification) if violation.verification else None,
        plate=violation.plate,
        evidence=[
            EvidenceItem(
                name=f.name, kind=f.kind, content_type=f.content_type, sha256=f.sha256, size_bytes=f.size_bytes
            )
            for f in evidence
        ],
    )

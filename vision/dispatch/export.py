"""Reviewed cases as a YOLO-format labelled frame set: the feedback loop.

Accepted cases (立案 and everything after it) give the clean snapshot with its
box; rejected ones (误报) give the snapshot with an empty label file — a hard
negative. A manifest (JSON lines) records case, files, outcome, reason and the
model version that produced the detection."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml

from vision.dispatch.schemas import CaseDetail, EvidencePublic
from vision.dispatch.service import DispatchService
from vision.dispatch.storage import StorageError
from vision.dispatch.workflow import Status

EXT = {"image/jpeg": ".jpg", "image/png": ".png"}
# What review said of the AI report: a labelled positive, or a hard negative.
LabelOutcome = Literal["accepted", "rejected"]


@dataclass
class ExportSummary:
    out_dir: Path
    positives: int
    negatives: int
    skipped: list[tuple[int, str]]  # (case id, why)

    @property
    def total(self) -> int:
        return self.positives + self.negatives


def yolo_line(cls: int, box: list[float]) -> str:
    x1, y1, x2, y2 = box
    return f"{cls} {(x1 + x2) / 2:.6f} {(y1 + y2) / 2:.6f} {x2 - x1:.6f} {y2 - y1:.6f}"


def outcome_of(case: CaseDetail) -> LabelOutcome:
    return "rejected" if case.status is Status.REJECTED else "accepted"


def clean_snapshot(case: CaseDetail) -> EvidencePublic | None:
    """The edge box's unannotated still, in an image format a trainer reads."""
    return next(
        (e for e in case.evidence if e.stage == "report" and e.kind == "snapshot" and e.content_type in EXT), None
    )


def detected_label_class(options: list[str], detected: list[str]) -> str | None:
    """What an accepted case is labelled: the one option the edge detected, else the default
    (the first option; also when it detected several: one box cannot carry two classes)."""
    seen = [c for c in options if c in detected]
    if len(seen) == 1:
        return seen[0]
    return options[0] if options else None


def export_labels(service: DispatchService, out_dir: Path | str) -> ExportSummary:
    out = Path(out_dir)
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "labels").mkdir(parents=True, exist_ok=True)
    cfg = service.config
    names = list(dict.fromkeys(c for v in cfg.label_classes for c in cfg.label_class_options(v)))
    summary = ExportSummary(out, 0, 0, [])
    with (out / "manifest.jsonl").open("w", encoding="utf-8") as manifest:
        for case in service.reviewed_cases(source="edge"):
            outcome = outcome_of(case)
            snap = clean_snapshot(case)
            if snap is None:
                summary.skipped.append((case.id, "no clean snapshot"))
                continue
            label_class = detected_label_class(cfg.label_class_options(case.violation), case.classes)
            if outcome == "accepted" and label_class is None:
                summary.skipped.append((case.id, f"no label class for '{case.violation}'"))
                continue
            occ = next((o for o in case.occurrences if o.id == snap.occurrence_id), None)
            box = (occ.bbox if occ else None) or case.bbox
            label_text = ""  # a hard negative: nothing to find in this image
            if outcome == "accepted":
                if box is None:
                    summary.skipped.append((case.id, "no box"))
                    continue
                assert label_class is not None  # checked above
                label_text = yolo_line(names.index(label_class), box) + "\n"
            stem = f"case{case.id:06d}_e{snap.id}"
            image = Path("images") / (stem + EXT[snap.content_type])
            label = Path("labels") / (stem + ".txt")
            try:
                shutil.copyfile(service.store.open_path(snap.sha256), out / image)
            except StorageError as exc:
                summary.skipped.append((case.id, str(exc)))
                continue
            (out / label).write_text(label_text)
            if outcome == "accepted":
                summary.positives += 1
            else:
                summary.negatives += 1
            manifest.write(
                json.dumps(
                    {
                        "case_id": case.id,
                        "image": image.as_posix(),
                        "label": label.as_posix(),
                        "outcome": outcome,
                        "status": case.status.value,
                        "reason": case.reject_reason,
                        "violation": case.violation,
                        "class": label_class if outcome == "accepted" else None,
                        "detected_classes": case.classes,
                        "bbox_xyxy": box,
                        "camera_id": case.camera_id,
                        "site_id": case.site_id,
                        "rule": case.rule,
                        "confidence": case.confidence,
                        "model_name": case.model_name,
                        "model_version": case.model_version,
                        "detected_at": case.first_detected_at.isoformat(),
                        "sha256": snap.sha256,
                    },
                    ensure_ascii=False,
                )
                + "\n"
            )
    (out / "data.yaml").write_text(
        yaml.safe_dump(
            {"path": str(out.resolve()), "train": "images", "val": "images", "names": dict(enumerate(names))},
            allow_unicode=True,
            sort_keys=False,
        )
    )
    return summary

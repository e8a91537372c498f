"""Import the dispatch center's label export (`streetvision dispatch export-labels`)
into a training set: the feedback loop.

The export has one box per snapshot (the case) and empty labels for rejected
cases (hard negatives). Everything else in those frames — people, cars — is
unlabelled, and training on it as-is would teach the model that people are
background. So the base model's COCO classes are added as pseudo-labels, unless
they duplicate the case box. Each camera is one scene group for `split`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from vision.core.geometry import box_iou
from vision.training.data.formats import image_size
from vision.training.data.layout import Box, Dataset, DatasetError, parse_label_file
from vision.training.data.pseudo_label import BaseDetector, detect_base, to_boxes


@dataclass
class FeedbackSummary:
    positives: int = 0
    negatives: int = 0
    skipped: list[str] = field(default_factory=list)


def import_dispatch(
    src: Path, out: Dataset, split: str, detector: BaseDetector | None = None, min_confidence: float = 0.4
) -> FeedbackSummary:
    src = Path(src)
    manifest = src / "manifest.jsonl"
    if not manifest.is_file():
        raise DatasetError(f"{src}: no manifest.jsonl (is this a dispatch label export?)")
    import cv2

    summary = FeedbackSummary()
    for n, line in enumerate(manifest.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            image, label = src / rec["image"], src / rec["label"]
        except (ValueError, KeyError) as exc:
            raise DatasetError(f"{manifest}:{n}: bad record ({exc})") from None
        if not image.is_file():
            summary.skipped.append(f"case {rec.get('case_id')}: image {rec['image']} missing")
            continue
        boxes, problems = parse_label_file(label)
        if problems:
            summary.skipped.append(problems[0])
            continue
        cls_name = rec.get("class")
        mapped: list[Box] = []
        for b in boxes:
            if cls_name not in out.names:
                summary.skipped.append(f"case {rec.get('case_id')}: class {cls_name!r} is not in {out.names}")
                break
            mapped.append(Box(out.names.index(cls_name), b.cx, b.cy, b.w, b.h))
        else:
            if detector is not None:
                img = cv2.imread(str(image))
                w, h = image_size(image)
                if img is None:  # PIL reads it (image_size) but OpenCV cannot
                    raise DatasetError(f"{image}: cannot decode image with OpenCV")
                for pb in to_boxes(detect_base(detector, img, min_confidence), w, h, out.names):
                    if not any(box_iou(pb.xyxy(1, 1), mb.xyxy(1, 1))[0, 0] > 0.5 for mb in mapped):
                        mapped.append(pb)
            out.write(
                split,
                Path(rec["image"]).name,
                image,
                mapped,
                {
                    "source": f"camera:{rec.get('camera_id')}",
                    "generator": "dispatch feedback",
                    "case_id": rec.get("case_id"),
                    "outcome": rec.get("outcome"),
                    "reason": rec.get("reason"),
                    "model_version": rec.get("model_version"),
                },
            )
            if rec.get("outcome") == "accepted":
                summary.positives += 1
            else:
                summary.negatives += 1
    return summary

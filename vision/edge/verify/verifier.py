"""Per violation type: which crop labels confirm a candidate, and what vetoes it.

The verdict is stamped on the case (label, score, model), and a dropped
candidate says why in the debug log and in a counter. Vetoes use knowledge the
head was never trained for: ImageNet's own bus and car classes (so a bus never
becomes a muddy truck, even though no bus was in our training crops) and the
COCO detector's people (a person sitting on the pavement is not garbage).

With `judge_views`, a vehicle the rule kept several views of (a truck's largest,
sharpest looks on its way to the exit) is judged on all of them, its classes'
probabilities averaged with this look's: mud on a truck 40-100 px tall is a few pixels, and
one look, often of a truck cut by the frame's edge or in a motion-found box, can
call a clean truck muddy where its best views all say clean (docs/PERFORMANCE.md,
2026-12-07).

A violation type can have a head of its own (`verifier.models_by_violation`): the
same backbone features, a head trained for that question. Muddy trucks ship with
one because the head that judges mud best names far bicycles worst
(models/crop-verifier/STUDY.md, step 11); each verdict is stamped with the head
that gave it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import supervision as sv

from vision.core.geometry import box_iou
from vision.edge.rules.base import VehicleView, VerificationRecord, Violation
from vision.edge.verify.classifier import CropClassifier, CropVerdict

# Labels of the classifier that confirm each violation type.
CONFIRMS: dict[str, frozenset[str]] = {
    "street_vending": frozenset({"vendor_stall"}),
    "non_motor_parking": frozenset({"bicycle", "motorcycle"}),
    "exposed_garbage": frozenset({"garbage"}),
    "muddy_truck": frozenset({"muddy_truck"}),
}


PERSON_VETO_CONFIDENCE = 0.5  # detectors run at low thresholds for recall; only a sure person vetoes


@dataclass(frozen=True)
class Verdict:
    accepted: bool
    label: str  # what the classifier named the best crop
    score: float  # probability of the confirming labels on the best crop
    reason: str
    model_name: str
    model_version: str

    def as_dict(self) -> VerificationRecord:
        return {
            "accepted": self.accepted,
            "label": self.label,
            "score": round(self.score, 4),
            "reason": self.reason,
            "model_name": self.model_name,
            "model_version": self.model_version,
        }


class Verifier:
    def __init__(
        self,
        classifier: CropClassifier,
        *,
        min_score: dict[str, float] | None = None,
        judge_views: bool = False,
        by_violation: dict[str, CropClassifier] | None = None,
    ):
        self.classifier = classifier  # names what no rule asked about (proposals, moving regions) and the rest
        # violation type -> its own head (verifier.models_by_violation)
        self.by_violation: dict[str, CropClassifier] = dict(by_violation or {})
        self.min_score = min_score or {}  # rule name -> threshold (default 0.5)
        self.judge_views = judge_views  # a vehicle's kept views count as looks (verifier.judge_views)

    def classifier_for(self, violation_type: str) -> CropClassifier:
        return self.by_violation.get(violation_type, self.classifier)

    def heads(self) -> list[CropClassifier]:
        """Every head in use, the default first (what heartbeats and /healthz report)."""
        out = [self.classifier]
        out += [c for c in self.by_violation.values() if c is not self.classifier]
        return out

    def check(self, violation: Violation, image: np.ndarray, detections: sv.Detections | None = None) -> Verdict:
        boxes = np.asarray(violation.object_boxes_px or [violation.box_px], dtype=np.float64).reshape(-1, 4)
        confirm = CONFIRMS[violation.violation_type]
        classifier = self.classifier_for(violation.violation_type)
        verdicts = classifier.classify(image, boxes)
        scores = [sum(v.probs.get(label, 0.0) for label in confirm) for v in verdicts]
        best = int(np.argmax(scores))
        v, score = verdicts[best], float(scores[best])
        threshold = self.min_score.get(violation.rule, 0.5)
        veto = self._veto(violation, v, boxes[best], detections)
        if veto:
            return self._verdict(classifier, False, v, score, veto)
        on = ""
        if self.judge_views and violation.views:  # this look counts as one more view
            v = self._mean(v, *self._on_views(classifier, violation.views))
            score, on = sum(v.probs.get(label, 0.0) for label in confirm), f" on {len(violation.views) + 1} looks"
        if score < threshold:
            return self._verdict(
                classifier,
                False,
                v,
                score,
                f"classified as {v.label} ({v.score:.2f}){on}; {score:.2f} < {threshold:.2f}",
            )
        return self._verdict(classifier, True, v, score, f"confirmed{on}")

    @staticmethod
    def _on_views(classifier: CropClassifier, views: list[VehicleView]) -> list[CropVerdict]:
        return [classifier.classify(view.image, np.asarray([view.box], dtype=np.float64))[0] for view in views]

    @staticmethod
    def _mean(*each: CropVerdict) -> CropVerdict:
        """One verdict from several looks at one object: the mean of their probabilities."""
        labels = list(each[0].probs)
        probs = {label: float(np.mean([e.probs.get(label, 0.0) for e in each])) for label in labels}
        imagenet = {g: float(np.mean([e.imagenet.get(g, 0.0) for e in each])) for g in each[0].imagenet}
        label = max(probs, key=lambda k: probs[k])
        return CropVerdict(label, probs[label], probs, imagenet)

    def _veto(self, violation: Violation, v: CropVerdict, box: np.ndarray, detections: sv.Detections | None) -> str:
        g = v.imagenet
        if violation.violation_type == "muddy_truck":
            other = max(g.get("bus", 0.0), g.get("car", 0.0))
            if other > 0.3 and other > g.get("truck", 0.0):
                kind = "bus" if g.get("bus", 0.0) >= g.get("car", 0.0) else "car"
                return f"looks like a {kind} (ImageNet {other:.2f} vs truck {g.get('truck', 0.0):.2f})"
        if violation.violation_type in ("exposed_garbage", "street_vending") and g.get("bin", 0.0) > 0.5:
            if v.label in ("bin", "background"):
                return f"looks like a bin (ImageNet {g['bin']:.2f})"
        if violation.violation_type == "exposed_garbage" and detections is not None and len(detections):
            names = np.asarray(detections.data.get("class_name", []), dtype=object)
            conf = np.asarray(detections.confidence if detections.confidence is not None else np.ones(len(names)))
            sure = (names == "person") & (conf >= PERSON_VETO_CONFIDENCE) if len(names) else np.zeros(0, dtype=bool)
            people = np.asarray(detections.xyxy)[sure]
            # the candidate *is* a person (sitting, crouching): a passer-by's bigger box overlaps it only partly
            if len(people) and float(box_iou(box[None], people).max()) >= 0.5:
                return "the detector sees a person there"
        return ""

    @staticmethod
    def _verdict(classifier: CropClassifier, accepted: bool, v: CropVerdict, score: float, reason: str) -> Verdict:
        return Verdict(accepted, v.label, score, reason, classifier.name, classifier.version)

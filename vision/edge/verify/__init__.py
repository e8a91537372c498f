"""A second look at a candidate violation's crop before any case opens.

Why: the city detector learned stalls, garbage and mud from composites over one
plaza and calls many real objects by those names. Its candidates (and those of
the class-agnostic static-object path) are cropped and judged by a classifier
on features of a network trained on real photos (EfficientNet-Lite0,
ImageNet), with negative classes (bin, person, car, bus, clean truck, background),
so a bin, a bus or a standing person is named as what it is and dropped.

    embedder.py    crop preparation + the pretrained backbone (ONNX): features and ImageNet scores
    classifier.py  the trained head over those features, with its card (`streetvision train classifier`)
    verifier.py    per violation type: which labels confirm it, which veto it; verdict with score and reason
"""

from vision.edge.verify.classifier import CropClassifier, CropVerdict, load_classifier
from vision.edge.verify.verifier import Verdict, Verifier

__all__ = ["CropClassifier", "CropVerdict", "Verdict", "Verifier", "load_classifier"]

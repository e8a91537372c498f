"""Several detectors on one site: which model serves which class, at which rate, at which threshold."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from tests.support_edge import site_dict
from vision.edge.config import ConfigError, parse_site, route_min_confidence
from vision.edge.config_check import check_site_files
from vision.edge.detection import make_detections
from vision.edge.detection.routing import ModelRoute, RoutedDetections, merge_detections

REPO = Path(__file__).resolve().parent.parent


class FakeDetector:
    thread_safe = False

    def __init__(self, name: str, objs: list[tuple[str, tuple, float]]):
        self.name, self.version = name, "1"
        self.class_names = sorted({o[0] for o in objs})
        self.objs = objs
        self.calls = 0

    def detect_batch(self, images):
        self.calls += len(images)
        return [self._dets() for _ in images]

    def _dets(self):
        ids = np.array([self.class_names.index(o[0]) for o in self.objs])
        return make_detections(
            np.array([o[1] for o in self.objs], dtype=np.float32),
            np.array([o[2] for o in self.objs]),
            ids,
            self.class_names,
        )

    def close(self):
        pass


class InlinePool:
    def __init__(self, det):
        self.det = det

    def detect_batch(self, images):
        return self.det.detect_batch(images)

    def close(self):
        pass


@dataclass
class Frame:
    camera_id: str
    t_s: float
    image: np.ndarray


def route(det, classes=None, every_s=0.0, min_conf=0.0) -> ModelRoute:
    return ModelRoute(det, InlinePool(det), frozenset(classes) if classes else None, every_s, min_conf)


def frames(t: float, cams=("a", "b")) -> list[Frame]:
    return [Frame(c, t, np.zeros((10, 10, 3), np.uint8)) for c in cams]


COCO = [("person", (0, 0, 10, 20), 0.9), ("bicycle", (20, 20, 40, 40), 0.6), ("truck", (50, 50, 90, 80), 0.8)]
CITY = [("vendor_stall", (5, 5, 30, 30), 0.7), ("truck", (50, 50, 90, 80), 0.5), ("garbage", (1, 1, 4, 4), 0.2)]


def test_each_class_comes_from_the_model_that_serves_it():
    coco, city = FakeDetector("coco", COCO), FakeDetector("city", CITY)
    routed = RoutedDetections([route(coco, ["person", "bicycle", "truck"]), route(city, ["vendor_stall", "garbage"])])
    (dets, _) = routed.detect(frames(0.0))
    names = list(dets.data["class_name"])
    assert sorted(names) == ["bicycle", "garbage", "person", "truck", "vendor_stall"]
    assert names.count("truck") == 1  # the city model's truck is not served: no double box
    # class ids index one vocabulary over both models
    assert len(set(dets.class_id.tolist())) == len(names)
    assert routed.provenance(["bicycle"]) == ("coco", "1")
    assert routed.provenance(["truck", "vendor_stall"]) == ("coco+city", "1+1")


def test_a_model_with_every_s_looks_that_often_per_camera_and_holds_its_detections_between():
    coco, city = FakeDetector("coco", COCO), FakeDetector("city", CITY)
    routed = RoutedDetections([route(coco, ["person"]), route(city, ["vendor_stall"], every_s=2.0)])
    seen = []
    for k in range(8):  # 0.0 .. 3.5 s at 2 fps, two cameras
        out = routed.detect(frames(k * 0.5))
        seen.append([list(d.data["class_name"]) for d in out])
    assert coco.calls == 16  # every frame of both cameras
    assert city.calls == 4  # t = 0 and t = 2 for each camera
    assert all("vendor_stall" in names for per_frame in seen for names in per_frame)  # held in between


def test_a_camera_stream_that_jumps_back_looks_again():
    city = FakeDetector("city", CITY)
    routed = RoutedDetections([route(city, ["vendor_stall"], every_s=10.0)])
    routed.detect(frames(50.0, cams=("a",)))
    routed.detect(frames(1.0, cams=("a",)))  # a looping file restarted
    assert city.calls == 2


def test_route_threshold_is_kept_in_addition_to_the_detector():
    city = FakeDetector("city", CITY)
    routed = RoutedDetections([route(city, ["vendor_stall", "garbage"], min_conf=0.3)])
    (dets,) = routed.detect(frames(0.0, cams=("a",)))
    assert list(dets.data["class_name"]) == ["vendor_stall"]


def test_a_detector_returning_too_few_results_is_an_error_not_dropped_frames():
    class Short(FakeDetector):
        def detect_batch(self, images):
            return super().detect_batch(images)[:-1]

    routed = RoutedDetections([route(Short("s", COCO))])
    with pytest.raises(RuntimeError, match="returned 1 results for 2 images"):
        routed.detect(frames(0.0))


def test_merge_of_nothing_is_empty_with_class_names():
    dets = merge_detections([])
    assert len(dets) == 0 and "class_name" in dets.data


# --- configuration -----------------------------------------------------------------------------
ZONES = [{"name": "pave", "kind": "no_parking", "polygon": [[0, 0], [1, 0], [1, 1], [0, 1]]}]


def bikes_site(detector: dict, min_conf: float = 0.35) -> dict:
    return site_dict(
        ZONES, [{"type": "non_motor_parking", "name": "bikes", "min_confidence": min_conf}], detector=detector
    )


def test_model_and_models_together_are_refused_naming_the_field():
    with pytest.raises(ConfigError) as err:
        parse_site(bikes_site({"model": "coco-nanodet", "models": [{"model": "city-v1"}]}))
    assert any(loc.startswith("detector") and "either model or models" in msg for loc, msg in err.value.errors)


def test_a_class_served_by_two_models_is_their_ensemble_one_box_per_object():
    coco = FakeDetector("coco", [("bicycle", (20, 20, 40, 40), 0.3)])
    city = FakeDetector("city", [("bicycle", (21, 20, 41, 41), 0.6), ("bicycle", (100, 100, 130, 130), 0.4)])
    routed = RoutedDetections([route(coco, ["bicycle"]), route(city, ["bicycle"])])
    (dets,) = routed.detect(frames(0.0, cams=("a",)))
    assert len(dets) == 2  # the overlapping pair is one bicycle, the other model's second bike is kept
    assert sorted(dets.confidence.tolist()) == pytest.approx([0.4, 0.6])
    site = parse_site(
        bikes_site(
            {
                "models": [
                    {"model": "coco-nanodet", "classes": ["bicycle"]},
                    {"model": "city-v1", "classes": ["bicycle"]},
                ]
            }
        )
    )
    assert [r.model for r in site.detector.routes] == ["coco-nanodet", "city-v1"]


def test_detector_keeps_what_the_most_permissive_rule_asks_for():
    site = parse_site(
        bikes_site(
            {"min_confidence": 0.25, "models": [{"model": "coco-nanodet", "classes": ["bicycle", "motorcycle"]}]},
            min_conf=0.2,
        )
    )
    assert route_min_confidence(site, site.detector.routes[0]) == pytest.approx(0.2)
    # a rule that asks for more does not raise the detector's threshold
    site = parse_site(bikes_site({"min_confidence": 0.25}, min_conf=0.5))
    assert route_min_confidence(site, site.detector.routes[0]) == pytest.approx(0.25)


def test_the_daemon_opens_each_route_at_its_threshold():
    from vision.edge.daemon import open_site_detectors

    site = parse_site(
        bikes_site(
            {"min_confidence": 0.4, "models": [{"model": "coco-nanodet", "classes": ["bicycle", "motorcycle"]}]},
            min_conf=0.2,
        )
    )
    (det,) = open_site_detectors(site)
    assert det.min_confidence == pytest.approx(0.2)


def test_config_check_names_a_rule_class_no_model_serves():
    site = parse_site(bikes_site({"models": [{"model": "coco-nanodet", "classes": ["person"]}]}))
    problems = check_site_files(site)
    assert any(loc == "rules.0.classes" and "bicycle" in msg for loc, msg in problems), problems


def test_config_check_names_a_route_class_the_model_lacks():
    site = parse_site(
        bikes_site({"models": [{"model": "coco-nanodet", "classes": ["bicycle", "motorcycle", "vendor_stall"]}]})
    )
    problems = check_site_files(site)
    assert ("detector.models.0.classes", "model 'coco-nanodet' has no class(es) vendor_stall") in problems


@pytest.mark.parametrize("name", ["site-demo.yaml", "site-city.yaml"])
def test_shipped_sites_check_and_serve_every_rule_class_from_real_image_features(name):
    from vision.core.model_registry import load_card
    from vision.edge.config import load_site

    site = load_site(REPO / "configs" / name)
    assert site.detector.models is not None and site.verifier is not None
    assert check_site_files(site) == []
    # one network, two heads: every class stands on the COCO network's features, none on city-v1 alone
    assert [r.model for r in site.detector.routes] == ["coco-city"]
    route = site.detector.routes[0]
    assert route.classes is None  # every class: COCO's unconsumed ones are proposals the classifier names
    card = load_card("coco-city")
    coco, city = card.heads
    assert len(coco.classes) == 80 and {"vendor_stall", "garbage", "muddy_truck"} <= set(city.classes)
    served = set(card.classes)
    for rule in site.rules:
        assert set(rule.classes) <= served, rule.name


def test_config_check_names_a_verifier_head_that_is_missing_or_on_another_backbone(tmp_path, monkeypatch):
    import shutil

    import yaml

    from vision.edge.config import load_site

    site = load_site(REPO / "configs" / "site-demo.yaml")
    assert site.verifier is not None
    missing = site.model_copy(
        update={"verifier": site.verifier.model_copy(update={"models_by_violation": {"muddy_truck": "no-such-head"}})}
    )
    ((field, message),) = check_site_files(missing)
    assert field == "verifier.models_by_violation.muddy_truck" and "no-such-head" in message
    # a head trained on another backbone cannot reuse the default head's image features
    root = tmp_path / "models"
    for name in ("coco-city", "crop-verifier", "crop-verifier-trucks"):
        shutil.copytree(REPO / "models" / name, root / name)
    card_file = root / "crop-verifier-trucks" / "card.yaml"
    card = yaml.safe_load(card_file.read_text())
    card_file.write_text(yaml.safe_dump({**card, "backbone": "other", "backbone_sha256": "1" * 64}))
    monkeypatch.setenv("STREETVISION_MODELS", str(root))
    ((field, message),) = check_site_files(site)
    assert field == "verifier.models_by_violation.muddy_truck" and "must share it" in message
    no_trucks = site.model_copy(update={"rules": [r for r in site.rules if r.type != "muddy_truck"]})
    assert check_site_files(no_trucks) == []  # a head no rule of the site uses is not loaded

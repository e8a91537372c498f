"""Boxes no rule consumes, named by the crop classifier: what is named, what never is, what it costs."""

from __future__ import annotations

from datetime import UTC

import numpy as np

from tests.support_edge import detections
from vision.edge.detection.proposal_naming import ProposalNamer
from vision.edge.verify.classifier import CropVerdict

H, W = 480, 640


class Labeller:
    """Names each crop by the box's left edge (a lookup the test controls) and records what it saw."""

    def __init__(self, by_x1: dict[int, tuple[str, float]]):
        self.by_x1 = by_x1
        self.seen: list[tuple[float, ...]] = []

    def classify(self, image, boxes):  # type: ignore[no-untyped-def]
        out = []
        for box in np.asarray(boxes):
            self.seen.append(tuple(box))
            label, score = self.by_x1[int(box[0])]
            out.append(CropVerdict(label, score, {label: score}))
        return out


def masks() -> tuple[np.ndarray, np.ndarray]:
    stationary = np.zeros((H, W), dtype=bool)
    stationary[300:, :320] = True  # the zone: lower left
    exit_mask = np.zeros((H, W), dtype=bool)
    exit_mask[300:, 400:] = True  # around the exit: lower right
    return stationary, exit_mask


def names_of(dets) -> list[str]:  # type: ignore[no-untyped-def]
    return sorted(dets.data["class_name"].tolist()) if len(dets) else []


IMAGE = np.zeros((H, W, 3), dtype=np.uint8)


def test_an_unconsumed_box_in_a_zone_becomes_the_class_the_classifier_names():
    labeller = Labeller({10: ("vendor_stall", 0.9), 100: ("garbage", 0.8)})
    namer = ProposalNamer(labeller, {"vendor_stall", "garbage"}, name_vehicles=False)
    dets = detections([("umbrella", (10, 300, 90, 400), 0.4, -1), ("suitcase", (100, 350, 140, 390), 0.3, -1)])
    out = namer.update(IMAGE, 0.0, dets, *masks())
    assert names_of(out) == ["garbage", "vendor_stall"]
    assert out.confidence.tolist() == [np.float32(0.9), np.float32(0.8)]  # the classifier's score


def test_people_bins_and_boxes_outside_the_zones_never_become_violation_classes():
    labeller = Labeller({10: ("garbage", 0.99), 200: ("bin", 0.95), 500: ("garbage", 0.99)})
    namer = ProposalNamer(labeller, {"garbage"}, name_vehicles=False)
    dets = detections(
        [
            ("person", (10, 300, 60, 420), 0.9, 1),  # a sitting person: never cropped
            ("fire hydrant", (200, 350, 240, 420), 0.5, -1),  # a bin: named, but bin is no violation
            ("suitcase", (500, 100, 540, 150), 0.5, -1),  # outside every stationary zone
        ]
    )
    out = namer.update(IMAGE, 0.0, dets, *masks())
    assert len(out) == 0
    assert [int(b[0]) for b in labeller.seen] == [200]


def test_a_weak_name_is_not_a_detection():
    namer = ProposalNamer(Labeller({10: ("garbage", 0.4)}), {"garbage"}, name_vehicles=False, min_score=0.5)
    out = namer.update(IMAGE, 0.0, detections([("handbag", (10, 350, 50, 400), 0.3, -1)]), *masks())
    assert len(out) == 0


def test_a_vehicle_near_the_exit_named_muddy_adds_a_mud_box_and_a_clean_one_does_not():
    labeller = Labeller({400: ("muddy_truck", 0.9), 500: ("truck", 0.95), 20: ("muddy_truck", 0.9)})
    namer = ProposalNamer(labeller, set(), name_vehicles=True)
    dets = detections(
        [
            ("truck", (400, 250, 480, 330), 0.6, 3),
            ("car", (500, 300, 600, 380), 0.5, 4),
            ("truck", (20, 20, 120, 120), 0.6, 5),  # far from the exit: not looked at
        ]
    )
    out = namer.update(IMAGE, 0.0, dets, *masks())
    assert names_of(out) == ["muddy_truck"]
    assert out.xyxy[0].tolist() == [400, 250, 480, 330]  # the truck's own box: the mud rule's containment test
    assert sorted(int(b[0]) for b in labeller.seen) == [400, 500]


def test_vehicles_near_the_exit_are_named_by_the_truck_head_and_the_rest_by_the_default_one():
    default = Labeller({10: ("garbage", 0.9), 400: ("truck", 0.9)})
    trucks = Labeller({400: ("muddy_truck", 0.8)})
    namer = ProposalNamer(default, {"garbage"}, name_vehicles=True, vehicle_classifier=trucks)
    dets = detections([("handbag", (10, 350, 50, 400), 0.3, -1), ("truck", (400, 250, 480, 330), 0.6, 3)])
    out = namer.update(IMAGE, 0.0, dets, *masks())
    assert sorted(names_of(out)) == ["garbage", "muddy_truck"]  # the truck head's name counts
    assert [int(b[0]) for b in default.seen] == [10] and [int(b[0]) for b in trucks.seen] == [400]


def test_a_box_that_stays_is_named_once_until_the_name_is_stale():
    labeller = Labeller({10: ("vendor_stall", 0.9), 12: ("vendor_stall", 0.9)})
    namer = ProposalNamer(labeller, {"vendor_stall"}, name_vehicles=False, reuse_s=10.0)
    for t in range(5):
        box = (10 if t % 2 == 0 else 12, 300, 90, 400)  # jitter of a detector box
        out = namer.update(IMAGE, float(t), detections([("umbrella", box, 0.4, -1)]), *masks())
        assert names_of(out) == ["vendor_stall"]
    assert len(labeller.seen) == 1
    namer.update(IMAGE, 12.0, detections([("umbrella", (10, 300, 90, 400), 0.4, -1)]), *masks())
    assert len(labeller.seen) == 2  # named again once the name is older than reuse_s
    assert namer.state_size() == 1  # stale names are deleted


def test_at_most_max_per_frame_crops_the_largest_first():
    labeller = Labeller(dict.fromkeys(range(0, 300, 20), ("garbage", 0.9)))
    namer = ProposalNamer(labeller, {"garbage"}, name_vehicles=False, max_per_frame=3)
    dets = detections([("bottle", (x, 400 - x // 10, x + 10 + x // 10, 420), 0.3, -1) for x in range(0, 300, 20)])
    out = namer.update(IMAGE, 0.0, dets, *masks())
    assert len(out) == 3 and len(labeller.seen) == 3
    assert sorted(int(b[0]) for b in labeller.seen) == [240, 260, 280]


def test_a_stalls_awning_and_its_table_are_one_object_in_the_stationary_memory():
    from datetime import datetime

    from vision.edge.rules.memory import StationaryMemory

    memory = StationaryMemory(inertia_frames=1, max_move=0.5, max_gap_s=20, clear_after_s=30)
    at = datetime(2026, 12, 2, tzinfo=UTC)
    table, awning = [160, 280, 250, 370], [150, 215, 255, 275]  # the awning right above the table
    far_stall = [400, 280, 490, 370]
    for boxes in ([table, awning], [table, awning, far_stall]):
        b = np.asarray(boxes, dtype=np.float64)
        points = np.stack([(b[:, 0] + b[:, 2]) / 2, b[:, 3]], axis=1)
        memory.update(
            0.0,
            at,
            np.asarray(["vendor_stall"] * len(b), dtype=object),
            b,
            points,
            np.full(len(b), 0.6),
            np.full(len(b), -1),
            ["z"] * len(b),
        )
    assert len(memory) == 2  # the table (with its awning) and the other stall


def test_real_bins_boxed_as_something_else_never_become_garbage_or_stalls():
    """The real classifier on real footage with bin cut-outs, boxed the way COCO boxes them (fire hydrant)."""
    import cv2

    from tests.test_verifier import FOOTAGE, paste
    from vision.edge.verify import load_classifier

    cap = cv2.VideoCapture(str(FOOTAGE))
    cap.set(cv2.CAP_PROP_POS_FRAMES, 400)
    ok, street = cap.read()
    cap.release()
    assert ok
    namer = ProposalNamer(load_classifier(), {"garbage", "vendor_stall"}, name_vehicles=False)
    zone = np.zeros(street.shape[:2], dtype=bool)
    zone[250:, :] = True
    for name in ("a_tux_wheelie_bin.png", "a_tux_garbagecan.png", "a_tux_home_compost_bin.png"):
        frame, box = paste(street, name, (400, 500), 120)
        out = namer.update(frame, 0.0, detections([("fire hydrant", box, 0.4, -1)]), zone, None)
        assert len(out) == 0, (name, names_of(out), out.confidence)
        namer.reset()


def test_a_weak_box_of_a_rules_class_is_lifted_only_when_the_classifier_agrees():
    """A stall the detector scores under the rule's threshold gets a second opinion; a strong one is left alone."""
    labeller = Labeller({10: ("vendor_stall", 0.95), 100: ("bin", 0.9), 200: ("vendor_stall", 0.99)})
    namer = ProposalNamer(labeller, {"vendor_stall", "garbage"}, name_vehicles=False, weak_below={"vendor_stall": 0.35})
    dets = detections(
        [
            ("vendor_stall", (10, 300, 90, 400), 0.28, -1),  # weak, and the classifier agrees: lifted
            ("garbage", (100, 350, 140, 390), 0.25, -1),  # no threshold given for garbage: not looked at
            ("vendor_stall", (200, 300, 280, 400), 0.6, -1),  # over the threshold already: not looked at
        ]
    )
    out = namer.update(IMAGE, 0.0, dets, *masks())
    assert names_of(out) == ["vendor_stall"]
    assert out.xyxy.tolist() == [[10.0, 300.0, 90.0, 400.0]] and out.confidence.tolist() == [np.float32(0.95)]
    assert [int(b[0]) for b in labeller.seen] == [10]

    disagreeing = ProposalNamer(
        Labeller({10: ("garbage", 0.99)}),
        {"vendor_stall", "garbage"},
        name_vehicles=False,
        weak_below={"vendor_stall": 0.35},
    )
    out = disagreeing.update(IMAGE, 0.0, detections([("vendor_stall", (10, 300, 90, 400), 0.28, -1)]), *masks())
    assert len(out) == 0  # a weak stall the classifier calls garbage is neither lifted nor renamed

    outside = ProposalNamer(labeller, {"vendor_stall"}, name_vehicles=False, weak_below={"vendor_stall": 0.35})
    out = outside.update(IMAGE, 0.0, detections([("vendor_stall", (500, 100, 560, 150), 0.28, -1)]), *masks())
    assert len(out) == 0  # outside every stationary zone


def test_weak_boxes_wait_for_the_others_when_the_crop_budget_is_short():
    labeller = Labeller({10: ("vendor_stall", 0.95), 500: ("muddy_truck", 0.9)})
    namer = ProposalNamer(
        labeller, {"vendor_stall"}, name_vehicles=True, max_per_frame=1, weak_below={"vendor_stall": 0.35}
    )
    dets = detections(
        [
            ("vendor_stall", (10, 300, 200, 470), 0.3, -1),  # weak and the largest box
            ("truck", (500, 380, 560, 420), 0.6, 3),  # at the exit
        ]
    )
    out = namer.update(IMAGE, 0.0, dets, *masks())
    assert names_of(out) == ["muddy_truck"]  # the truck got the one crop
    assert [int(b[0]) for b in labeller.seen] == [500]


def test_a_box_for_the_stationary_rules_is_named_once_it_has_stayed_and_a_moving_one_never():
    """Walkers' bags and legs get new COCO boxes at every look: no crop for them. A bag that stays is
    named at its second look; a truck at the exit at its first (it moves)."""
    labeller = Labeller({**dict.fromkeys(range(0, 300, 30), ("garbage", 0.9)), 450: ("muddy_truck", 0.9)})
    namer = ProposalNamer(labeller, {"garbage"}, name_vehicles=True, stay_looks=2)
    bag = ("suitcase", (120, 380, 150, 410), 0.4, -1)
    truck = ("truck", (450, 330, 560, 420), 0.6, 3)
    walker_x = [0, 45, 90, 135]  # a bag carried along the pavement, 45 px a look
    seen = []
    for look, x in enumerate(walker_x):
        walker_bag = ("handbag", (x, 380, x + 40, 425), 0.3, -1)  # larger than the bag: looked at first
        boxes = [walker_bag, bag, truck] if look else [walker_bag, bag]
        out = namer.update(IMAGE, float(look), detections(boxes), *masks())
        seen.append(names_of(out))
    assert seen[0] == []  # first look: nothing has stayed yet
    assert seen[1] == ["garbage", "muddy_truck"]  # the bag at its second look, the truck at its first
    assert seen[2] == seen[3] == ["garbage", "muddy_truck"]  # names reused, the carried bag never named
    assert sorted(int(b[0]) for b in labeller.seen) == [120, 450]  # two crops in four looks
    namer.reset()
    assert namer.state_size() == 0


def test_a_box_that_flickers_is_still_named_once_it_comes_back_at_the_same_place():
    labeller = Labeller({10: ("vendor_stall", 0.9)})
    namer = ProposalNamer(labeller, {"vendor_stall"}, name_vehicles=False, stay_looks=2, reuse_s=10.0)
    stall = [("umbrella", (10, 300, 90, 400), 0.3, -1)]
    assert len(namer.update(IMAGE, 0.0, detections(stall), *masks())) == 0
    assert len(namer.update(IMAGE, 1.0, detections([]), *masks())) == 0  # the detector missed it once
    assert names_of(namer.update(IMAGE, 2.0, detections(stall), *masks())) == ["vendor_stall"]
    assert len(namer.update(IMAGE, 20.0, detections(stall), *masks())) == 0  # long gone and back: stays again


def test_a_vehicle_parked_by_the_exit_is_named_no_more_but_one_driving_through_is_named_at_every_look():
    """At 40-50 px the truck head can call a parked car muddy at every look; a passing truck's track that
    takes up that box took its mud votes along (the clean Colosseum truck's false case). A vehicle near the
    exit is named until it has stood at one place for `vehicle_stand_s`; one that drives on is named at
    every look, however long."""
    labeller = Labeller(dict.fromkeys(range(400, 640), ("muddy_truck", 0.9)))
    namer = ProposalNamer(labeller, set(), name_vehicles=True, vehicle_stand_s=2.0, reuse_s=10.0)
    named = []
    for look in range(8):  # a look every 0.5 s
        jitter = look % 2  # a detector's box of a still object moves a pixel or so
        car = ("car", (560 + jitter, 330, 630 + jitter, 400), 0.5, 4)
        truck = ("truck", (400 + 20 * look, 310, 480 + 20 * look, 400), 0.6, 3)  # 20 px a look, slowly
        out = namer.update(IMAGE, look * 0.5, detections([car, truck]), *masks())
        named.append(sorted(int(b[0]) for b in out.xyxy))
    assert all(400 + 20 * look in named[look] for look in range(8)), named  # the truck at every look
    assert all(560 in named[look] or 561 in named[look] for look in range(4)), named  # the car until 1.5 s
    assert not any(x in (560, 561) for look in range(4, 8) for x in named[look]), named  # stood 2 s: no more
    namer.reset()
    assert namer.state_size() == 0

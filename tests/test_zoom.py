"""A closer look at the zones: tiles that cover them at the model's aspect, boxes mapped back, held between looks."""

from __future__ import annotations

import numpy as np

from tests.test_detection_routing import Frame
from vision.edge.detection import make_detections
from vision.edge.detection.routing import ModelRoute, RoutedDetections
from vision.edge.detection.zoom import MIN_GAIN, zoom_tiles

BAND = [[[0.0, 0.86], [1.0, 0.86], [1.0, 1.0], [0.0, 1.0]]]  # a walkway along the bottom of a wide view


def test_tiles_cover_every_zone_point_at_the_models_aspect_and_magnify():
    w, h = 1024, 666
    tiles = zoom_tiles(BAND + [[[0.5, 0.9], [0.6, 0.95]]], w, h, 320, 320)
    assert 1 < len(tiles) <= 4
    for x1, y1, x2, y2 in tiles:
        assert 0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h
        assert abs((x2 - x1) / (y2 - y1) - 1.0) < 0.05
        assert 320 / (x2 - x1) >= MIN_GAIN * min(320 / w, 320 / h)
    for px, py in np.asarray(BAND[0]) * [w - 1, h - 1]:
        assert any(x1 <= px <= x2 and y1 <= py <= y2 for x1, y1, x2, y2 in tiles)


def test_zones_that_fill_the_frame_get_no_tiles():
    assert zoom_tiles([[[0, 0], [1, 0], [1, 1], [0, 1]]], 768, 576, 320, 320) == []
    assert zoom_tiles([], 768, 576, 320, 320) == []


class SmallObjectDetector:
    """Finds a bag and a person only when shown magnified (an image narrower than 500 px): in tile pixels."""

    name, version, in_w, in_h = "fake", "1", 320, 320
    class_names = ["garbage", "person"]

    def __init__(self) -> None:
        self.sizes: list[tuple[int, int]] = []

    def detect_batch(self, images):  # type: ignore[no-untyped-def]
        out = []
        for img in images:
            self.sizes.append(img.shape[:2])
            if img.shape[1] < 500:
                out.append(
                    make_detections(
                        np.array([[10, 20, 30, 40], [50, 20, 60, 60]], dtype=np.float32),
                        np.array([0.6, 0.7]),
                        np.array([0, 1]),
                        self.class_names,
                    )
                )
            else:
                out.append(
                    make_detections(np.empty((0, 4), np.float32), np.empty(0), np.empty(0, int), self.class_names)
                )
        return out

    def close(self) -> None:
        pass


def test_tile_boxes_come_back_in_frame_pixels_and_only_objects_that_stay_are_held():
    det = SmallObjectDetector()
    route = ModelRoute(det, det, None, zoom_every_s=2.0, zones={"cam": BAND})
    routed = RoutedDetections([route])
    image = np.zeros((666, 1024, 3), np.uint8)
    tiles = zoom_tiles(BAND, 1024, 666, 320, 320)
    (first,) = routed.detect([Frame("cam", 0.0, image)])
    assert len(det.sizes) == 1 + len(tiles)
    garbage = first.xyxy[first.data["class_name"] == "garbage"]
    x1, y1 = tiles[0][:2]
    assert [x1 + 10, y1 + 20, x1 + 30, y1 + 40] in garbage.tolist()  # shifted by the tile's corner
    assert (first.data["class_name"] == "person").any()
    (between,) = routed.detect([Frame("cam", 1.0, image)])  # no zoomed look due: full frame only
    assert len(det.sizes) == 2 + len(tiles)
    assert set(between.data["class_name"]) == {"garbage"}  # the bag is held, the person is not
    routed.detect([Frame("cam", 2.0, image)])
    assert len(det.sizes) == 3 + 2 * len(tiles)  # zoomed again after zoom_every_s


def test_a_route_without_zoom_never_cuts_tiles():
    det = SmallObjectDetector()
    routed = RoutedDetections([ModelRoute(det, det, None, zones={"cam": BAND})])
    routed.detect([Frame("cam", 0.0, np.zeros((666, 1024, 3), np.uint8))])
    assert det.sizes == [(666, 1024)]

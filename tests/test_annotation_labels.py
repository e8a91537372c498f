"""Labels on annotated snapshots are sized to the frame, so they stay readable when a
reviewer sees a 1080p snapshot at a few hundred pixels."""

from __future__ import annotations

import cv2
import pytest

from vision.edge.casework.evidence import label_size


@pytest.mark.parametrize("height", [240, 480, 720, 1080, 2160])
def test_label_text_is_about_three_percent_of_the_frame_or_readable_minimum(height: int) -> None:
    scale, thick = label_size(height)
    (_w, text_h), _ = cv2.getTextSize("muddy_truck 0.91", cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
    shown_h = text_h * 320 / height  # the review queue shows snapshots at most 320 px high
    assert text_h >= 9 and (shown_h >= 8 or height <= 320)
    assert text_h <= max(16, 0.05 * height)  # and never a banner across the frame

"""Drawn plates: valid texts, real proportions, a font that holds every symbol and needs no network;
the test set is deterministic; the edge's recognizer reads clean drawn plates; the evaluation runs."""

from __future__ import annotations

import hashlib
import json
import textwrap
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.support_offline import PYTHON, run_offline
from vision.core.plates import LETTERS, PROVINCES, SUFFIXES, plate_format
from vision.training.data.synth.plate_font import PLATE_SYMBOLS
from vision.training.data.synth.plates import (
    PLATE_FONT,
    PLATE_STYLES,
    degrade,
    glyph,
    has_glyph,
    paste_plate,
    plate_aspect,
    plate_corners,
    random_plate_text,
    render_plate,
)

REPO = Path(__file__).resolve().parent.parent
SIZES = {"blue": (140, 440), "yellow": (140, 440), "yellow_double": (220, 440), "green": (140, 480)}
CLEAN = {"blue": "苏E12345", "yellow": "苏E54321", "yellow_double": "苏E62817", "green": "苏EF12345"}


@pytest.mark.parametrize("style", PLATE_STYLES)
def test_random_texts_have_the_style_format(style):
    rng = np.random.default_rng(7)
    texts = [random_plate_text(rng, style) for _ in range(300)]
    expected = "new_energy" if style == "green" else "standard"
    assert all(plate_format(t) == expected for t in texts), [t for t in texts if plate_format(t) != expected]
    assert all(len(t) == (8 if style == "green" else 7) for t in texts)
    assert all(t[0] in PROVINCES and t[1] in LETTERS for t in texts)
    trailers = sum(t.endswith("挂") for t in texts)
    if style in ("yellow", "yellow_double"):
        assert 20 < trailers < 120  # a trailer's plate now and then, not always
    else:
        assert trailers == 0
    if style == "green":  # D/F first (small vehicle) or last (large), both drawn
        assert any(t[2] in "DF" for t in texts) and any(t[-1] in "DF" for t in texts)
    assert len(set(texts)) > 290
    again = np.random.default_rng(7)
    assert [random_plate_text(again, style) for _ in range(300)] == texts  # seeded: the same texts


def test_unknown_style_is_refused():
    with pytest.raises(ValueError, match="unknown plate style"):
        random_plate_text(np.random.default_rng(0), "red")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown plate style"):
        render_plate("苏E12345", "red")  # type: ignore[arg-type]


@pytest.mark.parametrize("style", PLATE_STYLES)
def test_plates_have_real_proportions_and_colours(style):
    text = random_plate_text(np.random.default_rng(1), style)
    plate = render_plate(text, style)
    assert plate.dtype == np.uint8 and plate.shape == (*SIZES[style], 3)
    h, w = SIZES[style]
    assert plate_aspect(style) == pytest.approx(w / h)
    assert render_plate(text, style, scale=0.5).shape == (h // 2, w // 2, 3)
    b, g, r = (int(v) for v in plate[h - 12, w // 2 - 6])  # below the symbols, inside the frame
    if style == "blue":
        assert b > 120 and r < 60
    elif style.startswith("yellow"):
        assert r > 200 and g > 150 and b < 60
    else:  # new energy: green below, near white at the top
        assert g > r + 60 and g > b + 60
        assert min(int(v) for v in plate[8, w // 2 - 6]) > 200
    ink_colour = (245, 245, 245) if style == "blue" else (20, 20, 20)
    ink = np.abs(plate.astype(int) - np.asarray(ink_colour)).max(axis=2) < 60
    assert 0.1 < ink.mean() < 0.45  # symbols drawn, not a blank or a blot
    assert np.array_equal(render_plate(text, style), plate)  # drawing is deterministic


@pytest.mark.parametrize(("style", "text"), [("blue", "苏E1234"), ("green", "苏E12345"), ("yellow", "京AD12345")])
def test_wrong_length_is_refused(style, text):
    with pytest.raises(ValueError, match="symbols"):
        render_plate(text, style)


def test_dot_and_spaces_are_dropped():
    assert np.array_equal(render_plate("苏E·12345", "blue"), render_plate("苏E12345", "blue"))


def test_font_holds_every_plate_symbol():
    assert set(PROVINCES + LETTERS + SUFFIXES + "0123456789") <= set(PLATE_SYMBOLS)
    reader_card = (REPO / "models" / "clpr-plate-reader" / "card.yaml").read_text(encoding="utf-8")
    assert set(yaml.safe_load(reader_card)["classes"]) <= set(PLATE_SYMBOLS)  # whatever the reader knows
    missing = [s for s in PLATE_SYMBOLS if not has_glyph(s)]
    assert missing == []
    assert not has_glyph("一") and not has_glyph("a")  # not in the subset: the check can fail
    shapes = {s: glyph(s).tobytes() for s in PLATE_SYMBOLS if s != "·"}
    assert len(set(shapes.values())) == len(shapes)  # a different glyph for each symbol, no fallback box


def test_font_is_small_and_recorded():
    assert PLATE_FONT.is_file() and PLATE_FONT.stat().st_size < 100_000
    folder = PLATE_FONT.parent
    assert (folder / "OFL-1.1.txt").read_text(encoding="utf-8").count("SIL OPEN FONT LICENSE Version 1.1") == 1
    rows = [line.split("\t") for line in (folder / "MANIFEST.tsv").read_text(encoding="utf-8").splitlines()]
    header, entry = rows[0], dict(zip(rows[0], rows[1], strict=True))
    assert "sha256" in header and entry["file"] == PLATE_FONT.name and entry["package"] == "fonts-noto-cjk"
    assert entry["sha256"] == hashlib.sha256(PLATE_FONT.read_bytes()).hexdigest()
    assert "OFL-1.1" in entry["licence"]


OFFLINE_SCRIPT = textwrap.dedent(
    """
    import numpy as np
    from PIL import ImageFont
    opened = []
    real = ImageFont.truetype
    def recording(font, *a, **k):
        opened.append(str(font))
        return real(font, *a, **k)
    ImageFont.truetype = recording
    from vision.training.data.synth.plates import PLATE_FONT, PLATE_STYLES, random_plate_text, render_plate
    rng = np.random.default_rng(0)
    for style in PLATE_STYLES:
        assert render_plate(random_plate_text(rng, style), style).std() > 10
    assert opened == [str(PLATE_FONT)], opened
    print("OK")
    """
)


def test_drawing_needs_no_network_and_no_system_font(tmp_path):
    env = {"HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path / "data"), "FONTCONFIG_PATH": str(tmp_path)}
    run = run_offline([PYTHON, "-c", OFFLINE_SCRIPT], tmp_path, env=env, timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "OK" in run.stdout
    assert run.attempts == "", f"network attempts:\n{run.attempts}"


def test_corners_and_paste():
    plate = render_plate("苏E12345", "blue")
    flat = plate_corners((200.0, 100.0), 120.0, plate_aspect("blue"))
    np.testing.assert_allclose(flat, [[140, 80.9], [260, 80.9], [260, 119.1], [140, 119.1]], atol=0.2)
    turned = plate_corners((200.0, 100.0), 120.0, plate_aspect("blue"), yaw_deg=35, pitch_deg=15)
    top, bottom = np.linalg.norm(turned[1] - turned[0]), np.linalg.norm(turned[2] - turned[3])
    assert (top + bottom) / 2 == pytest.approx(120.0, abs=0.01) and top > bottom  # from above: the top is nearer
    assert abs(np.linalg.norm(turned[3] - turned[0]) - np.linalg.norm(turned[2] - turned[1])) > 1  # from a side
    image = np.zeros((200, 400, 3), np.uint8)
    out = paste_plate(image, plate, flat)
    assert image.max() == 0  # the input is left alone
    inside, outside = out[90:110, 150:250], np.concatenate([out[:75].reshape(-1, 3), out[125:].reshape(-1, 3)])
    assert inside.mean() > 60 and outside.max() == 0
    assert out[100, 145:255, 0].mean() > 100  # blue (BGR) along the plate
    off = paste_plate(image, plate, flat + np.float32([1000, 0]))  # outside the picture: nothing happens
    assert off.max() == 0


def test_degrade_changes_what_it_is_asked_to():
    plate = render_plate("粤B6789挂", "yellow_double")
    same = degrade(np.random.default_rng(0), plate)
    assert np.array_equal(same, plate)
    muddy = degrade(np.random.default_rng(0), plate, mud=1.0)
    changed = np.abs(muddy.astype(int) - plate.astype(int)).max(axis=2) > 30
    assert 0.05 < changed.mean() < 0.95  # partly covered
    b, g, r = (float(v) for v in muddy[changed].mean(axis=0))
    assert r > b  # brownish, not grey or blue
    assert np.array_equal(muddy, degrade(np.random.default_rng(0), plate, mud=1.0))  # seeded
    dark = degrade(np.random.default_rng(0), plate, light=0.3)
    assert dark.mean() < plate.mean() * 0.5
    blurred = degrade(np.random.default_rng(0), plate, blur_px=2.0, motion_px=6)
    assert np.abs(np.diff(blurred.astype(int), axis=1)).mean() < np.abs(np.diff(plate.astype(int), axis=1)).mean()
    jpeg = degrade(np.random.default_rng(0), plate, jpeg_quality=20)
    assert jpeg.shape == plate.shape and not np.array_equal(jpeg, plate)


def test_test_set_is_deterministic_and_records_its_conditions():
    from vision.training.plates.testset import CONDITIONS, make_sample, make_track, plate_test_set, width_bucket

    samples = list(plate_test_set(len(PLATE_STYLES) * len(CONDITIONS), seed=3))
    assert {(s.style, s.condition) for s in samples} == {(st, c) for st in PLATE_STYLES for c in CONDITIONS}
    again = make_sample(3, 9)
    assert np.array_equal(again.image, samples[9].image) and again.text == samples[9].text
    for s in samples:
        h, w = s.image.shape[:2]
        assert (s.corners >= 0).all() and (s.corners[:, 0] <= w).all() and (s.corners[:, 1] <= h).all()
        assert 40 <= s.width_px <= 200 and plate_format(s.text) is not None
        rec = s.record()
        for key in ("style", "condition", "bucket", "width_px", "yaw_deg", "mud", "blur_px", "light", "jpeg_quality"):
            assert key in rec
        assert rec["bucket"] == width_bucket(s.width_px)
        json.dumps(rec)  # the report can hold it
    track = make_track(3, 9, frames=3)
    assert {t.text for t in track} == {samples[9].text} and track[2].width_px > track[0].width_px
    assert width_bucket(40) == "40-60" and width_bucket(89.9) == "60-90" and width_bucket(200) == "130-200"


# --- with the edge's recognizer (vision/edge/plates) ---


def _truck_crop(style: str, width: float = 160.0) -> np.ndarray:
    """A clean plate low on a plain grey truck body."""
    import cv2

    plate = render_plate(CLEAN[style], style)  # type: ignore[arg-type]
    w, h = int(width / 0.25), int(width / 0.25 * 0.7)
    image = np.full((h, w, 3), (70, 80, 90), np.uint8)
    cv2.rectangle(image, (int(w * 0.1), int(h * 0.2)), (int(w * 0.9), int(h * 0.95)), (150, 150, 155), -1)
    return paste_plate(image, plate, plate_corners((w / 2, h * 0.7), width, plate_aspect(style)))  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def recognizer():
    from vision.edge.plates import PlateRecognizer

    return PlateRecognizer.load()


@pytest.mark.parametrize("style", ["blue", "yellow", "green"])
def test_recognizer_reads_a_clean_single_row_plate(recognizer, style):
    result = recognizer.read(_truck_crop(style))
    assert result is not None
    assert result.text == CLEAN[style] and result.valid
    assert result.colour == {"blue": "blue", "yellow": "yellow", "green": "green"}[style]


def test_recognizer_reads_the_lower_row_of_a_double_row_plate(recognizer):
    result = recognizer.read(_truck_crop("yellow_double"))
    assert result is not None and result.colour == "yellow"
    assert result.text[-5:] == CLEAN["yellow_double"][-5:]


def test_recognizer_reads_the_province_before_an_a(recognizer):
    plate = render_plate("京A12345", "blue")
    image = np.full((448, 640, 3), (150, 150, 155), np.uint8)
    crop = paste_plate(image, plate, plate_corners((320.0, 300.0), 160.0, plate_aspect("blue")))
    result = recognizer.read(crop)
    assert result is not None and result.text == "京A12345"


def test_evaluation_runs_end_to_end(recognizer, tmp_path, capsys):
    from vision.cli import main

    out = tmp_path / "bench"
    assert main(["bench", "plates", "--count", "8", "--seed", "1", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "8 drawn plates" in printed and "| blue |" in printed
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["count"] == 8 and report["all"]["n"] == 8
    assert set(report["by_style"]) == set(PLATE_STYLES)
    assert 0.0 <= report["all"]["exact"] <= report["all"]["found"] <= 1.0
    assert report["all"]["cpu_ms_p50"] > 0
    assert set(report["models"]) == {"clpr-plate-detector", "clpr-plate-reader"}
    rows = [json.loads(line) for line in (out / "samples.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 8 and all({"text", "read", "condition", "width_px", "cpu_ms"} <= set(r) for r in rows)
    assert (out / "exact_vs_width.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = (out / "report.md").read_text(encoding="utf-8")
    assert "exact_vs_width.png" in md and "| condition |" in md

"""The plate font: a subset of Noto Sans CJK SC Regular holding only what a Chinese plate shows.

Why a subset is committed: the plate renderer must run on a fresh machine with
no system fonts and no network (the tests, the scenario and demo renderer), and
the whole Noto CJK collection is 20 MB per weight. The symbols of a plate
(digits, A-Z, the 31 provinces, 挂学警港澳使领 and the separator dot) fit in
a few dozen kilobytes.

Redo it (Debian's fonts-noto-cjk installed; fontTools comes with matplotlib):

    .venv/bin/python -m vision.training.data.synth.plate_font

It writes datasets/assets/fonts/PlateSans-Regular.otf. The subset is renamed
("StreetVision Plate Sans"), as the SIL Open Font License asks of a modified
font; datasets/assets/fonts/NOTICE.md records the source package and version.
"""

from __future__ import annotations

import argparse
import string
import subprocess
from pathlib import Path

from vision.core.paths import REPO_ROOT
from vision.core.plates import PROVINCES

FONTS = REPO_ROOT / "datasets" / "assets" / "fonts"
PLATE_FONT = FONTS / "PlateSans-Regular.otf"
# Regular, not Bold: its stems are about 0.12 of the cap height, a plate's (GA 36: 10 mm strokes on 90 mm
# symbols) about 0.11; Bold's are 0.18.
SOURCE_FONT = Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")
SOURCE_INDEX = 2  # the collection's "Noto Sans CJK SC Regular": simplified Chinese glyph shapes
SOURCE_PACKAGE = "fonts-noto-cjk"
FAMILY = "StreetVision Plate Sans"
# every symbol a plate can show (vision.core.plates) plus 使/领 (embassy, consulate) and the separator dot
PLATE_SYMBOLS = string.digits + string.ascii_uppercase + PROVINCES + "挂学警港澳使领" + "·"


def debian_version(package: str = SOURCE_PACKAGE) -> str:
    """The installed Debian package's version (dpkg), for the provenance note."""
    out = subprocess.run(
        ["dpkg-query", "-W", "-f=${Version}", package], check=True, capture_output=True, text=True
    ).stdout
    return out.strip()


def build_plate_font(
    source: Path = SOURCE_FONT, out: Path = PLATE_FONT, *, index: int = SOURCE_INDEX, symbols: str = PLATE_SYMBOLS
) -> Path:
    """Cut `symbols` out of font `index` of the collection `source` into an OpenType (CFF) file at `out`."""
    from fontTools import subset
    from fontTools.ttLib import TTFont

    font = TTFont(str(source), fontNumber=index, recalcTimestamp=False)  # the same bytes on every rebuild
    options = subset.Options()
    options.layout_features = []  # a plate needs no kerning, ligatures or vertical forms
    options.name_IDs = [0, 1, 2, 3, 4, 5, 6, 13, 14]  # copyright, names, version, licence text and URL
    options.hinting = False
    options.desubroutinize = True  # smaller after the cut, and simpler for FreeType
    options.notdef_outline = True
    subsetter = subset.Subsetter(options)
    subsetter.populate(text=symbols)
    subsetter.subset(font)
    _rename(font)
    out.parent.mkdir(parents=True, exist_ok=True)
    font.save(str(out))
    return out


def _rename(font: object) -> None:
    """A modified OFL font must not carry the original's name: family, full and PostScript names are replaced."""
    from fontTools.ttLib import TTFont

    assert isinstance(font, TTFont)
    names = font["name"]
    postscript = FAMILY.replace(" ", "") + "-Regular"
    for record in list(names.names):
        if record.nameID in (1, 16):
            record.string = FAMILY
        elif record.nameID in (2, 17):
            record.string = "Regular"
        elif record.nameID == 3:
            record.string = f"{postscript} (subset of Noto Sans CJK SC Regular)"
        elif record.nameID == 4:
            record.string = f"{FAMILY} Regular"
        elif record.nameID == 6:
            record.string = postscript
    if "CFF " in font:
        cff = font["CFF "].cff
        cff.fontNames = [postscript]
        top = cff.topDictIndex[0]
        for key, value in (("FullName", f"{FAMILY} Regular"), ("FamilyName", FAMILY), ("Weight", "Regular")):
            if hasattr(top, key):
                setattr(top, key, value)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="build the plate font subset (datasets/assets/fonts)")
    ap.add_argument("--source", type=Path, default=SOURCE_FONT, help="a Noto Sans CJK collection (.ttc)")
    ap.add_argument("--index", type=int, default=SOURCE_INDEX, help="font in the collection (2: SC)")
    ap.add_argument("--out", type=Path, default=PLATE_FONT)
    args = ap.parse_args(argv)
    path = build_plate_font(args.source, args.out, index=args.index)
    print(
        f"{path}: {path.stat().st_size} bytes, {len(PLATE_SYMBOLS)} symbols, from {SOURCE_PACKAGE} {debian_version()}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

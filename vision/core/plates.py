"""Chinese vehicle plates (机动车号牌, GA 36): what a plate may read, in one place.

The edge box checks a reading against these formats before a case carries it,
the dispatch center checks it again at intake and merges muddy-truck cases by
it, and the search box normalises what an operator types the same way.

Formats (the separator dot is never part of the text):
  standard     province + issuing letter + 5 symbols; the last may be 挂 (trailer),
               学 (learner), 警 (police), 港/澳 (cross-border)   e.g. 苏E12345, 粤B6789挂
  new_energy   province + issuing letter + 6 symbols: D/F then 5 (small vehicle)
               or 5 digits then D/F (large vehicle)               e.g. 京AD12345, 沪A12345D
Letters I and O are never issued (they read as 1 and 0).
"""

from __future__ import annotations

import re
import unicodedata
from typing import Final, Literal

PROVINCES: Final = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"
LETTERS: Final = "ABCDEFGHJKLMNPQRSTUVWXYZ"  # no I, no O
SUFFIXES: Final = "挂学警港澳"
PLATE_TEXT_MAX: Final = 8

PlateFormat = Literal["standard", "new_energy"]
PlateColour = Literal["blue", "yellow", "green", "white", "black"]
PLATE_COLOURS: Final[tuple[PlateColour, ...]] = ("blue", "yellow", "green", "white", "black")

_P = f"[{PROVINCES}]"
_L = f"[{LETTERS}]"
_S = f"[{LETTERS}0-9]"
_STANDARD = re.compile(rf"^{_P}{_L}{_S}{{4}}[{LETTERS}0-9{SUFFIXES}]$")
_NEW_ENERGY = re.compile(rf"^{_P}{_L}(?:[DF]{_S}[0-9]{{4}}|[0-9]{{5}}[DF])$")
# what the search box accepts as (part of) a plate: province or letters and digits
PLATE_SEARCH_PATTERN: Final = rf"^[{PROVINCES}{SUFFIXES}A-Za-z0-9·.\- ]{{2,12}}$"


def normalise_plate(text: str) -> str:
    """Upper case, full-width forms folded (Ａ -> A), separators dropped (苏E·12345 -> 苏E12345)."""
    folded = unicodedata.normalize("NFKC", text).upper()
    return "".join(ch for ch in folded if ch not in " ·.-_\u00b7\u2022\u30fb")


def plate_format(text: str) -> PlateFormat | None:
    """Which format a (normalised) plate text has, or None when it is no plate."""
    if _STANDARD.match(text):
        return "standard"
    if _NEW_ENERGY.match(text):
        return "new_energy"
    return None


def is_plate(text: str) -> bool:
    return plate_format(text) is not None

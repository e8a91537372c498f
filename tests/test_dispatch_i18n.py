"""The message catalogue: every string marked in the UI's templates and Python has a
Chinese translation, placeholders survive translation, and the catalogue compiles."""

from __future__ import annotations

import re

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from vision.dispatch import PACKAGE_DIR, i18n

METHODS = [("templates/**.html", "jinja2"), ("**.py", "python")]
OPTIONS = {"templates/**.html": {"extensions": "jinja2.ext.i18n"}}
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "N_": None}


def _marked() -> set[str]:
    found = set()
    for _file, _line, msg, _comments, _ctx in extract_from_dir(PACKAGE_DIR, METHODS, OPTIONS, KEYWORDS):
        found.add(msg[0] if isinstance(msg, tuple) else msg)
    return {m for m in found if m}


def _catalogue():  # type: ignore[no-untyped-def]
    with open(i18n.catalogue_path("zh_CN"), "rb") as f:
        return read_po(f, locale="zh_CN")


def _translated(message) -> bool:  # type: ignore[no-untyped-def]
    if message is None:
        return False
    strings = message.string if isinstance(message.string, tuple) else (message.string,)
    return all(strings)


def test_every_marked_string_has_a_chinese_translation() -> None:
    marked = _marked()
    assert len(marked) > 100  # the extraction itself works (templates and Python)
    cat = _catalogue()
    missing = sorted(m for m in marked if not _translated(cat.get(m)))
    assert missing == [], f"untranslated: {missing} (refresh with the pybabel commands in vision/dispatch/i18n.py)"
    fuzzy = sorted(str(m.id) for m in cat if m.id and m.fuzzy)
    assert fuzzy == []


def test_translations_keep_their_placeholders() -> None:
    for m in _catalogue():
        if not m.id:
            continue
        ids = m.id if isinstance(m.id, tuple) else (m.id,)
        strings = m.string if isinstance(m.string, tuple) else (m.string,)
        want = set(re.findall(r"%\(\w+\)s", ids[0]))
        for s in strings:
            assert set(re.findall(r"%\(\w+\)s", s)) == want, (m.id, s)


def test_locale_switches_per_block_and_english_is_the_msgids() -> None:
    with i18n.using("zh_CN"):
        assert i18n.gettext("Review queue") == "待审核"
        assert i18n.ngettext("%(num)s occurrence", "%(num)s occurrences", 3) == "%(num)s 次发现"
        with i18n.using("en"):
            assert i18n.gettext("Review queue") == "Review queue"
            assert i18n.localized("环卫所", "Sanitation office") == "Sanitation office"
        assert i18n.localized("环卫所", "Sanitation office") == "环卫所"
    assert i18n.pick_locale("fr") == i18n.pick_locale(None) == "zh_CN"

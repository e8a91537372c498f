"""The operator UI's message catalogue: gettext through Babel, zh-CN by default, English selectable.

Source strings (msgids) are English, in templates (`{% trans %}`, `_()`) and Python
(`_()`, or `N_()` for a table translated later). The Chinese catalogue is
`locale/zh_CN/LC_MESSAGES/messages.po`; it is compiled in memory on first use, so
no compiled `.mo` sits in git to drift from its source. Refreshing the catalogue
after adding strings: `pybabel extract -F vision/dispatch/locale/babel.cfg -k N_
-o /tmp/messages.pot . && pybabel update -i /tmp/messages.pot -d
vision/dispatch/locale`; `tests/test_dispatch_i18n.py` fails while a marked string
has no translation.

The locale of a request is the operator's choice (a cookie), else zh-CN: a command
center's kiosks run Chinese whatever their browsers say."""

from __future__ import annotations

import gettext as _gettext
import io
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import cache

from vision.dispatch import PACKAGE_DIR

LOCALE_DIR = PACKAGE_DIR / "locale"
LOCALES: dict[str, str] = {"zh_CN": "中文", "en": "English"}  # code -> its own name, for the switch
DEFAULT_LOCALE = "zh_CN"
LANG_COOKIE = "sv_lang"
HTML_LANG = {"zh_CN": "zh-CN", "en": "en"}

_NULL = _gettext.NullTranslations()
_current: ContextVar[_gettext.NullTranslations] = ContextVar("sv_translations", default=_NULL)
_current_locale: ContextVar[str] = ContextVar("sv_locale", default="en")


def N_(message: str) -> str:
    """Marks a msgid for the catalogue where it is translated later (module-level tables)."""
    return message


def catalogue_path(locale: str) -> str:
    return str(LOCALE_DIR / locale / "LC_MESSAGES" / "messages.po")


@cache
def translations(locale: str) -> _gettext.NullTranslations:
    """The compiled catalogue of `locale`; English is the msgids themselves."""
    if locale not in LOCALES:
        raise ValueError(f"unknown locale '{locale}' (known: {', '.join(LOCALES)})")
    if locale == "en":
        return _NULL
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    with open(catalogue_path(locale), "rb") as f:
        catalog = read_po(f, locale=locale)
    buf = io.BytesIO()
    write_mo(buf, catalog)  # fuzzy entries are left out, as msgfmt does
    buf.seek(0)
    return _gettext.GNUTranslations(buf)


def pick_locale(requested: str | None) -> str:
    return requested if requested in LOCALES else DEFAULT_LOCALE


@contextmanager
def using(locale: str) -> Iterator[None]:
    """Translate into `locale` inside the block (one request, one render)."""
    t1 = _current.set(translations(locale))
    t2 = _current_locale.set(locale)
    try:
        yield
    finally:
        _current.reset(t1)
        _current_locale.reset(t2)


def current_locale() -> str:
    return _current_locale.get()


def gettext(message: str) -> str:
    return _current.get().gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return _current.get().ngettext(singular, plural, n)


def pgettext(context: str, message: str) -> str:
    return _current.get().pgettext(context, message)


def npgettext(context: str, singular: str, plural: str, n: int) -> str:
    return _current.get().npgettext(context, singular, plural, n)


_ = gettext


def localized(zh: str | None, en: str | None) -> str | None:
    """A config value given in both languages (taxonomy, departments): the current locale's, else the other."""
    if current_locale() == "en":
        return en or zh
    return zh or en

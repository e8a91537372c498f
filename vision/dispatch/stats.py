"""Operator statistics: cases per type per day, AI precision per rule from
review outcomes (accepted / (accepted + rejected)), overdue cases. Plots are
PNGs drawn server-side with matplotlib's Agg canvas (no pyplot global state),
their words in the operator's locale (vision.dispatch.i18n) and set in a CJK
font (Noto Sans CJK or WenQuanYi, installed by the set-up), which matplotlib
puts first (its Latin letters are fine too)."""

from __future__ import annotations

import io
import logging
import threading
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import cache
from typing import Any

from vision.dispatch.i18n import gettext as _
from vision.dispatch.i18n import localized
from vision.dispatch.schemas import CameraCounts
from vision.dispatch.service import DispatchService
from vision.dispatch.workflow import CONFIRMED, Status

CJK_FONTS = ["Noto Sans CJK SC", "WenQuanYi Micro Hei", "WenQuanYi Zen Hei", "Source Han Sans SC"]
log = logging.getLogger(__name__)
_PLOT_LOCK = threading.Lock()


@dataclass
class RulePrecision:
    rule: str
    accepted: int
    rejected: int

    @property
    def precision(self) -> float | None:
        n = self.accepted + self.rejected
        return self.accepted / n if n else None


@dataclass
class Stats:
    days: list[date]
    per_day: dict[str, list[int]]  # violation -> count per day
    precision: list[RulePrecision]
    overdue_now: Counter[str] = field(default_factory=Counter)  # violation -> open cases past deadline
    handled_late: Counter[str] = field(default_factory=Counter)
    handled_on_time: Counter[str] = field(default_factory=Counter)
    by_status: Counter[str] = field(default_factory=Counter)
    camera: CameraCounts = field(default_factory=CameraCounts)  # 自动核查


def compute(service: DispatchService, days: int = 14) -> Stats:
    now = service.clock()
    tz = service.config.working_time.zone()
    today = now.astimezone(tz).date()
    day_list = [today - timedelta(days=i) for i in range(days - 1, -1, -1)]
    start = datetime(day_list[0].year, day_list[0].month, day_list[0].day, tzinfo=tz)
    per_day: dict[str, list[int]] = defaultdict(lambda: [0] * days)
    rules: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    st = Stats(day_list, {}, [])
    for case in sorted(service.find_cases(), key=lambda c: c.id):  # oldest first, as `by_status` lists states
        st.by_status[case.status.value] += 1
        created = case.created_at
        if created >= start:
            idx = (created.astimezone(tz).date() - day_list[0]).days
            if 0 <= idx < days:
                per_day[case.violation][idx] += 1
        rule = case.rule or f"({case.source})"
        if case.status in CONFIRMED:
            rules[rule][0] += 1
        elif case.status is Status.REJECTED:
            rules[rule][1] += 1
        if service.is_overdue(case, now):
            st.overdue_now[case.violation] += 1
        if case.handled_at and case.deadline_at:
            (st.handled_late if case.handled_at > case.deadline_at else st.handled_on_time)[case.violation] += 1
    st.camera = service.camera_counts()
    st.per_day = dict(per_day)
    st.precision = [RulePrecision(r, a, b) for r, (a, b) in sorted(rules.items())]
    return st


@dataclass(frozen=True)
class Names:
    """Display names of violation types in the current locale (a plot says 暴露垃圾, not exposed_garbage)."""

    violations: dict[str, str]

    @classmethod
    def of(cls, service: DispatchService) -> Names:
        return cls({k: localized(v.name, v.name_en) or k for k, v in service.taxonomy.violations.items()})

    def __call__(self, violation: str) -> str:
        return self.violations.get(violation, violation)


@cache
def cjk_fonts() -> list[str]:
    """The CJK font families matplotlib can find here; none makes Chinese plots boxes, so say so once."""
    from matplotlib import font_manager

    def available() -> list[str]:
        found = []
        for name in CJK_FONTS:
            try:
                font_manager.findfont(name, fallback_to_default=False)
                found.append(name)
            except ValueError:
                continue
        return found

    found = available()
    if not found:
        # matplotlib's font list is cached once per machine: a font installed after that
        # first run (the set-up installs fonts-noto-cjk) is not in it until we add its files.
        for path in font_manager.findSystemFonts():
            if any(key in path.lower() for key in ("cjk", "wqy", "sourcehansans")):
                try:
                    font_manager.fontManager.addfont(path)
                except (OSError, RuntimeError, ValueError):
                    continue
        found = available()
    if not found:
        log.warning("no CJK font found (%s): Chinese text in plots shows as boxes", ", ".join(CJK_FONTS))
    return found


def _plot(draw: Callable[..., Any]) -> Callable[[Stats, Names], bytes]:
    """A drawing function as one PNG, inside a font setting of its own. rcParams are one per
    process, so the plots of one page, drawn on several server threads at once, take turns:
    without the lock one thread's rc_context ends while another draws (boxes for Chinese)."""

    def png(st: Stats, names: Names) -> bytes:
        import matplotlib
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        sans = [*cjk_fonts(), "DejaVu Sans"]
        with _PLOT_LOCK, matplotlib.rc_context({"font.family": "sans-serif", "font.sans-serif": sans}):
            fig = Figure(figsize=(7, 3.2))
            FigureCanvasAgg(fig)
            draw(fig.add_subplot(), st, names)
            buf = io.BytesIO()
            fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
        return buf.getvalue()

    png.__name__ = draw.__name__
    png.__doc__ = draw.__doc__
    return png


def _nothing(ax: Any, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes)


@_plot
def plot_cases_per_day(ax: Any, st: Stats, names: Names) -> None:
    ax.set_title(_("Cases per type per day"))
    x = list(range(len(st.days)))
    bottom = [0] * len(x)
    for violation, counts in sorted(st.per_day.items()):
        ax.bar(x, counts, bottom=bottom, label=names(violation))
        bottom = [a + b for a, b in zip(bottom, counts, strict=True)]
    ax.set_xticks(x, [d.strftime("%m-%d") for d in st.days], rotation=45, fontsize=7)
    ax.set_ylabel(_("cases"))
    if st.per_day:
        ax.legend(fontsize=7)
    else:
        _nothing(ax, _("no cases yet"))


@_plot
def plot_precision(ax: Any, st: Stats, names: Names) -> None:  # noqa: ARG001 # rules are named by the site config
    ax.set_title(_("AI precision per rule (accepted / reviewed)"))
    rows = [p for p in st.precision if p.precision is not None]
    if rows:
        ax.barh([p.rule for p in rows], [p.precision for p in rows], color="tab:green")
        for i, p in enumerate(rows):
            ax.text(
                min(p.precision or 0, 0.85) + 0.01,
                i,
                f"{p.accepted}/{p.accepted + p.rejected}",
                va="center",
                fontsize=8,
            )
        ax.set_xlim(0, 1)
    else:
        _nothing(ax, _("no reviewed cases yet"))


@_plot
def plot_overdue(ax: Any, st: Stats, names: Names) -> None:
    ax.set_title(_("Deadlines per type"))
    types = sorted(set(st.overdue_now) | set(st.handled_late) | set(st.handled_on_time))
    if types:
        x = list(range(len(types)))
        w = 0.28
        ax.bar([i - w for i in x], [st.overdue_now[t] for t in types], w, label=_("overdue now"), color="tab:red")
        ax.bar(x, [st.handled_late[t] for t in types], w, label=_("handled late"), color="tab:orange")
        ax.bar(
            [i + w for i in x], [st.handled_on_time[t] for t in types], w, label=_("handled on time"), color="tab:blue"
        )
        ax.set_xticks(x, [names(t) for t in types], fontsize=8)
        ax.legend(fontsize=7)
    else:
        _nothing(ax, _("no deadlines yet"))


PLOTS = {"cases_per_day": plot_cases_per_day, "precision": plot_precision, "overdue": plot_overdue}

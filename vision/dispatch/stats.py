"""Operator statistics: cases per type per day, AI precision per rule from
review outcomes (accepted / (accepted + rejected)), overdue cases. Plots are
PNGs drawn server-side with matplotlib's Agg canvas (no pyplot global state)."""

from __future__ import annotations

import io
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from vision.dispatch.service import DispatchService
from vision.dispatch.workflow import CONFIRMED, Status


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
    st.per_day = dict(per_day)
    st.precision = [RulePrecision(r, a, b) for r, (a, b) in sorted(rules.items())]
    return st


def _png(fig) -> bytes:  # type: ignore[no-untyped-def]
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    return buf.getvalue()


def _figure(title: str):  # type: ignore[no-untyped-def]
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 3.2))
    ax = fig.add_subplot()
    ax.set_title(title)
    return fig, ax


def plot_cases_per_day(st: Stats) -> bytes:
    fig, ax = _figure("Cases per type per day")
    x = list(range(len(st.days)))
    bottom = [0] * len(x)
    for violation, counts in sorted(st.per_day.items()):
        ax.bar(x, counts, bottom=bottom, label=violation)
        bottom = [a + b for a, b in zip(bottom, counts, strict=True)]
    ax.set_xticks(x, [d.strftime("%m-%d") for d in st.days], rotation=45, fontsize=7)
    ax.set_ylabel("cases")
    if st.per_day:
        ax.legend(fontsize=7)
    else:
        ax.text(0.5, 0.5, "no cases yet", ha="center", va="center", transform=ax.transAxes)
    return _png(fig)


def plot_precision(st: Stats) -> bytes:
    fig, ax = _figure("AI precision per rule (accepted / reviewed)")
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
        ax.text(0.5, 0.5, "no reviewed cases yet", ha="center", va="center", transform=ax.transAxes)
    return _png(fig)


def plot_overdue(st: Stats) -> bytes:
    fig, ax = _figure("Deadlines per type")
    types = sorted(set(st.overdue_now) | set(st.handled_late) | set(st.handled_on_time))
    if types:
        x = list(range(len(types)))
        w = 0.28
        ax.bar([i - w for i in x], [st.overdue_now[t] for t in types], w, label="overdue now", color="tab:red")
        ax.bar(x, [st.handled_late[t] for t in types], w, label="handled late", color="tab:orange")
        ax.bar([i + w for i in x], [st.handled_on_time[t] for t in types], w, label="handled on time", color="tab:blue")
        ax.set_xticks(x, types, fontsize=8)
        ax.legend(fontsize=7)
    else:
        ax.text(0.5, 0.5, "no deadlines yet", ha="center", va="center", transform=ax.transAxes)
    return _png(fig)


PLOTS = {"cases_per_day": plot_cases_per_day, "precision": plot_precision, "overdue": plot_overdue}

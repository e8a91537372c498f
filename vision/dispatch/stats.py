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

from vision.dispatch.config import WorkingTime
from vision.dispatch.deadlines import working_hours_between
from vision.dispatch.i18n import gettext as _
from vision.dispatch.i18n import localized
from vision.dispatch.queries import AuditEvent
from vision.dispatch.schemas import CameraCounts
from vision.dispatch.service import DispatchService
from vision.dispatch.workflow import CONFIRMED, Action, Status

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
    scores: list[DepartmentWeek] = field(default_factory=list)  # 部门考核, newest week first
    parked: int = 0  # 挂账 now
    urges: int = 0  # 督办 in all
    department_names: dict[str, str] = field(default_factory=dict)  # in the locale of the request
    cameras: list[CameraWatch] = field(default_factory=list)  # what each camera found, and when it was not looking


@dataclass
class CameraWatch:
    """One camera over the statistics' days: its cases, and the hours it was not watching
    (offline, or its box silent: vision.dispatch.fleet). `hours` is the part of the period
    the center knew the camera; None for a camera whose box sends no heartbeats, whose
    watching is unknown. A camera with no case that was not watching has found nothing in
    those hours, not "no violations"."""

    site_id: str
    camera_id: str
    cases: int
    hours: float | None
    offline_hours: float

    @property
    def watching_share(self) -> float | None:
        if not self.hours:
            return None
        return max(0.0, self.hours - self.offline_hours) / self.hours


@dataclass
class DepartmentWeek:
    """One department's score for the cases dispatched to it in one ISO week (the week of
    the dispatch): how many, how many handled and of those how many before the working-hour
    deadline, sent back after handling (返工), the working hours dispatch→handled (parked
    time left out), and how many of them a supervisor urged (督办)."""

    department: str
    week: str  # ISO week, e.g. 2026-W48, in the city's zone
    dispatched: int = 0
    handled: int = 0
    on_time: int = 0
    reworked: int = 0
    handling_hours: float = 0.0
    urged: int = 0

    @property
    def on_time_rate(self) -> float | None:
        return self.on_time / self.handled if self.handled else None

    @property
    def rework_rate(self) -> float | None:
        return self.reworked / self.handled if self.handled else None

    @property
    def avg_handling_hours(self) -> float | None:
        return self.handling_hours / self.handled if self.handled else None


SCORED = [Action.DISPATCH, Action.HANDLE, Action.SEND_BACK, Action.URGE, Action.PARK, Action.UNPARK]


def department_scores(events: list[AuditEvent], cal: WorkingTime) -> list[DepartmentWeek]:
    """Department scores from the audit history (see DepartmentWeek), newest week first, then
    by department. Each dispatch opens an episode of its case that the next dispatch of the
    case ends; within it the first handling counts (on time as the handling's audit record
    says), a send-back of the handled case counts as rework, any urge as urged."""
    tz = cal.zone()
    by_case: dict[int, list[AuditEvent]] = defaultdict(list)
    for ev in events:
        by_case[ev.case_id].append(ev)
    rows: dict[tuple[str, str], DepartmentWeek] = {}
    for history in by_case.values():
        starts = [i for i, ev in enumerate(history) if ev.action is Action.DISPATCH]
        for n, i in enumerate(starts):
            start = history[i]
            dept = str(start.details.get("department") or "")
            if not dept:
                continue
            year, week, _ = start.at.astimezone(tz).isocalendar()
            key = (f"{year}-W{week:02d}", dept)
            row = rows.setdefault(key, DepartmentWeek(dept, key[0]))
            row.dispatched += 1
            end = starts[n + 1] if n + 1 < len(starts) else len(history)
            handled_at: datetime | None = None
            parked_at: datetime | None = None
            parked_hours = 0.0
            urged = False
            reworked = False
            for ev in history[i + 1 : end]:
                if ev.action is Action.URGE:
                    urged = True
                elif ev.action is Action.PARK and handled_at is None:
                    parked_at = ev.at
                elif ev.action is Action.UNPARK and parked_at is not None and handled_at is None:
                    parked_hours += working_hours_between(parked_at, ev.at, cal)
                    parked_at = None
                elif ev.action is Action.HANDLE and handled_at is None:
                    handled_at = ev.at
                    row.handled += 1
                    row.on_time += bool(ev.details.get("on_time", True))
                    row.handling_hours += max(0.0, working_hours_between(start.at, ev.at, cal) - parked_hours)
                elif ev.action is Action.SEND_BACK and ev.from_status == Status.HANDLED.value:
                    reworked = True
            row.reworked += reworked and handled_at is not None
            row.urged += urged
    by_department = sorted(rows.values(), key=lambda r: r.department)
    return sorted(by_department, key=lambda r: r.week, reverse=True)


def compute(service: DispatchService, days: int = 14) -> Stats:
    now = service.clock()
    tz = service.config.working_time.zone()
    today = now.astimezone(tz).date()
    day_list = [today - timedelta(days=i) for i in range(days - 1, -1, -1)]
    start = datetime(day_list[0].year, day_list[0].month, day_list[0].day, tzinfo=tz)
    per_day: dict[str, list[int]] = defaultdict(lambda: [0] * days)
    rules: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    st = Stats(day_list, {}, [])
    found: Counter[tuple[str, str]] = Counter()
    for case in sorted(service.find_cases(), key=lambda c: c.id):  # oldest first, as `by_status` lists states
        st.by_status[case.status.value] += 1
        if service.is_overdue(case, now):
            st.overdue_now[case.violation] += 1
        if case.source == "fleet":  # a maintenance alert: not a violation, nor the AI's work
            continue
        created = case.created_at
        if created >= start and case.site_id and case.camera_id:
            found[(case.site_id, case.camera_id)] += 1
        if created >= start:
            idx = (created.astimezone(tz).date() - day_list[0]).days
            if 0 <= idx < days:
                per_day[case.violation][idx] += 1
        rule = case.rule or f"({case.source})"
        if case.status in CONFIRMED:
            rules[rule][0] += 1
        elif case.status is Status.REJECTED:
            rules[rule][1] += 1
        if case.handled_at and case.deadline_at:
            (st.handled_late if case.handled_at > case.deadline_at else st.handled_on_time)[case.violation] += 1
    st.camera = service.camera_counts()
    st.parked = st.by_status.get(Status.PARKED.value, 0)
    events = service.audit_events(SCORED)
    st.urges = sum(1 for ev in events if ev.action is Action.URGE)
    st.scores = department_scores(events, service.config.working_time)
    st.department_names = {d.id: localized(d.name, d.name_en) or d.id for d in service.config.departments}
    st.cameras = camera_watch(service, found, start, now)
    st.per_day = dict(per_day)
    st.precision = [RulePrecision(r, a, b) for r, (a, b) in sorted(rules.items())]
    return st


def camera_watch(
    service: DispatchService, found: Counter[tuple[str, str]], start: datetime, now: datetime
) -> list[CameraWatch]:
    """Every camera that reported a case or a heartbeat, with its hours not watching since `start`;
    those that watched least first."""
    offline = service.offline_hours(start, now)
    known: dict[tuple[str, str], float | None] = {}
    for box in service.fleet_boxes():
        hours = max(0.0, (now - max(start, box.first_seen_at)).total_seconds() / 3600)
        for cam in box.cameras:
            known[(box.site_id, cam.camera_id)] = hours
    rows = [
        CameraWatch(site, cam, found.get((site, cam), 0), known.get((site, cam)), offline.get((site, cam), 0.0))
        for site, cam in sorted(set(known) | set(found))
    ]
    return sorted(rows, key=lambda r: 1.0 if r.watching_share is None else r.watching_share)


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


@_plot
def plot_departments(ax: Any, st: Stats, names: Names) -> None:  # noqa: ARG001 # departments are named by the config
    ax.set_title(_("On-time rate per department per week"))
    weeks = sorted({r.week for r in st.scores})[-8:]
    depts = sorted({r.department for r in st.scores if r.week in weeks})
    rated = [r for r in st.scores if r.week in weeks and r.on_time_rate is not None]
    if rated:
        x = list(range(len(weeks)))
        for dept in depts:
            by_week = {r.week: 100 * (r.on_time_rate or 0) for r in rated if r.department == dept}
            ys = [by_week.get(w, float("nan")) for w in weeks]  # a gap where nothing was handled
            ax.plot(x, ys, marker="o", label=st.department_names.get(dept, dept))
        ax.set_xticks(x, weeks, fontsize=7)
        ax.set_ylim(0, 105)
        ax.set_ylabel(_("on time (%)"))
        ax.legend(fontsize=7)
    else:
        _nothing(ax, _("no handled cases yet"))


PLOTS = {
    "cases_per_day": plot_cases_per_day,
    "precision": plot_precision,
    "overdue": plot_overdue,
    "departments": plot_departments,
}

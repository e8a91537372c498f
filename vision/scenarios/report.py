"""The scenario benchmark's report: report.json, report.md and PNG plots in one directory."""

from __future__ import annotations

import json
from pathlib import Path

from vision.scenarios.suite import ScenarioRun, SuiteResult


def _fmt(value: float | int | None, unit: str = "") -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.2f}{unit}" if abs(value) < 100 else f"{value:.0f}{unit}"
    return f"{value}{unit}"


def summary_table(result: SuiteResult) -> str:
    """The per-rule figures as a Markdown table (also printed by the command)."""
    head = (
        "| rule | violation | dwell s | cases | hits | dup | false | recall | precision | stray updates "
        "| false/cam-h (clean) | latency p50 / p95 s | dwell-adjusted p50 / p95 s |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|\n"
    )
    rows = [
        f"| {f.rule} | {f.violation} | {f.dwell_s:g} | {f.cases} | {f.hits} | {f.duplicates} | {f.false_cases} "
        f"| {_fmt(f.recall)} ({f.found}/{f.expected}{_notes(f.found_by_update, f.hidden)}) | {_fmt(f.precision)} "
        f"| {f.stray_updates} | {_fmt(f.false_per_camera_hour)} "
        f"| {_fmt(f.latency_p50_s)} / {_fmt(f.latency_p95_s)} | {_fmt(f.dwell_adjusted_p50_s)} / {_fmt(f.dwell_adjusted_p95_s)} |"
        for f in result.rules
    ]
    return head + "\n".join(rows) + "\n"


def _notes(by_update: int, hidden: int) -> str:
    return (f", {by_update} by update" if by_update else "") + (f"; {hidden} hidden" if hidden else "")


def condition_table(result: SuiteResult) -> str:
    """Recall and precision per rule in each light and weather condition ('' for a one-condition suite).
    A violation-free scene counts where its condition says; its false cases lower that precision."""
    if not result.by_condition:
        return ""
    conditions = list(result.by_condition)
    head = "| rule | " + " | ".join(f"{c} recall | {c} precision" for c in conditions) + " |\n"
    head += "|---|" + "---|---|" * len(conditions) + "\n"
    rows = []
    for f in result.rules:
        cells = []
        for c in conditions:
            g = next((x for x in result.by_condition[c] if x.rule == f.rule), None)
            cells.append("– | –" if g is None else f"{_fmt(g.recall)} ({g.found}/{g.expected}) | {_fmt(g.precision)}")
        rows.append(f"| {f.rule} | " + " | ".join(cells) + " |")
    return head + "\n".join(rows) + "\n"


def height_table(result: SuiteResult) -> str:
    """Recall per rule and object height on screen (first frame seen): far objects apart from near ones."""
    if not result.by_height:
        return ""
    bins = next(iter(result.by_height.values()))
    head = "| rule | " + " | ".join(b.label for b in bins) + " |\n" + "|---|" + "---|" * len(bins) + "\n"
    rows = [
        f"| {rule} | " + " | ".join(f"{_fmt(b.recall)} ({b.found}/{b.expected})" for b in rule_bins) + " |"
        for rule, rule_bins in result.by_height.items()
        if any(b.expected for b in rule_bins)
    ]
    return head + "\n".join(rows) + "\n"


def write_report(result: SuiteResult, out_dir: Path) -> dict[str, Path]:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    data = result.as_dict()
    paths = {"json": out_dir / "report.json", "md": out_dir / "report.md"}
    paths["json"].write_text(json.dumps(data, indent=2, ensure_ascii=False, default=str))
    paths.update(_plots(result, out_dir))
    clean_h = data["violation_free_camera_hours"]
    lines = [
        f"# Scenario benchmark: {result.suite} suite",
        "",
        (
            f"Model `{result.model_name}` ({result.model_version}), site `{result.site}`, "
            f"{len(result.runs)} scenarios, {data['camera_hours'] * 60:.1f} camera-minutes "
            f"({clean_h * 60:.1f} violation-free), wall {result.wall_s:.0f} s."
        ),
        "",
        (
            "Recall: scripted violations that became a case, or joined an open case of their place and raised its "
            'count ("by update": one case per place, a third bike beside the pair is no second case). '
            "Precision: cases that are the first case of a scripted "
            "violation (duplicates and unexplained cases are false). Stray updates: counts raised by objects no "
            "scripted violation explains (no case, so not in precision). Hidden: scripted violations a nearer scripted "
            "object covers all the while they are there (the renderer draws far objects first), left out of recall. "
            "False/cam-h: cases per camera-hour on the "
            "violation-free scenarios. Latency: from the moment the object is first visible to the moment the case "
            "is complete (queued with its evidence), in stream seconds; dwell-adjusted subtracts the rule's dwell "
            "time (offline, stream time has no processing delay: what remains is sampling and, for moving objects, "
            "the drive to the exit line)."
        ),
        "",
        summary_table(result),
        *(["## By condition", "", condition_table(result)] if result.by_condition else []),
        *(
            [
                "## By object height",
                "",
                "Recall per rule by the object's height in the rendered frame when first seen (the tallest of its "
                "boxes); objects that stand still only (a truck's first box is cut by the picture's edge or far up "
                "the road).",
                "",
                height_table(result),
            ]
            if result.by_height
            else []
        ),
        "## Scenarios",
        "",
        "| scenario | seconds | violation-free | frames processed | cases | hits | missed events | wall s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for run in result.runs:
        hits = sum(o.hit for o in run.scored.outcomes)
        lines.append(
            f"| {run.scenario} | {run.duration_s:g} | {'yes' if run.violation_free else 'no'} | {run.processed} "
            f"| {len(run.cases)} | {hits} | {len(run.scored.missed)} | {run.wall_s:.1f} |"
        )
    lines += ["", "## Plots", ""] + [f"![{k}]({p.name})" for k, p in paths.items() if p.suffix == ".png"]
    paths["md"].write_text("\n".join(lines) + "\n", encoding="utf-8")
    return paths


def _plots(result: SuiteResult, out_dir: Path) -> dict[str, Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out: dict[str, Path] = {}
    names = [f.rule for f in result.rules]

    fig, ax = plt.subplots(figsize=(7, 3.5))
    xs = range(len(names))
    ax.bar([x - 0.2 for x in xs], [f.recall or 0 for f in result.rules], 0.4, label="recall")
    ax.bar([x + 0.2 for x in xs], [f.precision or 0 for f in result.rules], 0.4, label="precision")
    ax.set_xticks(list(xs), names)
    ax.set_ylim(0, 1.05)
    ax.set_title(f"Recall and precision per rule ({result.model_name})")
    ax.legend()
    fig.tight_layout()
    out["quality"] = out_dir / "quality.png"
    fig.savefig(out["quality"], dpi=100)
    plt.close(fig)

    rules = [(rule, bins) for rule, bins in result.by_height.items() if any(b.expected for b in bins)]
    if rules:
        fig, ax = plt.subplots(figsize=(7, 3.5))
        n_bins = len(rules[0][1])
        width = 0.8 / len(rules)
        for k, (rule, bins) in enumerate(rules):
            xs_k = [i - 0.4 + width * (k + 0.5) for i in range(n_bins)]
            bars = ax.bar(xs_k, [b.recall or 0 for b in bins], width, label=rule)
            for bar, b in zip(bars, bins, strict=True):
                if b.expected:
                    ax.annotate(
                        f"{b.found}/{b.expected}",
                        (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                        ha="center",
                        va="bottom",
                        fontsize=7,
                    )
        ax.set_xticks(range(n_bins), [b.label for b in rules[0][1]])
        ax.set_ylim(0, 1.12)
        ax.set_xlabel("object height when first seen")
        ax.set_ylabel("recall")
        ax.set_title("Recall by object height (labels: found / scripted)")
        ax.legend(fontsize=8)
        fig.tight_layout()
        out["height"] = out_dir / "height.png"
        fig.savefig(out["height"], dpi=100)
        plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 3.5))
    for i, f in enumerate(result.rules):
        ax.scatter([i] * len(f.latency_s), f.latency_s, label=None, alpha=0.7)
        ax.hlines(f.dwell_s, i - 0.3, i + 0.3, colors="grey", linestyles="dashed")
    ax.set_xticks(range(len(names)), names)
    ax.set_ylabel("onset -> case, stream s")
    ax.set_title("Latency per case (dashed: the rule's dwell)")
    fig.tight_layout()
    out["latency"] = out_dir / "latency.png"
    fig.savefig(out["latency"], dpi=100)
    plt.close(fig)

    lanes = [max(1, len(run.scored.expected)) + 1 for run in result.runs]  # one lane per violation + false cases
    fig, axes = plt.subplots(
        len(result.runs), 1, figsize=(8, 1.0 + 0.45 * sum(lanes)), squeeze=False, gridspec_kw={"height_ratios": lanes}
    )
    for ax, run, n in zip(axes[:, 0], result.runs, lanes, strict=True):
        sc = run.scored
        ax.set_xlim(0, run.duration_s)
        ax.set_ylim(0, n)
        ax.set_title(run.scenario + (" (violation-free)" if run.violation_free else ""), fontsize=9, loc="left")
        spans = _truth_spans(run)
        lane_of = {idx: lane for lane, idx in enumerate(spans)}
        labels = [run.rendered_truth.events[idx].kind for idx in spans] + ["false cases"]
        ax.set_yticks([i + 0.5 for i in range(len(labels))], labels, fontsize=8)
        for idx, (start, end) in spans.items():
            ax.broken_barh(
                [(start, end - start)],
                (lane_of[idx] + 0.2, 0.6),
                color="tab:green" if idx not in sc.missed else "tab:red",
                alpha=0.6,
            )
        for idx, update in sc.by_update.items():
            ax.plot(update.detected_s, lane_of[idx] + 0.5, "^", color="tab:blue", markersize=8)
        for o in sc.outcomes:
            lane = lane_of.get(o.event, len(labels) - 1) if o.event is not None else len(labels) - 1
            ax.plot(
                o.case.case_s,
                lane + 0.5,
                "v" if o.hit else "x",
                color="tab:blue" if o.hit else "tab:orange",
                markersize=9,
            )
    axes[-1, 0].set_xlabel(
        "scenario s  -  bars: scripted violations (green found, red missed); v: case (hit), ^: update of an open "
        "case (found), x: false or duplicate case",
        fontsize=8,
    )
    fig.tight_layout()
    out["timeline"] = out_dir / "timeline.png"
    fig.savefig(out["timeline"], dpi=100)
    plt.close(fig)
    return out


def _truth_spans(run: ScenarioRun) -> dict[int, tuple[float, float]]:
    from vision.scenarios.scoring import truth_end, truth_onset

    spans = {}
    truth = run.rendered_truth
    for idx in run.scored.expected:
        e = truth.events[idx]
        spans[idx] = (truth_onset(e), min(truth_end(e), run.duration_s))
    return spans

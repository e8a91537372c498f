"""The plate evaluation written out: report.md, report.json, samples.jsonl and exact_vs_width.png."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from vision.training.data.synth.plates import PLATE_STYLES
from vision.training.plates.evaluate import PlateEvaluation
from vision.training.plates.testset import CONDITIONS, WIDTH_BUCKETS, width_bucket

_COLUMNS = (
    ("n", "n"),
    ("found", "found"),
    ("exact", "exact read"),
    ("char_accuracy", "char acc"),
    ("but_province", "all but province"),
    ("lower_row", "last 5 right"),
    ("colour_right", "colour right"),
    ("cpu_ms_p50", "CPU ms p50"),
    ("cpu_ms_p90", "CPU ms p90"),
)
_STYLE_COLOURS = {"blue": "#1f4fa0", "yellow": "#d9a400", "yellow_double": "#8a5a00", "green": "#2e9b3e"}


def _cell(key: str, value: Any) -> str:
    if key == "n" or value is None:
        return str(value)
    if key.startswith("cpu_ms"):
        return f"{value:.1f}"
    return f"{100 * value:.1f}%"


def table(groups: dict[str, dict[str, Any]], title: str, order: list[str] | None = None) -> str:
    """A markdown table, one row per group."""
    names = [n for n in (order or []) if n in groups] + [n for n in groups if n not in (order or [])]
    lines = [
        f"| {title} | " + " | ".join(label for _, label in _COLUMNS) + " |",
        "|---|" + "---:|" * len(_COLUMNS),
    ]
    for name in names:
        g = groups[name]
        lines.append(f"| {name} | " + " | ".join(_cell(k, g.get(k)) for k, _ in _COLUMNS) + " |")
    return "\n".join(lines)


def bucket_names() -> list[str]:
    return [width_bucket(lo) for lo, _ in WIDTH_BUCKETS]


def summary_text(ev: PlateEvaluation) -> str:
    """The tables a terminal shows (markdown, readable as text)."""
    s = ev.summary
    return "\n\n".join(
        [
            table({"all": s["all"]}, "samples"),
            table(s["by_style"], "style", list(PLATE_STYLES)),
            table(s["by_condition"], "condition", list(CONDITIONS)),
            table(s["by_bucket"], "plate width px", bucket_names()),
        ]
    )


def plot_exact_vs_width(ev: PlateEvaluation, path: Path) -> Path:
    """Exact-read rate against plate width, one line per style (found rate dotted), n at each point."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by = ev.summary["by_style_bucket"]
    centres = [(lo * hi) ** 0.5 for lo, hi in WIDTH_BUCKETS]
    fig, ax = plt.subplots(figsize=(6.4, 3.8), dpi=100)
    for style in PLATE_STYLES:
        points = [(x, by.get(f"{style} / {b}")) for x, b in zip(centres, bucket_names(), strict=True)]
        xs = [x for x, g in points if g and g["n"]]
        if not xs:
            continue
        colour = _STYLE_COLOURS[style]
        exact = [100 * g["exact"] for _, g in points if g and g["n"]]
        found = [100 * g["found"] for _, g in points if g and g["n"]]
        ax.plot(xs, exact, "o-", color=colour, label=f"{style} exact")
        ax.plot(xs, found, ":", color=colour, alpha=0.6)
    ax.set_xscale("log")
    ax.set_xticks(centres, [f"{lo}-{hi}" for lo, hi in WIDTH_BUCKETS])
    ax.minorticks_off()
    ax.set_xlabel("plate width in the crop (px)")
    ax.set_ylabel("% of plates")
    ax.set_ylim(-3, 103)
    ax.grid(alpha=0.3)
    n = ev.summary["all"]["n"]
    ax.set_title(f"exact reads (solid) and plates found (dotted), {n} drawn plates, seed {ev.seed}", fontsize=9)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def write_report(ev: PlateEvaluation, out: str | Path, *, command: str | None = None) -> dict[str, Path]:
    """report.json (summary), samples.jsonl (one line per sample), report.md and exact_vs_width.png under `out`."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "json": out / "report.json",
        "samples": out / "samples.jsonl",
        "md": out / "report.md",
        "plot": out / "exact_vs_width.png",
    }
    data = ev.as_dict()
    if command:
        data["command"] = command
    paths["json"].write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    with paths["samples"].open("w", encoding="utf-8") as f:
        for row in ev.rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    plot_exact_vs_width(ev, paths["plot"])
    s = ev.summary
    models = ", ".join(f"{k} {v}" for k, v in ev.versions.items())
    misreads = [r for r in ev.rows if r["found"] and not r["exact"]][:15]
    lines = [
        "# Plate reading on drawn plates",
        "",
        f"{s['all']['n']} samples, seed {ev.seed}, models {models}; {ev.date}, {ev.wall_s:.0f} s."
        + (f" Command: `{command}`." if command else ""),
        "",
        "Found: the recognizer's plate box overlaps the drawn plate (IoU >= 0.3). Exact read: the whole text "
        "right. Char acc: 1 - edit distance / length (0 when not found). All but province: every symbol after "
        "the province right. Last 5 right: the serial (a double-row "
        "plate's lower row). CPU ms: process CPU time of one `PlateRecognizer.read` on the crop.",
        "",
        summary_text(ev),
        "",
        table(s["by_style_bucket"], "style / width px"),
        "",
        table(s["by_style_condition"], "style / condition"),
        "",
        "![exact reads against plate width](exact_vs_width.png)",
        "",
        "## First misreads (found, not exact)",
        "",
        "| # | style | condition | width px | plate | read |",
        "|---:|---|---|---:|---|---|",
        *[
            f"| {r['index']} | {r['style']} | {r['condition']} | {r['width_px']:.0f} | {r['text']} | {r['read']} |"
            for r in misreads
        ],
        "",
    ]
    paths["md"].write_text("\n".join(lines), encoding="utf-8")
    return paths

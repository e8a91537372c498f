"""The scenario report splits recall and precision by light and weather, from the same scored runs."""

from __future__ import annotations

from vision.core.paths import REPO_ROOT
from vision.edge.config import load_site
from vision.scenarios.render import GroundTruth, TruthEvent
from vision.scenarios.report import condition_table
from vision.scenarios.scoring import SeenCase, score
from vision.scenarios.suite import ScenarioRun, SuiteResult, rule_figures


def run(name: str, condition: str, found: bool) -> ScenarioRun:
    truth = GroundTruth(
        name,
        "v.mp4",
        5.0,
        250,
        50.0,
        768,
        576,
        [
            TruthEvent("garbage", "exposed_garbage", 6.0, None, 1, [[0.1, 0.8, 0.2, 0.9]], 6.0, 50.0),
        ],
    )
    cases = [SeenCase("exposed_garbage", "garbage", 6.0, 16.0, 16.0, (0.1, 0.8, 0.2, 0.9), 10.0)] if found else []
    r = ScenarioRun(name, 50.0, False, 250, 100, len(cases), 1.0, True, cases, condition=condition)
    r.score = score(truth, cases)
    return r


def test_each_condition_gets_its_own_recall():
    site = load_site(REPO_ROOT / "configs" / "site-demo.yaml")
    runs = [run("a", "day", True), run("b", "dusk", False), run("c", "dusk", True)]
    by = {c: rule_figures(site, [r for r in runs if r.condition == c]) for c in ("day", "dusk")}
    result = SuiteResult("s", "site", "m", "1", runs, rule_figures(site, runs), 1.0, by)
    garbage = {c: next(f for f in figs if f.rule == "garbage") for c, figs in by.items()}
    assert (garbage["day"].found, garbage["day"].expected) == (1, 1)
    assert (garbage["dusk"].found, garbage["dusk"].expected) == (1, 2)
    table = condition_table(result)
    assert "| garbage | 1.00 (1/1) | 1.00 | 0.50 (1/2) | 1.00 |" in table
    assert result.as_dict()["by_condition"]["dusk"][0]["rule"]


def test_a_one_condition_suite_has_no_condition_table():
    site = load_site(REPO_ROOT / "configs" / "site-demo.yaml")
    runs = [run("a", "day", True)]
    assert condition_table(SuiteResult("s", "site", "m", "1", runs, rule_figures(site, runs), 1.0)) == ""

"""`streetvision bench scenarios|plates`: the scripted-scenario benchmark (recall, precision, false cases,
latency); the plate reader on drawn plates (found, exact reads, character accuracy, CPU per read)."""

from __future__ import annotations

import argparse
import json
import sys


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("bench", help="measure the system on scripted scenarios")
    bench = p.add_subparsers(dest="bench", required=True, metavar="BENCHMARK")
    s = bench.add_parser(
        "scenarios",
        help="render scripted scenario videos, run the daemon on them, report per-rule recall, precision, "
        "false cases per camera-hour and latency",
    )
    s.add_argument("--quick", action="store_true", help="the short CI suite (under 2 minutes) instead of the full one")
    s.add_argument("--suite", default=None, help="suite name in configs/scenarios/suite.yaml (default: full, or quick)")
    s.add_argument(
        "--out", default="out/bench-scenarios", metavar="DIR", help="report directory (default: %(default)s)"
    )
    s.add_argument(
        "--model", default=None, help="one model name or .onnx file for every class (default: the site's models)"
    )
    s.add_argument(
        "--no-verifier", action="store_true", help="open cases without the site's crop verifier (a baseline)"
    )
    s.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="TEXT",
        help="run only the suite's scenarios whose file name contains TEXT (repeat for several), e.g. to look "
        "at one miss again with -v (default: all)",
    )
    s.add_argument(
        "--swap-model",
        action="append",
        default=[],
        metavar="OLD=NEW",
        help="run model NEW where the site runs OLD, every other setting of its route kept, e.g. "
        "coco-city=coco-city-int8 to compare a variant on the same scenes (repeat for several)",
    )
    s.add_argument("--json", action="store_true", help="print the report as one JSON object on stdout")
    s.set_defaults(handler=_scenarios)
    pl = bench.add_parser(
        "plates",
        help="draw plates of every style on truck crops (sizes, angles, blur, mud, dusk, JPEG), read them with the "
        "edge's plate recognizer, report found and exact-read rates, character accuracy and CPU per read",
    )
    pl.add_argument("--out", default="out/bench-plates", metavar="DIR", help="report directory (default: %(default)s)")
    pl.add_argument("--count", type=int, default=400, help="samples (default: %(default)s)")
    pl.add_argument("--seed", type=int, default=0, help="the test set's seed (default: %(default)s)")
    pl.add_argument("--threads", type=int, default=1, help="ONNX Runtime threads per model (default: %(default)s)")
    pl.add_argument("--save-images", action="store_true", help="also write every sample's picture under DIR/images")
    pl.add_argument("--json", action="store_true", help="print the report as one JSON object on stdout")
    pl.set_defaults(handler=_plates)


def _scenarios(args: argparse.Namespace) -> int:
    import logging

    from vision.edge.config import ConfigError, load_site
    from vision.edge.detection import DetectorError
    from vision.scenarios.model_choice import parse_swaps, pick_model, swap_models
    from vision.scenarios.report import condition_table, summary_table, write_report
    from vision.scenarios.suite import load_suite, only_scenarios, run_suite

    if not logging.getLogger().isEnabledFor(logging.DEBUG):
        logging.getLogger("vision").setLevel(logging.WARNING)  # per-frame daemon logs drown the report
        logging.getLogger("vision.edge.daemon").setLevel(logging.ERROR)  # "no dispatch section": on purpose here
    name = args.suite or ("quick" if args.quick else "full")
    try:
        spec = only_scenarios(load_suite(name), args.only)
        site = load_site(spec.site)
    except (ValueError, OSError) as exc:
        print(f"bench scenarios: {exc}", file=sys.stderr)
        return 2
    except ConfigError as err:
        print(err, file=sys.stderr)
        return 2
    try:
        swaps = parse_swaps(args.swap_model)
        if swaps:
            swap_models(site.model_dump(mode="json"), swaps)  # names a model the site does not run, before rendering
        # a site with several models runs them as configured; --model runs one model for every class
        model, note = (
            pick_model(site.detector.routes[0].model, args.model)
            if args.model or site.detector.models is None
            else (None, None)
        )
    except ValueError as exc:
        print(f"bench scenarios: {exc}", file=sys.stderr)
        return 2
    if note:
        print(f"note: {note}", file=sys.stderr)

    def progress(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    try:
        result = run_suite(
            spec,
            model=model,
            swaps=swaps,
            progress=progress,
            render_progress=sys.stderr.isatty(),
            verify=not args.no_verifier,
        )
    except (DetectorError, FileNotFoundError) as exc:
        print(f"bench scenarios: {exc}", file=sys.stderr)
        return 1
    paths = write_report(result, args.out)
    if args.json:
        print(json.dumps(result.as_dict(), default=str))
    else:
        print(
            f"scenario suite '{name}', model {result.model_name}, {len(result.runs)} scenarios, {result.wall_s:.0f} s"
        )
        print(summary_table(result))
        if result.by_condition:
            print(condition_table(result))
        print(
            f"report: {paths['md']} (+ report.json, {', '.join(p.name for p in paths.values() if p.suffix == '.png')})"
        )
    return 0


def _plates(args: argparse.Namespace) -> int:
    from pathlib import Path

    from vision.edge.plates import PlateRecognizer
    from vision.training.plates.evaluate import evaluate
    from vision.training.plates.report import summary_text, write_report
    from vision.training.plates.testset import plate_test_set

    if args.count < 1:
        print("bench plates: --count must be at least 1", file=sys.stderr)
        return 2
    try:
        recognizer = PlateRecognizer.load(threads=args.threads)
    except (OSError, ValueError) as exc:
        print(f"bench plates: {exc}", file=sys.stderr)
        return 1
    tty = sys.stderr.isatty()

    def progress(done: int) -> None:
        if tty and (done % 20 == 0 or done == args.count):
            print(f"\r{done}/{args.count} plates", end="\n" if done == args.count else "", file=sys.stderr, flush=True)

    try:
        result = evaluate(
            recognizer,
            plate_test_set(args.count, args.seed),
            seed=args.seed,
            images_dir=Path(args.out) / "images" if args.save_images else None,
            progress=progress,
        )
    except FileNotFoundError as exc:  # the plate font, a truck cut-out or the backgrounds
        print(f"bench plates: {exc}", file=sys.stderr)
        return 1
    command = f"streetvision bench plates --count {args.count} --seed {args.seed}"
    paths = write_report(result, args.out, command=command)
    if args.json:
        print(json.dumps(result.as_dict(), default=str, ensure_ascii=False))
    else:
        print(f"{args.count} drawn plates, seed {args.seed}, {result.wall_s:.0f} s")
        print(summary_text(result))
        print(f"report: {paths['md']} (+ report.json, samples.jsonl, {paths['plot'].name})")
    return 0

"""`streetvision quantize`: a static int8 variant of a NanoDet detector in models/.

The work is in vision.training.int8_variant and vision.training.onnx_tools;
onnx and onnxruntime's quantizer come with the `train` extra.
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import sys
from pathlib import Path

from vision.cli.help_format import DefaultsHelpFormatter
from vision.core.paths import repo_relative


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    q = sub.add_parser(
        "quantize",
        help="static int8 variant of a NanoDet detector (faster on CPUs with int8 instructions)",
        formatter_class=DefaultsHelpFormatter,
        description="Quantise MODEL's convolutions to int8, calibrated on frames of the training split, and write "
        "the variant with its card into MODELS_DIR/NAME. The card records onnxruntime latency of both and how many "
        "of the float model's boxes the variant still finds on frames kept out of calibration; it warns when "
        "int8 is not faster or keeps under 95% of them. A site uses the variant by naming it in detector.models.",
    )
    q.add_argument("model", help="the float model, by name under MODELS_DIR or a folder holding card.yaml")
    q.add_argument("--name", required=True, help="name of the variant, e.g. coco-city-int8")
    q.add_argument("--version", default=None, help="card version (default: the float model's)")
    q.add_argument(
        "--calibration",
        type=Path,
        action="append",
        default=None,
        help="image, video or folder of them; repeatable (default: the training split of datasets/backgrounds/"
        "MANIFEST.tsv, never its held-out backgrounds)",
    )
    q.add_argument("--frames-per-video", type=int, default=60, help="frames taken from each calibration video")
    q.add_argument("--models-dir", default=None, help="folder of models (default: $STREETVISION_MODELS, else models/)")
    q.add_argument("--threads", type=int, default=1, help="onnxruntime threads for the latency measurement")
    q.add_argument("--force", action="store_true", help="replace an existing MODELS_DIR/NAME")
    q.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        default=argparse.SUPPRESS,
        help="also show the quantizer's log (hidden by default)",
    )
    q.set_defaults(handler=_quantize)


def _fail(msg: str) -> int:
    print(f"error: {msg}", file=sys.stderr)
    return 2


def _quantize(args: argparse.Namespace) -> int:
    from vision.core.model_registry import ModelNotFound, load_card, models_dir, verify_card
    from vision.edge.detection.nanodet import NanoDetDetector
    from vision.training import int8_variant as iv
    from vision.training.card import write_card
    from vision.training.data.synth.backgrounds import heldout_in

    try:
        import onnx  # noqa: F401  (onnxruntime's quantizer needs it)
    except ImportError:
        return _fail("quantize needs the onnx package: pip install 'streetvision[train]'")
    from vision.training.onnx_tools import latency_ms, quantize_static_int8

    root = Path(args.models_dir) if args.models_dir else models_dir()
    try:
        source = load_card(args.model if Path(args.model).is_dir() else root / args.model)
        verify_card(source)
    except (ModelNotFound, ValueError, OSError) as exc:
        return _fail(f"model: {exc}")
    if source.backend != "nanodet-onnx":
        return _fail(
            f"model: {source.name} is a {source.backend} model; quantize makes variants of nanodet-onnx detectors "
            "(YOLO exports get their int8 variant from `streetvision export`)"
        )
    target = root / args.name
    if source.directory is not None and target.resolve() == source.directory.resolve():
        return _fail("--name: the variant needs a folder of its own, not the float model's")
    if target.exists() and any(target.iterdir()) and not args.force:
        return _fail(f"{target} exists; pass --force to replace it")
    try:
        sources = args.calibration or iv.training_sources()
        held = heldout_in(sources)
        if held:  # as for training data: the held-out streets are for measuring only
            raise iv.QuantizeError(
                f"{held[0]} is a held-out background (datasets/backgrounds/MANIFEST.tsv): "
                "it is for the held-out scenario suite only, never for calibration"
            )
        frames = iv.load_frames(sources, per_video=args.frames_per_video)
    except iv.QuantizeError as exc:
        return _fail(f"--calibration: {exc}")
    calibrate, check = iv.split_frames(frames)
    where = ", ".join(repo_relative(p) for p in sources)
    print(f"{source.name} {source.version}: calibrating on {len(calibrate)} frames ({where}), checking on {len(check)}")

    fp32 = NanoDetDetector(source, threads=args.threads)
    blobs = [fp32.preprocess(f) for f in calibrate]
    work = target.with_name(target.name + ".partial")  # an existing variant stays until the new one is whole
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        verbose = bool(getattr(args, "verbose", False))
        int8_file = quantize_static_int8(source.path, work / "model.onnx", blobs, verbose=verbose)
        latency = {
            "fp32": latency_ms(source.path, source.input.width, threads=args.threads),
            "int8": latency_ms(int8_file, source.input.width, threads=args.threads),
        }
        draft = source.model_copy(update={"file": int8_file.name, "directory": work})
        agreed = iv.agreement(fp32.detect, NanoDetDetector(draft, threads=args.threads).detect, check)
        notes = iv.quality_notes(agreed, latency)
        card = iv.variant_card(
            source,
            int8_file,
            name=args.name,
            version=args.version or source.version,
            calibration=f"{len(calibrate)} frames of {where} (half of them dimmed to dusk)",
            latency=latency,
            agreement_=agreed,
            notes=notes,
        )
        if sys.argv[1:2] == ["quantize"]:
            card.training["quantize_command"] = "streetvision " + shlex.join(sys.argv[1:])
        write_card(card, work)
        shutil.rmtree(target, ignore_errors=True)
        work.rename(target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(
        f"fp32 {latency['fp32']['median_ms']} ms, int8 {latency['int8']['median_ms']} ms median "
        f"({args.threads} thread(s), {source.input.width} px); int8 keeps {agreed.kept} of fp32's {agreed.of} boxes "
        f"({agreed.share:.1%}) on {agreed.frames} frames, {agreed.extra} box(es) only int8 finds"
    )
    for note in notes:
        print(f"warning: {note}", file=sys.stderr)
    print(f"model card: {target / 'card.yaml'}")
    return 0

"""`streetvision models keygen|sign|upload|rollout|rollback|list`: roll model versions out to the
edge boxes from the dispatch center.

    streetvision models keygen keys/release.key          # once; put the printed key in each site's
                                                          # model_updates.trusted_keys
    streetvision models sign models/coco-city --key keys/release.key     # writes card.yaml.sig
    streetvision models upload models/coco-city           # card.yaml, its model file, card.yaml.sig
    streetvision models rollout coco-city 1.2.0 --canary box-017,box-018
    streetvision models rollout coco-city 1.2.0           # then every box
    streetvision models rollback coco-city                # every box back to what it ran before

upload / rollout / rollback / list work on the center's database, like `dispatch add-device`
(the same --db, --data-dir, --config); over HTTP an admin uses POST /api/v1/models."""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path

from vision.cli.dispatch_cmd import _common, _guard, _service


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("models", help="model roll-out: sign, upload, roll out to the boxes (or a canary list), back")
    msub = p.add_subparsers(dest="models_command", required=True, metavar="ACTION")

    keygen = msub.add_parser("keygen", help="a new Ed25519 signing key; prints its public key for the sites")
    keygen.add_argument("key", type=Path, help="where to write the private key (PEM, mode 600; never overwritten)")
    keygen.set_defaults(handler=_keygen)

    sign = msub.add_parser("sign", help="sign a model directory's card.yaml (writes card.yaml.sig)")
    sign.add_argument("model_dir", type=Path, help="directory holding card.yaml and the model file it names")
    sign.add_argument("--key", type=Path, required=True, help="private key from `models keygen`")
    sign.set_defaults(handler=_sign)

    up = msub.add_parser("upload", help="upload a model directory's version to the center")
    _common(up)
    up.add_argument("model_dir", type=Path, help="directory holding card.yaml, the model file, card.yaml.sig if signed")
    up.set_defaults(handler=_upload)

    roll = msub.add_parser("rollout", help="roll an uploaded version out to every box, or to --canary sites first")
    _common(roll)
    roll.add_argument("name")
    roll.add_argument("version")
    roll.add_argument("--canary", default=None, help="comma-separated site ids; default: every box")
    roll.add_argument("--note", default=None)
    roll.set_defaults(handler=_rollout)

    back = msub.add_parser("rollback", help="every box back to the version every box ran before")
    _common(back)
    back.add_argument("name")
    back.set_defaults(handler=_rollback)

    ls = msub.add_parser("list", help="uploaded versions and roll-outs")
    _common(ls)
    ls.set_defaults(handler=_list)


def _keygen(args: argparse.Namespace) -> int:
    from vision.core.signing import generate_key

    try:
        public = generate_key(args.key)
    except FileExistsError:
        print(f"streetvision models: {args.key} exists; not overwriting a key", file=sys.stderr)
        return 1
    print(
        f"# public key: put it in each site's model_updates.trusted_keys; keep {args.key} off the center",
        file=sys.stderr,
    )
    print(public)
    return 0


def _sign(args: argparse.Namespace) -> int:
    from vision.core.signing import SIGNATURE_SUFFIX, SignatureError, sign

    card = args.model_dir / "card.yaml"
    try:
        signature = sign(card.read_bytes(), args.key)
    except (OSError, SignatureError, ValueError) as exc:
        print(f"streetvision models sign: {exc}", file=sys.stderr)
        return 1
    out = card.with_name(card.name + SIGNATURE_SUFFIX)
    out.write_text(signature + "\n", encoding="ascii")
    print(f"signed {card} -> {out}")
    return 0


@_guard
def _upload(args: argparse.Namespace) -> int:
    import yaml

    from vision.core.signing import SIGNATURE_SUFFIX
    from vision.dispatch.uploads import Upload

    card_path = args.model_dir / "card.yaml"
    try:
        card = card_path.read_bytes()
        file_name = str(yaml.safe_load(card).get("file"))
        sig_path = card_path.with_name(card_path.name + SIGNATURE_SUFFIX)
        signature = sig_path.read_text(encoding="ascii").strip() if sig_path.is_file() else None
        model = open(args.model_dir / file_name, "rb")  # noqa: SIM115 - closed below
    except (OSError, AttributeError, yaml.YAMLError) as exc:
        print(f"streetvision models upload: {args.model_dir}: {exc}", file=sys.stderr)
        return 1
    service = _service(args)
    try:
        with model:
            info, created = service.upload_model(f"cli:{getpass.getuser()}", card, Upload(model), signature)
    finally:
        service.close()
    state = "uploaded" if created else "already uploaded"
    print(f"{info.name} {info.version} {state} (sha256 {info.sha256}, {'signed' if info.signed else 'NOT signed'})")
    return 0


@_guard
def _rollout(args: argparse.Namespace) -> int:
    canary = [s.strip() for s in args.canary.split(",") if s.strip()] if args.canary else None
    service = _service(args)
    try:
        r = service.rollout_model(f"cli:{getpass.getuser()}", args.name, args.version, canary, args.note)
    finally:
        service.close()
    print(f"{r.name} {r.version} rolled out to {'sites ' + ', '.join(r.canary) if r.canary else 'every box'}")
    return 0


@_guard
def _rollback(args: argparse.Namespace) -> int:
    service = _service(args)
    try:
        r = service.rollback_model(f"cli:{getpass.getuser()}", args.name)
    finally:
        service.close()
    print(f"{r.name} rolled back: every box runs {r.version}")
    return 0


@_guard
def _list(args: argparse.Namespace) -> int:
    service = _service(args)
    try:
        versions, rollouts = service.model_versions()
    finally:
        service.close()
    for v in versions:
        print(
            f"{v.name} {v.version}  sha256 {v.sha256[:12]}  {v.size_bytes} bytes  {'signed' if v.signed else 'unsigned'}"
        )
    for r in rollouts:
        to = ", ".join(r.canary) if r.canary else "every box"
        print(f"rollout {r.id}: {r.name} {r.version} -> {to}  ({r.created_at:%Y-%m-%d %H:%M} by {r.created_by})")
    return 0

"""Model roll-out from the center: versions uploaded by an admin, and which one each box runs.

An upload is a model's card (card.yaml: name, version, the model file's name and sha256) and
that file, with the card's Ed25519 signature if the engineer signed it (vision.core.signing).
Both are kept in the evidence store by content. A roll-out names a version for every box, or
for a canary list of sites first (the others keep what they ran); rolling back is a roll-out
of the version every box ran before. Each box asks for what it should run
(`GET /api/v1/models/assigned`), downloads what it lacks, checks the sha256 and the signature
against the keys it trusts, and hands it to its daemon's hot reload
(vision.edge.delivery.model_updates); its heartbeat then shows the sha256 it runs.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import yaml
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from vision.dispatch import models as m
from vision.dispatch.context import ServiceContext
from vision.dispatch.errors import Conflict, InvalidInput, NotFound
from vision.dispatch.staging import EvidenceBatch
from vision.dispatch.storage import StorageError
from vision.dispatch.uploads import Upload

__all__ = ["Assignment", "ModelRollouts", "ModelVersionInfo", "RolloutInfo", "CARD_MAX_BYTES"]

CARD_MAX_BYTES = 256 * 1024
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}$")
_FILE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_SHA = re.compile(r"^[0-9a-f]{64}$")
_SIGNATURE = re.compile(r"^[A-Za-z0-9+/]{86}==$")  # base64 of 64 bytes


@dataclass(frozen=True)
class ModelVersionInfo:
    name: str
    version: str
    file_name: str
    sha256: str
    size_bytes: int
    signed: bool
    uploaded_at: datetime
    uploaded_by: str


@dataclass(frozen=True)
class RolloutInfo:
    id: int
    name: str
    version: str
    canary: list[str] | None  # None: every box
    created_at: datetime
    created_by: str
    note: str | None


@dataclass(frozen=True)
class Assignment:
    """What one box should run of one model, and where to fetch it."""

    name: str
    version: str
    file_name: str
    sha256: str
    size_bytes: int
    card_sha256: str
    signature: str | None


def parse_card(data: bytes) -> dict[str, str]:
    """The fields of a card a roll-out needs, checked; InvalidInput naming the field otherwise."""
    try:
        card = yaml.safe_load(data.decode("utf-8"))
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        raise InvalidInput(f"card: not a YAML model card ({exc.__class__.__name__})") from None
    if not isinstance(card, dict):
        raise InvalidInput("card: not a YAML mapping")
    out: dict[str, str] = {}
    for key, pattern in (("name", _NAME), ("version", _VERSION), ("file", _FILE), ("sha256", _SHA)):
        value = card.get(key)
        if not isinstance(value, str | int | float) or not pattern.fullmatch(str(value)):
            raise InvalidInput(f"card.{key}: missing or not a valid {key}")
        out[key] = str(value)
    if out["file"] in ("card.yaml", "card.yaml.sig"):
        raise InvalidInput("card.file: must name the model file, not the card")
    return out


class ModelRollouts:
    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx

    def upload(self, by: str, card: bytes, model: Upload, signature: str | None) -> tuple[ModelVersionInfo, bool]:
        """Stores a version; (it, True) when new, (it, False) for the same upload again. Conflict
        when the name and version exist with another file (a version is never replaced)."""
        if len(card) > CARD_MAX_BYTES:
            raise InvalidInput(f"card: larger than {CARD_MAX_BYTES} bytes")
        fields = parse_card(card)
        if signature is not None and not _SIGNATURE.fullmatch(signature.strip()):
            raise InvalidInput("signature: base64 of an Ed25519 signature (64 bytes)")
        with EvidenceBatch(self.ctx) as batch:
            try:
                stored = batch.stage(model.stream, self.ctx.settings.body_limit_bytes, fields["sha256"])
            except StorageError as exc:
                raise InvalidInput(f"model: {exc} (the card says sha256 {fields['sha256']})") from None
            card_file = batch.stage(io.BytesIO(card), CARD_MAX_BYTES)
            now = self.ctx.clock()
            with self.ctx.write() as s:
                existing = s.scalar(
                    select(m.ModelVersion).where(
                        m.ModelVersion.name == fields["name"], m.ModelVersion.version == fields["version"]
                    )
                )
                if existing is not None:
                    if existing.sha256 != stored.sha256 or existing.card_sha256 != card_file.sha256:
                        raise Conflict(
                            f"model {fields['name']} {fields['version']} exists with other files: "
                            "a version is never replaced, give the new one a new version"
                        )
                    return _version_info(existing), False
                row = m.ModelVersion(
                    name=fields["name"],
                    version=fields["version"],
                    file_name=fields["file"],
                    sha256=stored.sha256,
                    size_bytes=stored.size_bytes,
                    card_sha256=card_file.sha256,
                    signature=signature.strip() if signature else None,
                    uploaded_at=now,
                    uploaded_by=by,
                )
                s.add(row)
                try:
                    s.flush()
                    info = _version_info(row)
                    batch.commit(s)
                except IntegrityError:  # the same version uploaded twice at once
                    raise Conflict(f"model {fields['name']} {fields['version']} was uploaded meanwhile") from None
        return info, True

    def rollout(
        self, by: str, name: str, version: str, canary: list[str] | None, note: str | None = None
    ) -> RolloutInfo:
        """`version` of `name` for every box, or for the `canary` sites only."""
        if canary is not None and not canary:
            raise InvalidInput("canary: name at least one site, or leave it out for every box")
        with self.ctx.write() as s:
            row = s.scalar(select(m.ModelVersion).where(m.ModelVersion.name == name, m.ModelVersion.version == version))
            if row is None:
                raise NotFound(f"no uploaded model {name} {version}")
            rollout = m.ModelRollout(
                name=name,
                version_id=row.id,
                canary=sorted(set(canary)) if canary else None,
                created_at=self.ctx.clock(),
                created_by=by,
                note=note,
            )
            s.add(rollout)
            s.flush()
            info = RolloutInfo(rollout.id, name, version, rollout.canary, rollout.created_at, by, note)
            s.commit()
        return info

    def rollback(self, by: str, name: str) -> RolloutInfo:
        """Every box back to the version every box ran before the latest roll-out of `name`."""
        with self.ctx.read() as s:
            rows = s.execute(
                select(m.ModelRollout, m.ModelVersion.version)
                .join(m.ModelVersion, m.ModelVersion.id == m.ModelRollout.version_id)
                .where(m.ModelRollout.name == name)
                .order_by(m.ModelRollout.id.desc())
            ).all()
        if not rows:
            raise NotFound(f"model {name} was never rolled out")
        latest = rows[0][0]
        for rollout, version in rows[1:]:
            if rollout.canary is None and rollout.version_id != latest.version_id:
                return self.rollout(by, name, version, None, note=f"roll-back from rollout {latest.id}")
        raise Conflict(f"model {name}: no earlier version ran on every box, nothing to roll back to")

    def assigned(self, site_id: str) -> list[Assignment]:
        """For each rolled-out model, the version this site should run (a canary roll-out that
        does not name the site leaves it on the one before)."""
        with self.ctx.read() as s:
            rows = s.execute(
                select(m.ModelRollout, m.ModelVersion)
                .join(m.ModelVersion, m.ModelVersion.id == m.ModelRollout.version_id)
                .order_by(m.ModelRollout.name, m.ModelRollout.id.desc())
            ).all()
        chosen: dict[str, m.ModelVersion] = {}
        for rollout, version in rows:
            if rollout.name in chosen:
                continue
            if rollout.canary is None or site_id in rollout.canary:
                chosen[rollout.name] = version
        return [
            Assignment(v.name, v.version, v.file_name, v.sha256, v.size_bytes, v.card_sha256, v.signature)
            for v in chosen.values()
        ]

    def versions(self) -> tuple[list[ModelVersionInfo], list[RolloutInfo]]:
        """Every uploaded version, and every roll-out, newest first."""
        with self.ctx.read() as s:
            versions = [
                _version_info(v)
                for v in s.scalars(select(m.ModelVersion).order_by(m.ModelVersion.name, m.ModelVersion.id.desc()))
            ]
            rollouts = [
                RolloutInfo(r.id, r.name, v, r.canary, r.created_at, r.created_by, r.note)
                for r, v in s.execute(
                    select(m.ModelRollout, m.ModelVersion.version)
                    .join(m.ModelVersion, m.ModelVersion.id == m.ModelRollout.version_id)
                    .order_by(m.ModelRollout.id.desc())
                )
            ]
        return versions, rollouts

    def file(self, name: str, version: str, part: str) -> Path:
        """The stored card (`part` 'card') or model file ('model') of a version."""
        with self.ctx.read() as s:
            row = s.scalar(select(m.ModelVersion).where(m.ModelVersion.name == name, m.ModelVersion.version == version))
        if row is None:
            raise NotFound(f"no uploaded model {name} {version}")
        try:
            return self.ctx.store.open_path(row.card_sha256 if part == "card" else row.sha256)
        except StorageError:
            raise NotFound(f"model {name} {version}: its {part} file is missing from the store") from None


def _version_info(v: m.ModelVersion) -> ModelVersionInfo:
    return ModelVersionInfo(
        v.name, v.version, v.file_name, v.sha256, v.size_bytes, v.signature is not None, v.uploaded_at, v.uploaded_by
    )

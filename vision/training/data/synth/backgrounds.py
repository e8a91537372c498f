"""The background library: real street pictures and footage the scenes are built on.

`datasets/backgrounds/MANIFEST.tsv` lists every background with where it came from
(registry, package, version, path inside the package), its licence, sha256 and
split: `train` backgrounds may be used by the data builder, `heldout` ones never
are (only the held-out scenario suite renders on them, so it measures how the
models do on streets they have not seen). A still picture also carries two
`foot_y:person_height` points (relative to the frame height) read off the
picture, because one photo rarely has enough people at different distances to
fit the perspective from; footage leaves it empty and the perspective is fitted
from the people the base model finds (`scene.Perspective.fit`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from vision.core.paths import REPO_ROOT

BACKGROUNDS = REPO_ROOT / "datasets" / "backgrounds"
MANIFEST = BACKGROUNDS / "MANIFEST.tsv"
COLUMNS = (
    "file",
    "split",
    "kind",
    "registry",
    "package",
    "version",
    "source_path",
    "licence",
    "sha256",
    "size",
    "person_height",
    "description",
)
SPLITS = ("train", "heldout")
KINDS = ("video", "still")


class ManifestError(ValueError):
    pass


@dataclass(frozen=True)
class Background:
    file: str  # relative to the manifest's folder
    split: str
    kind: str
    registry: str
    package: str
    version: str
    source_path: str
    licence: str
    sha256: str
    size: str
    person_height: tuple[tuple[float, float], tuple[float, float]] | None  # (foot_y, height) twice, relative
    description: str
    root: Path

    @property
    def path(self) -> Path:
        return (self.root / self.file).resolve()

    @property
    def name(self) -> str:
        return Path(self.file).stem


def _person_height(text: str, where: str) -> tuple[tuple[float, float], tuple[float, float]] | None:
    text = text.strip()
    if not text:
        return None
    try:
        values = [[float(v) for v in p.split(":")] for p in text.split()]
    except ValueError as exc:
        raise ManifestError(f"{where}: person_height '{text}' is not 'y:h y:h'") from exc
    if len(values) != 2 or any(len(p) != 2 for p in values) or values[0][0] >= values[1][0]:
        raise ManifestError(f"{where}: person_height needs two foot_y:height points, nearer (larger y) second")
    (far_y, far_h), (near_y, near_h) = values
    points = ((far_y, far_h), (near_y, near_h))
    if not all(0 <= y <= 1.0 and 0 < h <= 2.0 for y, h in points):
        raise ManifestError(f"{where}: person_height points must be relative (0..1 foot y, 0..2 height)")
    return points


def read_manifest(path: Path = MANIFEST) -> list[Background]:
    """Every row of a manifest (first line: the column names), checked for shape, not for the files."""
    path = Path(path)
    lines = [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip() and not ln.startswith("#")]
    if not lines or tuple(lines[0].split("\t")) != COLUMNS:
        raise ManifestError(f"{path}: first line must be the columns {'/'.join(COLUMNS)}")
    out = []
    for n, line in enumerate(lines[1:], start=2):
        cells = line.split("\t")
        where = f"{path.name}:{n}"
        if len(cells) != len(COLUMNS):
            raise ManifestError(f"{where}: {len(cells)} columns, want {len(COLUMNS)}")
        row = dict(zip(COLUMNS, cells, strict=True))  # same length: checked just above
        if row["split"] not in SPLITS:
            raise ManifestError(f"{where}: split '{row['split']}' is not one of {SPLITS}")
        if row["kind"] not in KINDS:
            raise ManifestError(f"{where}: kind '{row['kind']}' is not one of {KINDS}")
        out.append(
            Background(
                file=row["file"],
                split=row["split"],
                kind=row["kind"],
                registry=row["registry"],
                package=row["package"],
                version=row["version"],
                source_path=row["source_path"],
                licence=row["licence"],
                sha256=row["sha256"],
                size=row["size"],
                person_height=_person_height(row["person_height"], where),
                description=row["description"],
                root=path.parent,
            )
        )
    return out


@lru_cache(maxsize=8)
def _cached(path: str, _mtime_ns: int) -> tuple[Background, ...]:
    """The manifest's rows; the modification time is only part of the cache key, so an edited
    manifest is read again."""
    return tuple(read_manifest(Path(path)))


def backgrounds(split: str | None = None, manifest: Path = MANIFEST) -> list[Background]:
    """The library (of one split), [] while there is no manifest."""
    manifest = Path(manifest)
    if not manifest.is_file():
        return []
    rows = _cached(str(manifest), manifest.stat().st_mtime_ns)
    return [b for b in rows if split is None or b.split == split]


def lookup(path: str | Path, manifest: Path = MANIFEST) -> Background | None:
    """The manifest row of a background file, by its resolved path."""
    p = Path(path).resolve()
    return next((b for b in backgrounds(manifest=manifest) if b.path == p), None)


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def heldout_in(sources: list[Path], manifest: Path = MANIFEST) -> list[Path]:
    """The files among `sources` (files or folders of them) that are held-out backgrounds,
    found by path or, for copies kept elsewhere, by content."""
    held = backgrounds("heldout", manifest)
    if not held:
        return []
    paths = {b.path for b in held}
    digests = {b.sha256 for b in held}
    sizes = {b.path.stat().st_size for b in held if b.path.is_file()}
    found = []
    for src in sources:
        src = Path(src)
        files = sorted(p for p in src.rglob("*") if p.is_file()) if src.is_dir() else [src]
        for f in files:
            r = f.resolve()
            if r in paths or (f.is_file() and f.stat().st_size in sizes and sha256_of(f) in digests):
                found.append(f)
    return found

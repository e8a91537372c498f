"""Evidence files, stored by content hash under one root directory.

Client-supplied names are never used in paths: a file lives at
`<root>/<sha[:2]>/<sha>` where `sha` is the SHA-256 we computed ourselves, and
every lookup re-checks that the resolved path is inside the root.

A file comes in two steps, so that it reaches its content address only with the
row that names it (`staging.EvidenceBatch`): `stage` copies and hashes it under a
temp name (`.upload-*` in the root: same filesystem, so the next step is a rename),
`promote` moves it to its address. A staged file that a crash left behind, or a
stored file no row names, is collected later (`collector.py`)."""

from __future__ import annotations

import hashlib
import io
import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

_SHA = re.compile(r"^[0-9a-f]{64}$")
_SHARD = re.compile(r"^[0-9a-f]{2}$")
CHUNK = 1 << 20
STAGING_PREFIX = ".upload-"


class StorageError(ValueError):
    """A file that cannot be stored or a key that does not name a stored file."""


@dataclass(frozen=True)
class StoredFile:
    sha256: str
    size_bytes: int


@dataclass(frozen=True)
class StagedFile:
    """A file copied in and hashed, under a temp name, not yet at its content address."""

    sha256: str
    size_bytes: int
    path: Path


class EvidenceStore:
    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def path_for(self, sha256: str) -> Path:
        """The path of a stored file; refuses anything that is not a hex digest
        or would resolve outside the root (symlinks included)."""
        if not isinstance(sha256, str) or not _SHA.match(sha256):
            raise StorageError("evidence key must be a lowercase hex SHA-256")
        path = (self.root / sha256[:2] / sha256).resolve()
        if not path.is_relative_to(self.root):
            raise StorageError("evidence path escapes the storage directory")
        return path

    def stage(
        self, stream: BinaryIO, max_bytes: int, expect_sha256: str | None = None, expect_size: int | None = None
    ) -> StagedFile:
        """Copies `stream` to a temp file, hashing as it goes; at most `max_bytes`. Nothing is
        kept when the content does not match the declared hash or size. Written to disk
        (fsync) here, before any transaction, so a committed row never names a file a power
        cut could still lose."""
        digest = hashlib.sha256()
        size = 0
        fd, tmp_name = tempfile.mkstemp(dir=self.root, prefix=STAGING_PREFIX)
        try:
            with os.fdopen(fd, "wb") as out:
                while chunk := stream.read(CHUNK):
                    size += len(chunk)
                    if size > max_bytes:
                        raise StorageError(f"file is larger than {max_bytes} bytes")
                    digest.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            sha = digest.hexdigest()
            if expect_size is not None and size != expect_size:
                raise StorageError(f"size is {size} bytes, declared {expect_size}")
            if expect_sha256 is not None and sha != expect_sha256:
                raise StorageError(f"sha256 is {sha}, declared {expect_sha256}")
            return StagedFile(sha, size, Path(tmp_name))
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise

    def promote(self, staged: StagedFile) -> bool:
        """Moves a staged file to its content address (atomic rename). True when that created
        the stored file; False when the same content was stored already (the copy is dropped)."""
        final = self.path_for(staged.sha256)
        if final.is_file():
            staged.path.unlink(missing_ok=True)
            return False
        final.parent.mkdir(exist_ok=True)
        os.replace(staged.path, final)
        return True

    @staticmethod
    def discard(staged: StagedFile) -> None:
        """Deletes a staged file that was not promoted (a no-op once it was)."""
        staged.path.unlink(missing_ok=True)

    def remove(self, sha256: str) -> None:
        """Deletes a stored file; the caller has made sure no row names it."""
        self.path_for(sha256).unlink(missing_ok=True)

    def put(
        self, stream: BinaryIO, max_bytes: int, expect_sha256: str | None = None, expect_size: int | None = None
    ) -> StoredFile:
        """`stage` and `promote` in one step, for files no row will name in the same transaction
        (tools, tests); until a row names it the collector sees it as an orphan."""
        staged = self.stage(stream, max_bytes, expect_sha256, expect_size)
        self.promote(staged)
        return StoredFile(staged.sha256, staged.size_bytes)

    def put_bytes(self, data: bytes) -> StoredFile:
        return self.put(io.BytesIO(data), max_bytes=len(data))

    def open_path(self, sha256: str) -> Path:
        path = self.path_for(sha256)
        if not path.is_file():
            raise StorageError("evidence file is missing")
        return path

    # ------------------------------------------------------------ for the collector
    def staged_files(self) -> Iterator[tuple[Path, float]]:
        """Every staged (`.upload-*`) file in the root with its modification time."""
        for path in self.root.glob(STAGING_PREFIX + "*"):
            mtime = _mtime(path)
            if mtime is not None:
                yield path, mtime

    def stored_files(self) -> Iterator[tuple[str, float]]:
        """Every stored file as (sha256, modification time); names that are not ours are skipped."""
        for shard in self.root.iterdir():
            if not _SHARD.match(shard.name) or not shard.is_dir() or shard.is_symlink():
                continue
            for path in shard.iterdir():
                if _SHA.match(path.name) and path.name.startswith(shard.name):
                    mtime = _mtime(path)
                    if mtime is not None:
                        yield path.name, mtime


def _mtime(path: Path) -> float | None:
    """A regular file's modification time; None for anything else, or a file gone meanwhile."""
    try:
        st = path.lstat()
    except FileNotFoundError:
        return None
    return st.st_mtime if path.is_file() and not path.is_symlink() else None

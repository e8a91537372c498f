"""Evidence files, stored by content hash under one root directory.

Client-supplied names are never used in paths: a file lives at
`<root>/<sha[:2]>/<sha>` where `sha` is the SHA-256 we computed ourselves, and
every lookup re-checks that the resolved path is inside the root."""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

_SHA = re.compile(r"^[0-9a-f]{64}$")
CHUNK = 1 << 20


class StorageError(ValueError):
    """A file that cannot be stored or a key that does not name a stored file."""


@dataclass(frozen=True)
class StoredFile:
    sha256: str
    size_bytes: int


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

    def put(
        self, stream: BinaryIO, max_bytes: int, expect_sha256: str | None = None, expect_size: int | None = None
    ) -> StoredFile:
        """Copies `stream` in, hashing as it goes; at most `max_bytes`. Atomic (rename),
        and nothing is kept when the content does not match the declared hash or size."""
        digest = hashlib.sha256()
        size = 0
        fd, tmp_name = tempfile.mkstemp(dir=self.root, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as out:
                while chunk := stream.read(CHUNK):
                    size += len(chunk)
                    if size > max_bytes:
                        raise StorageError(f"file is larger than {max_bytes} bytes")
                    digest.update(chunk)
                    out.write(chunk)
            sha = digest.hexdigest()
            if expect_size is not None and size != expect_size:
                raise StorageError(f"size is {size} bytes, declared {expect_size}")
            if expect_sha256 is not None and sha != expect_sha256:
                raise StorageError(f"sha256 is {sha}, declared {expect_sha256}")
            final = self.path_for(sha)
            final.parent.mkdir(exist_ok=True)
            os.replace(tmp_name, final)
            return StoredFile(sha, size)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise

    def put_bytes(self, data: bytes) -> StoredFile:
        import io

        return self.put(io.BytesIO(data), max_bytes=len(data))

    def open_path(self, sha256: str) -> Path:
        path = self.path_for(sha256)
        if not path.is_file():
            raise StorageError("evidence file is missing")
        return path

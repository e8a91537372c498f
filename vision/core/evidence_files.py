"""An evidence file on disk, as the outbox stores it and the sender uploads it.

Its own module so the outbox and the sender (which only move files) need not
import the code that draws and encodes them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from vision.core.cases import EvidenceKind


@dataclass(frozen=True)
class EvidenceFile:
    name: str
    kind: EvidenceKind
    content_type: str
    path: Path
    sha256: str
    size_bytes: int

    @classmethod
    def of(cls, name: str, kind: EvidenceKind, content_type: str, path: Path) -> EvidenceFile:
        """Describe a written file: its sha256 and size, read back from disk."""
        digest = hashlib.sha256()
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
        return cls(name, kind, content_type, path, digest.hexdigest(), path.stat().st_size)

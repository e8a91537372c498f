"""Files handed in by routes, and whether their first bytes are what the client
says they are: evidence is served with its declared type, so it must be that type."""

from __future__ import annotations

from dataclasses import dataclass
from typing import BinaryIO

# The largest legitimate intake request, part by part (`Settings.body_limit_bytes`): the
# `case` part's JSON (characters; up to 4 bytes each in UTF-8), and the multipart framing
# of up to a dozen parts (boundaries, part headers), generously.
CASE_JSON_MAX_CHARS = 1_000_000
CASE_PART_MAX_BYTES = 4 * CASE_JSON_MAX_CHARS
MULTIPART_OVERHEAD_BYTES = 64 * 1024


def evidence_files_max() -> int:
    """How many evidence files a CaseReport may declare (its schema's limit, vision/core/cases.py)."""
    from vision.core.cases import CaseReport

    limits = [getattr(meta, "max_length", None) for meta in CaseReport.model_fields["evidence"].metadata]
    found = [n for n in limits if isinstance(n, int)]
    assert found, "CaseReport.evidence has no max_length"
    return min(found)


@dataclass(frozen=True)
class Upload:
    """A file handed in by a route: an open binary stream and what the client called its type."""

    stream: BinaryIO
    content_type: str | None = None

    def head(self, n: int = 16) -> bytes:
        """The first `n` bytes, leaving the stream at its start for storing."""
        data = self.stream.read(n)
        self.stream.seek(0)
        return data


IMAGE_MAGIC = {b"\xff\xd8\xff": "image/jpeg", b"\x89PNG\r\n\x1a\n": "image/png"}


def sniff_image(head: bytes) -> str | None:
    """'image/jpeg' or 'image/png' from a file's first bytes, None for anything else."""
    for magic, ctype in IMAGE_MAGIC.items():
        if head.startswith(magic):
            return ctype
    return None


def content_matches(content_type: str, head: bytes) -> bool:
    """Declared type vs. the file's first bytes, so evidence is served as what it is."""
    if content_type == "video/mp4":
        return head[4:8] == b"ftyp"
    return sniff_image(head) == content_type

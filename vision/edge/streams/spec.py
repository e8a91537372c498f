"""What a camera source string means: its kind, its decoder target, and a loggable form.

Parsing is pure (no I/O) so that config checks and the reader agree on it; whether
the file exists or the server answers is found out when the source is opened.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlsplit

SourceKind = Literal["file", "image", "rtsp", "http", "stream", "device"]

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})
# URL schemes handed to FFmpeg. rtsp/http get their own kinds (TCP pre-check, MJPEG);
# the rest are live network streams FFmpeg knows how to pull.
_RTSP_SCHEMES = frozenset({"rtsp", "rtsps"})
_HTTP_SCHEMES = frozenset({"http", "https"})
_OTHER_STREAM_SCHEMES = frozenset({"rtmp", "rtmps", "srt", "udp", "tcp", "rtp"})
DEFAULT_PORTS = {"rtsp": 554, "rtsps": 322, "http": 80, "https": 443, "rtmp": 1935, "rtmps": 443}

_DEVICE_RE = re.compile(r"^(?:device:)?(\d+)$")
_USERINFO_RE = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://)(?P<user>[^:/@\s]*):(?P<pw>[^@/\s]*)@")
_SECRET_QUERY_RE = re.compile(
    r"(?P<key>[?&;](?:password|passwd|pwd|pass|token|access_token|key|secret|auth|signature)=)[^&#;\s]*",
    re.IGNORECASE,
)


class SourceError(Exception):
    """A camera source cannot be opened or parsed; the message names the source and why."""

    def __init__(self, source: str, reason: str) -> None:
        self.source = mask_secrets(source)
        self.reason = mask_secrets(reason)
        super().__init__(f"source {self.source!r}: {self.reason}")


def mask_secrets(text: str) -> str:
    """Hide URL passwords and secret query values in any text (logs, status, error messages)."""
    text = _USERINFO_RE.sub(lambda m: f"{m['head']}{m['user']}:***@", text)
    return _SECRET_QUERY_RE.sub(lambda m: f"{m['key']}***", text)


@dataclass(frozen=True)
class SourceSpec:
    """A parsed source: `target` is what the decoder opens (a path, a URL or a device index)."""

    raw: str
    kind: SourceKind
    target: str | int
    host: str | None = None
    port: int | None = None

    @property
    def masked(self) -> str:
        return mask_secrets(self.raw)

    @property
    def live(self) -> bool:
        """Live sources pace themselves and are reconnected; files and images end or loop."""
        return self.kind in ("rtsp", "http", "stream", "device")


def parse_source(source: str) -> SourceSpec:
    """Classify a source string: `device:N` / `N`, a URL, or a file path (image by suffix)."""
    if not isinstance(source, str) or not source.strip():
        raise SourceError(str(source), "empty source: give a file path, an rtsp:// or http:// URL, or device:N")
    raw = source.strip()
    match = _DEVICE_RE.match(raw)
    if match:
        return SourceSpec(raw=raw, kind="device", target=int(match.group(1)))
    if raw.startswith("device:"):
        raise SourceError(raw, "a local camera is written device:N with N a number, e.g. device:0")

    parts = urlsplit(raw)
    scheme = parts.scheme.lower()
    if scheme and len(scheme) > 1:  # one letter is a Windows drive, not a scheme
        if scheme == "file":
            return _path_spec(raw, Path(unquote(parts.path)))
        if scheme in _RTSP_SCHEMES | _HTTP_SCHEMES | _OTHER_STREAM_SCHEMES:
            if not parts.hostname:
                raise SourceError(raw, f"{scheme}:// URL without a host")
            try:
                port = parts.port or DEFAULT_PORTS.get(scheme)
            except ValueError:
                raise SourceError(raw, "URL port is not a number in 1-65535") from None
            kind: SourceKind = "rtsp" if scheme in _RTSP_SCHEMES else "http" if scheme in _HTTP_SCHEMES else "stream"
            return SourceSpec(raw=raw, kind=kind, target=raw, host=parts.hostname, port=port)
        known = sorted(_RTSP_SCHEMES | _HTTP_SCHEMES | _OTHER_STREAM_SCHEMES | {"file"})
        raise SourceError(raw, f"unsupported URL scheme {scheme!r} (known: {', '.join(known)})")
    return _path_spec(raw, Path(raw).expanduser())


def _path_spec(raw: str, path: Path) -> SourceSpec:
    kind: SourceKind = "image" if path.suffix.lower() in IMAGE_SUFFIXES else "file"
    return SourceSpec(raw=raw, kind=kind, target=str(path))

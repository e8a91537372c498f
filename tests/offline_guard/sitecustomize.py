"""Loaded by any Python started with this folder on PYTHONPATH (tests only).

Refuses every network connection or name lookup that is not loopback and
records it in $STREETVISION_NET_LOG, so a test can fail on any download attempt
even where the network would have answered.
"""

import ipaddress
import os
import socket
import traceback

_LOG = os.environ.get("STREETVISION_NET_LOG")
_LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}


def _is_loopback(host) -> bool:
    if host is None:
        return True
    if isinstance(host, bytes):
        host = host.decode(errors="replace")
    host = str(host)
    if host in _LOOPBACK_NAMES or host == "":
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


def _record(what: str) -> None:
    if _LOG:
        with open(_LOG, "a", encoding="utf-8") as fh:
            fh.write(what + "\n    " + "    ".join(traceback.format_stack(limit=8)[:-2]) + "\n")


_orig_connect = socket.socket.connect
_orig_connect_ex = socket.socket.connect_ex
_orig_getaddrinfo = socket.getaddrinfo


def _check_addr(address) -> None:
    if isinstance(address, tuple) and address and not _is_loopback(address[0]):
        _record(f"connect {address!r}")
        raise OSError(101, f"network blocked by offline guard: {address!r}")


def _connect(self, address):
    if self.family in (socket.AF_INET, socket.AF_INET6):
        _check_addr(address)
    return _orig_connect(self, address)


def _connect_ex(self, address):
    if self.family in (socket.AF_INET, socket.AF_INET6):
        _check_addr(address)
    return _orig_connect_ex(self, address)


def _getaddrinfo(host, *args, **kwargs):
    if not _is_loopback(host):
        _record(f"getaddrinfo {host!r}")
        raise socket.gaierror(socket.EAI_NONAME, f"name lookup blocked by offline guard: {host!r}")
    return _orig_getaddrinfo(host, *args, **kwargs)


socket.socket.connect = _connect
socket.socket.connect_ex = _connect_ex
socket.getaddrinfo = _getaddrinfo

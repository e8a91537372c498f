"""Asks the edge daemon's /healthz whether it is stalled; streetvision-edge-healthcheck.service
restarts the daemon when this exits 1.

    python edge_healthcheck.py [URL [TIMEOUT_S]]     default http://127.0.0.1:9108/healthz, 20 s

Exit 1: the daemon answered 503 (its loop showed no life for 30 s: a wedged detector, a
deadlock), or it accepted the connection but gave no answer in time (wedged as a whole).
Exit 0: it answered 200; or nothing listens (it is not running: the unit's Restart= deals
with a daemon that exited, and a restart here would only start one that was stopped on
purpose); or another answer (a wrong URL: a restart would not help). Standard library only.
"""

from __future__ import annotations

import sys
import urllib.error
import urllib.request

DEFAULT_URL = "http://127.0.0.1:9108/healthz"
DEFAULT_TIMEOUT_S = 20.0


def check(url: str, timeout_s: float) -> tuple[int, str]:
    """(exit status, what was seen) of one look at `url`."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as resp:
            return 0, f"HTTP {resp.status}"
    except urllib.error.HTTPError as exc:
        return (1 if exc.code == 503 else 0), f"HTTP {exc.code}"
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, TimeoutError):
            return 1, f"no answer in {timeout_s:g} s"
        return 0, f"not reachable ({exc.reason})"
    except TimeoutError:
        return 1, f"no answer in {timeout_s:g} s"
    except OSError as exc:  # reset while reading: it went away, not wedged
        return 0, f"connection lost ({exc})"


def main(argv: list[str]) -> int:
    url = argv[1] if len(argv) > 1 else DEFAULT_URL
    timeout_s = float(argv[2]) if len(argv) > 2 else DEFAULT_TIMEOUT_S
    status, seen = check(url, timeout_s)
    print(f"{url}: {seen}{': restart' if status else ''}", file=sys.stderr if status else sys.stdout)
    return status


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))

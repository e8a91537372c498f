#!/usr/bin/env bash
# The two quickstart commands live here:
#   ./dev.sh demo   the whole system live on the bundled footage (streetvision demo)
#   ./dev.sh test   run the whole test suite
# and, for CI and before a commit:
#   ./dev.sh lint   ruff check, ruff format --check and mypy (configured in pyproject.toml)
# Both create or reuse .venv/ in the repo root and install what they need
# (pip packages, and for the tests the Debian packages listed in .ci/apt-packages.txt).
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")"

PYTHON=${PYTHON:-$(command -v python3.11 || command -v python3)}

# Install the Debian packages of a list file that are not installed yet.
apt_install_from() {
    local missing=()
    while read -r pkg; do
        pkg=${pkg%%#*}; pkg=$(echo "$pkg" | xargs)
        [ -z "$pkg" ] && continue
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done < "$1"
    if [ ${#missing[@]} -gt 0 ]; then
        local sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
        echo "==> apt-get install ${missing[*]}" >&2
        $sudo apt-get update -qq >&2
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
}

# Create .venv and install the package with the given extras, once per pyproject change.
ensure_venv() {
    local extras=$1
    [ -x .venv/bin/python ] || "$PYTHON" -m venv .venv >&2
    local stamp=".venv/.installed-$(cat pyproject.toml | sha256sum | cut -c1-12)-${extras//,/_}"
    if [ ! -f "$stamp" ]; then
        echo "==> installing streetvision[${extras}] into .venv" >&2
        .venv/bin/python -m pip install -q --upgrade pip >/dev/null
        local spec="."
        [ -n "$extras" ] && spec=".[${extras}]"
        .venv/bin/python -m pip install -q -e "$spec" >&2
        touch "$stamp"
    fi
}

cmd=${1:-help}; shift || true
case "$cmd" in
    demo)
        ensure_venv "dispatch"
        exec .venv/bin/streetvision demo "$@"
        ;;
    test)
        apt_install_from .ci/apt-packages.txt
        ensure_venv "dispatch,train,test"
        # Two workers, one test file each at a time (module fixtures stay in one process): the
        # end-to-end tests mostly wait on real-time streams, daemons and servers, so two share the
        # 2-core CI box well (907 s serial, 498 s this way). `./dev.sh test -n 0` runs serially.
        exec .venv/bin/python -m pytest -n "${STREETVISION_TEST_WORKERS:-2}" --dist loadfile "$@"
        ;;
    lint)
        ensure_venv "dispatch,train,test"
        .venv/bin/ruff check .
        .venv/bin/ruff format --check .
        exec .venv/bin/mypy
        ;;
    *)
        echo "usage: ./dev.sh demo|test|lint [args...]" >&2
        exit 2
        ;;
esac

"""What deploy/ ships, checked by the tools that will read it: every systemd unit passes
`systemd-analyze verify` (with the installation prefix /opt/streetvision pointed at this
checkout's venv, since verify checks that ExecStart's program exists) and its command lines
parse with the real `streetvision` parser; the edge health check restarts on a stalled or
silent /healthz only (real HTTP servers on 127.0.0.1); nginx accepts the proxy config, whose
body limit is the center's, and when running it proxies to a node but answers /metrics only
to the monitoring host."""

from __future__ import annotations

import http.server
import math
import re
import shlex
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SYSTEMD = REPO / "deploy" / "systemd"
NGINX_CONF = REPO / "deploy" / "nginx" / "streetvision.conf"
SYSTEMD_ANALYZE = Path("/usr/bin/systemd-analyze")  # Debian package systemd (.ci/apt-packages.txt)
NGINX = Path("/usr/sbin/nginx")  # Debian package nginx
PREFIX = "/opt/streetvision"  # where the units expect the checkout and its venv
UNITS = sorted(p.name for p in SYSTEMD.glob("*.service")) + sorted(p.name for p in SYSTEMD.glob("*.timer"))
HEALTHCHECK = SYSTEMD / "edge_healthcheck.py"


def _installed(tmp_path: Path) -> Path:
    """The units as installed on a machine whose /opt/streetvision is this checkout: the venv's
    programs are the real ones here, every other line is as committed."""
    venv_bin = Path(sys.executable).parent
    out = tmp_path / "units"
    out.mkdir()
    for name in UNITS:
        text = (SYSTEMD / name).read_text()
        text = text.replace(f"{PREFIX}/.venv/bin/", f"{venv_bin}/").replace(f"{PREFIX}/", f"{REPO}/")
        (out / name).write_text(text)
    return out


def _verify(paths: list[Path]) -> tuple[int, list[str]]:
    r = subprocess.run(
        [str(SYSTEMD_ANALYZE), "verify", "--man=no", "--generators=no", *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return r.returncode, [line for line in (r.stdout + r.stderr).splitlines() if line.strip()]


def _to_check(units: Path) -> list[Path]:
    """Every unit file; a template as one of its instances (a port), so %i is filled in."""
    return [units / (name.replace("@.", "@8081.") if "@." in name else name) for name in UNITS]


def test_units_are_there() -> None:
    assert {
        "streetvision-edge.service",
        "streetvision-edge-healthcheck.service",
        "streetvision-edge-healthcheck.timer",
        "streetvision-dispatch.service",
        "streetvision-dispatch@.service",
    } <= set(UNITS)


def test_systemd_analyze_verify_accepts_every_unit(tmp_path: Path) -> None:
    assert SYSTEMD_ANALYZE.exists(), "systemd-analyze missing (Debian package systemd)"
    rc, lines = _verify(_to_check(_installed(tmp_path)))
    # Lines about anything else (this container's own configuration) are not ours to judge.
    ours = [line for line in lines if "streetvision" in line]
    assert rc == 0 and ours == [], "\n".join(lines)


@pytest.mark.parametrize(
    "change, complaint",
    [
        (("Restart=on-failure", "Restart=on-failur"), "Failed to parse service restart specifier"),
        (("UMask=0077", "UMask=0077\nProtectSytem=strict"), "Unknown key"),
        (("/bin/kill -HUP", "/bin/no-such-kill -HUP"), "not executable"),
    ],
)
def test_the_check_catches_a_broken_unit(tmp_path: Path, change: tuple[str, str], complaint: str) -> None:
    """The same check on a unit with a mistake of each kind fails (so a pass above means something)."""
    units = _installed(tmp_path)
    unit = units / "streetvision-edge.service"
    old, new = change
    assert old in unit.read_text()
    unit.write_text(unit.read_text().replace(old, new, 1))
    rc, lines = _verify([unit])
    ours = [line for line in lines if "streetvision" in line]
    assert rc != 0 or ours, "systemd-analyze found nothing wrong"
    assert any(complaint in line for line in ours), "\n".join(lines)


def _unit(name: str) -> dict[str, list[str]]:
    """Key -> values of a committed unit (continuation lines and comments as systemd reads them)."""
    values: dict[str, list[str]] = {}
    for raw in (SYSTEMD / name).read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";", "[")):
            continue
        key, _, value = line.partition("=")
        values.setdefault(key.strip(), []).append(value.strip())
    return values


def _environment(unit: dict[str, list[str]]) -> dict[str, str]:
    env: dict[str, str] = {}
    for assignment in unit.get("Environment", []):
        for word in shlex.split(assignment):
            k, _, v = word.partition("=")
            env[k] = v
    return env


@pytest.mark.parametrize(
    "name, instance",
    [
        ("streetvision-edge.service", ""),
        ("streetvision-dispatch.service", ""),
        ("streetvision-dispatch@.service", "8081"),
    ],
)
def test_exec_start_is_a_real_streetvision_command_line(name: str, instance: str) -> None:
    """ExecStart, with the unit's own Environment= defaults and the instance filled in as systemd
    would, is accepted by the `streetvision` parser, and names the sub-command it should."""
    from vision.cli import build_parser

    unit = _unit(name)
    (exec_start,) = unit["ExecStart"]
    env = _environment(unit)
    line = re.sub(r"\$\{(\w+)\}", lambda m: env[m.group(1)], exec_start.replace("%i", instance))
    program, *argv = shlex.split(line)
    assert program == f"{PREFIX}/.venv/bin/streetvision"
    args = build_parser().parse_args(argv)
    if name.startswith("streetvision-edge"):
        assert args.command == "run" and args.config.startswith("/etc/streetvision/")
    else:
        assert (args.command, args.dispatch_command) == ("dispatch", "serve")
        assert args.workers >= 1 and (args.port == int(instance) if instance else args.port > 0)
    for key in ("User", "Restart", "EnvironmentFile", "WorkingDirectory"):
        assert unit.get(key), f"{name}: no {key}="
    assert unit["Restart"] == ["on-failure"] and unit["User"] == ["streetvision"]


def test_settings_the_dispatch_units_set_are_read_by_the_center(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every STREETVISION_DISPATCH_* variable a unit sets is one Settings.from_env reads."""
    from vision.dispatch.settings import Settings

    for name in ("streetvision-dispatch.service", "streetvision-dispatch@.service"):
        env = {k: v for k, v in _environment(_unit(name)).items() if k.startswith("STREETVISION_DISPATCH_")}
        assert env, name
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        assert str(Settings.from_env().data_dir) == env["STREETVISION_DISPATCH_DATA_DIR"]
        source = (REPO / "vision" / "dispatch" / "settings.py").read_text()
        for k in env:
            assert f'_env("{k.removeprefix("STREETVISION_DISPATCH_")}")' in source, f"{name}: {k} is read by nobody"


# ------------------------------------------------------------------ the edge health check
class _Health(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:  # noqa: N802
        body = b'{"status": "stalled"}' if self.status == 503 else b'{"status": "ok"}'
        self.send_response(self.status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def health_server() -> Iterator[http.server.ThreadingHTTPServer]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def _healthcheck(url: str, timeout_s: float = 5.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(HEALTHCHECK), url, str(timeout_s)], capture_output=True, text=True, timeout=30
    )


def test_healthcheck_restarts_a_stalled_daemon_only(health_server: http.server.ThreadingHTTPServer) -> None:
    url = f"http://127.0.0.1:{health_server.server_address[1]}/healthz"
    _Health.status = 200
    assert _healthcheck(url).returncode == 0
    _Health.status = 503
    r = _healthcheck(url)
    assert r.returncode == 1 and "HTTP 503" in r.stderr
    _Health.status = 404  # a wrong URL: a restart would not help
    assert _healthcheck(url).returncode == 0
    _Health.status = 200


def test_healthcheck_restarts_a_daemon_that_does_not_answer() -> None:
    with socket.socket() as listening:  # accepts connections (the kernel does) and never answers
        listening.bind(("127.0.0.1", 0))
        listening.listen(4)
        r = _healthcheck(f"http://127.0.0.1:{listening.getsockname()[1]}/healthz", timeout_s=0.5)
    assert r.returncode == 1 and "no answer" in r.stderr


def test_healthcheck_leaves_a_daemon_that_is_not_running_to_systemd() -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    r = _healthcheck(f"http://127.0.0.1:{port}/healthz")
    assert r.returncode == 0 and "not reachable" in r.stdout


def test_healthcheck_unit_runs_the_script_against_the_daemons_address() -> None:
    unit = _unit("streetvision-edge-healthcheck.service")
    (line,) = unit["ExecStart"]
    assert f"{PREFIX}/deploy/systemd/edge_healthcheck.py" in line
    assert "systemctl restart --no-block streetvision-edge.service" in line
    from vision.edge.config import MetricsConfig

    default = MetricsConfig()
    assert f"http://{default.host}:{default.port}/healthz" in line
    assert _unit("streetvision-edge-healthcheck.timer")["Unit"] == ["streetvision-edge-healthcheck.service"]


# ------------------------------------------------------------------ nginx
def test_nginx_body_limit_is_the_centers() -> None:
    from vision.dispatch.settings import Settings

    (size,) = re.findall(r"^\s*client_max_body_size\s+(\d+)m;", NGINX_CONF.read_text(), re.M)
    assert int(size) == math.ceil(Settings().body_limit_bytes / (1 << 20))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _local_nginx(tmp_path: Path, upstream_port: int | None = None) -> tuple[Path, int]:
    """The shipped proxy config made runnable here: a throw-away certificate, 127.0.0.1 and a
    free port instead of 443 (no root needed), Debian's nginx.conf reduced to what the snippet
    needs around it; with `upstream_port`, every node replaced by one server on 127.0.0.1.
    Returns the main config file and the port it listens on."""
    assert NGINX.exists(), "nginx missing (Debian package nginx)"
    openssl = shutil.which("openssl")
    assert openssl, "openssl missing"
    crt, key = tmp_path / "dispatch.crt", tmp_path / "dispatch.key"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=dispatch.city.internal"]
        + ["-keyout", str(key), "-out", str(crt)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    text = NGINX_CONF.read_text()
    assert "/etc/ssl/streetvision/dispatch.crt" in text and "/etc/ssl/streetvision/dispatch.key" in text
    assert re.search(r"^\s*listen 443 ssl;", text, re.M)
    port = _free_port()
    text = re.sub(r"^(\s*)listen 443 ssl;", rf"\1listen 127.0.0.1:{port} ssl;", text, flags=re.M)
    text = text.replace("/etc/ssl/streetvision/dispatch.crt", str(crt))
    text = text.replace("/etc/ssl/streetvision/dispatch.key", str(key))
    if upstream_port is not None:
        text, n = re.subn(r"^\s*server 10\.0\.0\.\d+:\d+ .*;\n", "", text, flags=re.M)
        assert n >= 2
        text = text.replace(
            "upstream streetvision_dispatch {",
            f"upstream streetvision_dispatch {{\n    server 127.0.0.1:{upstream_port};",
        )
    site = tmp_path / "streetvision.conf"
    site.write_text(text)
    main = tmp_path / "nginx.conf"
    main.write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\nevents {{}}\n"
        f"http {{\n    access_log off;\n    include {site};\n}}\n"
    )
    return main, port


def _nginx_args(tmp_path: Path, main: Path) -> list[str]:
    return [str(NGINX), "-p", str(tmp_path), "-e", str(tmp_path / "error.log"), "-c", str(main)]


def test_nginx_accepts_the_config(tmp_path: Path) -> None:
    main, _port = _local_nginx(tmp_path)
    r = subprocess.run([*_nginx_args(tmp_path, main), "-t"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "test is successful" in r.stderr and "[warn]" not in r.stderr, r.stderr


class _Node(http.server.BaseHTTPRequestHandler):
    """A center node as far as the proxy can tell: 200 and the path for every GET."""

    def do_GET(self) -> None:
        body = self.path.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: object) -> None:
        pass


def test_nginx_lets_only_the_monitoring_host_read_metrics(tmp_path: Path) -> None:
    import httpx

    node = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Node)
    threading.Thread(target=node.serve_forever, daemon=True).start()
    main, port = _local_nginx(tmp_path, upstream_port=node.server_address[1])
    main.write_text("daemon off;\n" + main.read_text())
    proxy = subprocess.Popen([*_nginx_args(tmp_path, main)], stderr=subprocess.PIPE, text=True)
    try:
        with httpx.Client(base_url=f"https://127.0.0.1:{port}", verify=False, timeout=5) as client:
            for _ in range(100):  # until nginx listens
                try:
                    healthz = client.get("/healthz")
                    break
                except httpx.ConnectError:
                    assert proxy.poll() is None, proxy.stderr.read() if proxy.stderr else ""
                    threading.Event().wait(0.05)
            else:
                pytest.fail("nginx did not start")
            assert (healthz.status_code, healthz.text) == (200, "/healthz")  # proxied to the node
            assert client.get("/api/v1/fleet").status_code == 200
            assert client.get("/metrics").status_code == 403  # 127.0.0.1 is not the monitoring host
    finally:
        proxy.terminate()
        proxy.wait(10)
        node.shutdown()

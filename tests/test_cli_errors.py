"""CLI errors a user meets: one clear line, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "vision"]


def test_a_site_file_that_is_not_utf8_is_one_line_naming_it(tmp_path):
    site = tmp_path / "site-gbk.yaml"
    site.write_bytes("site_id: 西湖区\nname: 城管\n".encode("gbk"))  # saved by an editor in GBK
    res = subprocess.run([*CLI, "config", "check", str(site)], cwd=REPO, capture_output=True, text=True)
    assert res.returncode == 1
    assert "Traceback" not in res.stderr
    assert f"{site}: line 1: not UTF-8 text (save the file as UTF-8)" in res.stderr


def test_output_into_a_closed_pipe_stops_quietly():
    # `streetvision detect --json VIDEO | head -1`: the reader leaves after one line
    proc = subprocess.Popen(
        [*CLI, "detect", "datasets/footage/vtest.avi", "--json", "--sample-fps", "5"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    first = proc.stdout.readline()
    proc.stdout.close()
    err = proc.stderr.read().decode()
    code = proc.wait(timeout=120)
    assert first.startswith(b'{"frame": 0')
    assert "Traceback" not in err and "BrokenPipeError" not in err, err
    assert code == 141  # 128 + SIGPIPE, as a writer killed by the closed pipe would exit

"""`fedcomments serve` as a real process: banner, defaults, JSON logs, clean shutdown."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.conftest import free_port


def _start(tmp_path: Path, config: str, *extra: str) -> tuple[subprocess.Popen[str], int]:
    port = free_port()
    cfg = tmp_path / "c.toml"
    cfg.write_text(config.format(port=port))
    proc = subprocess.Popen(
        [sys.executable, "-m", "fedcomments", "serve", "--config", str(cfg), *extra],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    return proc, port


def _banner(proc: subprocess.Popen[str]) -> list[str]:
    assert proc.stdout is not None
    lines = [proc.stdout.readline() for _ in range(3)]
    return [line.rstrip("\n") for line in lines]


def _get(url: str, accept: str) -> tuple[int, bytes]:
    deadline = time.monotonic() + 20
    while True:
        try:
            req = urllib.request.Request(url, headers={"Accept": accept})
            with urllib.request.urlopen(req, timeout=5) as resp:
                return resp.status, resp.read()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)  # polling for the port to open, bounded by the deadline


def test_serve_prints_where_it_listens_and_serves_actor(tmp_path: Path) -> None:
    """Given a config with only host/port, serve prints address, data path and handle."""
    proc, port = _start(tmp_path, '[server]\nhost = "127.0.0.1"\nport = {port}\n'
                                  '[logging]\njson = true\n')
    try:
        banner = _banner(proc)
        assert banner[0].startswith(f"fedcomments listening on http://127.0.0.1:{port}")
        assert banner[1] == f"  data: {tmp_path / 'fedcomments.sqlite3'}"
        assert banner[2] == f"  blog actor: @blog@127.0.0.1:{port}"
        status, body = _get(f"http://127.0.0.1:{port}/users/blog", "application/activity+json")
        assert status == 200
        assert json.loads(body)["id"] == f"http://127.0.0.1:{port}/users/blog"
    finally:
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0
    request_lines = [json.loads(line) for line in err.splitlines() if '"request"' in line]
    assert any(r["path"] == "/users/blog" and r["status"] == 200 for r in request_lines)
    assert all(r["level"] == "info" and "ms" in r for r in request_lines)
    assert (tmp_path / "fedcomments.sqlite3").stat().st_mode & 0o777 == 0o600

"""Isso, the peer: install it from PyPI into a venv, seed a thread, run it on 127.0.0.1.

    python bench/isso/isso_peer.py [--comments 200] [--port 8090]

starts Isso in the foreground with the benchmark's 200-comment thread at /viral/ until
Ctrl-C; bench/thread.py uses the same functions. See bench/isso/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import common  # noqa: E402
import seed  # noqa: E402

#: Where the venv lives: a fixed folder under the temp dir, reused while it works.
VENV = Path(tempfile.gettempdir()) / "fedcomments-bench-isso-venv"
REQUIREMENT = "isso"
URI = "/viral/"
TITLE = "A post that went viral"


def ensure_venv(venv: Path = VENV) -> Path:
    """A venv with Isso from PyPI (created once; about half a minute)."""
    isso = venv / "bin" / "isso"
    if isso.exists():
        return venv
    common.progress(f"installing {REQUIREMENT} from PyPI into {venv}")
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", REQUIREMENT], check=True,
                   timeout=900)
    return venv


def version(venv: Path = VENV) -> str:
    out = subprocess.run([str(venv / "bin" / "python"), "-c",
                          "import importlib.metadata as m; print(m.version('isso'))"],
                         capture_output=True, text=True, check=False, timeout=60)
    return out.stdout.strip() or "unknown"


def write_config(directory: Path, port: int) -> Path:
    """The minimal config: a SQLite file and the listen address; everything else default
    (one process, werkzeug's threaded server, guard on, no moderation, Markdown by mistune,
    pbkdf2 identicon hashes)."""
    path = directory / "isso.cfg"
    path.write_text(
        "[general]\n"
        f"dbpath = {directory / 'comments.db'}\n"
        # Isso checks at start that it can reach the blog: keep that on loopback too.
        f"host = http://{common.HOST}:{port}/\n"
        "\n[server]\n"
        f"listen = http://{common.HOST}:{port}\n"
    )
    return path


def seed_thread(venv: Path, config: Path, spec: list[seed.SpecComment]) -> None:
    spec_path = config.with_name("thread.json")
    spec_path.write_text(seed.spec_json(spec))
    subprocess.run([str(venv / "bin" / "python"), str(HERE / "seed_isso.py"), str(config), URI,
                    TITLE, str(spec_path)], check=True, capture_output=True, timeout=300)


def command(venv: Path, config: Path) -> list[str]:
    return [str(venv / "bin" / "isso"), "-c", str(config), "run"]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--comments", type=int, default=200)
    p.add_argument("--port", type=int, default=8090)
    p.add_argument("--venv", type=Path, default=VENV)
    args = p.parse_args()
    venv = ensure_venv(args.venv)
    directory = Path(tempfile.mkdtemp(prefix="fedcomments-bench-isso-"))
    config = write_config(directory, args.port)
    seed_thread(venv, config, seed.thread_spec(args.comments))
    print(f"Isso {version(venv)} on http://{common.HOST}:{args.port}/?uri={URI} "
          f"({args.comments} comments; data in {directory}); Ctrl-C stops it", flush=True)
    proc = subprocess.Popen(command(venv, config))
    with contextlib.suppress(KeyboardInterrupt):
        while proc.poll() is None:
            time.sleep(0.5)
    proc.terminate()
    proc.wait(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())

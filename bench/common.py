"""Shared benchmark helpers: the machine, report tables, cached RSA keys, a minimal
draft-cavage signer/verifier on `cryptography`, and fedcomments as a real subprocess.

Everything listens on and talks to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import json
import math
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from email.utils import formatdate
from pathlib import Path
from typing import Any

import aiohttp
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
CACHE = BENCH_DIR / ".cache"
ADMIN_TOKEN = "bench-admin-token"
HOST = "127.0.0.1"


# --- the machine and the report -----------------------------------------------------------


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, timeout=5, check=False)
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "fedcomments"],
                               capture_output=True, text=True, timeout=5, check=False)
    except OSError:
        return "unknown"
    return out.stdout.strip() + ("+changes" if dirty.stdout.strip() else "")


def load_average() -> float:
    """The 1-minute load average (nan where /proc is missing)."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        return float(Path("/proc/loadavg").read_text().split()[0])
    return float("nan")


def machine_lines(load_at_start: float = float("nan")) -> list[str]:
    mem = ""
    with contextlib.suppress(OSError, ValueError, IndexError):
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kb / 1024 / 1024:.0f} GiB RAM"
    load = ""
    if load_at_start == load_at_start:
        load = f"\nload:    {load_at_start:.1f} (1-minute average when the run started)"
        if load_at_start > (os.cpu_count() or 1) / 2:
            load += " — BUSY MACHINE: other work was running; figures are not reliable"
    return [
        f"machine: {cpu_model()}, {os.cpu_count()} cores{mem}{load}",
        f"python:  {platform.python_version()} ({platform.python_implementation()}), "
        f"{platform.system()} {platform.release()}",
        f"code:    fedcomments {git_commit()}",
    ]


@dataclass
class Row:
    operation: str
    ours: str
    reference: str = ""
    ratio: str = ""


@dataclass
class Report:
    title: str
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    load_at_start: float = field(default_factory=load_average)

    def add(self, operation: str, ours: str, reference: str = "", ratio: str = "") -> None:
        self.rows.append(Row(operation, ours, reference, ratio))

    def note(self, text: str) -> None:
        self.notes.append(text)

    def render(self) -> str:
        header = Row("operation", "ours", "floor or peer", "ratio")
        rows = [header, *self.rows]
        widths = [max(len(getattr(r, f)) for r in rows)
                  for f in ("operation", "ours", "reference", "ratio")]

        def line(r: Row) -> str:
            cells = [r.operation, r.ours, r.reference, r.ratio]
            return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

        out = [f"## {self.title}", "", *machine_lines(self.load_at_start), "", line(header),
               "| " + " | ".join("-" * w for w in widths) + " |"]
        out += [line(r) for r in self.rows]
        if self.notes:
            out += [""] + [f"- {n}" for n in self.notes]
        return "\n".join(out)

    def print(self) -> None:
        print(self.render(), flush=True)


def ratio(ours: float, reference: float, *, percent: bool = True) -> str:
    if not reference or math.isnan(ours) or math.isnan(reference):
        return "n/a"
    value = ours / reference
    return f"{value * 100:.0f} %" if percent else f"{value:,.1f}×"


def per_s(value: float) -> str:
    if math.isnan(value):
        return "n/a"
    return f"{value:,.0f}/s" if value >= 10 else f"{value:.2f}/s"


def ms(seconds: float) -> str:
    return "n/a" if math.isnan(seconds) else f"{seconds * 1000:.1f} ms"


def progress(text: str) -> None:
    print(f"… {text}", file=sys.stderr, flush=True)


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true",
                   help="smaller sizes: the whole run takes well under a minute")
    p.add_argument("--keep", action="store_true",
                   help="keep the temporary directory (databases, configs, server logs)")
    return p


@contextlib.contextmanager
def workdir(keep: bool) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="fedcomments-bench-"))
    try:
        yield path
    finally:
        if keep:
            progress(f"kept {path}")
        else:
            shutil.rmtree(path, ignore_errors=True)


# --- keys --------------------------------------------------------------------------------


def _new_rsa_pem(_: int = 0) -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def rsa_keys(n: int) -> list[rsa.RSAPrivateKey]:
    """n distinct RSA-2048 keys, generated once and cached in bench/.cache (gitignored)."""
    CACHE.mkdir(exist_ok=True)
    path = CACHE / "rsa2048.json"
    pems: list[str] = json.loads(path.read_text()) if path.exists() else []
    if len(pems) < n:
        missing = n - len(pems)
        progress(f"generating {missing} RSA-2048 keys (cached in {path} for later runs)")
        with ProcessPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
            pems += list(pool.map(_new_rsa_pem, range(missing), chunksize=16))
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(pems))
        tmp.replace(path)
    return [load_private(p) for p in pems[:n]]


def load_private(pem: str) -> rsa.RSAPrivateKey:
    # Our own freshly generated keys: skipping the (slow) consistency checks is safe here.
    key = serialization.load_pem_private_key(pem.encode(), password=None,
                                             unsafe_skip_rsa_key_validation=True)
    assert isinstance(key, rsa.RSAPrivateKey)
    return key


def public_pem(key: rsa.RSAPrivateKey) -> str:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


# --- draft-cavage signatures, as Mastodon sends them ---------------------------------------

SIGNED_HEADERS = ("(request-target)", "host", "date", "digest", "content-type")


def digest_header(body: bytes) -> str:
    return "SHA-256=" + base64.b64encode(hashlib.sha256(body).digest()).decode()


def sign_post(key: rsa.RSAPrivateKey, key_id: str, host: str, path: str, body: bytes,
              content_type: str = "application/activity+json") -> tuple[tuple[str, str], ...]:
    """Headers of a POST signed with rsa-sha256 over Mastodon's header list."""
    values = {
        "(request-target)": f"post {path}", "host": host,
        "date": formatdate(usegmt=True), "digest": digest_header(body),
        "content-type": content_type,
    }
    base = "\n".join(f"{h}: {values[h]}" for h in SIGNED_HEADERS).encode()
    signature = base64.b64encode(key.sign(base, padding.PKCS1v15(), hashes.SHA256())).decode()
    header = (f'keyId="{key_id}",algorithm="rsa-sha256",headers="{" ".join(SIGNED_HEADERS)}",'
              f'signature="{signature}"')
    return (("Date", values["date"]), ("Digest", values["digest"]),
            ("Content-Type", content_type), ("Signature", header))


def parse_signature(value: str) -> dict[str, str]:
    params: dict[str, str] = {}
    for part in value.split('",'):
        name, _, raw = part.partition("=")
        params[name.strip()] = raw.strip().strip('"')
    return params


def verify_cavage(public_key: Any, method: str, path_qs: str, headers: Mapping[str, str],
                  body: bytes) -> str:
    """Verify one draft-cavage rsa-sha256 signature and the body digest; returns keyId.

    Raises ValueError on any mismatch.
    """
    params = parse_signature(headers["Signature"])
    covered = params.get("headers", "date").split()
    lines = []
    for name in covered:
        value = f"{method.lower()} {path_qs}" if name == "(request-target)" else headers[name]
        lines.append(f"{name}: {value}")
    if "digest" not in covered or headers["Digest"] != digest_header(body):
        raise ValueError("digest missing or wrong")
    public_key.verify(base64.b64decode(params["signature"]), "\n".join(lines).encode(),
                      padding.PKCS1v15(), hashes.SHA256())
    return params["keyId"]


# --- fedcomments as a real process ----------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def children(pid: int) -> list[int]:
    """Live child processes of `pid` (Linux /proc)."""
    found: list[int] = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            found += [int(c) for c in (task / "children").read_text().split()]
    return found


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds of `pid` and of its live children (the HTTP workers of a server)."""
    return sum(cpu_seconds(p) for p in [pid, *children(pid)])


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return json.dumps(str(value))


def bench_settings(directory: Path, port: int, **sections: dict[str, Any]) -> dict[str, Any]:
    """The benchmark configuration: loopback peers allowed, no moderation, admin token."""
    data: dict[str, Any] = {
        "server": {"base_url": f"http://{HOST}:{port}", "host": HOST, "port": port},
        "storage": {"database": str(directory / "fedcomments.sqlite3")},
        "federation": {"allow_private_addresses": True},
        "moderation": {"policy": "none"},
        "admin": {"token": ADMIN_TOKEN},
        "logging": {"level": "info"},
    }
    for name, values in sections.items():
        data.setdefault(name, {}).update(values)
    return data


def write_config(path: Path, data: dict[str, Any]) -> Path:
    lines = []
    for section, values in data.items():
        lines.append(f"[{section}]")
        lines += [f"{k} = {toml_value(v)}" for k, v in values.items()]
        lines.append("")
    path.write_text("\n".join(lines))
    return path


def settings_object(data: dict[str, Any]) -> Any:
    from fedcomments.config import settings_from_mapping

    return settings_from_mapping(data, source="bench")


def fedcomments_command() -> list[str]:
    script = Path(sys.executable).with_name("fedcomments")
    return [str(script)] if script.exists() else [sys.executable, "-m", "fedcomments"]


async def wait_for_port(port: int, proc: subprocess.Popen[bytes] | None,
                        limit: float = 30.0) -> None:
    end = time.monotonic() + limit
    while time.monotonic() < end:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before listening")
        try:
            _, writer = await asyncio.open_connection(HOST, port)
        except OSError:
            await asyncio.sleep(0.05)
            continue
        writer.close()
        return
    raise RuntimeError(f"nothing listens on {HOST}:{port} after {limit:.0f} s")


@dataclass
class Server:
    """`fedcomments serve --config <temp toml>` as a subprocess."""

    directory: Path
    config: dict[str, Any]
    proc: subprocess.Popen[bytes] | None = None
    session: aiohttp.ClientSession | None = None

    @classmethod
    def prepare(cls, directory: Path, **sections: dict[str, Any]) -> Server:
        directory.mkdir(parents=True, exist_ok=True)
        return cls(directory, bench_settings(directory, free_port(), **sections))

    @property
    def port(self) -> int:
        return int(self.config["server"]["port"])

    @property
    def url(self) -> str:
        return str(self.config["server"]["base_url"])

    @property
    def database(self) -> Path:
        return Path(self.config["storage"]["database"])

    @property
    def log_path(self) -> Path:
        return self.directory / "server.log"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    async def start(self) -> Server:
        config = write_config(self.directory / "fedcomments.toml", self.config)
        log = self.log_path.open("ab")
        # The server's log goes to a file, as under a service manager.
        # Popen only forks and returns; the process is watched by polling its port.
        self.proc = subprocess.Popen(  # noqa: ASYNC220
            [*fedcomments_command(), "serve", "--config", str(config)],
            stdout=log, stderr=subprocess.STDOUT, cwd=self.directory)
        log.close()
        try:
            await wait_for_port(self.port, self.proc)
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}; log:\n{self.log_tail()}") from None
        self.session = aiohttp.ClientSession()
        return self

    def log_tail(self, lines: int = 20) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""

    async def stop(self) -> None:
        if self.session is not None:
            await self.session.close()
            self.session = None
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                await asyncio.get_running_loop().run_in_executor(None, self.proc.wait, 15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def rss_mb(self) -> float:
        """RSS of the server: every HTTP process of `[server] workers` together."""
        return sum(rss_mb(p) for p in [self.pid, *children(self.pid)])

    async def wait_for_workers(self, limit: float = 30.0) -> None:
        """Until every HTTP process of `[server] workers` answers: the port opens with the
        first, so fresh connections are sent until each worker has logged one request."""
        want = int(self.config["server"].get("workers", 1))
        deadline = asyncio.get_running_loop().time() + limit
        while not all(f"worker={n}" in self.log_path.read_text() for n in range(2, want + 1)):
            if asyncio.get_running_loop().time() > deadline:
                raise RuntimeError(f"{want} workers did not all answer; log:\n{self.log_tail()}")
            reader, writer = await asyncio.open_connection(HOST, self.port)
            writer.write(b"GET /.well-known/nodeinfo HTTP/1.1\r\nHost: x\r\n"
                         b"Connection: close\r\n\r\n")
            await reader.read()
            writer.close()

    async def admin(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        assert self.session is not None
        async with self.session.request(
            method, self.url + path, json=body,
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        ) as resp:
            data = await resp.json(content_type=None)
            if resp.status >= 300:
                raise RuntimeError(f"{method} {path}: {resp.status} {data}")
            return data

    async def get(self, path: str, accept: str = "application/json") -> tuple[int, bytes]:
        assert self.session is not None
        async with self.session.get(self.url + path, headers={"Accept": accept}) as resp:
            return resp.status, await resp.read()

    async def openapi_paths(self) -> dict[str, Any]:
        status, body = await self.get("/api/v1/openapi.json")
        return json.loads(body).get("paths", {}) if status == 200 else {}


@contextlib.asynccontextmanager
async def running(server: Server) -> Any:
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def percent_of(part: float, whole: float) -> str:
    return "n/a" if not whole else f"{part / whole * 100:.0f} %"


@dataclass
class FloorProcess:
    """A floor (or peer) server as its own process, started from a benchmark script."""

    command: list[str]
    port: int
    log_path: Path
    #: A line the process prints once it listens (when others already hold the port).
    ready_line: str | None = None
    proc: subprocess.Popen[bytes] | None = None

    async def start(self, limit: float = 60.0) -> FloorProcess:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(  # noqa: ASYNC220
            self.command, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        try:
            await wait_for_port(self.port, self.proc, limit)
            await self._wait_for_line(limit)
        except RuntimeError as exc:
            tail = self.log_path.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{' '.join(self.command)}: {exc}\n{tail}") from None
        return self

    async def _wait_for_line(self, limit: float) -> None:
        if self.ready_line is None:
            return
        deadline = asyncio.get_running_loop().time() + limit
        while self.ready_line not in self.log_path.read_text(errors="replace"):
            if asyncio.get_running_loop().time() > deadline or (
                    self.proc is not None and self.proc.poll() is not None):
                raise RuntimeError(f"no {self.ready_line!r} line")
            await asyncio.sleep(0.02)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    async def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                await asyncio.get_running_loop().run_in_executor(None, self.proc.wait, 15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


def floor_command(script: str, *args: str) -> list[str]:
    """Run `script` (a bench file) in its hidden floor-server mode."""
    return [sys.executable, str(BENCH_DIR / script), "--floor-server", *args]

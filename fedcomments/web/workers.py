"""Several HTTP processes on one port: SO_REUSEPORT sockets and the children serving them.

One Python process runs on one core at a time, so `[server] workers = N` lets `serve`
start N-1 more copies of itself. The parent binds its socket first (a port that is
taken fails there, before anything starts), then gives each child a socket of its own on
the same port as an inherited file descriptor; the kernel spreads new connections over
the sockets. Children serve HTTP only: the delivery worker and housekeeping run once per
database, in the parent. Everything else the processes share lives in SQLite, and their
in-memory copies follow it (see Runtime.refresh_shared).

A child that dies is started again, after a pause that grows while it keeps dying; its
socket closes with it, so no connection waits on a socket nobody accepts from. One that
was asked to stop (SIGTERM, SIGINT) stays stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import signal
import socket
import sys
from collections.abc import Sequence

from fedcomments.errors import FedcommentsError

log = logging.getLogger("fedcomments.workers")

#: Exit codes of a child that was asked to stop (SIGTERM or SIGINT, handled or not): it
#: is not started again. Anything else (a crash, SIGKILL from the OOM killer) is.
STOPPED = frozenset({0, 130, -signal.SIGTERM, -signal.SIGINT})
#: aiohttp's own default; a burst of first contacts from a popular post fits in it.
BACKLOG = 128
RESTART_PAUSE = 1.0
MAX_RESTART_PAUSE = 30.0
STOP_TIMEOUT = 15.0


class ListenError(FedcommentsError):
    """The server's address cannot be listened on (taken, or no such address)."""


def _addresses(host: str, port: int) -> list[tuple[int, int, int, tuple[object, ...]]]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                   flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ListenError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    seen: dict[tuple[object, ...], tuple[int, int, int, tuple[object, ...]]] = {}
    for family, type_, proto, _name, addr in infos:
        seen.setdefault(addr, (family, type_, proto, addr))
    return list(seen.values())


def _socket(family: int, type_: int, proto: int, *, shared: bool) -> socket.socket:
    sock = socket.socket(family, type_, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if shared:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    if family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    return sock


def bind(host: str, port: int, *, first: bool = False) -> list[socket.socket]:
    """Listening sockets on every address of `host`, shareable by the sibling processes.

    `first`: check before that nobody listens there yet. SO_REUSEPORT would otherwise let
    a second server of the same user join the port silently and take half its traffic.
    """
    if not hasattr(socket, "SO_REUSEPORT"):
        raise ListenError("[server] workers above 1 needs SO_REUSEPORT (Linux)")
    addresses = _addresses(host, port)
    socks: list[socket.socket] = []
    try:
        for family, type_, proto, addr in addresses:
            if first:
                # Without SO_REUSEPORT this bind fails while anyone listens on the port.
                with _socket(family, type_, proto, shared=False) as probe:
                    probe.bind(addr)
            sock = _socket(family, type_, proto, shared=True)
            socks.append(sock)
            sock.bind(addr)
            sock.listen(BACKLOG)
            sock.setblocking(False)
    except OSError as exc:
        for sock in socks:
            sock.close()
        reason = "address already in use" if exc.errno == errno.EADDRINUSE else exc.strerror
        raise ListenError(f"cannot listen on {host}:{port}: {reason}") from None
    return socks


async def follow_parent(parent: int) -> None:
    """In a child: stop, as SIGTERM would, once the parent that started it is gone.

    A parent killed outright (SIGKILL, the OOM killer) cannot stop its children; an
    orphan would go on serving alone, with no delivery worker and nobody to restart it,
    and keep the port from the parent's next start. A pidfd (Linux 5.3) becomes readable
    when its process ends, so the loop is told, not polled.
    """
    loop = asyncio.get_running_loop()
    gone: asyncio.Future[None] = loop.create_future()
    try:
        fd = os.pidfd_open(parent)
    except ProcessLookupError:
        fd = None
    # Opened first, checked after: a parent that ended before the open is not missed.
    if fd is not None:
        try:
            if os.getppid() == parent:
                loop.add_reader(fd, lambda: gone.done() or gone.set_result(None))
                try:
                    await gone
                finally:
                    loop.remove_reader(fd)
        finally:
            os.close(fd)
    log.warning("parent process gone; stopping", extra={"parent": parent})
    os.kill(os.getpid(), signal.SIGTERM)


def adopt(fds: str) -> list[socket.socket]:
    """The listening sockets a child was handed (`--listen-fds 5,6`)."""
    return [socket.socket(fileno=int(fd)) for fd in fds.split(",")]


class Children:
    """Workers 2..N of `serve`, kept running until `stop`."""

    def __init__(self, host: str, port: int, command: Sequence[str], count: int) -> None:
        self.host, self.port = host, port
        #: `fedcomments serve` with the parent's config and log level; each child gets
        #: `--worker N --parent PID --listen-fds …` appended.
        self.command = list(command)
        self.count = count
        self.procs: dict[int, asyncio.subprocess.Process] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._keep(number))
                       for number in range(2, self.count + 1)]

    async def _spawn(self, number: int) -> asyncio.subprocess.Process:
        socks = bind(self.host, self.port)
        try:
            fds = [sock.fileno() for sock in socks]
            # Its own session: Ctrl-C in a terminal reaches the parent alone, which then
            # stops each child with one SIGTERM (a second signal would cut its clean-up).
            return await asyncio.create_subprocess_exec(
                *self.command, "--worker", str(number), "--parent", str(os.getpid()),
                "--listen-fds", ",".join(map(str, fds)), pass_fds=fds, start_new_session=True)
        finally:
            # The child holds its own copies; ours must go, or the kernel would keep
            # routing connections to them once the child is gone.
            for sock in socks:
                sock.close()

    async def _keep(self, number: int) -> None:
        loop = asyncio.get_running_loop()
        pause = RESTART_PAUSE
        while not self._stopping:
            started = loop.time()
            try:
                proc = await self._spawn(number)
            except (OSError, FedcommentsError) as exc:
                log.error("cannot start HTTP worker", extra={"child": number,
                                                             "error": str(exc)})
            else:
                self.procs[number] = proc
                code = await proc.wait()
                if self._stopping:
                    return
                if code in STOPPED:
                    # Asked to stop: Ctrl-C reaches the whole process group, and systemd
                    # signals every process of the service, often before the parent.
                    log.info("HTTP worker stopped", extra={"child": number, "pid": proc.pid,
                                                           "code": code})
                    return
                log.error("HTTP worker exited; starting it again",
                          extra={"child": number, "pid": proc.pid, "code": code})
            # A child that keeps dying at once (a broken install, a full disk) is not
            # restarted in a tight loop; one that ran for a while is restarted promptly.
            if loop.time() - started > MAX_RESTART_PAUSE:
                pause = RESTART_PAUSE
            await asyncio.sleep(pause)
            pause = min(pause * 2, MAX_RESTART_PAUSE)

    async def stop(self) -> None:
        """SIGTERM every child (each finishes its requests), SIGKILL after STOP_TIMEOUT."""
        self._stopping = True
        running = [p for p in self.procs.values() if p.returncode is None]
        for proc in running:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
        if running:
            _done, late = await asyncio.wait([asyncio.ensure_future(p.wait()) for p in running],
                                             timeout=STOP_TIMEOUT)
            if late:
                for proc in running:
                    if proc.returncode is None:
                        with contextlib.suppress(ProcessLookupError):
                            proc.kill()
                await asyncio.wait(late)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


def child_command(config: str | None, log_level: str | None) -> list[str]:
    """`fedcomments serve` as this process was started, for a child."""
    command = [sys.executable, "-m", "fedcomments", "serve"]
    if config:
        command += ["--config", config]
    if log_level:
        command += ["--log-level", log_level]
    return command

"""Several HTTP processes on one port: SO_REUSEPORT sockets and the children serving them.

One Python process runs on one core at a time, so `[server] workers = N` lets `serve`
start N-1 more copies of itself. The parent binds its socket first (a port that is
taken fails there, before anything starts), then gives each child a socket of its own on
the same port as an inherited file descriptor; the kernel spreads new connections over
the sockets that listen, and a child's socket listens only once the child serves. Children
serve HTTP only: the delivery worker and housekeeping run once per database, in the
parent. Everything else the processes share lives in SQLite, and their in-memory copies
follow it (see Runtime.refresh_shared).

A child that dies is started again, after a pause that grows while it keeps dying; its
socket closes with it, so no connection waits on a socket nobody accepts from. One that
was asked to stop (SIGTERM, SIGINT) stays stopped. When the parent stops, every child gets
one SIGTERM at the moment the parent stops accepting, so they drain side by side.
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

from aiohttp import web

from fedcomments.errors import FedcommentsError

log = logging.getLogger("fedcomments.workers")

#: Exit codes of a child that was asked to stop (SIGTERM or SIGINT, handled or not): it
#: is not started again. Anything else (a crash, SIGKILL from the OOM killer) is.
STOPPED = frozenset({0, 130, -signal.SIGTERM, -signal.SIGINT})
RESTART_PAUSE = 1.0
MAX_RESTART_PAUSE = 30.0
STOP_TIMEOUT = 15.0
#: Where pidfds are missing (Linux before 5.3, some seccomp profiles), how often a child
#: looks whether its parent is still there (seconds).
PARENT_POLL = 1.0

Address = tuple[int, int, int, tuple[object, ...]]


class ListenError(FedcommentsError):
    """The server's address cannot be listened on (taken, or no such address)."""


def addresses(host: str, port: int) -> list[Address]:
    """Every address of `host` to listen on, resolved once (a restart does no DNS)."""
    if sys.platform != "linux":
        # Elsewhere SO_REUSEPORT exists but does not spread connections over the sockets.
        raise ListenError("[server] workers above 1 needs Linux (SO_REUSEPORT)")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                   flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ListenError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    seen: dict[tuple[object, ...], Address] = {}
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


def bind(where: Sequence[Address], *, first: bool = False) -> list[socket.socket]:
    """Sockets bound (not yet listening: aiohttp listens once its app has started) on
    every address, shareable by the sibling processes.

    `first`: check before that nobody listens there yet. SO_REUSEPORT would otherwise let
    a second server of the same user join the port silently and take part of its traffic.
    """
    socks: list[socket.socket] = []
    try:
        for family, type_, proto, addr in where:
            if first:
                # Without SO_REUSEPORT this bind fails while anyone listens on the port.
                with _socket(family, type_, proto, shared=False) as probe:
                    probe.bind(addr)
            sock = _socket(family, type_, proto, shared=True)
            socks.append(sock)
            sock.bind(addr)
            sock.setblocking(False)
    except OSError as exc:
        for sock in socks:
            sock.close()
        host, port = str(where[0][3][0]), int(str(where[0][3][1]))
        reason = "address already in use" if exc.errno == errno.EADDRINUSE else exc.strerror
        raise ListenError(f"cannot listen on {host}:{port}: {reason}") from None
    return socks


async def follow_parent(parent: int) -> None:
    """In a child: stop, as SIGTERM would, once the parent that started it is gone.

    A parent killed outright (SIGKILL, the OOM killer) cannot stop its children; an
    orphan would go on serving alone, with no delivery worker and nobody to restart it,
    and keep the port from the parent's next start. A pidfd (Linux 5.3) becomes readable
    when its process ends, so the loop is told; without one, the parent is looked for.
    """
    try:
        fd: int | None = os.pidfd_open(parent)
    except ProcessLookupError:
        fd = None
    except (OSError, AttributeError):
        log.info("no pidfd here: looking for the parent every second", extra={"parent": parent})
        while os.getppid() == parent:  # noqa: ASYNC110 - nothing to wait on but time
            await asyncio.sleep(PARENT_POLL)
        fd = None
    # Opened first, checked after: a parent that ended before the open is not missed.
    if fd is not None:
        loop = asyncio.get_running_loop()
        gone: asyncio.Future[None] = loop.create_future()
        try:
            if os.getppid() == parent:
                loop.add_reader(fd, lambda: None if gone.done() else gone.set_result(None))
                try:
                    await gone
                finally:
                    loop.remove_reader(fd)
        finally:
            os.close(fd)
    log.warning("parent process gone; stopping", extra={"parent": parent})
    os.kill(os.getpid(), signal.SIGTERM)


def stop_once() -> None:
    """In a child, once serving: the first SIGTERM or SIGINT stops it gracefully, later ones
    are ignored. systemd signals every process of a service and the parent signals its
    children too; a second signal would make aiohttp cut the clean-up short."""
    loop = asyncio.get_running_loop()

    def first() -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, lambda: None)
        raise web.GracefulExit()  # what aiohttp's own handler raises

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, first)


def adopt(fds: str) -> list[socket.socket]:
    """The sockets a child was handed (`--listen-fds 5,6`)."""
    return [socket.socket(fileno=int(fd)) for fd in fds.split(",")]


class Children:
    """Workers 2..N of `serve`, kept running until `stop`."""

    def __init__(self, where: Sequence[Address], command: Sequence[str], count: int) -> None:
        self.where = list(where)
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
        socks = bind(self.where)
        try:
            fds = [sock.fileno() for sock in socks]
            # Its own session: Ctrl-C in a terminal reaches the parent alone, which then
            # stops each child with one SIGTERM.
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
            except Exception:  # a task boundary: log, and try again after the pause
                log.exception("cannot start HTTP worker", extra={"child": number})
            else:
                self.procs[number] = proc
                if self._stopping:  # stop() ran while it was starting
                    with contextlib.suppress(ProcessLookupError):
                        proc.terminate()
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

    def signal_stop(self) -> None:
        """SIGTERM every child (each drains its own requests); see `stop`."""
        self._stopping = True
        for proc in self.procs.values():
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)

    async def stop(self) -> None:
        """Wait for the children signalled by `signal_stop` (called here if it was not),
        SIGKILL those still there after STOP_TIMEOUT."""
        if not self._stopping:
            self.signal_stop()
        running = [p for p in self.procs.values() if p.returncode is None]
        if running:
            _done, late = await asyncio.wait([asyncio.ensure_future(p.wait()) for p in running],
                                             timeout=STOP_TIMEOUT)
            if late:
                for proc in running:
                    if proc.returncode is None:
                        with contextlib.suppress(ProcessLookupError):
                            proc.kill()
                await asyncio.wait(late)
        # A child that was still starting when we stopped is terminated by its _keep.
        await asyncio.wait(self._tasks, timeout=STOP_TIMEOUT)
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

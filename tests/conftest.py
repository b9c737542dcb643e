"""Shared fixtures: a real fedcomments app on a real port with a real SQLite file."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from fedcomments.config import Settings, settings_from_mapping
from fedcomments.runtime import Runtime
from fedcomments.web.app import create_app
from fedcomments.web.keys import RUNTIME
from tests.helpers.clock import FakeClock
from tests.helpers.fediverse import FakeInstance, running

if TYPE_CHECKING:
    from tests.helpers.inbox import Blog

ADMIN_TOKEN = "test-admin-token"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def bound_socket() -> socket.socket:
    """A socket already bound to a free port, for a server that must know its port before
    it starts: holding the port from the moment it is chosen leaves no window in which
    another process (or an outgoing connection) can take it, as free_port() does."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    return s


def make_settings(tmp_path: Path, port: int, **sections: dict[str, Any]) -> Settings:
    data: dict[str, Any] = {
        "server": {"base_url": f"http://127.0.0.1:{port}", "host": "127.0.0.1", "port": port},
        "storage": {"database": str(tmp_path / "fedcomments.sqlite3")},
        "federation": {"allow_private_addresses": True},
        "admin": {"token": ADMIN_TOKEN},
        "actor": {"name": "Test Blog", "summary": "A blog about tests.",
                  "url": "https://blog.example/"},
    }
    for name, values in sections.items():
        data.setdefault(name, {}).update(values)
    return settings_from_mapping(data, source="test")


@dataclass
class Instance:
    """A running fedcomments server for a test."""

    settings: Settings
    server: TestServer
    session: aiohttp.ClientSession
    clock: FakeClock

    @property
    def url(self) -> str:
        return self.settings.server.base_url

    @property
    def rt(self) -> Runtime:
        return self.server.app[RUNTIME]

    async def get(self, path: str, accept: str = "application/activity+json",
                  **kwargs: Any) -> aiohttp.ClientResponse:
        headers = {"Accept": accept, **kwargs.pop("headers", {})}
        return await self.session.get(self.url + path, headers=headers, **kwargs)

    async def admin(self, method: str, path: str, **kwargs: Any) -> aiohttp.ClientResponse:
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}", **kwargs.pop("headers", {})}
        return await self.session.request(method, self.url + path, headers=headers, **kwargs)


InstanceFactory = Callable[..., Any]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def make_instance(tmp_path: Path, clock: FakeClock) -> AsyncIterator[InstanceFactory]:
    """Start fedcomments instances; each gets its own port and database file."""
    started: list[Instance] = []

    async def start(*, resolver: Any = None, **sections: dict[str, Any]) -> Instance:
        """`resolver` (e.g. LoopbackNames) replaces the system's name resolver."""
        sock = bound_socket()
        port = int(sock.getsockname()[1])
        base = tmp_path / f"i{len(started)}"
        base.mkdir()
        try:
            settings = make_settings(base, port, **sections)
            server = TestServer(create_app(settings, clock=clock, resolver=resolver),
                                host="127.0.0.1",
                                port=port, socket_factory=lambda *_: sock)
            await server.start_server()
        except BaseException:
            sock.close()
            raise
        session = aiohttp.ClientSession()
        inst = Instance(settings=settings, server=server, session=session, clock=clock)
        started.append(inst)
        return inst

    yield start
    for inst in started:
        await inst.session.close()
        await inst.server.close()


@pytest.fixture
async def instance(make_instance: InstanceFactory) -> Instance:
    return await make_instance()


@pytest.fixture
async def remote() -> AsyncIterator[FakeInstance]:
    """One fake remote instance (a real aiohttp server on 127.0.0.1) for the test."""
    inst = await FakeInstance().start()
    yield inst
    await inst.close()


@pytest.fixture
async def remotes() -> AsyncIterator[list[FakeInstance]]:
    """Two fake remote instances, for tests where one server's notes answer another's."""
    async with running(2) as started:
        yield started


@pytest.fixture
async def blog(make_instance: InstanceFactory) -> Blog:
    """Our instance with one post, as an inbox test talks to it."""
    from tests.helpers.inbox import start_blog_with_post  # the helper module imports this one

    return await start_blog_with_post(make_instance)

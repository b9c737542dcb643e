"""Background work of one process, one task per key at a time (single flight): callers
asking for the same key share the running task; all are cancelled when the runtime closes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine, Hashable
from typing import Any

log = logging.getLogger("fedcomments.background")


class Flights:
    """Keyed single-flight tasks; `limit` of them run their work at once."""

    def __init__(self, limit: int = 4) -> None:
        self._running: dict[Hashable, asyncio.Task[Any]] = {}
        self.slots = asyncio.Semaphore(limit)
        #: Small notes the owning service keeps between tasks (what it did recently).
        self.notes: dict[str, Any] = {}

    def start(self, key: Hashable, work: Callable[[], Coroutine[Any, Any, Any]]
              ) -> asyncio.Task[Any]:
        """The task running for `key`, started now from `work()` if there is none."""
        task = self._running.get(key)
        if task is not None:
            return task

        async def run() -> Any:
            async with self.slots:
                return await work()

        task = asyncio.ensure_future(run())
        self._running[key] = task

        def done(finished: asyncio.Task[Any]) -> None:
            if self._running.get(key) is finished:
                del self._running[key]
            if not finished.cancelled() and finished.exception() is not None:
                log.error("background task %r failed", key, exc_info=finished.exception())

        task.add_done_callback(done)
        return task

    def running(self, key: Hashable) -> bool:
        return key in self._running

    def __len__(self) -> int:
        """Tasks running or waiting for a slot."""
        return len(self._running)

    async def idle(self) -> None:
        """Wait until nothing runs (tests, and an orderly stop)."""
        while self._running:
            await asyncio.wait(list(self._running.values()))

    async def close(self) -> None:
        tasks = list(self._running.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

"""Threads that sign delivery POSTs off the event loop and hand the signatures back in batches."""

from __future__ import annotations

import asyncio
import queue
import threading
from typing import Any

from fedcomments.remote.common import Signer

_Job = tuple[asyncio.Future[dict[str, str]], Signer, str, dict[str, str], bytes]


class SigningThreads:
    """Threads that sign POSTs, taken up in the order they were asked for (with several
    threads they may finish in another order; `Poster.take_turn` keeps the writes to one
    server in order).

    Finished signatures go back to the event loop together: one wake-up of the loop for
    all that are ready (an executor wakes it once per signature, which at fan-out rates
    costs the loop a good part of what the signature costs the thread).
    """

    def __init__(self, threads: int) -> None:
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._done: list[tuple[asyncio.Future[dict[str, str]], bool, Any]] = []
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._threads = [threading.Thread(target=self._work, name=f"fedcomments-sign-{n}",
                                          daemon=True) for n in range(threads)]
        for thread in self._threads:
            thread.start()

    def close(self) -> None:
        for _ in self._threads:
            self._jobs.put(None)

    def sign(self, signer: Signer, url: str, headers: dict[str, str],
             body: bytes) -> asyncio.Future[dict[str, str]]:
        loop = asyncio.get_running_loop()
        self._loop = loop
        future: asyncio.Future[dict[str, str]] = loop.create_future()
        self._jobs.put((future, signer, url, headers, body))
        return future

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            future, signer, url, headers, body = job
            try:
                outcome: tuple[asyncio.Future[dict[str, str]], bool, Any] = (
                    future, True, signer("POST", url, headers, body))
            except BaseException as exc:  # handed to the awaiting coroutine
                outcome = (future, False, exc)
            with self._lock:
                self._done.append(outcome)
                first = len(self._done) == 1
            if first and self._loop is not None:
                try:
                    self._loop.call_soon_threadsafe(self._settle)
                except RuntimeError:  # the loop is closed: nobody awaits these any more
                    return

    def _settle(self) -> None:
        with self._lock:
            done, self._done = self._done, []
        for future, ok, value in done:
            if future.cancelled():
                continue
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)


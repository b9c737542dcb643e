"""`worker`: the delivery worker alone, for deployments that run it apart from `serve`."""

from __future__ import annotations

import argparse
import asyncio
import signal
from typing import Any

from fedcomments import logsetup
from fedcomments.cli import common
from fedcomments.cli.server import data_path
from fedcomments.config import Settings
from fedcomments.delivery.worker import DeliveryWorker
from fedcomments.runtime import open_runtime


def worker(args: argparse.Namespace) -> int:
    settings = common.settings(args)
    logsetup.configure(args.log_level or settings.logging.level, as_json=settings.logging.json)
    return asyncio.run(_run(settings, data_path(settings)))


async def _run(settings: Settings, data: str) -> int:
    async with open_runtime(settings) as rt:
        delivery = DeliveryWorker(rt)
        loop = asyncio.get_running_loop()
        # SIGTERM/SIGINT: stop claiming, let in-flight requests finish for a few seconds,
        # give the rest back to the queue.
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, delivery.stop)
        print(f"fedcomments worker delivering for {rt.urls.handle}\n  data: {data}", flush=True)
        await delivery.run()
    return 0


def register(sub: Any) -> None:
    p = common.add_command(sub, "worker", "Run only the delivery worker (no HTTP server).",
                           "fedcomments worker --config /etc/fedcomments.toml")
    p.add_argument("--log-level", choices=["debug", "info", "warning", "error"])
    p.set_defaults(func=worker)

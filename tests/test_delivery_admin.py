"""`deliveries list|retry` on the command line and the same through the admin API."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from fedcomments.cli import main
from fedcomments.store import queue
from tests.conftest import Instance
from tests.helpers.blogkit import deliveries, start_blog_without_worker, worker
from tests.helpers.peers import peers


def _config(fc: Instance, tmp_path: Path) -> str:
    cfg = tmp_path / "cli.toml"
    cfg.write_text(f'[server]\nbase_url = "{fc.url}"\n'
                   f'[storage]\ndatabase = "{fc.settings.storage.database}"\n')
    return str(cfg)


async def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    # The CLI runs its own event loop: run it in a thread so the test's loop stays free.
    code = await asyncio.to_thread(main, list(argv))
    out, err = capsys.readouterr()
    return code, out, err


async def _failed_and_done(fc: Instance) -> tuple[int, int]:
    """Two jobs to two peers: one ends failed (403), one done. Returns their ids."""
    async with peers("127.0.0.2", "127.0.0.3") as [bad, good]:
        bad.default_status = 403
        async with fc.rt.db.transaction() as tx:
            for n, peer in enumerate((bad, good)):
                await queue.enqueue(tx, activity_id=f"{fc.url}/activities/x/{n}",
                                    inbox=peer.shared_inbox_url, body=b"{}", now=fc.clock())
        await worker(fc).run_until_idle()
    failed, done = await deliveries(fc)
    assert (failed["status"], done["status"]) == ("failed", "done")
    return failed["id"], done["id"]


async def test_cli_list_and_retry(make_instance: Any, tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    """Given a failed and a done delivery, when listing with --json and --status, then the
    jobs and counts are printed; `retry ID` and `retry --all-failed` make them pending."""
    fc = await start_blog_without_worker(make_instance)
    failed_id, done_id = await _failed_and_done(fc)
    cfg = _config(fc, tmp_path)
    code, out, _ = await _cli(capsys, "deliveries", "list", "--json", "--config", cfg)
    data = json.loads(out)
    assert code == 0
    assert data["counts"] == {"pending": 0, "done": 1, "failed": 1, "gone": 0, "cancelled": 0}
    assert {d["id"]: d["status"] for d in data["deliveries"]} == {failed_id: "failed",
                                                                  done_id: "done"}
    code, out, _ = await _cli(capsys, "deliveries", "list", "--status", "failed", "--json",
                              "--config", cfg)
    [only] = json.loads(out)["deliveries"]
    assert (only["id"], only["last_status"], only["attempts"]) == (failed_id, 403, 1)
    assert only["last_error"] == "HTTP 403"
    code, out, _ = await _cli(capsys, "deliveries", "list", "--config", cfg)
    assert code == 0 and out.splitlines()[0].split() == ["ID", "KIND", "STATUS", "TRIES",
                                                         "WHEN", "LAST", "INBOX"]
    code, out, _ = await _cli(capsys, "deliveries", "retry", "--all-failed", "--config", cfg)
    assert (code, out) == (0, "retrying 1 failed deliveries\n")
    code, out, _ = await _cli(capsys, "deliveries", "retry", str(done_id), "--config", cfg)
    assert code == 0 and out.startswith(f"retrying delivery {done_id} to http://127.0.0.3:")
    assert [(d["status"], d["attempts"]) for d in await deliveries(fc)] == [
        ("pending", 0), ("pending", 0)]


async def test_cli_bad_input(make_instance: Any, tmp_path: Path,
                             capsys: pytest.CaptureFixture[str]) -> None:
    """Given bad arguments, when running `deliveries`, then one line on stderr, exit 2."""
    fc = await start_blog_without_worker(make_instance)
    cfg = _config(fc, tmp_path)
    cases = [
        (["deliveries", "retry"], "give a delivery ID or --all-failed"),
        (["deliveries", "retry", "7", "--all-failed"], "give a delivery ID or --all-failed"),
        (["deliveries", "retry", "abc"], "not a delivery id"),
        (["deliveries", "retry", "999"], "no delivery 999"),
        (["deliveries", "list", "--limit", "0"], "limit: must be a whole number"),
    ]
    for argv, message in cases:
        code, out, err = await _cli(capsys, *argv, "--config", cfg)
        assert (code, out) == (2, "")
        assert err.count("\n") == 1 and message in err, err


async def test_retry_of_pending_job_is_refused(make_instance: Any, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    """Given a pending job, when retrying it, then exit 2 says it is already pending."""
    fc = await start_blog_without_worker(make_instance)
    async with fc.rt.db.transaction() as tx:
        await queue.enqueue(tx, activity_id="a", inbox="https://x.example/inbox", body=b"{}",
                            now=fc.clock())
    [job] = await deliveries(fc)
    code, _, err = await _cli(capsys, "deliveries", "retry", str(job["id"]), "--config",
                              _config(fc, tmp_path))
    assert code == 2 and f"delivery {job['id']} is already pending" in err


async def test_admin_api_list_and_retry(make_instance: Any) -> None:
    """Given a failed and a done delivery, when the admin API lists and retries them, then
    it answers the same data as the CLI; without the token it answers 401."""
    fc = await start_blog_without_worker(make_instance)
    failed_id, done_id = await _failed_and_done(fc)
    resp = await fc.get("/api/v1/admin/deliveries")
    assert resp.status == 401
    resp = await fc.admin("GET", "/api/v1/admin/deliveries?status=failed")
    data = await resp.json()
    assert resp.status == 200 and [d["id"] for d in data["deliveries"]] == [failed_id]
    assert data["counts"]["done"] == 1
    resp = await fc.admin("GET", "/api/v1/admin/deliveries?status=bogus")
    assert resp.status == 400 and (await resp.json())["field"] == "status"
    resp = await fc.admin("POST", f"/api/v1/admin/deliveries/{done_id}/retry")
    assert resp.status == 200 and (await resp.json())["status"] == "pending"
    resp = await fc.admin("POST", f"/api/v1/admin/deliveries/{done_id}/retry")
    assert resp.status == 400
    resp = await fc.admin("POST", "/api/v1/admin/deliveries/9999/retry")
    assert resp.status == 404
    resp = await fc.admin("POST", "/api/v1/admin/deliveries/retry-failed")
    assert (resp.status, await resp.json()) == (200, {"retried": 1, "ids": [failed_id]})
    assert {d["status"] for d in await deliveries(fc)} == {"pending"}
    doc = await (await fc.get("/api/v1/openapi.json")).json()
    assert {"/api/v1/admin/deliveries", "/api/v1/admin/deliveries/{id}/retry",
            "/api/v1/admin/deliveries/retry-failed"} <= set(doc["paths"])

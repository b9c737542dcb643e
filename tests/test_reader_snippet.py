"""`fedcomments posts snippet`: the discovery link and the widget markup for a static page."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from fedcomments.cli import main
from tests.conftest import Instance
from tests.helpers.posts import add_post_via_api


def config(instance: Instance, tmp_path: Path, origins: list[str]) -> str:
    cfg = tmp_path / "cli.toml"
    s = instance.settings
    cfg.write_text(f'[server]\nbase_url = "{s.server.base_url}"\nblog_origins = '
                   f'{json.dumps(origins)}\n[storage]\ndatabase = "{s.storage.database}"\n')
    return str(cfg)


async def run(*argv: str) -> int:
    # The CLI runs its own event loop; a thread keeps the test's loop (and server) free.
    return await asyncio.to_thread(main, list(argv))


async def test_snippet_prints_the_two_lines(instance: Instance, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    """Given a post, by permalink or id, the snippet is the alternate link to its ActivityPub
    object and the widget div with the script, nothing else; the link answers AS2."""
    post = await add_post_via_api(instance, url="https://blog.example/a/?x=1&y=2")
    cfg = config(instance, tmp_path, ["https://blog.example"])
    for ref in (post["url"], str(post["id"])):
        assert await run("posts", "snippet", ref, "--config", cfg) == 0
        captured = capsys.readouterr()
        assert captured.out.splitlines() == [
            f'<link rel="alternate" type="application/activity+json" href="{post["ap_id"]}">',
            '<div id="fedcomments" data-url="https://blog.example/a/?x=1&amp;y=2"></div>'
            f'<script src="{instance.url}/embed.js" defer></script>',
        ]
        assert captured.err == ""
    resp = await instance.get(post["ap_id"].removeprefix(instance.url))
    assert resp.status == 200 and (await resp.json(content_type=None))["type"] == "Article"
    js = await instance.session.get(f"{instance.url}/embed.js")
    assert js.status == 200 and js.headers["Content-Type"].startswith("text/javascript")


async def test_snippet_warns_when_the_blog_origin_is_not_allowed(
        instance: Instance, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Given a permalink whose origin is missing from blog_origins, the snippet still prints
    and one line on stderr says which origin to add; --json reports it too."""
    post = await add_post_via_api(instance)
    cfg = config(instance, tmp_path, [])
    assert await run("posts", "snippet", str(post["id"]), "--json", "--config", cfg) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["origin_allowed"] is False
    assert captured.err.strip().splitlines() == [
        'fedcomments: note: add "https://blog.example" to [server] blog_origins, or browsers '
        "will not let the widget read comments from this server"]


async def test_snippet_errors(instance: Instance, tmp_path: Path,
                              capsys: pytest.CaptureFixture[str]) -> None:
    """Given an unknown or a deleted post, one line on stderr and exit code 2."""
    post = await add_post_via_api(instance)
    await instance.admin("DELETE", f"/api/v1/admin/posts/{post['id']}")
    cfg = config(instance, tmp_path, ["https://blog.example"])
    for ref, message in (("999", "no post '999'"), (str(post["id"]), "is deleted")):
        assert await run("posts", "snippet", ref, "--config", cfg) == 2
        captured = capsys.readouterr()
        assert captured.out == ""
        assert len(captured.err.strip().splitlines()) == 1 and message in captured.err

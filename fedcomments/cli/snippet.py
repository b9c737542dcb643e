"""`posts snippet ID|PERMALINK`: the two lines a static page needs (discovery and embed)."""

from __future__ import annotations

import argparse
import sys
from html import escape
from typing import Any
from urllib.parse import urlsplit

from fedcomments.cli import common
from fedcomments.errors import Gone
from fedcomments.services import posts as post_service


def lines(base_url: str, ap_id: str, permalink: str) -> tuple[str, str]:
    """The <head> line that lets Mastodon's search find the post, and the widget markup."""
    head = (f'<link rel="alternate" type="application/activity+json" '
            f'href="{escape(ap_id)}">')
    body = (f'<div id="fedcomments" data-url="{escape(permalink)}"></div>'
            f'<script src="{escape(base_url)}/embed.js" defer></script>')
    return head, body


async def snippet(args: argparse.Namespace) -> int:
    async with common.runtime(args) as rt:
        post = await post_service.get_post(rt, args.ref)
        base = rt.settings.server.base_url
        origins = rt.settings.server.blog_origins
    if post.is_deleted:
        raise Gone(f"post {post.id} is deleted")
    head, body = lines(base, post.ap_id, post.permalink)
    parts = urlsplit(post.permalink)
    origin = f"{parts.scheme}://{parts.netloc}".lower()
    if args.json:
        common.print_json({"head": head, "body": body, "origin_allowed": origin in origins})
    else:
        print(head)
        print(body)
    if origin not in origins:
        print(f'fedcomments: note: add "{origin}" to [server] blog_origins, or browsers will '
              "not let the widget read comments from this server", file=sys.stderr)
    return 0


def register_into(psub: Any) -> None:
    p = common.add_command(
        psub, "snippet",
        "Print the <link> for the page's <head> and the comment widget markup for a post.",
        "fedcomments posts snippet https://blog.example/hello/")
    p.add_argument("ref", help="post id, slug or permalink")
    common.add_json_argument(p)
    p.set_defaults(func=snippet)

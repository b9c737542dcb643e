"""Seed a thread into Isso's SQLite database through Isso's own storage layer.

Runs with the Python of Isso's venv (it imports `isso`):

    ISSO_VENV/bin/python seed_isso.py CONFIG URI TITLE SPEC_JSON

SPEC_JSON is a list of {"parent": index|null, "text", "name", "website", "created"}.
Isso keeps one level of nesting: a reply to a reply is stored under the top comment, which
is what `comments.add` does for a reply posted through Isso's own API.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from isso import config
from isso.db import SQLite3


def main() -> int:
    cfg_path, uri, title, spec_path = sys.argv[1:5]
    conf = config.load(config.default_file(), cfg_path)
    db = SQLite3(conf.get("general", "dbpath"), conf)
    if uri in db.threads:
        print(f"{uri}: already seeded")
        return 0
    db.threads.new(uri, title)
    ids: list[int] = []
    for c in json.loads(Path(spec_path).read_text()):
        parent = ids[c["parent"]] if c["parent"] is not None else None
        row = db.comments.add(uri, {
            "parent": parent, "created": c["created"], "mode": 1,
            "remote_addr": "127.0.0.1", "text": c["text"], "author": c["name"],
            "email": None, "website": c["website"], "notification": 0,
        })
        ids.append(row["id"])
    print(f"{uri}: {len(ids)} comments")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Shape of the administration CLI: --help with an example everywhere, --json that parses
with stable fields, one-line errors with the right exit code, the import report."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

from fedcomments.cli import build_parser, main
from fedcomments.config import load_settings
from fedcomments.model import CommentStatus, Origin, Visibility
from fedcomments.runtime import open_runtime
from fedcomments.store import actors as actor_store
from fedcomments.store import comments as comment_store
from fedcomments.store.actors import ActorFields
from fedcomments.store.comments import NewComment
from tests.helpers.posts import add_post_via_service

ADMIN_GROUPS = ("comments", "domains", "actors", "followers", "reports")
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def config(tmp_path: Path) -> str:
    path = tmp_path / "fedcomments.toml"
    path.write_text(f'[storage]\ndatabase = "{tmp_path / "db.sqlite3"}"\n', encoding="utf-8")
    return str(path)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse: --help and usage errors
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def seed(config: str) -> dict[str, int]:
    """A post, a remote actor who follows, a pending comment of theirs and a report."""
    async def go() -> dict[str, int]:
        async with open_runtime(load_settings(config)) as rt:
            post = await add_post_via_service(rt, title="A")
            now = rt.now()
            async with rt.db.transaction() as tx:
                actor_id = await actor_store.upsert(tx, ActorFields(
                    "https://social.example/users/ann", "social.example", "Person", "ann",
                    "Ann", None, None, None, "https://social.example/users/ann/inbox",
                    "https://social.example/inbox", None), now)
                await actor_store.add_follower(tx, actor_id, "https://social.example/f/1", now)
                comment_id = await comment_store.insert(tx, NewComment(
                    post_id=post.id, parent_id=None, origin=Origin.REMOTE,
                    visibility=Visibility.PUBLIC, status=CommentStatus.PENDING,
                    content="<p>Hello</p>", published_at=now,
                    ap_id="https://social.example/notes/1", actor_id=actor_id), now)
                await actor_store.add_report(tx, ap_id="https://social.example/flags/1",
                                             actor_id=actor_id, content="spam",
                                             object_ids=["https://social.example/notes/1"],
                                             now=now)
            return {"post": post.id, "comment": comment_id}
    return asyncio.run(go())


def _leaves() -> list[tuple[str, str]]:
    parser = build_parser()
    groups = parser._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    leaves = []
    for group in ADMIN_GROUPS:
        actions = groups[group]._subparsers._group_actions[0].choices
        leaves += [(group, action) for action in actions]
    return leaves


def test_every_admin_command_explains_itself_with_an_example(
        capsys: pytest.CaptureFixture[str]) -> None:
    """Given each administration command, `--help` exits 0 and shows --config and an
    example; every listing offers --json."""
    leaves = _leaves()
    assert len(leaves) == 17
    for group, action in leaves:
        code, out, _ = run(capsys, group, action, "--help")
        assert code == 0, (group, action)
        assert "--config PATH" in out and f"example:\n  fedcomments {group} {action}" in out
        if action in ("list", "show"):
            assert "--json" in out, (group, action)
    for group in ADMIN_GROUPS:
        code, out, _ = run(capsys, group, "--help")
        assert code == 0 and f"  fedcomments {group} " in out.split("example", 1)[1], group
    _, out, _ = run(capsys, "domains", "import", "--help")
    assert "`silence` and `noop` rows" in out and "are NOT blocked" in out


def test_every_json_output_parses_with_stable_fields(
        capsys: pytest.CaptureFixture[str], config: str, tmp_path: Path) -> None:
    """Given seeded data, every command's --json prints one JSON document with the
    documented field names."""
    ids = seed(config)
    cid = str(ids["comment"])

    def doc(*argv: str) -> dict[str, object]:
        code, out, err = run(capsys, *argv, "--json", "--config", config)
        assert (code, err) == (0, ""), argv
        return dict(json.loads(out))

    block = {"created", "covered_by", "keep_content", "removed"}
    removed = {"comments", "reactions", "followers", "deliveries"}
    data = doc("domains", "block", "social.example", "--reason", "spam")
    assert set(data) == {"domain", *block} and set(data["removed"]) == removed  # type: ignore[arg-type]
    assert data["removed"] == {"comments": 1, "reactions": 0, "followers": 1, "deliveries": 0}
    [entry] = doc("domains", "list")["domains"]  # type: ignore[misc]
    assert set(entry) == {"domain", "reason", "created", "keep_content", "removed"}
    assert doc("domains", "unblock", "social.example") == {"domain": "social.example",
                                                          "unblocked": True}
    data = doc("actors", "block", "https://other.example/users/x")
    assert set(data) == {"actor", *block}
    [entry] = doc("actors", "list")["actors"]  # type: ignore[misc]
    assert set(entry) == {"actor", "reason", "created", "keep_content", "removed"}
    assert doc("actors", "unblock", "https://other.example/users/x")["unblocked"] is True
    listing = tmp_path / "list.txt"
    listing.write_text("a.example\nb.example\n", encoding="utf-8")
    data = doc("domains", "import", str(listing), "--yes")
    assert set(data) == {"format", "dry_run", "keep_content", "added", "already_present",
                         "duplicates", "skipped", "invalid", "removed"}

    ids2 = seed(config)  # a second comment, now that the first is gone
    cid = str(ids2["comment"])
    [comment] = doc("comments", "list")["comments"]  # type: ignore[misc]
    assert set(comment) == {"id", "post", "parent_id", "origin", "status", "visibility",
                            "author", "published", "updated", "text", "content", "summary",
                            "ap_id", "url", "spam", "imported", "withheld"}
    assert comment["withheld"] is None
    assert set(comment["author"]) == {"name", "handle", "actor", "url"}
    shown = doc("comments", "show", cid)
    assert set(shown) - set(comment) == {"in_reply_to", "language", "sensitive",
                                         "attachments", "replies", "reactions", "deleted"}
    for action in ("approve", "reject", "delete"):
        [outcome] = doc("comments", action, cid)["comments"]  # type: ignore[misc]
        assert set(outcome) == {"id", "status", "changed", "author_trusted"}
    [follower] = doc("followers", "list")["followers"]  # type: ignore[misc]
    assert set(follower) == {"actor", "handle", "name", "inbox", "since"}
    [report] = doc("reports", "list")["reports"]  # type: ignore[misc]
    assert set(report) == {"id", "ap_id", "actor", "handle", "content", "objects", "received"}


BAD_INPUT = [
    (["domains", "block", "bad host.example"], 2, "is not a valid domain"),
    (["domains", "block", ""], 2, "domain: empty"),
    (["domains", "block", "*.1.2.3"], 2, "numeric, but not an IPv4 address"),
    (["domains", "block", "127.0.0.1"], 2, "would block this server itself (127.0.0.1)"),
    (["domains", "block", "x.example", "--reason", "r" * 1001], 2, "reason: at most 1000"),
    (["domains", "unblock", "never.example"], 2, "domain: never.example is not blocked"),
    (["domains", "import", "/nonexistent/list.csv"], 2, "file: cannot read"),
    (["domains", "export", "--output", "/nonexistent/dir/out.csv"], 2, "--output: cannot"),
    (["actors", "block", "alice"], 2, "expected @user@host or an actor URL"),
    (["actors", "block", "@alice@bad host"], 2, "is not a valid domain"),
    (["actors", "block", "http://127.0.0.1:8080/users/blog"], 2, "an actor of this server"),
    (["actors", "block", "@alice@localhost"], 1, "cannot resolve @alice@localhost"),
    (["actors", "unblock", "https://x.example/users/a"], 2, "is not blocked"),
    (["comments", "show", "999"], 2, "comment: no comment 999"),
    (["comments", "show", "abc"], 2, "'abc' is not a comment id"),
    (["comments", "approve", "0"], 2, "'0' is not a comment id"),
    (["comments", "approve", "998", "999"], 2, "comment: no comment 998, 999"),
    (["comments", "reject", "1", "2"], 2, "reject 2 comments — refusing without --yes"),
    (["comments", "delete", "7", "7"], 2, "comment: no comment 7"),
    (["comments", "list", "--post", "nope"], 2, "no post 'nope'"),
    (["comments", "list", "--limit", "0"], 2, "limit: between 1 and 1000"),
    (["comments", "reply", "999", "--text", "Thanks"], 2, "comment: no comment 999"),
]


@pytest.mark.parametrize(("argv", "code", "message"), BAD_INPUT,
                         ids=[" ".join(a[:3])[:40] for a, _, _ in BAD_INPUT])
def test_bad_input_gives_one_line_and_the_right_exit_code(
        capsys: pytest.CaptureFixture[str], config: str, argv: list[str], code: int,
        message: str) -> None:
    """Given a bad argument, the command prints one line on stderr, nothing on stdout, and
    exits 2 (input) or 1 (runtime failure)."""
    got, out, err = run(capsys, *argv, "--config", config)
    assert (got, out) == (code, "")
    assert err.startswith("fedcomments: ") and err.count("\n") == 1 and err.endswith("\n")
    assert message in err


def test_import_refuses_a_non_utf8_file_and_unreadable_database(
        capsys: pytest.CaptureFixture[str], config: str, tmp_path: Path) -> None:
    """Given a binary file, import exits 2; given a database path under a regular file,
    any command exits 1; both with one line and no traceback."""
    binary = tmp_path / "blocks.bin"
    binary.write_bytes(b"\xff\xfe\x00bad")
    got, out, err = run(capsys, "domains", "import", str(binary), "--config", config)
    assert (got, out, err) == (2, "", f"fedcomments: error: file: {binary} is not UTF-8 text\n")
    broken = tmp_path / "broken.toml"
    (tmp_path / "plainfile").write_text("x", encoding="utf-8")
    broken.write_text(f'[storage]\ndatabase = "{tmp_path / "plainfile" / "db.sqlite3"}"\n',
                      encoding="utf-8")
    got, out, err = run(capsys, "domains", "list", "--config", str(broken))
    assert (got, out) == (1, "")
    assert err.startswith("fedcomments: error: ") and err.count("\n") == 1
    got, _, err = run(capsys, "domains", "list", "--config", str(tmp_path / "none.toml"))
    assert (got, err) == (2, f"fedcomments: error: {tmp_path / 'none.toml'}: config file "
                             "not found\n")


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str], config: str) -> None:
    """Given a missing or unknown argument, argparse answers with usage and exit 2."""
    for argv in (["domains", "block"], ["domains", "export", "--format", "xml"],
                 ["comments", "list", "--status", "spam"], ["comments", "reply", "1"]):
        got, out, err = run(capsys, *argv, "--config", config)
        assert (got, out) == (2, "")
        assert err.splitlines()[-1].startswith("fedcomments ")
        assert "error:" in err.splitlines()[-1]


CSV = """\
#domain,#severity,#reject_media,#reject_reports,#public_comment,#obfuscate
spam.example,suspend,false,false,Spam,false
quiet.example,silence,false,false,,false
Spam.Example,suspend,false,false,,false
sub.already.example,suspend,false,false,,false
not valid!,suspend,false,false,,false
already.example,suspend,false,false,,false
127.0.0.1,suspend,false,false,,false
xn--bcher-kva.example,suspend,false,false,"Books, really",false
"""


def test_mastodon_blocklist_import_reports_exactly(
        capsys: pytest.CaptureFixture[str], config: str, tmp_path: Path) -> None:
    """Given a Mastodon CSV with valid, duplicate, silenced, malformed, already-present and
    self-blocking rows, the import adds the valid ones and reports every line; without
    --yes and no terminal it refuses and stores nothing; export gives them back."""
    path = tmp_path / "domain_blocks.csv"
    path.write_text(CSV, encoding="utf-8")
    assert run(capsys, "domains", "block", "already.example", "--config", config)[0] == 0
    got, out, err = run(capsys, "domains", "import", str(path), "--config", config)
    assert (got, out) == (2, "")
    assert err == ("fedcomments: block 2 domains and remove their content — refusing "
                   "without --yes (no terminal to ask)\n")
    got, out, _ = run(capsys, "domains", "import", str(path), "--dry-run", "--json",
                      "--config", config)
    assert (got, json.loads(out)["dry_run"], len(json.loads(out)["added"])) == (0, True, 2)
    assert run(capsys, "domains", "list", "--json", "--config", config)[1].count(
        '"domain"') == 1

    got, out, err = run(capsys, "domains", "import", str(path), "--yes", "--json",
                        "--config", config)
    assert (got, err) == (0, "")
    assert json.loads(out) == {
        "format": "mastodon", "dry_run": False, "keep_content": False,
        "added": [{"line": 2, "domain": "spam.example"},
                  {"line": 9, "domain": "xn--bcher-kva.example"}],
        "already_present": [
            {"line": 5, "domain": "sub.already.example", "covered_by": "already.example"},
            {"line": 7, "domain": "already.example", "covered_by": "already.example"}],
        "duplicates": [{"line": 4, "text": "Spam.Example",
                        "reason": "spam.example already on line 2"}],
        "skipped": [{"line": 3, "text": "quiet.example",
                     "reason": "severity silence: only suspend rows become blocks"}],
        "invalid": [
            {"line": 6, "text": "not valid!", "reason": "'not valid!' is not a valid domain "
             "(Codepoint U+0020 at position 4 of 'not valid!' not allowed)"},
            {"line": 8, "text": "127.0.0.1", "reason": "would block this server"}],
        "removed": {"comments": 0, "reactions": 0, "followers": 0, "deliveries": 0},
    }
    got, out, _ = run(capsys, "domains", "import", str(path), "--config", config)
    assert got == 0
    assert out.splitlines()[0] == ("Mastodon CSV: added 0, already present 4, duplicates 1, "
                                   "skipped 1, invalid 2")
    assert out.splitlines()[1].split() == ["LINE", "RESULT", "DOMAIN", "DETAIL"]
    assert out.splitlines()[2].split()[:3] == ["2", "already", "present"]
    got, out, _ = run(capsys, "domains", "export", "--config", config)
    assert out == ("#domain,#severity,#reject_media,#reject_reports,#public_comment,#obfuscate\n"
                   "already.example,suspend,false,false,,false\n"
                   "spam.example,suspend,false,false,Spam,false\n"
                   'xn--bcher-kva.example,suspend,false,false,"Books, really",false\n')
    got, out, _ = run(capsys, "domains", "export", "--format", "plain", "--config", config)
    assert out == "already.example\nspam.example\nxn--bcher-kva.example\n"


@pytest.mark.parametrize(("argv", "code"), [
    (["domains", "block", "not a domain"], 2),
    (["comments", "show", "5"], 2),
])
def test_real_process_prints_one_line_without_traceback(
        config: str, argv: list[str], code: int) -> None:
    """Given the installed entry point in its own process, a bad input exits with its code
    and one line on stderr, never a traceback."""
    proc = subprocess.run(
        [sys.executable, "-m", "fedcomments", *argv, "--config", config],
        capture_output=True, text=True, timeout=60, cwd=REPO, check=False,
    )
    assert (proc.returncode, proc.stdout) == (code, "")
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("fedcomments: error: ")
    assert "Traceback" not in proc.stderr

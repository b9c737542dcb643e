"""Pure parts of blocking: domain and actor normalisation, WebFinger links, blocklist files."""

from __future__ import annotations

import pytest

from fedcomments.blocklist import Blocklist
from fedcomments.domains import (
    ActorRef,
    normalize_actor_url,
    normalize_domain,
    parse_actor_ref,
    self_link,
    webfinger_urls,
)
from fedcomments.errors import InvalidInput
from fedcomments.names import covering_domain
from fedcomments.services.blockfile import (
    LineNote,
    Row,
    is_mastodon_csv,
    parse_blocklist,
    write_mastodon_csv,
    write_plain,
)


@pytest.mark.parametrize(("raw", "expected"), [
    ("example.org", "example.org"),
    ("  Example.ORG.  ", "example.org"),
    ("*.example.org", "example.org"),
    ("https://Social.Example.org:8443/@alice/1?x=1#top", "social.example.org"),
    ("http://user:pw@example.org/", "example.org"),
    ("@alice@Mastodon.Social", "mastodon.social"),
    ("alice@mastodon.social", "mastodon.social"),
    ("acct:alice@mastodon.social", "mastodon.social"),
    ("example.org:8080", "example.org"),
    ("example.org/some/path", "example.org"),
    ("Bücher.example", "xn--bcher-kva.example"),
    ("*.BÜCHER.example.", "xn--bcher-kva.example"),
    ("ｅｘａｍｐｌｅ．org", "example.org"),
    ("xn--bcher-kva.example", "xn--bcher-kva.example"),
    ("localhost", "localhost"),
    # Not valid in host names, yet some resolve; a block names whatever we can reach.
    ("Odd_Host.example", "odd_host.example"),
    ("192.0.2.7", "192.0.2.7"),
    ("http://[2001:DB8::1]:8080/", "2001:db8::1"),
    ("2001:db8:0::1", "2001:db8::1"),
])
def test_normalize_domain_accepts_the_ways_admins_name_a_server(raw: str, expected: str) -> None:
    """Given how an admin may type a domain, normalisation yields the stored host."""
    assert normalize_domain(raw) == expected


@pytest.mark.parametrize(("raw", "reason"), [
    ("", "domain: empty"),
    ("   ", "domain: empty"),
    ("exa mple.org", "is not a valid domain"),
    ("-lead.example", "is not a valid domain"),
    ("a..b.example", "is not a valid domain"),
    ("example.org..", "is not a valid domain"),
    ("*", "is not a valid domain"),
    ("*.*.example.org", "'*' is only accepted as a leading '*.'"),
    ("exa*mple.org", "'*' is only accepted as a leading '*.'"),
    ("1.2.3", "numeric, but not an IPv4 address"),
    ("999.1.1.1", "numeric, but not an IPv4 address"),
    ("ftp://example.org/", "only http(s) URLs name a host"),
    ("https://", "(no host)"),
    ("@alice@", "has no host after '@'"),
    ("[::1", "unbalanced '['"),
    ("[zz::1]", "malformed IPv6 address"),
    ("example.org:http", "bad port"),
    ("a" * 64 + ".example", "is not a valid domain"),
    (".".join(["abcdefghij"] * 24) + ".example", "is not a valid domain"),
])
def test_normalize_domain_refuses_what_is_not_a_host(raw: str, reason: str) -> None:
    """Given something that is not a host, normalisation refuses it with a clear reason."""
    with pytest.raises(InvalidInput) as err:
        normalize_domain(raw)
    assert reason in str(err.value)
    assert err.value.field == "domain"


def test_covering_domain_walks_parents_only() -> None:
    """Given blocked parents, a host is covered by the nearest blocked suffix only."""
    blocked = frozenset({"example.org", "b.other.example"})
    assert covering_domain("a.b.example.org", blocked) == "example.org"
    assert covering_domain("example.org", blocked) == "example.org"
    assert covering_domain("other.example", blocked) is None
    assert covering_domain("notexample.org", blocked) is None
    assert covering_domain("x.b.other.example", blocked) == "b.other.example"


def test_blocklist_matches_normalised_subdomains_and_actors() -> None:
    """Given a stored block, the hot-path check matches subdomains and blocked actor ids."""
    bl = Blocklist([normalize_domain("*.Peer.Example.")],
                   [normalize_actor_url("https://Other.Example/users/troll#main-key")])
    assert bl.url_blocked("https://social.peer.example/users/a")
    assert bl.url_blocked("https://PEER.example./inbox")
    assert not bl.url_blocked("https://peer.example.org/")
    assert bl.url_blocked("https://other.example/users/troll")
    assert not bl.url_blocked("https://other.example/users/friend")


@pytest.mark.parametrize(("raw", "expected"), [
    ("@alice@Social.Example", ActorRef(username="alice", host="social.example")),
    ("alice@social.example", ActorRef(username="alice", host="social.example")),
    ("acct:alice@social.example", ActorRef(username="alice", host="social.example")),
    ("@a.b-c_d@localhost:8080", ActorRef(username="a.b-c_d", host="localhost:8080")),
    ("@bob@Bücher.example", ActorRef(username="bob", host="xn--bcher-kva.example")),
    ("HTTPS://Social.Example/users/Alice#main-key",
     ActorRef(url="https://social.example/users/Alice")),
    ("https://social.example:8443/u?id=1", ActorRef(url="https://social.example:8443/u?id=1")),
])
def test_parse_actor_ref(raw: str, expected: ActorRef) -> None:
    """Given a handle or an actor URL, the reference keeps what identifies the actor."""
    assert parse_actor_ref(raw) == expected


@pytest.mark.parametrize(("raw", "reason"), [
    ("", "actor: empty"),
    ("alice", "expected @user@host or an actor URL"),
    ("@alice", "expected @user@host or an actor URL"),
    ("@@social.example", "expected @user@host or an actor URL"),
    ("@al ice@social.example", "is not a valid user name"),
    ("@alice@bad host", "is not a valid domain"),
    ("@alice@social.example:99999", "bad port"),
    ("ftp://social.example/users/a", "must be an absolute http(s) URL"),
    ("https://user:pw@social.example/users/a", "credentials in URL"),
])
def test_parse_actor_ref_refuses_bad_input(raw: str, reason: str) -> None:
    """Given something that names no actor, parsing refuses it with a clear reason."""
    with pytest.raises(InvalidInput) as err:
        parse_actor_ref(raw)
    assert reason in str(err.value)


def test_webfinger_urls_and_self_link() -> None:
    """Given a handle, WebFinger is asked over https (http only in development), and the
    actor is the rel=self link with an ActivityStreams type."""
    ref = ActorRef(username="alice", host="localhost:8080")
    assert webfinger_urls(ref, allow_http=False) == [
        "https://localhost:8080/.well-known/webfinger?resource=acct:alice@localhost:8080"]
    assert webfinger_urls(ref, allow_http=True)[1].startswith("http://localhost:8080/")
    jrd = {"links": [
        {"rel": "http://webfinger.net/rel/profile-page", "type": "text/html",
         "href": "https://s.example/@alice"},
        {"rel": "self", "type": "text/html", "href": "https://s.example/wrong"},
        {"rel": "self", "type": 'application/ld+json; profile="https://www.w3.org/ns/'
                               'activitystreams"', "href": "https://s.example/users/alice"},
    ]}
    assert self_link(jrd) == "https://s.example/users/alice"
    assert self_link({"links": [{"rel": "self", "type": "application/activity+json",
                                 "href": "javascript:alert(1)"}]}) is None
    assert self_link({"links": "nope"}) is None


MASTODON_CSV = """\
#domain,#severity,#reject_media,#reject_reports,#public_comment,#obfuscate
spam.example,suspend,false,false,Spam and harassment,false
limited.example,silence,true,false,,false
SPAM.example.,suspend,false,false,,false
bad host.example,suspend,false,false,,false

media.example,noop,true,false,,false
Bücher.example,suspend,false,false,"Reason with, a comma
and a second line",true
x.example,shun,false,false,,false
,suspend,false,false,,false
ex*mple.org,suspend,false,false,obfuscated in a public list,true
last.example,suspend
"""


def test_parse_mastodon_csv_reports_every_line() -> None:
    """Given a Mastodon export with valid, duplicate, malformed, silence and noop rows, the
    parse keeps suspend rows and names every other line with its number and reason."""
    parsed = parse_blocklist(MASTODON_CSV)
    assert parsed.format == "mastodon"
    assert parsed.rows == [
        Row(2, "spam.example", "Spam and harassment"),
        Row(8, "xn--bcher-kva.example", "Reason with, a comma\nand a second line"),
        Row(13, "last.example", ""),
    ]
    assert parsed.duplicates == [LineNote(4, "SPAM.example.", "spam.example already on line 2")]
    assert parsed.skipped == [
        LineNote(3, "limited.example", "severity silence: only suspend rows become blocks"),
        LineNote(7, "media.example", "severity noop: only suspend rows become blocks"),
    ]
    assert [(n.line, n.reason.split(" (")[0]) for n in parsed.invalid] == [
        (5, "'bad host.example' is not a valid domain"),
        (10, "unknown severity 'shun'"),
        (11, "no domain"),
        (12, "'ex*mple.org' is not a valid domain"),
    ]


def test_parse_plain_list_and_headers_without_hash() -> None:
    """Given a plain list (comments, blanks) or a CSV whose header lacks '#', both parse."""
    parsed = parse_blocklist("\ufeff# my list\nspam.example\n\n*.evil.example\nnot a host\n"
                             "spam.example\nhttps://x.example/@a\n")
    assert parsed.format == "plain"
    assert parsed.rows == [Row(2, "spam.example"), Row(4, "evil.example"),
                           Row(7, "x.example")]
    assert parsed.invalid == [LineNote(5, "not a host", "one domain per line expected")]
    assert parsed.duplicates == [LineNote(6, "spam.example", "spam.example already on line 2")]
    csv = parse_blocklist("domain,severity,public_comment\nA.example,suspend,why\n")
    assert (csv.format, csv.rows) == ("mastodon", [Row(2, "a.example", "why")])
    assert not is_mastodon_csv("#domain\nexample.org\n")


def test_export_round_trips_through_import() -> None:
    """Given blocks written as Mastodon CSV and as a plain list, reading them back yields
    the same domains and reasons."""
    blocks = [("a.example", "plain"), ("b.example", 'quote " and, comma\nnewline')]
    text = write_mastodon_csv(blocks)
    assert text.splitlines()[0] == ("#domain,#severity,#reject_media,#reject_reports,"
                                    "#public_comment,#obfuscate")
    assert text.splitlines()[1] == "a.example,suspend,false,false,plain,false"
    assert [(r.domain, r.reason) for r in parse_blocklist(text).rows] == blocks
    assert [r.domain for r in parse_blocklist(write_plain(d for d, _ in blocks)).rows] == [
        "a.example", "b.example"]

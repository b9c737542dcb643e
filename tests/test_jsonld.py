"""JSON-LD normalisation: bundled-only loader, no network, fast path equal to pyld."""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from fedcomments.ap import jsonld_contexts as jsonld
from fedcomments.ap.jsonld import Normalizer
from fedcomments.ap.jsonld_contexts import AS2, CANONICAL_CONTEXT, bundled_file
from fedcomments.ap.parse import parse_activity, parse_actor, parse_object
from fedcomments.ap.parse_values import ACTIVITY_TYPES, ACTOR_TYPES
from fedcomments.ap.types import PUBLIC, Visibility
from fedcomments.errors import ProtocolError

MASTODON_TERMS = {
    "ostatus": "http://ostatus.org#", "toot": "http://joinmastodon.org/ns#",
    "sensitive": "as:sensitive", "conversation": "ostatus:conversation",
    "Hashtag": "as:Hashtag", "Emoji": "toot:Emoji",
}
MASTODON_CONTEXT = [AS2, "https://w3id.org/security/v1", MASTODON_TERMS]


def note(context: Any = MASTODON_CONTEXT, **fields: Any) -> dict[str, Any]:
    """A public Mastodon-style Note; ``fields`` override or add keys (None removes one)."""
    doc: dict[str, Any] = {
        "@context": context,
        "id": "https://social.example/users/alice/statuses/1",
        "type": "Note",
        "attributedTo": "https://social.example/users/alice",
        "content": "<p>hello</p>",
        "to": [PUBLIC],
        "cc": ["https://social.example/users/alice/followers"],
    }
    doc.update(fields)
    return {k: v for k, v in doc.items() if v is not None}


def parser_for(doc: dict[str, Any]) -> Any:
    """The parse function for a document's type."""
    kind = doc["type"]
    if kind in ACTOR_TYPES:
        return parse_actor
    return parse_activity if kind in ACTIVITY_TYPES else parse_object


@pytest.fixture
def fast() -> Normalizer:
    return Normalizer()


@pytest.fixture
def slow() -> Normalizer:
    return Normalizer(fast_path=False)


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Fail the test on any socket connection or any use of pyld's own loaders."""
    from pyld import jsonld as pyld_jsonld

    attempts: list[str] = []

    def refuse(*args: Any, **kwargs: Any) -> Any:
        attempts.append(repr(args[:2]))
        raise AssertionError(f"network access attempted: {args[:2]!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(pyld_jsonld, "_default_document_loader", refuse)
    monkeypatch.setattr(pyld_jsonld, "requests_document_loader", refuse)
    monkeypatch.setattr(pyld_jsonld, "aiohttp_document_loader", refuse)
    return attempts


# -- loader ---------------------------------------------------------------------------------

def test_loader_serves_bundled_activitystreams_for_both_schemes() -> None:
    """Given AS2 by https and http URLs, the loader serves the same bundled document."""
    normalizer = Normalizer()
    https = normalizer.load_document(AS2)
    http = normalizer.load_document("http://www.w3.org/ns/activitystreams")
    assert https["document"] is http["document"]
    assert https["document"]["@context"]["as"] == "https://www.w3.org/ns/activitystreams#"
    assert https["documentUrl"] == AS2


def test_loader_serves_litepub_from_any_pleroma_host() -> None:
    """Each Pleroma/Akkoma instance serves litepub at its own host; all map to one copy."""
    assert bundled_file("https://p.helene.moe/schemas/litepub-0.1.jsonld") == "litepub-0.1.json"
    assert bundled_file("https://akkoma.example.com/schemas/litepub-0.1.jsonld") == \
        "litepub-0.1.json"
    assert bundled_file("https://p.helene.moe/schemas/other.jsonld") is None


def test_loader_reads_unknown_urls_as_empty_contexts(no_network: list[str]) -> None:
    """An unknown context URL (Kroeg's) is an empty context, with no request made."""
    document = Normalizer().load_document("https://puckipedia.com/-/context")
    assert document["document"] == {"@context": {}}
    assert no_network == []


def test_mastodon_namespace_is_not_bundled() -> None:
    """http://joinmastodon.org/ns never served a context (Mastodon inlines it)."""
    assert bundled_file("http://joinmastodon.org/ns") is None


def test_every_bundled_file_is_valid_json_with_a_context() -> None:
    """Every bundled context file parses and has an @context."""
    directory = Path(jsonld.__file__).with_name("contexts")
    names = set(jsonld.BUNDLED_CONTEXTS.values()) | {"litepub-0.1.json"}
    assert names == {p.name for p in directory.glob("*.json")}
    for name in names:
        assert "@context" in json.loads((directory / name).read_text(encoding="utf-8")), name


def test_bundled_contexts_are_self_contained() -> None:
    """Each bundled context defines the prefixes it uses, so it applies the same anywhere.

    The fast path relies on this to apply them as precomputed deltas.
    """
    normalizer = Normalizer()
    for name in set(jsonld.BUNDLED_CONTEXTS.values()) | {"litepub-0.1.json"}:
        delta = normalizer._delta(name)
        for term, definition in delta.terms.items():
            for iri in (definition.iri, definition.type):
                assert iri is None or iri.startswith(("@", "http://", "https://", "_:")), \
                    (name, term, iri)


def test_import_does_no_work(tmp_path: Path) -> None:
    """Importing the module neither imports pyld nor reads a context file."""
    code = (
        "import sys, fedcomments.ap.jsonld as j, fedcomments.ap.parse\n"
        "n = j.Normalizer(contexts_dir=__import__('pathlib').Path('/nonexistent'))\n"
        "print('pyld' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, cwd=Path(__file__).resolve().parents[1])
    assert result.stdout.strip() == "False"


def test_contexts_are_loaded_lazily_per_instance(tmp_path: Path) -> None:
    """A normaliser reads its context files on first use, from its own directory."""
    normalizer = Normalizer(contexts_dir=tmp_path)
    with pytest.raises(FileNotFoundError):
        normalizer.normalize(note())


# -- no network ----------------------------------------------------------------------------

def test_unknown_context_url_costs_no_network_request(no_network: list[str]) -> None:
    """Given a document naming an unknown remote context, pyld runs without a request."""
    doc = note([AS2, "https://unknown.example/context.jsonld"], nickname="alice")
    normalized = Normalizer(fast_path=False).normalize(doc)
    assert normalized["content"] == "<p>hello</p>"
    assert normalized["nickname"] == "alice"  # kept by AS2's @vocab
    assert no_network == []


def test_every_sample_context_url_resolves_without_network(no_network: list[str]) -> None:
    """Fedify's long context list (identity, DID, multikey, GoToSocial) needs no request."""
    doc = note(["https://w3id.org/identity/v1", AS2, "https://w3id.org/security/v1",
                "https://w3id.org/security/data-integrity/v1", "https://www.w3.org/ns/did/v1",
                "https://w3id.org/security/multikey/v1", "https://gotosocial.org/ns",
                "https://p.example/schemas/litepub-0.1.jsonld",
                "https://purl.archive.org/socialweb/webfinger"])
    obj = parse_object(doc, normalizer=Normalizer(fast_path=False))
    assert obj.content == "<p>hello</p>"
    assert no_network == []


# -- fast path ------------------------------------------------------------------------------

def test_fast_path_takes_mastodon_documents(fast: Normalizer) -> None:
    """A Mastodon context is fast-path material: the document comes back unchanged."""
    doc = note()
    normalized = fast.normalize_fast(doc)
    assert normalized is not None
    assert normalized["@context"] == CANONICAL_CONTEXT
    assert {k: v for k, v in normalized.items() if k != "@context"} == \
        {k: v for k, v in doc.items() if k != "@context"}


def test_fast_path_does_not_mutate_the_input(fast: Normalizer) -> None:
    """The caller's dict keeps its own @context."""
    doc = note()
    fast.normalize(doc)
    assert doc["@context"] == MASTODON_CONTEXT


# Shapes the fast path must leave to pyld: each changes what a term we read means.
SLOW_SHAPES: dict[str, dict[str, Any]] = {
    "to coerced to a literal": note([AS2, {"to": {"@id": "as:to"}}]),
    "content aliased to summary": note([AS2, {"content": "as:summary"}]),
    "new key aliasing content": note([AS2, {"body": "as:content"}], body="<p>b</p>",
                                     content=None),
    "default language en": note([AS2, {"@language": "en"}]),
    "sensitive in another namespace": note(
        [AS2, {"toot": "http://joinmastodon.org/ns#", "sensitive": "toot:sensitive"}],
        sensitive=True),
    "compact IRI key": note([AS2], **{"as:sensitive": True}),
    "absolute IRI key": note([AS2], **{"https://www.w3.org/ns/activitystreams#summary": "cw"}),
    "other @vocab": note([AS2, {"@vocab": "https://vocab.example/#"}]),
    "@base": note([AS2, {"@base": "https://social.example/"}]),
    "identity/v1 after AS2 redefines name": note([AS2, "https://w3id.org/identity/v1"],
                                                 name="Title"),
    "nested context redefines content": {
        "@context": AS2, "id": "https://social.example/c/1", "type": "Create",
        "actor": "https://social.example/users/alice",
        "object": note([AS2, {"content": "as:summary"}]),
    },
    "value object": note([AS2], content={"@value": "<p>v</p>", "@language": "fr"}),
    "type as compact IRI": note([AS2], type="as:Note"),
    "PeerTube icons alias": {
        "@context": [AS2, {"icons": "as:icon"}], "id": "https://tube.example/c/1",
        "type": "Group", "icons": [{"type": "Image", "url": "https://tube.example/a.png"}],
    },
}


@pytest.mark.parametrize("name", SLOW_SHAPES)
def test_fast_path_refuses_shapes_that_change_meaning(fast: Normalizer, name: str) -> None:
    """Given a context or key that changes a term we read, the fast path steps aside."""
    assert fast.normalize_fast(SLOW_SHAPES[name]) is None


@pytest.mark.parametrize("name", SLOW_SHAPES)
def test_both_paths_agree_on_meaning_changing_shapes(name: str) -> None:
    """normalize() (which falls back) and pyld alone give the same parse result."""
    doc = SLOW_SHAPES[name]
    parse = parser_for(doc)
    assert parse(doc, normalizer=Normalizer()) == \
        parse(doc, normalizer=Normalizer(fast_path=False))


def test_pyld_reads_literal_to_as_no_audience() -> None:
    """A sender making "to" a literal addresses no one: the note is direct, not public."""
    obj = parse_object(SLOW_SHAPES["to coerced to a literal"], normalizer=Normalizer())
    assert obj.to == ()
    assert obj.visibility is Visibility.FOLLOWERS  # the cc still names the followers


def test_pyld_reads_aliased_content_as_summary() -> None:
    """With content aliased to as:summary, the text is the summary and content is empty."""
    obj = parse_object(SLOW_SHAPES["content aliased to summary"], normalizer=Normalizer())
    assert (obj.content, obj.summary) == ("", "hello")


def test_pyld_reads_alias_of_content() -> None:
    """A key aliasing as:content is read as the content."""
    obj = parse_object(SLOW_SHAPES["new key aliasing content"], normalizer=Normalizer())
    assert obj.content == "<p>b</p>"


def test_pyld_reads_default_language() -> None:
    """A default @language becomes the object's language."""
    obj = parse_object(SLOW_SHAPES["default language en"], normalizer=Normalizer())
    assert obj.language == "en"


def test_pyld_reads_compact_iri_keys() -> None:
    """A key spelled as:sensitive means sensitive."""
    obj = parse_object(SLOW_SHAPES["compact IRI key"], normalizer=Normalizer())
    assert obj.sensitive is True


# Shapes the fast path must accept: they keep every term we read.
FAST_SHAPES: dict[str, dict[str, Any]] = {
    "no @context": note(None),
    "AS2 as a string": note(AS2),
    "unknown context URL": note([AS2, "https://puckipedia.com/-/context"], nickname="x"),
    "Pleroma litepub with und": note([AS2, "https://p.example/schemas/litepub-0.1.jsonld",
                                      {"@language": "und"}]),
    "litepub conversation as @id": note(
        [AS2, "https://p.example/schemas/litepub-0.1.jsonld"],
        conversation="tag:p.example,2024:objectId=1"),
    "Misskey's old misskey.io namespace": note(
        [AS2, {"misskey": "https://misskey.io/ns#", "_misskey_quote": "misskey:_misskey_quote"}],
        _misskey_quote="https://misskey.io/notes/9"),
    "sensitive undeclared (Mastodon CW fixture)": note([AS2], sensitive=True),
    "compact Public": note(AS2, to=["as:Public"]),
    "bare Public": note(AS2, to="Public"),
    "Fedify signature with its own context": note(
        signature={"@context": "https://w3id.org/identity/v1", "type": "RsaSignature2017",
                   "creator": "https://social.example/users/alice#main-key",
                   "signatureValue": "abc"}),
    "contentMap only": note(AS2, content=None, contentMap={"pt-BR": "<p>oi</p>",
                                                          "en": "<p>hi</p>"}),
}


@pytest.mark.parametrize("name", FAST_SHAPES)
def test_fast_path_accepts_shapes_that_keep_meaning(fast: Normalizer, name: str) -> None:
    """Given a context that keeps every term we read, the fast path takes the document."""
    assert fast.normalize_fast(FAST_SHAPES[name]) is not None


@pytest.mark.parametrize("name", FAST_SHAPES)
def test_fast_path_equals_pyld(name: str) -> None:
    """The fast path and pyld give the same parse result on each accepted shape."""
    doc = FAST_SHAPES[name]
    assert parse_object(doc, normalizer=Normalizer()) == \
        parse_object(doc, normalizer=Normalizer(fast_path=False))


def test_misskey_io_namespace_means_misskey_hub() -> None:
    """misskey.io's _misskey_quote is read on both paths."""
    doc = FAST_SHAPES["Misskey's old misskey.io namespace"]
    assert parse_object(doc, normalizer=Normalizer(fast_path=False)).quote_url == \
        "https://misskey.io/notes/9"


def test_pleroma_und_language_is_no_language() -> None:
    """Pleroma's "@language": "und" leaves content plain and the language unknown."""
    doc = FAST_SHAPES["Pleroma litepub with und"]
    slow = parse_object(doc, normalizer=Normalizer(fast_path=False))
    assert (slow.content, slow.language) == ("<p>hello</p>", None)


def test_protected_term_redefinition_is_refused_on_both_paths(fast: Normalizer) -> None:
    """Redefining the protected Multikey term is invalid JSON-LD: a ProtocolError."""
    doc = note([AS2, "https://w3id.org/security/multikey/v1",
                {"Multikey": "https://w3id.org/security#Multikey"}])
    assert fast.normalize_fast(doc) is None
    with pytest.raises(ProtocolError, match="protected term"):
        fast.normalize(doc)


def test_relative_ids_stay_relative_under_pyld(slow: Normalizer) -> None:
    """pyld gets no base IRI: a relative id is refused, never resolved to example.org."""
    doc = note(AS2, id="/statuses/1")
    assert slow.normalize(doc)["id"] == "/statuses/1"
    with pytest.raises(ProtocolError, match="id is not an absolute http"):
        parse_object(doc, normalizer=slow)


def test_deep_nesting_is_refused_on_both_paths(fast: Normalizer, slow: Normalizer) -> None:
    """A document nested 40 levels deep is refused before pyld can recurse."""
    doc: dict[str, Any] = note(AS2)
    inner = doc
    for _ in range(40):
        inner["object"] = {"type": "Note"}
        inner = inner["object"]
    for normalizer in (fast, slow):
        with pytest.raises(ProtocolError, match="nests deeper than 32"):
            normalizer.normalize(doc)


def _nested_arrays(levels: int) -> str:
    return "[" * levels + "]" * levels


def _create_with_attachment(attachment: str, context: str = f'"{AS2}"') -> dict[str, Any]:
    """A Create{Note} whose note's attachment is the raw JSON `attachment`."""
    return json.loads(
        '{"@context":' + context + ',"id":"https://a.example/1","type":"Create",'
        '"actor":"https://a.example/u","object":{"id":"https://a.example/n","type":"Note",'
        '"attachment":' + attachment + "}}")


DEEP_SHAPES: dict[str, dict[str, Any]] = {
    # root (0) > object (1) > attachment (2) > … : the 31st nested array sits at depth 32.
    "arrays-one-past-the-limit": _create_with_attachment(_nested_arrays(32)),
    "arrays-500-deep": _create_with_attachment(_nested_arrays(500)),
    "arrays-and-objects-alternating": _create_with_attachment('[{"a":' * 20 + "1" + "}]" * 20),
    "context-of-nested-arrays": _create_with_attachment("[]", context=_nested_arrays(500)),
    "context-of-nested-objects": _create_with_attachment(
        "[]", context=f'["{AS2}",' + '{"x":' * 40 + '"as:tag"' + "}" * 40 + "]"),
    "embedded-context-of-nested-arrays": _create_with_attachment(
        '[{"@context":' + _nested_arrays(100) + ',"type":"Document","url":"https://a.example/i"}]'),
}


def _chained_context(terms: int) -> dict[str, Any]:
    """A Create whose inline context defines `terms` terms, each through the next one."""
    chain: dict[str, Any] = {f"t{i}": f"t{i + 1}:x" for i in range(terms - 1)}
    chain[f"t{terms - 1}"] = "https://e.example/ns#"
    return {"@context": [AS2, chain], "id": "https://a.example/1", "type": "Create",
            "actor": "https://a.example/u"}


@pytest.mark.parametrize("name", DEEP_SHAPES)
def test_deep_arrays_and_contexts_are_refused_before_pyld(fast: Normalizer, slow: Normalizer,
                                                         name: str) -> None:
    """Given a document whose arrays (or @context) nest past the limit, when normalised or
    parsed on either path, then ProtocolError, never pyld's RecursionError (the fast path
    refuses a deep context itself and leaves other shapes it cannot vouch for to the slow
    path, which refuses them before pyld)."""
    doc = DEEP_SHAPES[name]
    for normalizer in (fast, slow):
        with pytest.raises(ProtocolError, match="nests deeper than 32"):
            normalizer.normalize(doc)
        with pytest.raises(ProtocolError, match="nests deeper than 32"):
            parse_activity(doc, normalizer=normalizer)
    with pytest.raises(ProtocolError, match="nests deeper than 32"):
        slow.normalize_slow(doc)
    if name.startswith("arrays-") and name != "arrays-and-objects-alternating":
        assert fast.normalize_fast(doc) is None  # bare nested arrays are no IRI shape
    else:
        with pytest.raises(ProtocolError, match="nests deeper than 32"):
            fast.normalize_fast(doc)


def test_long_term_chains_in_a_context_are_refused(fast: Normalizer, slow: Normalizer) -> None:
    """Given an inline context of 600 terms each defined through the next (which recursed
    past Python's limit in pyld and in the fast path), when parsed on either path, then
    ProtocolError; 256 such terms, far beyond real contexts, still parse."""
    for normalizer in (fast, slow):
        with pytest.raises(ProtocolError, match="defines more than 256 terms"):
            parse_activity(_chained_context(600), normalizer=normalizer)
        assert parse_activity(_chained_context(256), normalizer=normalizer).type == "Create"


def test_arrays_up_to_the_limit_still_parse(fast: Normalizer, slow: Normalizer) -> None:
    """Given arrays nested so the deepest sits exactly at depth 32, when parsed on either
    path, then the activity parses (empty arrays hold no attachment)."""
    doc = _create_with_attachment(_nested_arrays(31))
    for normalizer in (fast, slow):
        parsed = parse_activity(doc, normalizer=normalizer)
        assert (parsed.type, parsed.object_id, parsed.object.attachments if parsed.object
                else None) == ("Create", "https://a.example/n", ())


def test_reported_array_bomb_is_a_protocol_error() -> None:
    """Given the reported Create whose attachment is 500 nested arrays and no @context, when
    parsed with a fresh Normalizer, then ProtocolError (it used to crash pyld)."""
    raw = ('{"id":"https://a.example/1","type":"Create","actor":"https://a.example/u",'
           '"object":{"id":"https://a.example/n","type":"Note","attachment":'
           + "[" * 500 + "]" * 500 + "}}")
    with pytest.raises(ProtocolError, match="nests deeper than 32"):
        parse_activity(json.loads(raw), normalizer=Normalizer())


def test_pyld_failures_are_protocol_errors(fast: Normalizer, slow: Normalizer) -> None:
    """pyld 3.3 raises KeyError on {"@language": null}; we report a ProtocolError."""
    doc = note([AS2, {"@language": None}])
    assert fast.normalize_fast(doc) is not None
    with contextlib.suppress(ProtocolError):
        slow.normalize(doc)


def test_non_object_documents_are_refused(fast: Normalizer) -> None:
    """A JSON array is not an ActivityStreams document."""
    with pytest.raises(ProtocolError, match="not a JSON object"):
        fast.normalize([note()])  # type: ignore[arg-type]


def test_context_cache_stays_bounded(fast: Normalizer) -> None:
    """Senders choose contexts; the per-context cache keeps at most 256 of them."""
    for i in range(300):
        fast.normalize(note([AS2, {f"term{i}": "as:tag"}]))
    assert len(fast._verdicts) == 256

"""JSON-LD normalisation of incoming documents to one canonical context.

pyld is used here and nowhere else, and only with bundled context documents: a context URL
never causes a network request. A pure-Python fast path skips pyld when a document's context
provably gives the terms ``parse.py`` reads their canonical meaning.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from fedcomments.errors import ProtocolError

AS2 = "https://www.w3.org/ns/activitystreams"
SECURITY_V1 = "https://w3id.org/security/v1"
DATA_INTEGRITY_V1 = "https://w3id.org/security/data-integrity/v1"
MULTIKEY_V1 = "https://w3id.org/security/multikey/v1"

#: Context URL → bundled copy in ``ap/contexts``. Sources: the W3C activitystreams repository
#: (ns/activitystreams.jsonld), Fedify's preloaded contexts (the w3id.org security, DID and
#: identity documents, GoToSocial, SWICG miscellany and webfinger, Lemmy) and Akkoma's
#: priv/static/schemas/litepub-0.1.jsonld. ``http://joinmastodon.org/ns`` is absent on
#: purpose: it never served a document, Mastodon inlines those terms.
BUNDLED_CONTEXTS: dict[str, str] = {
    AS2: "activitystreams.json",
    SECURITY_V1: "security-v1.json",
    DATA_INTEGRITY_V1: "security-data-integrity-v1.json",
    MULTIKEY_V1: "security-multikey-v1.json",
    "https://www.w3.org/ns/did/v1": "did-v1.json",
    "https://w3id.org/identity/v1": "identity-v1.json",
    "https://purl.archive.org/socialweb/webfinger": "webfinger.json",
    "https://purl.archive.org/miscellany": "miscellany.json",
    "https://gotosocial.org/ns": "gotosocial.json",
    "https://join-lemmy.org/context.json": "join-lemmy.json",
}
# Pleroma and Akkoma serve litepub from every instance, each at its own host.
_LITEPUB_PATH = "/schemas/litepub-0.1.jsonld"
_LITEPUB_FILE = "litepub-0.1.json"

#: Extension terms read downstream, spelled as Mastodon, Misskey, Pleroma and Fedibird do.
EXTENSION_TERMS: dict[str, Any] = {
    "toot": "http://joinmastodon.org/ns#",
    "ostatus": "http://ostatus.org#",
    "litepub": "http://litepub.social/ns#",
    "misskey": "https://misskey-hub.net/ns#",
    "fedibird": "http://fedibird.com/ns#",
    "schema": "http://schema.org#",
    "sensitive": "as:sensitive",
    "Hashtag": "as:Hashtag",
    "manuallyApprovesFollowers": "as:manuallyApprovesFollowers",
    "movedTo": {"@id": "as:movedTo", "@type": "@id"},
    "quoteUrl": "as:quoteUrl",
    "Emoji": "toot:Emoji",
    "featured": {"@id": "toot:featured", "@type": "@id"},
    "featuredTags": {"@id": "toot:featuredTags", "@type": "@id"},
    "discoverable": "toot:discoverable",
    "indexable": "toot:indexable",
    "blurhash": "toot:blurhash",
    "focalPoint": {"@id": "toot:focalPoint", "@container": "@list"},
    "votersCount": "toot:votersCount",
    # Mastodon declares conversation a literal, litepub an @id; parse.py accepts both.
    "conversation": "ostatus:conversation",
    "atomUri": "ostatus:atomUri",
    "inReplyToAtomUri": "ostatus:inReplyToAtomUri",
    "EmojiReact": "litepub:EmojiReact",
    "ChatMessage": "litepub:ChatMessage",
    "directMessage": "litepub:directMessage",
    "_misskey_content": "misskey:_misskey_content",
    "_misskey_quote": "misskey:_misskey_quote",
    "_misskey_reaction": "misskey:_misskey_reaction",
    "_misskey_summary": "misskey:_misskey_summary",
    "isCat": "misskey:isCat",
    "quoteUri": "fedibird:quoteUri",
    "quote": {"@id": "https://w3id.org/fep/044f#quote", "@type": "@id"},
    # Mastodon 4.4+ asks the quoted post's server for consent; we acknowledge and ignore it,
    # and this term keeps its type readable (and its documents on the fast path).
    "QuoteRequest": "https://w3id.org/fep/044f#QuoteRequest",
    "PropertyValue": "schema:PropertyValue",
    "value": "schema:value",
    # As the DID v1 context defines them, without its @protected (documents may redefine).
    "assertionMethod": {
        "@id": "https://w3id.org/security#assertionMethod", "@type": "@id", "@container": "@set",
    },
    "controller": {"@id": "https://w3id.org/security#controller", "@type": "@id"},
}

#: Documents are read as if this came first in their @context (AS2 §2.1 makes the AS2 context
#: implicit; Mastodon omits "sensitive" from some contexts yet means as:sensitive), and are
#: compacted to it. The document's own contexts still override it where they speak.
CANONICAL_CONTEXT: list[Any] = [AS2, SECURITY_V1, DATA_INTEGRITY_V1, MULTIKEY_V1, EXTENSION_TERMS]

#: Terms (properties and types) parse.py reads. The fast path is taken only when each one the
#: document uses means what it means in CANONICAL_CONTEXT and no other key aliases one of them.
READ_TERMS: frozenset[str] = frozenset({
    "id", "type", "actor", "object", "target", "to", "cc", "attributedTo", "inReplyTo",
    "context", "conversation", "content", "contentMap", "summary", "summaryMap", "name",
    "nameMap", "url", "href", "mediaType", "published", "updated", "tag", "attachment", "icon",
    "preferredUsername", "inbox", "outbox", "followers", "endpoints", "sharedInbox",
    "publicKey", "publicKeyPem", "owner", "assertionMethod", "controller",
    "publicKeyMultibase", "sensitive", "manuallyApprovesFollowers", "quote", "quoteUrl",
    "quoteUri", "_misskey_quote", "_misskey_content", "_misskey_reaction",
    # types compared by parse.py
    "Accept", "Add", "Announce", "Block", "Create", "Delete", "Dislike", "Flag", "Follow",
    "Like", "Move", "Reject", "Remove", "Undo", "Update", "EmojiReact", "Person", "Service",
    "Application", "Group", "Organization", "Mention", "Hashtag", "Link", "Multikey",
    "CryptographicKey", "Note", "Article", "Page", "Question", "Tombstone", "Image",
    "Audio", "Collection", "CollectionPage", "Document", "Event", "OrderedCollection",
    "OrderedCollectionPage", "Place", "Profile", "Relationship", "Video",
})

#: Namespaces that CANONICAL_CONTEXT names with a prefix. pyld compacts any IRI under them
#: to prefix:suffix, so they can never be object ids (parse.py refuses them on both paths).
VOCABULARY_NAMESPACES: tuple[str, ...] = (
    "https://www.w3.org/ns/activitystreams#", "http://www.w3.org/2001/XMLSchema#",
    "http://www.w3.org/ns/ldp#", "http://www.w3.org/2006/vcard/ns#", "http://purl.org/dc/terms/",
    "https://w3id.org/security#", "http://joinmastodon.org/ns#", "http://ostatus.org#",
    "http://litepub.social/ns#", "https://misskey-hub.net/ns#", "https://misskey.io/ns#",
    "http://fedibird.com/ns#", "http://schema.org#",
)

# Misskey declared its namespace as https://misskey.io/ns# before moving to misskey-hub.net;
# misskey.io still sends the old one. Both name the same terms.
_IRI_ALIASES = {"https://misskey.io/ns#": "https://misskey-hub.net/ns#"}

_FLEXIBLE_ID_TERMS = frozenset({"conversation"})
_GEN_DELIMS = tuple(":/?#[]@")
_CONTEXT_KEYWORDS = frozenset({"@vocab", "@language", "@version", "@protected"})
_MAX_DEPTH = 32
_MAX_CONTEXT_TERMS = 256
_CACHE_SIZE = 256
_MAX_VERDICTS = 2048


class _Bail(Exception):
    """The fast path cannot vouch for this document; pyld decides."""


@dataclass(frozen=True)
class _Term:
    """The parts of a JSON-LD term definition that change what a value means."""

    iri: str | None
    type: str | None = None
    container: tuple[str, ...] = ()
    language: str | None = None
    scoped: str | None = None
    prefix: bool = False
    protected: bool = False

    def meaning(self, flexible: bool) -> tuple[Any, ...]:
        kind = None if flexible and self.type == "@id" else self.type
        return (self.iri, kind, self.container, self.language, self.scoped)


@dataclass
class _Active:
    """A minimal active context: enough of JSON-LD 1.1 context processing to compare terms."""

    terms: dict[str, _Term]
    vocab: str | None = None
    language: str | None = None

    def copy(self) -> _Active:
        return _Active(dict(self.terms), self.vocab, self.language)


_Scope = tuple[_Active, dict[str, int]]


class _Bounded(OrderedDict[str, Any]):
    """A small LRU mapping: remote documents must not grow our caches without bound."""

    def __init__(self, size: int = _CACHE_SIZE) -> None:
        super().__init__()
        self._size = size

    def get(self, key: str, default: Any = None) -> Any:
        if key in self:
            self.move_to_end(key)
            return self[key]
        return default

    def __setitem__(self, key: str, value: Any) -> None:
        super().__setitem__(key, value)
        self.move_to_end(key)
        while len(self) > self._size:
            self.popitem(last=False)


def bundled_file(url: str) -> str | None:
    """The bundled file serving a context URL, or None for an unknown URL."""
    url = url.strip()
    if url.startswith("http://"):
        url = "https://" + url[len("http://"):]
    url = url.rstrip("#")
    if url in BUNDLED_CONTEXTS:
        return BUNDLED_CONTEXTS[url]
    if url.startswith("https://") and url.endswith(_LITEPUB_PATH):
        return _LITEPUB_FILE
    return None


def _unalias(iri: str) -> str:
    for old, new in _IRI_ALIASES.items():
        if iri.startswith(old):
            return new + iri[len(old):]
    return iri


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


class Normalizer:
    """Normalise AS2 documents; owns its document loader and caches (one per runtime)."""

    def __init__(self, *, fast_path: bool = True, contexts_dir: Path | None = None) -> None:
        self.fast_path = fast_path
        self._dir = contexts_dir or Path(__file__).with_name("contexts")
        self._documents: dict[str, Any] = {}
        self._pyld_cache = _Bounded()
        self._verdicts = _Bounded()
        self._deltas: dict[str, _Active] = {}
        self._canonical: _Active | None = None
        self._read_iris: frozenset[str] = frozenset()

    # -- document loader -------------------------------------------------------------------

    def _bundled(self, name: str) -> Any:
        if name not in self._documents:
            self._documents[name] = json.loads((self._dir / name).read_text(encoding="utf-8"))
        return self._documents[name]

    def load_document(self, url: str, options: dict[str, Any] | None = None) -> dict[str, Any]:
        """pyld document loader: bundled contexts only; unknown URLs are empty contexts.

        An unknown context is read as ``{}`` rather than refused: Kroeg, Funkwhale and others
        reference their own context URLs, and their documents must still parse. The terms such
        a context would define fall back to AS2's ``@vocab`` (``_:``) and keep their names,
        so nothing we read can be redefined by a context we cannot see.
        """
        name = bundled_file(url)
        document = self._bundled(name) if name else {"@context": {}}
        return {
            "contextUrl": None,
            "documentUrl": url,
            "document": document,
            "contentType": "application/ld+json",
            "tag": "static",
        }

    # -- public API ------------------------------------------------------------------------

    def normalize(self, doc: dict[str, Any]) -> dict[str, Any]:
        """The document compacted to CANONICAL_CONTEXT, by the fast path when it is safe."""
        if self.fast_path:
            fast = self.normalize_fast(doc)
            if fast is not None:
                return fast
        return self.normalize_slow(doc)

    def normalize_fast(self, doc: dict[str, Any]) -> dict[str, Any] | None:
        """The document with the canonical context, or None when only pyld may decide.

        Keys other than READ_TERMS keep the sender's spelling here, while pyld would compact
        them; parse.py reads only READ_TERMS, so both give the same parse result.
        """
        if not isinstance(doc, dict):
            raise ProtocolError("document is not a JSON object")
        try:
            self._check_tree(doc)
        except _Bail:
            return None
        result = dict(doc)
        result["@context"] = list(CANONICAL_CONTEXT)
        return result

    def normalize_slow(self, doc: dict[str, Any]) -> dict[str, Any]:
        """Expand with pyld (the document's contexts after ours), then compact to ours."""
        from pyld import jsonld
        from pyld.context_resolver import ContextResolver

        if not isinstance(doc, dict):
            raise ProtocolError("document is not a JSON object")
        _check_depth(doc)
        source = dict(doc)
        source["@context"] = [*CANONICAL_CONTEXT, *_as_list(doc.get("@context"))]
        options: dict[str, Any] = {
            "documentLoader": self.load_document,
            "contextResolver": ContextResolver(self._pyld_cache, self.load_document),
            "base": None,  # relative IRIs stay relative (pyld would invent a base)
        }
        try:
            expanded = _rename_iris(jsonld.expand(source, dict(options)))
            compacted = jsonld.compact(expanded, list(CANONICAL_CONTEXT), dict(options))
        except (jsonld.JsonLdError, ValueError) as exc:
            # pyld raises ValueError for IRIs it cannot resolve (we give it no base).
            raise ProtocolError(f"invalid JSON-LD: {exc}") from exc
        except (KeyError, TypeError, IndexError, AttributeError) as exc:
            # pyld 3.3 trips over some valid input ({"@language": null} raises KeyError);
            # a document we cannot read is the sender's problem, not a crash.
            raise ProtocolError(f"JSON-LD processing failed: {exc!r}") from exc
        if not isinstance(compacted, dict):
            raise ProtocolError("JSON-LD document did not compact to one object")
        return compacted

    # -- fast path -------------------------------------------------------------------------

    def _context_for(self, key: str, context: Any, parent: _Active) -> _Scope:
        """The active context after ``context``, cached under ``key`` (its whole chain)."""
        cached = self._verdicts.get(key)
        if cached is None:
            try:
                active = parent
                for entry in _as_list(context):
                    active = self._process(active, entry, trusted=False)
                if active.vocab != "_:" or active.language not in (None, "und"):
                    raise _Bail
                cached = (active, {})
            except _Bail:
                cached = False
            self._verdicts[key] = cached
        if cached is False:
            raise _Bail
        return cached

    def _base(self) -> _Active:
        if self._canonical is None:
            active = _Active({})
            for entry in CANONICAL_CONTEXT:
                active = self._process(active, entry, trusted=True)
            self._canonical = active
            iris = {_expand(active, term, vocab=True) for term in READ_TERMS}
            self._read_iris = frozenset(i for i in iris if i is not None)
        return self._canonical

    def _delta(self, name: str) -> _Active:
        """A bundled context processed on its own: each is self-contained (it defines the
        prefixes it uses), so applying it anywhere sets exactly these terms."""
        if name not in self._deltas:
            active = _Active({})
            for inner in _as_list(self._bundled(name).get("@context")):
                active = self._process(active, inner, trusted=True)
            self._deltas[name] = active
        return self._deltas[name]

    @staticmethod
    def _apply(active: _Active, delta: _Active) -> _Active:
        result = active.copy()
        for term, definition in delta.terms.items():
            previous = result.terms.get(term)
            if previous is not None and previous.protected:
                if previous.meaning(False) != definition.meaning(False):
                    raise _Bail
                continue  # an identical redefinition keeps the protection (JSON-LD 1.1)
            result.terms[term] = definition
        if delta.vocab is not None:
            result.vocab = delta.vocab
        return result

    def _process(self, active: _Active, entry: Any, *, trusted: bool) -> _Active:
        if isinstance(entry, str):
            name = bundled_file(entry)
            if name is not None:
                return self._apply(active, self._delta(name))
            if entry.startswith(("https://", "http://")):
                return active  # unknown context: empty, as the loader serves it
            raise _Bail  # a relative reference: pyld refuses it

        if not isinstance(entry, dict):
            raise _Bail  # null resets the context; numbers and the like are invalid
        if any(k.startswith("@") and k not in _CONTEXT_KEYWORDS for k in entry):
            raise _Bail  # @base, @import, @direction, @propagate or invalid: pyld decides
        result = active.copy()
        if "@vocab" in entry:
            result.vocab = entry["@vocab"]
        if "@language" in entry:
            lang = entry["@language"]
            if lang is not None and not isinstance(lang, str):
                raise _Bail
            result.language = lang.lower() if lang else None
        defined: dict[str, bool] = {}
        protected = entry.get("@protected") is True
        for term in entry:
            if not term.startswith("@"):
                _define(result, entry, term, defined, trusted, protected)
        return result

    def _check_tree(self, doc: dict[str, Any]) -> None:
        """Bail unless every key, value shape and type reads as it would after pyld.

        Embedded @contexts (Fedify's signature and proof, Funkwhale's objects) apply to
        their subtree only, as in JSON-LD. Type spellings must survive compaction where
        parse.py reports them (the document, its objects, attachments); elsewhere types are
        only compared with READ_TERMS.
        """
        # Contexts are checked before json.dumps and _process recurse into them; the walk
        # below checks the depth of everything else it visits (lists included).
        _check_depth(doc.get("@context"), 1, in_context=True)
        top = _context_key(doc.get("@context"))
        stack: list[tuple[Any, int, str, _Scope, bool]] = [
            (doc, 0, top, self._context_for(top, doc.get("@context"), self._base()), True)
        ]
        while stack:
            value, depth, key, scope, strict = stack.pop()
            if depth > _MAX_DEPTH:
                raise ProtocolError(f"document nests deeper than {_MAX_DEPTH} levels")
            if isinstance(value, list):
                stack.extend((v, depth + 1, key, scope, strict) for v in value
                             if isinstance(v, dict | list))
                continue
            if depth and "@context" in value:
                if value["@context"] is None:
                    raise _Bail  # resetting the context: pyld decides (and may refuse)
                _check_depth(value["@context"], depth + 1, in_context=True)
                key += "\n" + _context_key(value["@context"])
                scope = self._context_for(key, value["@context"], scope[0])
            for name, item in value.items():
                if name == "@context":
                    continue
                if not _SHAPES[self._verdict(scope, name)](item):
                    raise _Bail
                if isinstance(item, dict | list):
                    reported = strict and name in _REPORTED_TYPES
                    stack.append((item, depth + 1, key, scope, reported))
            prefix = _TYPE_PREFIX if strict else _LOOSE_TYPE_PREFIX
            for kind in _as_list(value.get("type")):
                if self._verdict(scope, prefix + kind) != _ANY:
                    raise _Bail

    def _verdict(self, scope: _Scope, term: str) -> int:
        active, verdicts = scope
        verdict = verdicts.get(term)
        if verdict is None:
            verdict = self._classify(active, term)
            if len(verdicts) < _MAX_VERDICTS:  # senders choose key names; stay bounded
                verdicts[term] = verdict
        return verdict

    def _classify(self, active: _Active, term: str) -> int:
        """What values of ``term`` may look like, or _BAD when pyld must read the document."""
        canonical = self._base()
        if term.startswith(_LOOSE_TYPE_PREFIX):
            kind = term[len(_LOOSE_TYPE_PREFIX):]
            if _expand(active, kind, vocab=True) is None:
                return _BAD  # a type mapped to null: pyld refuses it
            return _ANY if self._term_ok(active, kind) else _BAD
        if term.startswith(_TYPE_PREFIX):
            # pyld compacts type IRIs back to term names ("as:Public" → "Public"), so a type
            # must be a plain term meaning in the document what it means canonically.
            kind = term[len(_TYPE_PREFIX):]
            if not kind or ":" in kind or (kind not in READ_TERMS and (
                    _expand(active, kind, vocab=True) != _expand(canonical, kind, vocab=True))):
                return _BAD
            return _ANY if self._term_ok(active, kind) else _BAD
        if not self._term_ok(active, term):
            return _BAD
        definition = active.terms.get(term)
        if definition is None:
            return _ANY
        if definition.iri == "@id":
            return _ID
        if definition.iri == "@type":
            return _TYPE
        if "@language" in definition.container:
            return _LANGUAGE_MAP
        if definition.type in ("@id", "@vocab"):
            return _IRI
        return _LITERAL if definition.type is not None else _ANY

    def _term_ok(self, active: _Active, term: str) -> bool:
        if term.startswith("@"):
            return False
        canonical = self._base()
        if term in READ_TERMS:
            mine, theirs = active.terms.get(term), canonical.terms.get(term)
            if mine is None or theirs is None:
                return mine is theirs and active.vocab == canonical.vocab
            flexible = term in _FLEXIBLE_ID_TERMS
            return mine.meaning(flexible) == theirs.meaning(flexible)
        return _expand(active, term, vocab=True) not in self._read_iris


# Value shapes pyld accepts for each kind of term; anything else goes to pyld to refuse.
_BAD, _ANY, _ID, _TYPE, _IRI, _LITERAL, _LANGUAGE_MAP = range(7)
_TYPE_PREFIX = "\x00type:"
_LOOSE_TYPE_PREFIX = "\x00loose:"
# Keys under which parse.py reports the type of the embedded node.
_REPORTED_TYPES = frozenset({"object", "attachment"})


def _context_key(context: Any) -> str:
    """A canonical text of a @context value, the key its processed form is cached under.

    orjson (sorted keys) is an order of magnitude quicker than json.dumps for Mastodon's
    context, read on every activity. It writes NaN and infinities as null and refuses
    integers past 64 bits, so any output holding a null, and any refusal, falls back to
    json.dumps; the prefixes keep keys of the two spellings apart.
    """
    try:
        fast = orjson.dumps(context, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # orjson.JSONEncodeError
        fast = b"null"
    if b"null" not in fast:
        return "o" + fast.decode()
    return "j" + json.dumps(context, sort_keys=True)


def _items(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


_SHAPES: dict[int, Callable[[Any], bool]] = {
    _BAD: lambda value: False,
    _ANY: lambda value: True,
    _ID: lambda value: isinstance(value, str) and not value.startswith("@"),
    _TYPE: lambda value: all(isinstance(v, str) for v in _items(value)),
    _IRI: lambda value: all(v is None or isinstance(v, dict)
                            or (isinstance(v, str) and not v.startswith("@"))
                            for v in _items(value)),
    _LITERAL: lambda value: not any(isinstance(v, dict) for v in _items(value)),
    _LANGUAGE_MAP: lambda value: value is None or (isinstance(value, dict) and all(
        v is None or isinstance(v, str) for m in value.values() for v in _items(m))),
}


def _define(active: _Active, local: dict[str, Any], term: str, defined: dict[str, bool],
            trusted: bool, protected: bool = False) -> None:
    """Create one term definition (JSON-LD 1.1 §4.2.2, the parts that matter here)."""
    if defined.get(term) is True:
        return
    if term in defined:
        raise _Bail  # cyclic definition
    if ":" in term and not trusted:
        raise _Bail  # a compact-IRI term must expand to itself; pyld checks that
    defined[term] = False
    previous = active.terms.get(term)
    value = local[term]
    new: _Term
    if value is None:
        new = _Term(iri=None)
    elif isinstance(value, str):
        iri = _expand(active, value, vocab=True, local=local, defined=defined, trusted=trusted)
        prefix = ":" not in term and bool(iri) and iri.endswith(_GEN_DELIMS)
        new = _Term(iri=iri, prefix=prefix, protected=protected)
    elif isinstance(value, dict):
        if {"@reverse", "@nest", "@index", "@direction"} & value.keys():
            raise _Bail
        if "@context" in value and not trusted:
            raise _Bail  # a scoped context from the sender could redefine what we read
        if "@id" in value:
            raw = value["@id"]
            iri = None if raw is None else _expand(
                active, raw, vocab=True, local=local, defined=defined, trusted=trusted)
        else:
            iri = _expand(active, term, vocab=True, local=local, defined=defined,
                          trusted=trusted)
        kind = value.get("@type")
        if kind is not None:
            kind = _expand(active, kind, vocab=True, local=local, defined=defined,
                           trusted=trusted)
            if kind is None or kind.startswith("_:") or not (kind.startswith("@") or ":" in kind):
                raise _Bail  # a relative or blank @type: pyld refuses the context
        containers = _as_list(value.get("@container"))
        language = value.get("@language")
        if not all(isinstance(c, str) for c in containers) \
                or not isinstance(language, str | None):
            raise _Bail
        container = tuple(sorted(c for c in containers if c != "@set"))
        scoped = value.get("@context")
        new = _Term(
            iri=iri,
            type=kind,
            container=container,
            language=language.lower() if isinstance(language, str) else language,
            scoped=None if scoped is None else json.dumps(scoped, sort_keys=True),
            prefix=value.get("@prefix") is True,
            protected=value.get("@protected", protected) is True,
        )
    else:
        raise _Bail
    if previous is not None and previous.protected:
        if previous.meaning(False) != new.meaning(False):
            raise _Bail  # pyld refuses to redefine a protected term; let it say so
        new = previous  # an identical redefinition keeps the protection (JSON-LD 1.1)
    active.terms[term] = new
    defined[term] = True


def _expand(active: _Active, value: str, *, vocab: bool, local: dict[str, Any] | None = None,
            defined: dict[str, bool] | None = None, trusted: bool = True) -> str | None:
    """IRI expansion (JSON-LD 1.1 §5.2.2) against the minimal active context."""
    if not isinstance(value, str):
        raise _Bail  # invalid JSON-LD: pyld will say so
    if value.startswith("@"):
        return value
    if local is not None and defined is not None and value in local and not defined.get(value):
        _define(active, local, value, defined, trusted)
    if vocab and value in active.terms:
        iri = active.terms[value].iri
        return None if iri is None else _unalias(iri)
    if ":" in value[1:]:
        prefix, suffix = value.split(":", 1)
        if prefix == "_" or suffix.startswith("//"):
            return value
        if local is not None and defined is not None and prefix in local \
                and not defined.get(prefix):
            _define(active, local, prefix, defined, trusted)
        definition = active.terms.get(prefix)
        if definition is not None and definition.iri is not None and definition.prefix:
            return _unalias(definition.iri + suffix)
        if definition is not None:
            raise _Bail  # a term that is not a prefix: pyld may call it confused, let it
        return value
    if vocab and active.vocab is not None:
        return active.vocab + value
    return value


def _check_depth(value: Any, depth: int = 0, *, in_context: bool = False) -> None:
    """Refuse a document whose objects and arrays, together, nest deeper than _MAX_DEPTH, or
    one of whose contexts defines more than _MAX_CONTEXT_TERMS terms.

    Arrays count like objects, and contexts are walked too: pyld (and json.dumps of a
    context) recurse once per level of either, so ``[[[…]]]`` five hundred deep exhausts
    Python's recursion limit inside pyld. Term definitions recurse once per term they
    depend on (``"a": "b:x", "b": "c:x", …``), on both paths, hence the bound on their
    number; real contexts define a few dozen. Iterative, so the check cannot recurse.
    """
    stack: list[tuple[Any, int, bool]] = [(value, depth, in_context)]
    while stack:
        item, level, context = stack.pop()
        if level > _MAX_DEPTH:
            raise ProtocolError(f"document nests deeper than {_MAX_DEPTH} levels")
        if isinstance(item, dict):
            if context and len(item) > _MAX_CONTEXT_TERMS:
                raise ProtocolError(f"a @context defines more than {_MAX_CONTEXT_TERMS} terms")
            stack.extend((v, level + 1, context or k == "@context") for k, v in item.items()
                         if isinstance(v, dict | list))
        elif isinstance(item, list):
            stack.extend((v, level + 1, context) for v in item if isinstance(v, dict | list))


def _rename_iris(value: Any) -> Any:
    """Apply _IRI_ALIASES to the property names of an expanded document."""
    if isinstance(value, list):
        return [_rename_iris(v) for v in value]
    if isinstance(value, dict):
        return {_unalias(k): _rename_iris(v) for k, v in value.items()}
    return value


__all__ = ["AS2", "CANONICAL_CONTEXT", "EXTENSION_TERMS", "READ_TERMS",
           "VOCABULARY_NAMESPACES", "Normalizer", "bundled_file"]

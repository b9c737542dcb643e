"""JSON-LD context data: the canonical context documents are normalised to, the terms the
parse modules read, and the bundled copies of context documents that stand in for context
URLs (a context URL never causes a network request). Data and lookups only; no processing."""

from __future__ import annotations

from typing import Any

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
    # consent (FEP-5feb) and conversations (replies and FEP-7888 context collections)
    "indexable", "discoverable", "replies", "items", "orderedItems", "first", "next",
    "totalItems",
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

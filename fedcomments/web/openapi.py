"""The OpenAPI 3.1 document describing /api/v1 (kept beside the routes it describes)."""

from __future__ import annotations

from typing import Any

from fedcomments import __version__

_POST_FIELDS = {
    "type": "object",
    "required": ["url", "title"],
    "properties": {
        "url": {"type": "string", "format": "uri", "description": "The blog post's permalink"},
        "title": {"type": "string"},
        "summary": {"type": "string"},
        "content": {"type": "string", "description": "HTML; sanitised on input"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "image": {"type": "string", "format": "uri"},
        "published": {"type": "string", "description": "ISO-8601 date or date-time"},
    },
    "additionalProperties": False,
}

_POST = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "slug": {"type": "string"},
        "url": {"type": "string"},
        "ap_id": {"type": "string"},
        "title": {"type": "string"},
        "summary": {"type": "string"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "image": {"type": ["string", "null"]},
        "published": {"type": "string"},
        "updated": {"type": ["string", "null"]},
        "deleted": {"type": ["string", "null"]},
    },
}

#: How every admin listing pages (comments, followers, deliveries, reports, posts, domains,
#: actors).
PAGING = ("`limit` (1-1000, default 100) rows per page; the answer's `next_cursor` is null "
          "on the last page, else pass it as `cursor` for the next one. A cursor is opaque "
          "and stays valid while rows are added or removed.")
PAGE_PARAMS: list[dict[str, Any]] = [
    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1}},
    {"name": "cursor", "in": "query", "schema": {"type": "string"},
     "description": "`next_cursor` of the previous page"},
]

_ERROR = {
    "type": "object",
    "properties": {"error": {"type": "string"}, "field": {"type": "string"}},
    "required": ["error"],
}


def _op(summary: str, *, body: bool = False, ok: str = "200") -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": summary,
        "security": [{"bearer": []}],
        "responses": {
            ok: {"description": "OK", "content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/Post"}}}},
            "400": {"description": "Invalid input", "content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/Error"}}}},
            "401": {"description": "Missing or wrong bearer token"},
        },
    }
    if body:
        op["requestBody"] = {"required": True, "content": {"application/json": {
            "schema": {"$ref": "#/components/schemas/PostFields"}}}}
    return op


def openapi_document(base_url: str) -> dict[str, Any]:
    ref = [{"name": "ref", "in": "path", "required": True, "schema": {"type": "string"},
            "description": "Post id, slug, permalink or ActivityPub id"}]
    return {
        "openapi": "3.1.0",
        "info": {"title": "fedcomments API", "version": __version__},
        "servers": [{"url": base_url}],
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {"PostFields": _POST_FIELDS, "Post": _POST, "Error": _ERROR},
        },
        "paths": {
            "/api/v1/admin/posts": {
                "get": {**_op("List posts"),
                        "description": "Newest first, one page at a time. Query `deleted=true` "
                        "includes deleted posts. " + PAGING,
                        "parameters": [{"name": "deleted", "in": "query",
                                        "schema": {"type": "boolean"}}, *PAGE_PARAMS],
                        "responses": {"200": {"description": "OK"},
                                      "400": {"description": "Bad limit or cursor"},
                                      "401": {"description": "No token"}}},
                "post": _op("Register a post (same permalink updates)", body=True, ok="201"),
            },
            "/api/v1/admin/posts/{ref}": {
                "parameters": ref,
                "get": {**_op("Show a post"), "description": (
                    "With `replies {held, known_elsewhere, not_held, missing: [{id, reason, "
                    "listed_by, seen}]}`: the comments held beside the replies remote "
                    "`replies` and `context` collections say exist, and those not imported "
                    "with why (blocked, private, too deep, fetch failed …).")},
                "put": _op("Update a post", body=True),
                "delete": _op("Delete a post (federates a Delete; the object answers 410)"),
            },
            "/api/v1/admin/posts/{ref}/backfill": {
                "parameters": ref,
                "post": {**_op("Fetch the post's replies that never reached us"),
                         "description": (
                    "Reads the conversation where its replies' servers publish it (FEP-7888 "
                    "`context` collections, else `replies` collections) and imports the "
                    "public replies of the post from their own servers. Answers `{post, "
                    "imported, missing: [{id, reason}], collections, fetches, replies}`.")},
            },
            **_DELIVERY_PATHS,
            **_READER_PATHS,
            **_ADMIN_PATHS,
        },
    }


def _delivery_op(summary: str, description: str) -> dict[str, Any]:
    return {"summary": summary, "description": description, "security": [{"bearer": []}],
            "responses": {"200": {"description": "OK"}, "400": {"description": "Invalid input"},
                          "401": {"description": "Missing or wrong bearer token"},
                          "404": {"description": "No such delivery"}}}


_DELIVERY_PATHS: dict[str, Any] = {
    "/api/v1/admin/deliveries": {"get": {
        **_delivery_op("List delivery jobs", "Query `status` (pending, done, failed, gone, "
                       "cancelled, all), `kind` (activity, webhook, mail, spam, notify: "
                       "webhooks and mails, all) and `limit` (1-10000, default 100). Answers "
                       "`{counts, deliveries: [{id, kind, activity_id, inbox, host, status, "
                       "attempts, next_attempt_at, last_status, last_error, created_at, "
                       "finished_at}], next_cursor}`: pending jobs in the order they run, "
                       "others newest first. " + PAGING),
        "parameters": [
            {"name": "status", "in": "query", "schema": {"type": "string"}},
            {"name": "kind", "in": "query", "schema": {"type": "string"}}, *PAGE_PARAMS]}},
    "/api/v1/admin/deliveries/{id}/retry": {"post": {
        **_delivery_op("Retry one delivery", "Puts a finished job back in the queue, due now, "
                       "and clears its host's failure marks; 400 when it is pending, or when it is "
                       "a delivered mail, webhook event or spam call whose body was cleared."),
        "parameters": [{"name": "id", "in": "path", "required": True,
                        "schema": {"type": "integer"}}]}},
    "/api/v1/admin/deliveries/retry-failed": {"post": _delivery_op(
        "Retry every failed delivery", "Answers `{retried, ids}`.")},
}


# --- the public reader API (no token; CORS for [server] blog_origins) ---------------------

def _reader_op(summary: str, description: str, codes: dict[str, str]) -> dict[str, Any]:
    return {"summary": summary, "description": description,
            "responses": {code: {"description": text} for code, text in codes.items()}}


_COMMENT_BODY = {"type": "object", "additionalProperties": False, "required": ["post", "token"],
                 "properties": {name: {"type": "string"} for name in (
                     "post", "parent", "name", "email", "website", "text", "token", "homepage")}}
_ID = [{"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}},
       {"name": "X-Comment-Secret", "in": "header", "required": True,
        "schema": {"type": "string"}, "description": "The secret returned when it was posted"}]

_READER_PATHS: dict[str, Any] = {
    "/api/v1/thread": {"get": {
        **_reader_op(
            "The public thread of a post",
            "By `url` (the blog permalink, with or without its trailing slash, or the post's "
            "ActivityPub id) or `id`. Answers `{post, count, reactions, comments}` (`post."
            "comments_feed` is the URL of the thread's Atom feed); each "
            "comment has `id, parent_id, depth, reply_to, deleted, status, origin, ap_id, "
            "nosnippet, url, author {kind, name, handle, url, avatar, website, avatar_2x, "
            "emojis}, published, updated, edited, summary, sensitive, language, content "
            "(sanitised HTML; custom emoji stay `:shortcode:`), attachments [{url, media_type, "
            "name, thumbnail {url, url_2x, width, height} or null}], reactions {likes, boosts, "
            "people [{name, avatar, url, avatar_2x}]}, emojis [{shortcode, url, url_2x, width, "
            "height}], replies`. Image URLs are the server's own /media/ files ([media] proxy) "
            "or null (initials). `nosnippet` is true when its author asked search engines not "
            "to index them (FEP-5feb `indexable: false`): show it inside an element with "
            "`data-nosnippet`. Sends `ETag` and `Cache-Control`; a matching `If-None-Match` "
            "answers 304. Pending, rejected and private comments never appear, nor replies "
            "whose authors opted out (#nobot).",
            {"200": "OK", "304": "Not modified", "400": "Neither url nor id",
             "404": "No such post", "410": "Post deleted"}),
        "parameters": [{"name": "url", "in": "query", "schema": {"type": "string"}},
                       {"name": "id", "in": "query", "schema": {"type": "integer"}}]}},
    "/api/v1/form": {"get": {
        **_reader_op("A comment form token for a post",
                     "Answers `{post, token, limits}`; the token is signed with the time it "
                     "was issued (a form sent within seconds waits for approval).",
                     {"200": "OK", "404": "No such post"}),
        "parameters": [{"name": "post", "in": "query", "required": True,
                        "schema": {"type": "integer"}}]}},
    "/api/v1/comments": {"post": {
        **_reader_op(
            "Post a reader comment",
            "Needs an Origin (or Referer) of this server or a blog origin. `text` is plain "
            "text (paragraphs and links are made for it); `email` is never shown or returned; "
            "`homepage` must stay empty. Answers 201 `{comment, pending, held_because, secret, "
            "edit_until}`; keep `secret` to see a pending comment and to edit or delete it "
            "within the edit window. Errors name their fields in `errors`.",
            {"201": "Stored (published or pending)", "400": "Invalid fields",
             "403": "Origin not allowed", "404": "No such post",
             "429": "Rate limited (Retry-After)"}),
        "requestBody": {"required": True, "content": {"application/json": {
            "schema": _COMMENT_BODY}}}}},
    "/api/v1/comments/{id}": {
        "parameters": _ID,
        "get": _reader_op("One's own comment (pending included)", "Answers `{comment}`.",
                          {"200": "OK", "404": "Unknown comment or wrong secret"}),
        "patch": {**_reader_op("Edit one's own comment", "Body `{text}`; within the edit "
                               "window (`[comments] edit_window_minutes`).",
                               {"200": "OK", "400": "Invalid text", "403": "Window over or "
                                "Origin not allowed", "404": "Unknown or wrong secret"}),
                  "requestBody": {"required": True, "content": {"application/json": {
                      "schema": {"type": "object", "properties": {
                          "text": {"type": "string"}}}}}}},
        "delete": _reader_op("Delete one's own comment", "A placeholder stays when replies "
                             "hang below it. Answers `{deleted, kept_as_placeholder}`.",
                             {"200": "OK", "403": "Window over or Origin not allowed",
                              "404": "Unknown or wrong secret"}),
    },
    "/api/v1/interact": {"post": {
        **_reader_op(
            "Reply from your fediverse account",
            "Body `{acct, object}`: `@user@instance` and the ActivityPub id of one of our "
            "posts or public comments. Answers `{redirect, object, handle, problem}`: "
            "`redirect` is the reader's instance opened on the object (https, from their "
            "WebFinger subscribe template), or null with `problem` and the `object` URL to "
            "paste into their instance's search.",
            {"200": "OK", "400": "Malformed handle", "403": "Origin not allowed",
             "404": "Not our public object"}),
        "requestBody": {"required": True, "content": {"application/json": {"schema": {
            "type": "object", "required": ["acct", "object"], "properties": {
                "acct": {"type": "string"}, "object": {"type": "string"}}}}}}}},
}


# --- blocks and moderation (bearer token); the CLI calls the same service functions ------

_CODES = {"200": "OK", "201": "Created", "400": "Invalid input (`field` names it)",
          "401": "Missing or wrong bearer token", "404": "Not found (or not blocked)",
          "415": "Wrong Content-Type", "502": "The actor could not be resolved (WebFinger)"}


def _admin_op(summary: str, description: str, codes: str = "200 400 401", *,
              params: list[dict[str, Any]] | None = None,
              body: dict[str, Any] | None = None) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "description": description,
                          "security": [{"bearer": []}],
                          "responses": {c: {"description": _CODES[c]} for c in codes.split()}}
    if params:
        op["parameters"] = params
    if body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {
            "schema": body}}}
    return op


def _query(name: str, kind: str = "string", required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required, "schema": {"type": kind}}


_BLOCK = ("Answers `{domain|actor, created, covered_by, keep_content, removed {comments, "
          "reactions, followers, deliveries}}`, 201 when new. From then on its inbox POSTs "
          "get 403 before any fetch, nothing is fetched from or delivered to it and its "
          "pending deliveries are cancelled; unless `keep_content` its comments (tombstones "
          "where replies hang below), reactions and follows are removed.")
_BLOCK_BODY: dict[str, Any] = {"type": "object", "additionalProperties": False, "properties": {
    "reason": {"type": "string"}, "keep_content": {"type": "boolean"}}}
_COMMENT_ID = [{"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}]

_ADMIN_PATHS: dict[str, Any] = {
    "/api/v1/admin/domains": {
        "get": _admin_op("List domain blocks", "By domain. Answers `{domains: [{domain, "
                         "reason, created, keep_content, removed}], next_cursor}`. " + PAGING,
                         "200 400 401", params=PAGE_PARAMS),
        "post": _admin_op(
            "Block a domain and its subdomains", "`domain` may be a host, URL, "
            "`@user@host` or `*.host` (IDN → punycode). " + _BLOCK, "200 201 400 401",
            body={**_BLOCK_BODY, "required": ["domain"], "properties": {
                "domain": {"type": "string"}, **_BLOCK_BODY["properties"]}}),
    },
    "/api/v1/admin/domains/{domain}": {"delete": _admin_op(
        "Unblock a domain", "Removed content is not restored. Answers `{domain, unblocked}`.",
        "200 400 401 404",
        params=[{"name": "domain", "in": "path", "required": True,
                 "schema": {"type": "string"}}])},
    "/api/v1/admin/domains/import": {"post": {**_admin_op(
        "Import a blocklist", "Body: Mastodon's CSV export (`text/csv`; `suspend` rows become "
        "blocks, `silence`/`noop` rows are skipped and reported) or a plain list "
        "(`text/plain`, one domain per line). Answers `{format, dry_run, keep_content, added, "
        "already_present, duplicates, skipped, invalid, removed}` with line numbers.",
        "200 400 401 415", params=[_query("keep_content", "boolean"),
                                   _query("dry_run", "boolean")]),
        "requestBody": {"required": True, "content": {
            "text/csv": {"schema": {"type": "string"}},
            "text/plain": {"schema": {"type": "string"}}}}}},
    "/api/v1/admin/domains/export": {"get": _admin_op(
        "Export domain blocks", "`format=mastodon` (CSV, every block as `suspend`; default) "
        "or `plain`.", params=[_query("format")])},
    "/api/v1/admin/actors": {
        "get": _admin_op("List actor blocks", "By actor id. Answers `{actors: [{actor, "
                         "reason, created, keep_content, removed}], next_cursor}`. " + PAGING,
                         "200 400 401", params=PAGE_PARAMS),
        "post": _admin_op(
            "Block one actor", "`actor` is `@user@host` (resolved with WebFinger) or the "
            "actor's URL (works for an actor never seen). " + _BLOCK, "200 201 400 401 502",
            body={**_BLOCK_BODY, "required": ["actor"], "properties": {
                "actor": {"type": "string"}, **_BLOCK_BODY["properties"]}}),
        "delete": _admin_op("Unblock an actor", "Answers `{actor, unblocked}`.",
                            "200 400 401 404 502", params=[_query("actor", required=True)]),
    },
    "/api/v1/admin/comments": {"get": _admin_op(
        "List comments, newest first", "`status`: pending, approved, rejected, private "
        "(followers-only and direct) or all (default). Answers `{comments: [{id, post {id, "
        "slug}, parent_id, origin, status, visibility, author {name, handle, actor, url}, "
        "published, updated, text, content, summary, ap_id, url, spam, imported, withheld}], "
        "next_cursor}`; `spam` is the spam service's verdict (spam, ham, unknown, queued) or "
        "null when it was not asked; `imported` is null, or `{source, site, id}` naming the "
        "system a comment was imported from (wordpress, disqus, isso, fedcomments) and its id "
        "there; `withheld` is `{reason, audience}` for a reply its author keeps off blogs (an "
        "opt-out hashtag such as #nobot; not discoverable and unlisted), listed with the "
        "private ones, else null. " + PAGING,
        "200 400 401 404", params=[_query("post"), _query("status"), *PAGE_PARAMS])},
    "/api/v1/admin/comments/{id}": {
        "get": _admin_op("Show a comment", "The listing's fields plus `in_reply_to, "
                         "language, sensitive, attachments, replies, reactions, deleted`.",
                         "200 400 401 404", params=_COMMENT_ID),
        "delete": _admin_op("Delete a comment", "A tombstone stays when replies hang below. "
                            "Answers `{id, status: deleted|removed, changed, author_trusted}`.",
                            "200 400 401 404", params=_COMMENT_ID),
    },
    "/api/v1/admin/comments/{id}/approve": {"post": {**_admin_op(
        "Approve a comment", "Optional body `{trust_author: true}` trusts a fediverse author "
        "from then on. Answers `{id, status, changed, author_trusted}`.", "200 400 401 404",
        params=_COMMENT_ID), "requestBody": {"required": False, "content": {
            "application/json": {"schema": {"type": "object", "properties": {
                "trust_author": {"type": "boolean"}}}}}}}},
    "/api/v1/admin/comments/{id}/reject": {"post": _admin_op(
        "Reject a comment", "Hidden from every public surface, kept for audit.",
        "200 400 401 404", params=_COMMENT_ID)},
    "/api/v1/admin/comments/{id}/reply": {"post": _admin_op(
        "Answer a comment as the blog", "Body `{text}`. Answers 201 `{in_reply_to, id, "
        "ap_id}` and delivers the answer to the comment's author and the followers.",
        "201 400 401 404", params=_COMMENT_ID, body={
            "type": "object", "required": ["text"], "properties": {"text": {"type": "string"}}})},
    "/api/v1/admin/comments/recheck": {"post": _admin_op(
        "Recheck stored fediverse replies now", "Body `{ids: [ID, …]}`, `{post: POST}` or "
        "`{all: true}`. Each reply is fetched again from its server (signed GET): 404/410 "
        "makes it a tombstone (removed when nothing hangs below), a narrower audience moves "
        "it to private, changed content or content warning updates it; errors change "
        "nothing. Answers `{comments: [{id, ap_id, outcome, detail}]}` with outcome "
        "unchanged, edited, private, edited and private, deleted, error or skipped.",
        "200 400 401 404", body={"type": "object", "additionalProperties": False,
                                 "properties": {"ids": {"type": "array",
                                                        "items": {"type": "integer"}},
                                                "post": {"type": "string"},
                                                "all": {"type": "boolean"}}})},
    "/api/v1/admin/comments/{id}/recheck": {"post": _admin_op(
        "Recheck one stored fediverse reply now", "As `/comments/recheck` for one comment; "
        "answers `{id, ap_id, outcome, detail}`.", "200 400 401 404", params=_COMMENT_ID)},
    "/api/v1/admin/followers": {"get": _admin_op(
        "List followers", "Oldest first. Answers `{followers: [{actor, handle, name, inbox, "
        "since}], next_cursor}`. " + PAGING, "200 400 401", params=PAGE_PARAMS)},
    "/api/v1/admin/reports": {"get": _admin_op(
        "List received reports (Flag)", "Answers `{reports: [{id, ap_id, actor, handle, "
        "content, objects, received}], next_cursor}`, newest first. " + PAGING,
        "200 400 401", params=PAGE_PARAMS)},
}

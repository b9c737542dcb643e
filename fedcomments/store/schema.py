"""Numbered schema migrations; each runs whole inside one transaction or not at all."""

from __future__ import annotations

#: What a thread shows of an actor changed (an UPDATE trigger's WHEN clause).
_ACTOR_SHOWN = (
    " WHEN OLD.ap_id IS NOT NEW.ap_id OR OLD.username IS NOT NEW.username"
    " OR OLD.domain IS NOT NEW.domain OR OLD.name IS NOT NEW.name OR OLD.url IS NOT NEW.url"
    " OR OLD.icon IS NOT NEW.icon"
)

def _shown(row: str) -> str:
    """A comment the public thread shows: the filter of store/threads.py's _PUBLIC."""
    return (f"({row}.visibility IN ('public', 'unlisted') "
            f"AND {row}.status IN ('approved', 'deleted'))")


def _bump(posts: str) -> str:
    return f"UPDATE posts SET thread_version = thread_version + 1 WHERE id IN ({posts});"


def _reaction_shown(row: str) -> str:
    """A reaction the public thread shows: on the post, or on a comment it shows."""
    return (f"({row}.comment_id IS NULL OR EXISTS (SELECT 1 FROM comments c "
            f"WHERE c.id = {row}.comment_id AND {_shown('c')}))")


def _url_host(column: str) -> str:
    """SQL for the lower-case host of an ASCII `scheme://host[:port]/…` URL in `column`."""
    rest = f"substr({column}, instr({column}, '://') + 3)"
    hostport = f"substr({rest}, 1, instr({rest} || '/', '/') - 1)"
    host = (f"CASE WHEN instr({hostport}, ':') > 0 "
            f"THEN substr({hostport}, 1, instr({hostport}, ':') - 1) ELSE {hostport} END")
    return f"rtrim(lower({host}), '.')"


def _foreign_inbox(column: str) -> str:
    """Clears `column` where it names another host than the actor's own. Only plain ASCII
    URLs without user info, IPv6 literals or a query are judged (others wait for the
    actor's next fetch, which applies the same rule)."""
    return (f"UPDATE actors SET {column} = NULL WHERE {column} IS NOT NULL "
            f"AND {column} GLOB 'http*://*' AND {column} NOT GLOB '*[^ -~]*' "
            f"AND {column} NOT GLOB '*[[@?#]*' AND {_url_host(column)} != domain")


# Each entry is one version step: a list of statements. Never edit a released step;
# append a new one. Timestamps are ISO-8601 UTC strings, which sort as text.
MIGRATIONS: list[list[str]] = [
    # 1: the whole model the product needs.
    [
        """CREATE TABLE instance (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            private_key_pem TEXT NOT NULL,
            public_key_pem TEXT NOT NULL,
            created_at TEXT NOT NULL
        )""",
        """CREATE TABLE posts (
            id INTEGER PRIMARY KEY,
            slug TEXT NOT NULL UNIQUE,
            permalink TEXT NOT NULL UNIQUE,
            ap_id TEXT NOT NULL UNIQUE,
            title TEXT NOT NULL,
            summary TEXT NOT NULL DEFAULT '',
            content TEXT NOT NULL DEFAULT '',
            tags TEXT NOT NULL DEFAULT '[]',
            image TEXT,
            published_at TEXT NOT NULL,
            updated_at TEXT,
            created_at TEXT NOT NULL,
            deleted_at TEXT,
            federated_at TEXT
        )""",
        """CREATE TABLE actors (
            id INTEGER PRIMARY KEY,
            ap_id TEXT NOT NULL UNIQUE,
            domain TEXT NOT NULL,
            type TEXT NOT NULL DEFAULT 'Person',
            username TEXT,
            name TEXT,
            summary TEXT,
            url TEXT,
            icon TEXT,
            inbox TEXT,
            shared_inbox TEXT,
            followers_url TEXT,
            fetched_at TEXT NOT NULL,
            trusted INTEGER NOT NULL DEFAULT 0
        )""",
        "CREATE INDEX actors_domain ON actors(domain)",
        """CREATE TABLE actor_keys (
            key_id TEXT PRIMARY KEY,
            actor_id INTEGER NOT NULL REFERENCES actors(id) ON DELETE CASCADE,
            pem TEXT NOT NULL,
            fetched_at TEXT NOT NULL
        )""",
        "CREATE INDEX actor_keys_actor ON actor_keys(actor_id)",
        """CREATE TABLE comments (
            id INTEGER PRIMARY KEY,
            post_id INTEGER NOT NULL REFERENCES posts(id) ON DELETE CASCADE,
            parent_id INTEGER REFERENCES comments(id) ON DELETE SET NULL,
            ap_id TEXT UNIQUE,
            origin TEXT NOT NULL CHECK (origin IN ('remote', 'local', 'owner')),
            actor_id INTEGER REFERENCES actors(id) ON DELETE CASCADE,
            author_name TEXT,
            author_email TEXT,
            author_website TEXT,
            visibility TEXT NOT NULL
                CHECK (visibility IN ('public', 'unlisted', 'followers', 'direct')),
            status TEXT NOT NULL
                CHECK (status IN ('approved', 'pending', 'rejected', 'deleted')),
            content TEXT NOT NULL DEFAULT '',
            source TEXT,
            summary TEXT,
            sensitive INTEGER NOT NULL DEFAULT 0,
            language TEXT,
            url TEXT,
            in_reply_to TEXT,
            attachments TEXT NOT NULL DEFAULT '[]',
            mentions TEXT NOT NULL DEFAULT '[]',
            published_at TEXT NOT NULL,
            updated_at TEXT,
            created_at TEXT NOT NULL,
            deleted_at TEXT,
            edit_secret_hash TEXT,
            client_key TEXT
        )""",
        "CREATE INDEX comments_post ON comments(post_id, published_at)",
        "CREATE INDEX comments_actor ON comments(actor_id)",
        "CREATE INDEX comments_parent ON comments(parent_id)",
        # Object ids that were deleted: a late or replayed Create must never resurrect them.
        """CREATE TABLE tombstones (
            ap_id TEXT PRIMARY KEY,
            deleted_at TEXT NOT NULL
        )""",
        """CREATE TABLE reactions (
            id INTEGER PRIMARY KEY,
            ap_id TEXT UNIQUE,
            type TEXT NOT NULL CHECK (type IN ('like', 'announce')),
            actor_id INTEGER NOT NULL REFERENCES actors(id) ON DELETE CASCADE,
            post_id INTEGER NOT NULL REFERENCES posts(id) ON DELETE CASCADE,
            comment_id INTEGER REFERENCES comments(id) ON DELETE CASCADE,
            target_ap_id TEXT NOT NULL,
            created_at TEXT NOT NULL,
            UNIQUE (actor_id, type, target_ap_id)
        )""",
        "CREATE INDEX reactions_post ON reactions(post_id)",
        """CREATE TABLE followers (
            actor_id INTEGER PRIMARY KEY REFERENCES actors(id) ON DELETE CASCADE,
            follow_id TEXT,
            created_at TEXT NOT NULL
        )""",
        """CREATE TABLE domain_blocks (
            domain TEXT PRIMARY KEY,
            reason TEXT NOT NULL DEFAULT '',
            keep_content INTEGER NOT NULL DEFAULT 0,
            removed TEXT NOT NULL DEFAULT '{}',
            created_at TEXT NOT NULL
        )""",
        """CREATE TABLE actor_blocks (
            ap_id TEXT PRIMARY KEY,
            reason TEXT NOT NULL DEFAULT '',
            keep_content INTEGER NOT NULL DEFAULT 0,
            removed TEXT NOT NULL DEFAULT '{}',
            created_at TEXT NOT NULL
        )""",
        """CREATE TABLE deliveries (
            id INTEGER PRIMARY KEY,
            activity_id TEXT NOT NULL,
            inbox TEXT NOT NULL,
            host TEXT NOT NULL,
            body BLOB NOT NULL,
            status TEXT NOT NULL DEFAULT 'pending'
                CHECK (status IN ('pending', 'done', 'failed', 'gone', 'cancelled')),
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at TEXT NOT NULL,
            locked_until TEXT,
            last_status INTEGER,
            last_error TEXT,
            created_at TEXT NOT NULL,
            finished_at TEXT,
            UNIQUE (activity_id, inbox)
        )""",
        "CREATE INDEX deliveries_due ON deliveries(status, next_attempt_at)",
        "CREATE INDEX deliveries_host ON deliveries(host, status)",
        """CREATE TABLE hosts (
            host TEXT PRIMARY KEY,
            consecutive_failures INTEGER NOT NULL DEFAULT 0,
            paused_until TEXT,
            failure_days TEXT NOT NULL DEFAULT '[]',
            unavailable_since TEXT,
            last_success_at TEXT
        )""",
        """CREATE TABLE processed_activities (
            ap_id TEXT PRIMARY KEY,
            received_at TEXT NOT NULL
        )""",
        """CREATE TABLE reports (
            id INTEGER PRIMARY KEY,
            ap_id TEXT UNIQUE,
            actor_id INTEGER REFERENCES actors(id) ON DELETE SET NULL,
            content TEXT NOT NULL DEFAULT '',
            object_ids TEXT NOT NULL DEFAULT '[]',
            created_at TEXT NOT NULL
        )""",
    ],
    # 2: the reader form's rate limit counts recent comments per client key.
    [
        "CREATE INDEX comments_client ON comments(client_key, created_at)",
    ],
    # 3: a per-post counter that moves whenever what its public thread shows may have
    # changed (its comments, their reactions and authors, the post itself), so a cached
    # thread stays valid while unrelated rows (deliveries, other posts) change.
    [
        "ALTER TABLE posts ADD COLUMN thread_version INTEGER NOT NULL DEFAULT 0",
        """CREATE TRIGGER thread_version_comment_insert AFTER INSERT ON comments BEGIN
            UPDATE posts SET thread_version = thread_version + 1 WHERE id = NEW.post_id;
        END""",
        """CREATE TRIGGER thread_version_comment_update AFTER UPDATE ON comments BEGIN
            UPDATE posts SET thread_version = thread_version + 1
            WHERE id IN (NEW.post_id, OLD.post_id);
        END""",
        """CREATE TRIGGER thread_version_comment_delete AFTER DELETE ON comments BEGIN
            UPDATE posts SET thread_version = thread_version + 1 WHERE id = OLD.post_id;
        END""",
        """CREATE TRIGGER thread_version_reaction_insert AFTER INSERT ON reactions BEGIN
            UPDATE posts SET thread_version = thread_version + 1 WHERE id = NEW.post_id;
        END""",
        """CREATE TRIGGER thread_version_reaction_delete AFTER DELETE ON reactions BEGIN
            UPDATE posts SET thread_version = thread_version + 1 WHERE id = OLD.post_id;
        END""",
        """CREATE TRIGGER thread_version_actor_update
            AFTER UPDATE OF username, domain, name, url, icon ON actors BEGIN
            UPDATE posts SET thread_version = thread_version + 1 WHERE id IN (
                SELECT post_id FROM comments WHERE actor_id = NEW.id
                UNION SELECT post_id FROM reactions WHERE actor_id = NEW.id);
        END""",
        """CREATE TRIGGER thread_version_post_update
            AFTER UPDATE OF slug, permalink, ap_id, title, summary, published_at, deleted_at
            ON posts BEGIN
            UPDATE posts SET thread_version = thread_version + 1 WHERE id = NEW.id;
        END""",
    ],
    # 4: inbox records are pruned. A tombstone remembers whether its id was a comment of
    # ours (kept forever: a replayed Create must never bring it back) or an object we never
    # stored (forgotten after a while); rows from before this step are kept. Processed
    # activity ids are pruned by age.
    [
        "ALTER TABLE tombstones ADD COLUMN had_comment INTEGER NOT NULL DEFAULT 1",
        "CREATE INDEX tombstones_unknown ON tombstones(deleted_at) WHERE had_comment = 0",
        "CREATE INDEX processed_activities_received ON processed_activities(received_at)",
    ],
    # 5: each comment's part of the thread JSON, rendered once and kept ("cooked"), so a
    # thread is assembled from stored bytes. Triggers clear a fragment whenever what it
    # shows may change (the comment, its reactions, its author or a reacting actor), so no
    # write path has to know about them; readers render cleared and missing ones again.
    # `gen` moves with every clearing: a fragment rendered before a change is stored only
    # if its gen is still the one it was read with (per comment, so a busy thread's other
    # changes never hold it back). `key` names the code and settings that rendered it. The
    # covering index lets a thread's shape be read without touching the (wide) comment
    # rows; it starts with comments_post's columns. Step 3's actor trigger moved the stamp
    # on every refetch of an actor: now only when what a thread shows of them changed.
    [
        """CREATE TABLE comment_fragments (
            comment_id INTEGER PRIMARY KEY REFERENCES comments(id) ON DELETE CASCADE,
            key INTEGER NOT NULL DEFAULT 0,
            gen INTEGER NOT NULL DEFAULT 0,
            body BLOB
        )""",
        "CREATE INDEX comments_thread ON comments(post_id, published_at, id, parent_id, status, "
        "visibility)",
        "DROP INDEX comments_post",
        # The post's own likes and boosts are counted on every rendering of its thread.
        "CREATE INDEX reactions_post_level ON reactions(post_id, type) WHERE comment_id IS NULL",
        *[f"""CREATE TRIGGER fragment_{name} AFTER {event}{when} BEGIN
            UPDATE comment_fragments SET body = NULL, gen = gen + 1 WHERE comment_id IN ({ids});
            INSERT OR IGNORE INTO comment_fragments (comment_id, gen) SELECT id, 1 FROM comments
                WHERE id IN ({ids});
        END""" for name, event, when, ids in [
            ("comment_update", "UPDATE ON comments", "", "OLD.id, NEW.id"),
            ("reaction_insert", "INSERT ON reactions", " WHEN NEW.comment_id IS NOT NULL",
             "NEW.comment_id"),
            ("reaction_update", "UPDATE ON reactions", "", "OLD.comment_id, NEW.comment_id"),
            ("reaction_delete", "DELETE ON reactions", " WHEN OLD.comment_id IS NOT NULL",
             "OLD.comment_id"),
            # An actor is upserted on every refetch: only a change of what a thread shows.
            ("actor_update", "UPDATE ON actors", _ACTOR_SHOWN,
             "SELECT id FROM comments WHERE actor_id = NEW.id "
             "UNION SELECT comment_id FROM reactions WHERE actor_id = NEW.id"),
        ]],
        # Deletes cascade; these two also hold where foreign keys are off (a plain sqlite3
        # shell) and a new comment reuses a deleted one's id.
        """CREATE TRIGGER fragment_comment_delete AFTER DELETE ON comments BEGIN
            DELETE FROM comment_fragments WHERE comment_id = OLD.id;
        END""",
        """CREATE TRIGGER fragment_comment_insert AFTER INSERT ON comments BEGIN
            DELETE FROM comment_fragments WHERE comment_id = NEW.id;
        END""",
        "DROP TRIGGER thread_version_actor_update",
        f"""CREATE TRIGGER thread_version_actor_update AFTER UPDATE ON actors{_ACTOR_SHOWN} BEGIN
            UPDATE posts SET thread_version = thread_version + 1 WHERE id IN (
                SELECT post_id FROM comments WHERE actor_id = NEW.id
                UNION SELECT post_id FROM reactions WHERE actor_id = NEW.id);
        END""",
    ],
    # 6: jobs to one inbox go out in the order they were queued (a claim looks for an
    # older job to the same inbox that is due or in flight).
    [
        "CREATE INDEX deliveries_inbox_pending ON deliveries(inbox, id) "
        "WHERE status = 'pending'",
    ],
    # 7: counters of the changes that in-memory copies follow (senders' keys, blocks,
    # hosts with delivery marks), moved by triggers, so every process on the database (the
    # HTTP workers, the CLI) sees the others' changes by reading one small table.
    [
        """CREATE TABLE change_counters (
            name TEXT PRIMARY KEY,
            n INTEGER NOT NULL DEFAULT 0
        ) WITHOUT ROWID""",
        "INSERT INTO change_counters (name) VALUES ('actors'), ('blocks'), ('hosts')",
        *[f"""CREATE TRIGGER count_{table}_{event.lower()} AFTER {event} ON {table}{when} BEGIN
            UPDATE change_counters SET n = n + 1 WHERE name = '{counter}';
        END""" for table, counter, when_update in [
            ("actors", "actors", ""),
            ("actor_keys", "actors", ""),
            ("domain_blocks", "blocks", ""),
            ("actor_blocks", "blocks", ""),
            # Every delivery writes its host's row; only the marks are followed.
            ("hosts", "hosts", " WHEN OLD.unavailable_since IS NOT NEW.unavailable_since"
                               " OR OLD.failure_days IS NOT NEW.failure_days"),
        ] for event, when in [("INSERT", ""), ("UPDATE", when_update), ("DELETE", "")]],
    ],
    # 8: the blog's own feeds ([blog] feeds): when each was first seen (entries older than
    # that are imported without being announced), its validators for conditional GETs and
    # its failure streak; and which post each entry (by feed and guid/id) became, with a
    # fingerprint of what the feed said of it, so a changed entry is noticed.
    [
        """CREATE TABLE blog_feeds (
            url TEXT PRIMARY KEY,
            added_at TEXT NOT NULL,
            polled_at TEXT,
            etag TEXT,
            last_modified TEXT,
            failures INTEGER NOT NULL DEFAULT 0,
            last_error TEXT,
            next_poll_at TEXT NOT NULL
        )""",
        """CREATE TABLE feed_entries (
            feed_url TEXT NOT NULL,
            entry_id TEXT NOT NULL,
            post_id INTEGER NOT NULL REFERENCES posts(id) ON DELETE CASCADE,
            fingerprint TEXT NOT NULL,
            seen_at TEXT NOT NULL,
            PRIMARY KEY (feed_url, entry_id)
        )""",
        "CREATE INDEX feed_entries_post ON feed_entries(post_id)",
        # The Atom feed of the blog's comments reads the newest ones first.
        "CREATE INDEX comments_published ON comments(published_at)",
    ],
    # 9: word of new comments and the spam check. A delivery job has a kind: an
    # ActivityPub activity (every job so far), a webhook event, a mail, or a call to the
    # spam service; all share the queue's leases, retries and listing. Readers who asked
    # to hear of replies (an address confirmed once, double opt-in, until it unsubscribes),
    # one-click moderation links already used, comments waiting for the owner's digest,
    # and what the spam service said of a comment (with what it was asked, for reporting
    # ham or spam when the owner decides).
    [
        "ALTER TABLE deliveries ADD COLUMN kind TEXT NOT NULL DEFAULT 'activity' "
        "CHECK (kind IN ('activity', 'webhook', 'mail', 'spam'))",
        """CREATE TABLE subscribers (
            id INTEGER PRIMARY KEY,
            email TEXT NOT NULL UNIQUE,
            created_at TEXT NOT NULL,
            confirm_sent_at TEXT,
            confirmed_at TEXT,
            unsubscribed_at TEXT
        )""",
        """CREATE TABLE subscriptions (
            comment_id INTEGER PRIMARY KEY REFERENCES comments(id) ON DELETE CASCADE,
            subscriber_id INTEGER NOT NULL REFERENCES subscribers(id) ON DELETE CASCADE,
            created_at TEXT NOT NULL
        )""",
        "CREATE INDEX subscriptions_subscriber ON subscriptions(subscriber_id)",
        """CREATE TABLE used_links (
            nonce TEXT PRIMARY KEY,
            used_at TEXT NOT NULL,
            expires_at TEXT NOT NULL
        )""",
        """CREATE TABLE digest_items (
            comment_id INTEGER PRIMARY KEY REFERENCES comments(id) ON DELETE CASCADE,
            created_at TEXT NOT NULL
        )""",
        """CREATE TABLE spam_checks (
            comment_id INTEGER PRIMARY KEY REFERENCES comments(id) ON DELETE CASCADE,
            verdict TEXT NOT NULL CHECK (verdict IN ('spam', 'ham', 'unknown', 'queued')),
            detail TEXT NOT NULL DEFAULT '',
            params TEXT NOT NULL DEFAULT '{}',
            checked_at TEXT NOT NULL,
            reported TEXT
        )""",
    ],
    # 10: remote images (avatars, custom emoji, attachment thumbnails) fetched once and served
    # by us. A row per (source URL, kind) says whether its re-encoded files exist and under
    # which name (`digest`, from the source's bytes); `media_uses` says which comment or
    # actor shows which emoji (by shortcode) or thumbnail, so a change of an image clears
    # exactly the fragments that show it. Avatars are found by actors.icon (indexed).
    [
        """CREATE TABLE media (
            id INTEGER PRIMARY KEY,
            url TEXT NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ('avatar', 'emoji', 'thumbnail')),
            status TEXT NOT NULL DEFAULT 'pending'
                CHECK (status IN ('pending', 'ready', 'refused', 'failed')),
            digest TEXT,
            ext TEXT,
            width INTEGER,
            height INTEGER,
            reason TEXT,
            attempts INTEGER NOT NULL DEFAULT 0,
            next_try_at TEXT,
            lease_until TEXT,
            fetched_at TEXT,
            created_at TEXT NOT NULL,
            UNIQUE (url, kind)
        )""",
        "CREATE INDEX media_digest ON media(digest) WHERE digest IS NOT NULL",
        """CREATE TABLE media_uses (
            media_id INTEGER NOT NULL REFERENCES media(id) ON DELETE CASCADE,
            comment_id INTEGER REFERENCES comments(id) ON DELETE CASCADE,
            actor_id INTEGER REFERENCES actors(id) ON DELETE CASCADE,
            role TEXT NOT NULL CHECK (role IN ('emoji', 'thumbnail')),
            shortcode TEXT NOT NULL DEFAULT '',
            position INTEGER NOT NULL DEFAULT 0
        )""",
        "CREATE INDEX media_uses_media ON media_uses(media_id)",
        "CREATE INDEX media_uses_comment ON media_uses(comment_id) WHERE comment_id IS NOT NULL",
        "CREATE INDEX media_uses_actor ON media_uses(actor_id) WHERE actor_id IS NOT NULL",
        "CREATE INDEX actors_icon ON actors(icon) WHERE icon IS NOT NULL",
        # Step 5's trigger inserted missing fragment rows with INSERT OR IGNORE, but a
        # trigger takes the conflict policy of the statement that fired it: the actors'
        # upsert (ON CONFLICT DO UPDATE) made it ABORT, so a profile update that changed a
        # name or an avatar failed once any of the actor's comments had a stored fragment.
        "DROP TRIGGER fragment_actor_update",
        f"""CREATE TRIGGER fragment_actor_update AFTER UPDATE ON actors{_ACTOR_SHOWN} BEGIN
            UPDATE comment_fragments SET body = NULL, gen = gen + 1 WHERE comment_id IN (
                SELECT id FROM comments WHERE actor_id = NEW.id
                UNION SELECT comment_id FROM reactions WHERE actor_id = NEW.id);
            INSERT INTO comment_fragments (comment_id, gen) SELECT id, 1 FROM comments
                WHERE id IN (SELECT id FROM comments WHERE actor_id = NEW.id
                             UNION SELECT comment_id FROM reactions WHERE actor_id = NEW.id)
                AND id NOT IN (SELECT comment_id FROM comment_fragments);
        END""",
    ],
    # 11: comments brought in from another system (WordPress, Disqus, Isso, another
    # fedcomments) keep their key there: the system, the site it served and its comment id,
    # so importing the same export again changes nothing. `import_parent` holds the key (a
    # JSON [source, site, id]) of a parent not imported yet (files may list replies before
    # their parents); it is cleared once the parent is found.
    [
        "ALTER TABLE comments ADD COLUMN import_source TEXT",
        "ALTER TABLE comments ADD COLUMN import_site TEXT",
        "ALTER TABLE comments ADD COLUMN import_id TEXT",
        "ALTER TABLE comments ADD COLUMN import_parent TEXT",
        "CREATE UNIQUE INDEX comments_import ON comments(import_source, import_site, import_id) "
        "WHERE import_id IS NOT NULL",
        "CREATE INDEX comments_import_parent ON comments(import_parent) "
        "WHERE import_parent IS NOT NULL",
    ],
    # 12: fediverse etiquette. Actors: FEP-5feb's indexable, Mastodon's discoverable, the
    # hashtags of their profile (opt-out tags such as #nobot). Comments: why a public reply
    # is kept for the owner only (`withheld`) and the audience its author gave it
    # (`addressed`, while withheld); where a remote reply's conversation can be read (a
    # FEP-7888 `context` collection, its `replies` collection and the size it gave).
    # Replies known from those collections but not imported, with why; remote context
    # collections read; when each remote reply was last re-fetched and is next due. A
    # thread shows whether an author is indexable, so the actor triggers fire on that too
    # (step 10's fragment trigger, with its plain INSERT, kept otherwise as it is).
    [
        "ALTER TABLE actors ADD COLUMN indexable INTEGER",
        "ALTER TABLE actors ADD COLUMN discoverable INTEGER",
        "ALTER TABLE actors ADD COLUMN profile_tags TEXT NOT NULL DEFAULT '[]'",
        "ALTER TABLE comments ADD COLUMN withheld TEXT",
        "ALTER TABLE comments ADD COLUMN addressed TEXT",
        # Apart from `comments` too: written with each reply and during backfill, neither
        # of which changes what a thread shows.
        """CREATE TABLE comment_links (
            comment_id INTEGER PRIMARY KEY REFERENCES comments(id) ON DELETE CASCADE,
            context TEXT,
            replies_url TEXT,
            replies_total INTEGER
        )""",
        # Kept apart from `comments`: a check must not move the thread's stamp. The
        # recheck pass schedules replies stored since its last pass (nothing is added to
        # the inbox's writes); a deleted one needs no check.
        """CREATE TABLE comment_checks (
            comment_id INTEGER PRIMARY KEY REFERENCES comments(id) ON DELETE CASCADE,
            checked_at TEXT,
            next_check_at TEXT NOT NULL
        )""",
        "CREATE INDEX comment_checks_due ON comment_checks(next_check_at)",
        """CREATE TRIGGER comment_checks_deleted AFTER UPDATE OF status ON comments
            WHEN NEW.status = 'deleted' BEGIN
            DELETE FROM comment_checks WHERE comment_id = NEW.id;
        END""",
        """CREATE TABLE reply_gaps (
            post_id INTEGER NOT NULL REFERENCES posts(id) ON DELETE CASCADE,
            ap_id TEXT NOT NULL,
            reason TEXT NOT NULL,
            source TEXT NOT NULL,
            seen_at TEXT NOT NULL,
            PRIMARY KEY (post_id, ap_id)
        )""",
        """CREATE TABLE context_reads (
            url TEXT PRIMARY KEY,
            post_id INTEGER NOT NULL REFERENCES posts(id) ON DELETE CASCADE,
            items INTEGER NOT NULL DEFAULT 0,
            read_at TEXT NOT NULL
        )""",
        "DROP TRIGGER fragment_actor_update",
        """CREATE TRIGGER fragment_actor_update AFTER UPDATE ON actors
            WHEN OLD.ap_id IS NOT NEW.ap_id OR OLD.username IS NOT NEW.username
            OR OLD.domain IS NOT NEW.domain OR OLD.name IS NOT NEW.name OR OLD.url IS NOT NEW.url
            OR OLD.icon IS NOT NEW.icon OR OLD.indexable IS NOT NEW.indexable BEGIN
            UPDATE comment_fragments SET body = NULL, gen = gen + 1 WHERE comment_id IN (
                SELECT id FROM comments WHERE actor_id = NEW.id
                UNION SELECT comment_id FROM reactions WHERE actor_id = NEW.id);
            INSERT INTO comment_fragments (comment_id, gen) SELECT id, 1 FROM comments
                WHERE id IN (SELECT id FROM comments WHERE actor_id = NEW.id
                             UNION SELECT comment_id FROM reactions WHERE actor_id = NEW.id)
                AND id NOT IN (SELECT comment_id FROM comment_fragments);
        END""",
        "DROP TRIGGER thread_version_actor_update",
        """CREATE TRIGGER thread_version_actor_update AFTER UPDATE ON actors
            WHEN OLD.ap_id IS NOT NEW.ap_id OR OLD.username IS NOT NEW.username
            OR OLD.domain IS NOT NEW.domain OR OLD.name IS NOT NEW.name OR OLD.url IS NOT NEW.url
            OR OLD.icon IS NOT NEW.icon OR OLD.indexable IS NOT NEW.indexable BEGIN
            UPDATE posts SET thread_version = thread_version + 1 WHERE id IN (
                SELECT post_id FROM comments WHERE actor_id = NEW.id
                UNION SELECT post_id FROM reactions WHERE actor_id = NEW.id);
        END""",
    ],
    # 13: an actor's inbox and shared inbox live on its own host (services/actors ignores
    # others when it stores an actor); those stored before, on another host, are forgotten.
    [_foreign_inbox("inbox"), _foreign_inbox("shared_inbox")],
    # 14: the thread stamp, and the public ETag made of it, moves only for what the public
    # thread shows: a followers-only or direct reply, a comment held for moderation, or a
    # new name of someone who only wrote those, leaves it (and every validator) unchanged.
    [
        *[f"DROP TRIGGER thread_version_{name}" for name in (
            "comment_insert", "comment_update", "comment_delete", "reaction_insert",
            "reaction_delete", "actor_update")],
        f"""CREATE TRIGGER thread_version_comment_insert AFTER INSERT ON comments
            WHEN {_shown("NEW")} BEGIN {_bump("NEW.post_id")} END""",
        f"""CREATE TRIGGER thread_version_comment_update AFTER UPDATE ON comments
            WHEN {_shown("OLD")} OR {_shown("NEW")} BEGIN
            {_bump("NEW.post_id, OLD.post_id")} END""",
        f"""CREATE TRIGGER thread_version_comment_delete AFTER DELETE ON comments
            WHEN {_shown("OLD")} BEGIN {_bump("OLD.post_id")} END""",
        f"""CREATE TRIGGER thread_version_reaction_insert AFTER INSERT ON reactions
            WHEN {_reaction_shown("NEW")} BEGIN {_bump("NEW.post_id")} END""",
        f"""CREATE TRIGGER thread_version_reaction_delete AFTER DELETE ON reactions
            WHEN {_reaction_shown("OLD")} BEGIN {_bump("OLD.post_id")} END""",
        # What a thread shows of an actor: step 12's list (indexable included).
        f"""CREATE TRIGGER thread_version_actor_update AFTER UPDATE ON actors{_ACTOR_SHOWN}
            OR OLD.indexable IS NOT NEW.indexable BEGIN
            {_bump(f"SELECT post_id FROM comments c WHERE c.actor_id = NEW.id AND {_shown('c')} "
                   f"UNION SELECT r.post_id FROM reactions r WHERE r.actor_id = NEW.id "
                   f"AND {_reaction_shown('r')}")} END""",
    ],
    # 15: housekeeping clears the bodies of sent mails, webhook events and spam reports
    # (readers' addresses, IPs, comment text) and deletes those jobs once finished long
    # enough; this index finds them without reading the ActivityPub deliveries.
    [
        "CREATE INDEX deliveries_notices ON deliveries(status, finished_at) "
        "WHERE kind != 'activity'",
    ],
    # 16: each reader subscription is confirmed by its own link, not the address once for
    # all: otherwise anyone could tick the box with a confirmed address on their own
    # comment and have replies to it, in words they chose, mailed there. Subscriptions of
    # addresses confirmed so far stay confirmed.
    [
        "ALTER TABLE subscriptions ADD COLUMN confirm_sent_at TEXT",
        "ALTER TABLE subscriptions ADD COLUMN confirmed_at TEXT",
        "UPDATE subscriptions SET confirmed_at = (SELECT s.confirmed_at FROM subscribers s "
        "WHERE s.id = subscriptions.subscriber_id)",
    ],
    # 17: the source keys of imported comments deleted here, so that importing a newer
    # export of the same blog (which still holds them) never brings them back.
    [
        """CREATE TABLE import_tombstones (
            source TEXT NOT NULL,
            site TEXT NOT NULL,
            id TEXT NOT NULL,
            deleted_at TEXT NOT NULL,
            PRIMARY KEY (source, site, id)
        )""",
    ],
]

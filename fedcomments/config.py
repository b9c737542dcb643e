"""TOML configuration → frozen Settings; every key validated with errors that name file and key."""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
import types
import typing
from dataclasses import dataclass, field
from email.errors import HeaderParseError
from email.headerregistry import Address
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fedcomments.errors import ConfigError
from fedcomments.names import HostError, canonical_host

ENV_VAR = "FEDCOMMENTS_CONFIG"
DEFAULT_BASE_URL = "http://127.0.0.1:8080"


#: More HTTP processes than this only fight over SQLite's single write lock.
MAX_WORKERS = 32


@dataclass(frozen=True)
class ServerSettings:
    base_url: str = DEFAULT_BASE_URL
    host: str = "127.0.0.1"
    port: int = 8080
    #: Processes serving HTTP on the port (SO_REUSEPORT, Linux); the first one also
    #: runs the delivery worker and housekeeping.
    workers: int = 1
    trusted_proxies: tuple[str, ...] = ()
    blog_origins: tuple[str, ...] = ()


@dataclass(frozen=True)
class ActorSettings:
    username: str = "blog"
    name: str = "Blog"
    summary: str = ""
    type: str = "Person"
    url: str = ""
    icon: str = ""
    discoverable: bool = True
    indexable: bool = True


@dataclass(frozen=True)
class StorageSettings:
    database: str = "fedcomments.sqlite3"


@dataclass(frozen=True)
class FederationSettings:
    allow_private_addresses: bool = False
    max_body_bytes: int = 1 << 20
    signature_scheme: str = "cavage"
    double_knock: bool = False
    delivery_concurrency: int = 32
    delivery_per_host: int = 4
    delivery_lease: int = 60
    delivery_worker: bool = True
    #: Profile hashtags (case-folded, without "#") by which authors keep their replies off
    #: the blog: their replies are kept for the owner only.
    opt_out_tags: tuple[str, ...] = ("nobot", "noblog")
    #: Stored remote replies re-fetched per hour by housekeeping, in total and per server;
    #: 0 in total turns the periodic recheck off.
    recheck_per_hour: int = 60
    recheck_per_host_per_hour: int = 10
    #: Fetch replies that never reached us (context and replies collections) when a reply
    #: arrives whose parent or replies we do not hold; and how many remote GETs one run
    #: may make.
    backfill: bool = True
    backfill_max_fetches: int = 100


@dataclass(frozen=True)
class ModerationSettings:
    policy: str = "first-time"


@dataclass(frozen=True)
class CommentsSettings:
    """The reader comment form and the public thread (JSON API, page, widget)."""

    rate_limit_per_minute: int = 2
    max_name_length: int = 100
    max_text_length: int = 10_000
    max_links: int = 2
    min_form_seconds: int = 3
    form_max_age_hours: int = 48
    edit_window_minutes: int = 15
    max_depth: int = 4
    cache_max_age: int = 10
    #: The privacy notice under the form: a link and/or a short text (both empty: none).
    privacy_url: str = ""
    privacy_text: str = ""


@dataclass(frozen=True)
class NotifySettings:
    """Word of new comments: mail to the owner and to readers, and a webhook."""

    #: SMTP server; empty: no mail at all.
    smtp_host: str = ""
    #: 0: 465 with `tls`, 587 with `starttls`, else 25.
    smtp_port: int = 0
    smtp_user: str = ""
    smtp_password: str = ""
    starttls: bool = False
    tls: bool = False
    #: The `from` key (a Python keyword): the sender address; empty: fedcomments@HOST.
    sender: str = ""
    #: The owner's address; empty: the owner gets no mail (readers still may).
    to: str = ""
    #: Published comments as one mail each ("off") or collected ("hourly", "daily").
    digest: str = "off"
    webhook_url: str = ""
    webhook_secret: str = ""
    #: Let the webhook reach a loopback or private address (a bridge on the same machine).
    webhook_allow_private: bool = False

    @property
    def mail(self) -> bool:
        return bool(self.smtp_host)

    @property
    def port(self) -> int:
        return self.smtp_port or (465 if self.tls else 587 if self.starttls else 25)


#: Akismet's own endpoint; any service that speaks its API works.
AKISMET_URL = "https://rest.akismet.com"


@dataclass(frozen=True)
class SpamSettings:
    """An Akismet-compatible spam check; off unless a key is given."""

    akismet_key: str = ""
    akismet_url: str = AKISMET_URL
    #: Check fediverse replies too (reader comments are always checked when a key is set).
    check_fediverse: bool = False
    #: Seconds a check may take before the moderation policy decides alone.
    timeout: float = 5.0

    @property
    def enabled(self) -> bool:
        return bool(self.akismet_key)


@dataclass(frozen=True)
class MediaSettings:
    """Remote avatars, emoji and image thumbnails: fetched once and served by us."""

    #: Serve remote images from this server (readers contact no one else); False links
    #: to them where they are.
    proxy: bool = True
    #: Megabytes of re-encoded images kept on disk (least recently used go first).
    cache_max_mb: int = 256
    #: Where they are kept; "" is a directory beside the SQLite file (DATABASE-media).
    directory: str = ""


@dataclass(frozen=True)
class FeedSettings:
    """One feed of the blog ([blog] feeds): its URL, and whether it may be on a private
    address (a blog on the same machine or LAN) without `allow_private_addresses`."""

    url: str
    allow_private: bool = False


@dataclass(frozen=True)
class BlogSettings:
    """The blog's own feeds, polled for new and changed posts."""

    feeds: tuple[FeedSettings, ...] = ()
    #: Seconds between two polls of a feed.
    poll_interval: int = 300


@dataclass(frozen=True)
class AdminSettings:
    token: str = ""


@dataclass(frozen=True)
class LoggingSettings:
    level: str = "info"
    json: bool = False


@dataclass(frozen=True)
class Settings:
    server: ServerSettings = field(default_factory=ServerSettings)
    actor: ActorSettings = field(default_factory=ActorSettings)
    storage: StorageSettings = field(default_factory=StorageSettings)
    federation: FederationSettings = field(default_factory=FederationSettings)
    moderation: ModerationSettings = field(default_factory=ModerationSettings)
    comments: CommentsSettings = field(default_factory=CommentsSettings)
    media: MediaSettings = field(default_factory=MediaSettings)
    admin: AdminSettings = field(default_factory=AdminSettings)
    blog: BlogSettings = field(default_factory=BlogSettings)
    notify: NotifySettings = field(default_factory=NotifySettings)
    spam: SpamSettings = field(default_factory=SpamSettings)
    logging: LoggingSettings = field(default_factory=LoggingSettings)
    #: Where the settings came from (a path, or "<defaults>"), for messages.
    source: str = "<defaults>"

    @property
    def database_path(self) -> Path:
        return Path(self.storage.database)

    @property
    def media_path(self) -> Path:
        """The directory of cached images: `[media] directory`, or DATABASE-media beside
        the SQLite file."""
        if self.media.directory:
            return Path(self.media.directory)
        db = self.database_path
        return db.with_name(db.name + "-media")


_CHOICES: dict[tuple[str, str], tuple[str, ...]] = {
    ("actor", "type"): ("Person", "Service", "Application", "Group", "Organization"),
    ("federation", "signature_scheme"): ("cavage", "rfc9421"),
    ("moderation", "policy"): ("none", "first-time", "all"),
    ("logging", "level"): ("debug", "info", "warning", "error"),
    ("notify", "digest"): ("off", "hourly", "daily"),
}

#: Config keys whose field has another name (`from` is a Python keyword).
_FIELD_OF: dict[tuple[str, str], str] = {("notify", "from"): "sender"}


def _section_types() -> dict[str, type]:
    hints = typing.get_type_hints(Settings)
    return {f.name: hints[f.name] for f in dataclasses.fields(Settings) if f.name != "source"}


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is tuple:
        return "a list of strings"
    return {str: "a string", int: "an integer", bool: "true or false", float: "a number"}.get(
        tp, str(tp)
    )


def _coerce(value: Any, tp: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    if origin is tuple:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{where}: expected {_type_name(tp)}, got {value!r}")
        return tuple(value)
    if origin is types.UnionType:  # pragma: no cover - no optional keys yet
        raise ConfigError(f"{where}: unsupported type")
    # bool is a subclass of int: refuse `port = true`.
    if tp is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise ConfigError(f"{where}: expected {_type_name(tp)}, got {value!r}")
    if tp is float and (isinstance(value, bool) or not isinstance(value, int | float)):
        raise ConfigError(f"{where}: expected {_type_name(tp)}, got {value!r}")
    if tp in (str, bool) and not isinstance(value, tp):
        raise ConfigError(f"{where}: expected {_type_name(tp)}, got {value!r}")
    return float(value) if tp is float else value


def _validate_base_url(url: str, where: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{where}: must be an absolute http(s) URL like https://comments.example.org")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ConfigError(f"{where}: must not contain credentials, a query or a fragment")
    if parts.path not in ("", "/"):
        raise ConfigError(f"{where}: must be the root of a host (no path), got {parts.path!r}")
    try:
        port = parts.port
    except ValueError as exc:
        raise ConfigError(f"{where}: malformed port") from exc
    # Our ids are minted from it, and every id that comes back is read with its host in
    # one spelling (lower case, punycode): ours must be spelled that way too.
    try:
        host = canonical_host(parts.hostname)
    except HostError as exc:
        raise ConfigError(f"{where}: {parts.hostname!r} is not a host name ({exc})") from None
    host = f"[{host}]" if ":" in host else host
    return f"{parts.scheme}://{host}" + (f":{port}" if port is not None else "")


def _hashtags(tags: tuple[str, ...], where: str) -> tuple[str, ...]:
    """Hashtags as compared with profiles: without "#", case-folded, each once."""
    found: dict[str, None] = {}
    for tag in tags:
        name = tag.strip().removeprefix("#")
        if not name or len(name) > 100 or not all(c.isalnum() or c == "_" for c in name):
            raise ConfigError(f"{where}: {tag!r} is not a hashtag (letters, digits and _)")
        found[name.casefold()] = None
    return tuple(found)


#: Polling a blog's feed more often than this is impolite to its host.
MIN_POLL_INTERVAL = 30


def _feeds(raw: Any, where: str) -> tuple[FeedSettings, ...]:
    """`feeds`: URLs, or tables `{ url = "…", allow_private = true }`."""
    if not isinstance(raw, list):
        raise ConfigError(f"{where}: expected a list of feed URLs, got {raw!r}")
    feeds: dict[str, FeedSettings] = {}
    for item in raw:
        allow_private = False
        if isinstance(item, dict):
            unknown = set(item) - {"url", "allow_private"}
            if unknown:
                raise ConfigError(f"{where}: unknown feed option {sorted(unknown)[0]!r}")
            allow_private = item.get("allow_private", False)
            if not isinstance(allow_private, bool):
                raise ConfigError(f"{where}: allow_private must be true or false")
            item = item.get("url")
        if not isinstance(item, str):
            raise ConfigError(f"{where}: expected a feed URL, got {item!r}")
        parts = urlsplit(item.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"{where}: {item!r} is not an absolute http(s) URL")
        if parts.username or parts.password:
            raise ConfigError(f"{where}: {item!r} must not contain credentials")
        url = item.strip()
        if url in feeds:
            raise ConfigError(f"{where}: {url} is listed twice")
        feeds[url] = FeedSettings(url, allow_private)
    return tuple(feeds.values())


def settings_from_mapping(data: dict[str, Any], source: str = "<defaults>") -> Settings:
    """Validate a parsed TOML mapping; unknown sections and keys are errors."""
    sections = _section_types()
    built: dict[str, Any] = {}
    for name, value in data.items():
        if name not in sections:
            raise ConfigError(f"{source}: unknown section [{name}]")
        if not isinstance(value, dict):
            raise ConfigError(f"{source}: [{name}] must be a table")
        cls = sections[name]
        hints = typing.get_type_hints(cls)
        renamed = {f for (section, _), f in _FIELD_OF.items() if section == name}
        known = {f.name for f in dataclasses.fields(cls)} - renamed
        kwargs: dict[str, Any] = {}
        for key, raw in value.items():
            where = f"{source}: [{name}] {key}"
            attr: str = _FIELD_OF.get((name, str(key)), str(key))
            if key not in known and attr == key:
                raise ConfigError(f"{source}: unknown key [{name}] {key}")
            if (name, key) == ("blog", "feeds"):
                kwargs[key] = _feeds(raw, where)
                continue
            coerced = _coerce(raw, hints[attr], where)
            choices = _CHOICES.get((name, key))
            if choices and coerced not in choices:
                raise ConfigError(f"{where}: must be one of {', '.join(choices)}; got {coerced!r}")
            kwargs[attr] = coerced
        built[name] = cls(**kwargs)
    server = built.get("server", ServerSettings())
    server_table = data.get("server", {})
    base_url = server.base_url
    if "base_url" not in server_table and ("host" in server_table or "port" in server_table):
        base_url = f"http://{server.host}:{server.port}"
    base_url = _validate_base_url(base_url, f"{source}: [server] base_url")
    if not 0 < server.port < 65536:
        raise ConfigError(f"{source}: [server] port: must be between 1 and 65535")
    if not 0 < server.workers <= MAX_WORKERS:
        raise ConfigError(f"{source}: [server] workers: must be between 1 and {MAX_WORKERS}")
    built["server"] = dataclasses.replace(server, base_url=base_url)
    actor = built.get("actor", ActorSettings())
    if not actor.username or not actor.username.replace("_", "a").isalnum():
        raise ConfigError(f"{source}: [actor] username: letters, digits and _ only")
    for key in ("url", "icon"):
        value = getattr(actor, key)
        if value and urlsplit(value).scheme not in ("http", "https"):
            raise ConfigError(f"{source}: [actor] {key}: must be an http(s) URL")
    fed = built.get("federation", FederationSettings())
    for key in ("max_body_bytes", "delivery_concurrency", "delivery_per_host", "delivery_lease",
                "recheck_per_host_per_hour", "backfill_max_fetches"):
        if getattr(fed, key) < 1:
            raise ConfigError(f"{source}: [federation] {key}: must be at least 1")
    if fed.recheck_per_hour < 0:
        raise ConfigError(f"{source}: [federation] recheck_per_hour: must be at least 0")
    built["federation"] = dataclasses.replace(
        fed, opt_out_tags=_hashtags(fed.opt_out_tags, f"{source}: [federation] opt_out_tags"))
    for key, value in dataclasses.asdict(built.get("comments", CommentsSettings())).items():
        floor = 0 if key in ("min_form_seconds", "cache_max_age") else 1
        if isinstance(value, int) and value < floor:
            raise ConfigError(f"{source}: [comments] {key}: must be at least {floor}")
    if built.get("media", MediaSettings()).cache_max_mb < 1:
        raise ConfigError(f"{source}: [media] cache_max_mb: must be at least 1")
    for origin in server.blog_origins:
        _validate_base_url(origin, f"{source}: [server] blog_origins")
    if built.get("blog", BlogSettings()).poll_interval < MIN_POLL_INTERVAL:
        raise ConfigError(f"{source}: [blog] poll_interval: must be at least "
                          f"{MIN_POLL_INTERVAL} seconds")
    _validate_notify(built.get("notify", NotifySettings()), source)
    _validate_spam(built.get("spam", SpamSettings()), source)
    privacy = built.get("comments", CommentsSettings()).privacy_url
    if privacy and urlsplit(privacy).scheme not in ("http", "https"):
        raise ConfigError(f"{source}: [comments] privacy_url: must be an http(s) URL")
    return Settings(**built, source=source)


_ADDRESS = re.compile(r"[^@\s<>,\"]+@[^@\s<>,\"]+")
_LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


def _parses(address: str) -> bool:
    """The email library reads `address` whole (else building every mail would fail)."""
    try:
        Address(addr_spec=address)
    except (ValueError, IndexError, HeaderParseError):
        return False
    return True


def _validate_notify(n: NotifySettings, source: str) -> None:
    where = f"{source}: [notify]"
    if not 0 <= n.smtp_port < 65536:
        raise ConfigError(f"{where} smtp_port: must be between 1 and 65535 (0: the default)")
    if n.tls and n.starttls:
        raise ConfigError(f"{where} tls: choose tls (port 465) or starttls (587), not both")
    for key, value in (("from", n.sender), ("to", n.to)):
        if value and not (_ADDRESS.fullmatch(value) and _parses(value)):
            raise ConfigError(f"{where} {key}: not one email address: {value!r}")
    if (n.to or n.digest != "off") and not n.smtp_host:
        raise ConfigError(f"{where} to: mail needs smtp_host")
    if n.smtp_password and not (n.tls or n.starttls) and (
            n.smtp_host.lower() not in _LOOPBACK_NAMES):
        raise ConfigError(f"{where} smtp_password: would cross the network in clear text; "
                          "set starttls or tls")
    if bool(n.smtp_user) != bool(n.smtp_password):
        raise ConfigError(f"{where} smtp_user: give both smtp_user and smtp_password, or neither")
    if n.webhook_url:
        parts = urlsplit(n.webhook_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"{where} webhook_url: must be an absolute http(s) URL")
        if not n.webhook_secret:
            raise ConfigError(f"{where} webhook_secret: a webhook needs a secret to sign with")


def _validate_spam(s: SpamSettings, source: str) -> None:
    parts = urlsplit(s.akismet_url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query:
        raise ConfigError(f"{source}: [spam] akismet_url: must be an http(s) URL like "
                          f"{AKISMET_URL}")
    if not 0 < s.timeout <= 60:
        raise ConfigError(f"{source}: [spam] timeout: must be between 0 and 60 seconds")


def load_settings(path: str | os.PathLike[str] | None = None) -> Settings:
    """Read settings from `path`, else $FEDCOMMENTS_CONFIG, else the embedded defaults."""
    if path is None:
        path = os.environ.get(ENV_VAR) or None
    if path is None:
        return Settings()
    p = Path(path)
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{p}: config file not found") from None
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read config file ({exc.strerror})") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{p}: config file is not UTF-8") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: invalid TOML: {exc}") from None
    # Absolute: mails to the owner name this file in commands run from anywhere.
    return settings_from_mapping(data, source=str(p.absolute()))

"""TOML configuration → frozen Settings; every key validated with errors that name file and key."""

from __future__ import annotations

import dataclasses
import os
import tomllib
import types
import typing
from dataclasses import dataclass, field
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
    admin: AdminSettings = field(default_factory=AdminSettings)
    logging: LoggingSettings = field(default_factory=LoggingSettings)
    #: Where the settings came from (a path, or "<defaults>"), for messages.
    source: str = "<defaults>"

    @property
    def database_path(self) -> Path:
        return Path(self.storage.database)


_CHOICES: dict[tuple[str, str], tuple[str, ...]] = {
    ("actor", "type"): ("Person", "Service", "Application", "Group", "Organization"),
    ("federation", "signature_scheme"): ("cavage", "rfc9421"),
    ("moderation", "policy"): ("none", "first-time", "all"),
    ("logging", "level"): ("debug", "info", "warning", "error"),
}


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
        known = {f.name for f in dataclasses.fields(cls)}
        kwargs: dict[str, Any] = {}
        for key, raw in value.items():
            where = f"{source}: [{name}] {key}"
            if key not in known:
                raise ConfigError(f"{source}: unknown key [{name}] {key}")
            coerced = _coerce(raw, hints[key], where)
            choices = _CHOICES.get((name, key))
            if choices and coerced not in choices:
                raise ConfigError(f"{where}: must be one of {', '.join(choices)}; got {coerced!r}")
            kwargs[key] = coerced
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
    for key in ("max_body_bytes", "delivery_concurrency", "delivery_per_host", "delivery_lease"):
        if getattr(fed, key) < 1:
            raise ConfigError(f"{source}: [federation] {key}: must be at least 1")
    for key, value in dataclasses.asdict(built.get("comments", CommentsSettings())).items():
        floor = 0 if key in ("min_form_seconds", "cache_max_age") else 1
        if value < floor:
            raise ConfigError(f"{source}: [comments] {key}: must be at least {floor}")
    for origin in server.blog_origins:
        _validate_base_url(origin, f"{source}: [server] blog_origins")
    return Settings(**built, source=source)


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
    return settings_from_mapping(data, source=str(p))

"""Configuration: defaults, validation errors naming file and key, CLI exit code 2."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from fedcomments.cli import main
from fedcomments.config import DEFAULT_BASE_URL, load_settings
from fedcomments.errors import ConfigError
from fedcomments.services import mail


def test_defaults_without_config(monkeypatch: pytest.MonkeyPatch) -> None:
    """Given no file and no env var, the embedded defaults apply."""
    monkeypatch.delenv("FEDCOMMENTS_CONFIG", raising=False)
    s = load_settings()
    assert s.server.base_url == DEFAULT_BASE_URL == "http://127.0.0.1:8080"
    assert (s.server.host, s.server.port) == ("127.0.0.1", 8080)
    assert s.storage.database == "fedcomments.sqlite3"
    assert s.actor.type == "Person" and s.actor.username == "blog"
    assert s.federation.allow_private_addresses is False


def test_env_var_names_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Given FEDCOMMENTS_CONFIG, the file it names is read."""
    cfg = tmp_path / "c.toml"
    cfg.write_text('[server]\nbase_url = "https://Comments.Example.org/"\n[actor]\nname = "X"\n')
    monkeypatch.setenv("FEDCOMMENTS_CONFIG", str(cfg))
    s = load_settings()
    assert s.server.base_url == "https://comments.example.org"
    assert s.actor.name == "X"


def test_host_and_port_derive_base_url(tmp_path: Path) -> None:
    """Given only host and port, base_url follows them."""
    cfg = tmp_path / "c.toml"
    cfg.write_text('[server]\nhost = "127.0.0.1"\nport = 9000\n')
    assert load_settings(cfg).server.base_url == "http://127.0.0.1:9000"


def test_base_url_host_is_spelled_as_incoming_ids_are(tmp_path: Path) -> None:
    """Given a base_url with a Unicode, capitalised host, then it is kept in the one spelling
    every id that reaches us is read in (lower case, punycode), so our ids still match;
    a host that is none is refused naming the key."""
    cfg = tmp_path / "c.toml"
    cfg.write_text('[server]\nbase_url = "https://Kommentare.Bücher.example:8443/"\n')
    assert load_settings(cfg).server.base_url == "https://kommentare.xn--bcher-kva.example:8443"
    cfg.write_text('[server]\nbase_url = "https://xn--zz.example"\n')
    with pytest.raises(ConfigError, match=r"\[server\] base_url: 'xn--zz.example' is not a host"):
        load_settings(cfg)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ('[server]\nport = "80"\n', "[server] port: expected an integer"),
        ("[server]\nport = true\n", "[server] port: expected an integer"),
        ('[server]\nbogus = 1\n', "unknown key [server] bogus"),
        ('[nope]\nx = 1\n', "unknown section [nope]"),
        ('[server]\nbase_url = "ftp://x"\n', "[server] base_url: must be an absolute http(s) URL"),
        ('[server]\nbase_url = "https://x.org/blog"\n', "[server] base_url: must be the root"),
        ('[server]\nbase_url = "https://"\n', "[server] base_url: must be an absolute"),
        ('[actor]\ntype = "Robot"\n', "[actor] type: must be one of Person"),
        ('[actor]\nusername = "no spaces"\n', "[actor] username"),
        ('[federation]\nallow_private_addresses = "yes"\n', "expected true or false"),
        ("[server\n", "invalid TOML"),
        ('[notify]\ndigest = "weekly"\n', "[notify] digest: must be one of off, hourly"),
        ('[notify]\nto = "me@example.org"\n', "[notify] to: mail needs smtp_host"),
        ('[notify]\nsmtp_host = "h"\nfrom = "not an address"\n', "[notify] from: not one"),
        # Addresses the email library cannot parse would fail every mail as it is built.
        ('[notify]\nsmtp_host = "h"\nfrom = "a;b@example.org"\n', "[notify] from: not one"),
        ('[notify]\nsmtp_host = "h"\nto = "me;you@example.org"\n', "[notify] to: not one"),
        ('[notify]\nsmtp_host = "smtp.example"\nsmtp_user = "u"\nsmtp_password = "p"\n',
         "[notify] smtp_password: would cross the network in clear text"),
        ('[notify]\nsmtp_host = "h"\ntls = true\nstarttls = true\n', "[notify] tls: choose"),
        ('[notify]\nsmtp_port = 70000\n', "[notify] smtp_port: must be between"),
        ('[notify]\nwebhook_url = "https://hook.example/x"\n',
         "[notify] webhook_secret: a webhook needs a secret"),
        ('[notify]\nwebhook_url = "file:///etc/passwd"\nwebhook_secret = "s"\n',
         "[notify] webhook_url: must be an absolute http(s) URL"),
        ('[notify]\nsender = "x@example.org"\n', "unknown key [notify] sender"),
        ('[spam]\nakismet_url = "ftp://spam.example"\n', "[spam] akismet_url: must be"),
        ('[spam]\ntimeout = 0\n', "[spam] timeout: must be between"),
        ('[comments]\nprivacy_url = "javascript:alert(1)"\n',
         "[comments] privacy_url: must be an http(s) URL"),
    ],
)
def test_bad_config_is_one_clear_line(tmp_path: Path, body: str, expected: str) -> None:
    """Given a bad config, the error names the file and the key."""
    cfg = tmp_path / "bad.toml"
    cfg.write_text(body)
    with pytest.raises(ConfigError) as info:
        load_settings(cfg)
    message = str(info.value)
    assert message.startswith(str(cfg))
    assert expected in message
    assert "\n" not in message


def test_missing_file_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Given a missing config file, the CLI prints one line and exits 2."""
    code = main(["--config", str(tmp_path / "absent.toml"), "posts", "list"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1
    assert "absent.toml: config file not found" in err


def test_bad_config_via_real_entry_point(tmp_path: Path) -> None:
    """Given a wrong type, `python -m fedcomments` exits 2 with one line, no traceback."""
    cfg = tmp_path / "bad.toml"
    cfg.write_text('[server]\nport = "eighty"\n')
    proc = subprocess.run(
        [sys.executable, "-m", "fedcomments", "posts", "list", "--config", str(cfg)],
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0
    assert "Traceback" not in proc.stderr
    assert "[server] port: expected an integer" in proc.stderr


def test_notify_and_spam_keys(tmp_path: Path) -> None:
    """Given [notify] (with its `from` key) and [spam], the settings carry them; the
    shipped example loads with mail, webhook and spam checking off."""
    cfg = tmp_path / "notify.toml"
    cfg.write_text('[notify]\nsmtp_host = "localhost"\nstarttls = true\n'
                   'from = "blog@example.org"\nto = "me@example.org"\ndigest = "daily"\n'
                   '[spam]\nakismet_key = "k"\ntimeout = 2\n')
    s = load_settings(cfg)
    assert (s.notify.sender, s.notify.to, s.notify.digest) == (
        "blog@example.org", "me@example.org", "daily")
    assert (s.notify.mail, s.notify.port) == (True, 587)
    assert (s.spam.enabled, s.spam.timeout, s.spam.akismet_url) == (
        True, 2.0, "https://rest.akismet.com")
    example = load_settings(Path(__file__).parent.parent / "config.example.toml")
    assert not example.notify.mail and not example.notify.webhook_url
    assert not example.spam.enabled


def test_config_named_by_a_relative_path_is_remembered_whole(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Given `--config fc.toml` in the blog's directory, the settings name the file by its
    absolute path, so the approve/reject commands in the owner's mails work from any
    directory."""
    (tmp_path / "fc.toml").write_text('[notify]\nsmtp_host = "localhost"\nto = "me@example.org"\n')
    monkeypatch.chdir(tmp_path)
    s = load_settings("fc.toml")
    assert s.source == str(tmp_path / "fc.toml")
    command = mail.cli_command(s.source, "comments", "approve", "7")
    assert command == f"fedcomments --config {tmp_path / 'fc.toml'} comments approve 7"
    monkeypatch.chdir(tmp_path.parent)
    assert load_settings(shlex.split(command)[2]).notify.to == "me@example.org"

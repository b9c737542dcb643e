"""Outgoing mail: one SMTP session per message through aiosmtplib, with TLS or STARTTLS as
configured, and every failure sorted into "try again later" or "never will work"."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import aiosmtplib

from fedcomments.errors import RemoteError


@dataclass(frozen=True)
class SmtpServer:
    host: str
    port: int
    user: str = ""
    password: str = ""
    #: Implicit TLS (port 465), or STARTTLS required (587); neither: plain (a local MTA).
    tls: bool = False
    starttls: bool = False
    timeout: float = 30.0


class MailFailed(RemoteError):
    """The mail did not go out this time (no connection, timeout, a 4xx answer)."""


class MailRejected(MailFailed):
    """The server refused the mail for good (a 5xx answer: no such recipient, refused
    sender, bad credentials); sending it again would get the same answer."""


async def send(server: SmtpServer, sender: str, recipients: Sequence[str],
               message: bytes) -> str:
    """Hand one message to the server; returns its last answer (e.g. "250 OK")."""
    where = f"SMTP {server.host}:{server.port}"
    try:
        _, answer = await aiosmtplib.send(
            message, sender=sender, recipients=list(recipients), hostname=server.host,
            port=server.port, username=server.user or None,
            password=server.password or None, use_tls=server.tls,
            # False: never upgrade unasked (a local MTA's self-signed certificate would
            # fail verification); True: refuse to go on without TLS.
            start_tls=server.starttls, timeout=server.timeout)
    except aiosmtplib.SMTPRecipientsRefused as exc:
        codes = [e.code for e in exc.recipients]
        text = "; ".join(f"{e.recipient}: {e.code} {e.message}" for e in exc.recipients)
        error = MailRejected if codes and all(c >= 500 for c in codes) else MailFailed
        raise error(f"{where}: recipients refused: {text}") from exc
    except aiosmtplib.SMTPResponseException as exc:
        error = MailRejected if exc.code >= 500 else MailFailed
        raise error(f"{where}: {exc.code} {exc.message}") from exc
    except (aiosmtplib.SMTPException, OSError) as exc:
        raise MailFailed(f"{where}: {type(exc).__name__}: {exc}") from exc
    return answer

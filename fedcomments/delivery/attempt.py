"""One delivery attempt: POST a job's body to its inbox and turn the answer into an Attempt."""

from __future__ import annotations

import asyncio
import functools
import logging
from dataclasses import dataclass

from fedcomments.delivery import policy
from fedcomments.model import DeliveryJob
from fedcomments.remote import FetchFailed, FetchRefused, PostResult
from fedcomments.remote.guard import RefusalReason
from fedcomments.runtime import Runtime

log = logging.getLogger("fedcomments.delivery")

#: How much of an error message or an answer's body is kept with the job.
ERROR_EXCERPT = 200


@dataclass(frozen=True)
class Attempt:
    """What one attempt at a job produced."""

    job: DeliveryJob
    status: int | None = None
    retry_after: str | None = None
    error: str | None = None
    #: No request was made: the inbox is blocked.
    blocked: bool = False
    #: The address guard refused the URL: retrying cannot help.
    refused: bool = False


async def attempt(rt: Runtime, job: DeliveryJob, *, seconds: float) -> Attempt:
    """POST the job's body to its inbox (twice when double knocking) within `seconds`, and
    say what came of it."""
    if is_blocked(rt, job.inbox):
        return Attempt(job, blocked=True)
    try:
        async with asyncio.timeout(seconds):
            # The client signs every request afresh (new Date, new signature) over the
            # same body bytes; redirects are never followed with a signed body.
            result = await rt.remote.post(job.inbox, job.body)
            if rt.settings.federation.double_knock and policy.should_double_knock(
                    result.status):
                result = await rt.remote.post(job.inbox, job.body,
                                              signer=_other_signer(rt))
    except FetchRefused as exc:
        blocked = exc.reason is RefusalReason.BLOCKED
        return Attempt(job, error=str(exc), blocked=blocked, refused=not blocked)
    except FetchFailed as exc:
        return Attempt(job, status=exc.status, error=str(exc)[:ERROR_EXCERPT])
    except TimeoutError:
        return Attempt(job, error=f"timed out after {seconds:g} s")
    except Exception as exc:  # task boundary: record it as a failed attempt, keep going
        log.exception("delivery attempt crashed", extra={"job": job.id})
        return Attempt(job, error=f"{type(exc).__name__}: {exc}"[:ERROR_EXCERPT])
    return Attempt(job, status=result.status, retry_after=result.retry_after,
                   error=_describe(result))

def is_blocked(rt: Runtime, url: str) -> bool:
    """Whether the blocklist covers `url`; no request goes there."""
    # Most instances block nothing: skip parsing the URL then.
    blocks = rt.blocklist
    return bool(blocks.domains or blocks.actors) and blocks.url_blocked(url)

def _other_signer(rt: Runtime) -> functools.partial[dict[str, str]]:
    scheme = rt.settings.federation.signature_scheme
    return functools.partial(rt.sign, scheme="cavage" if scheme == "rfc9421"
                             else "rfc9421")


def _describe(result: PostResult) -> str | None:
    status = result.status
    if 200 <= status < 300:
        return None
    if 300 <= status < 400:
        where = result.headers.get("Location", "?")
        return f"HTTP {status}: redirected to {where} (not followed with a signed body)"
    excerpt = " ".join(result.body_excerpt.split())[:ERROR_EXCERPT]
    return f"HTTP {status}: {excerpt}" if excerpt else f"HTTP {status}"

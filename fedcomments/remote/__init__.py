"""The project's only HTTP client: GET JSON and POST activities to remote instances.

`client` holds RemoteClient (GETs through aiohttp, POSTs through the lean `post` path);
`common` the settings, results and failures; `resolver` the SSRF guard at resolution time;
`http1` and `signing` the delivery path's framing and signing threads.
"""

from fedcomments.remote.client import RemoteClient, ResolverFactory
from fedcomments.remote.common import (
    AS2_ACCEPT,
    AS2_CONTENT_TYPE,
    Document,
    FetchFailed,
    JsonResponse,
    MediaResponse,
    PostResult,
    RemoteSettings,
    Signer,
)
from fedcomments.remote.guard import FetchRefused, HostCheck
from fedcomments.remote.resolver import AddressRefused, GuardedResolver

__all__ = [
    "AS2_ACCEPT",
    "AS2_CONTENT_TYPE",
    "AddressRefused",
    "Document",
    "FetchFailed",
    "FetchRefused",
    "GuardedResolver",
    "HostCheck",
    "JsonResponse",
    "MediaResponse",
    "PostResult",
    "RemoteClient",
    "RemoteSettings",
    "ResolverFactory",
    "Signer",
]

"""The project's only HTTP client (see `client`): GET JSON and POST activities."""

from fedcomments.remote.client import (
    AS2_ACCEPT,
    AS2_CONTENT_TYPE,
    AddressRefused,
    FetchFailed,
    FetchRefused,
    GuardedResolver,
    HostCheck,
    JsonResponse,
    PostResult,
    RemoteClient,
    RemoteSettings,
    Signer,
)

__all__ = [
    "AS2_ACCEPT",
    "AS2_CONTENT_TYPE",
    "AddressRefused",
    "FetchFailed",
    "FetchRefused",
    "GuardedResolver",
    "HostCheck",
    "JsonResponse",
    "PostResult",
    "RemoteClient",
    "RemoteSettings",
    "Signer",
]

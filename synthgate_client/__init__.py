"""A Python client for a synthgate service: register datasets, request releases, follow them, approve,
download and verify bundles, and read the released data as pandas DataFrames.

    from synthgate_client import Client
    client = Client()  # $SYNTHGATE_URL and $SYNTHGATE_TOKEN
    release = client.request("penguins", "mst", epsilon=1.0, delta=1e-7).wait(progress=True)

It talks to the service only through its JSON API (/api/v1) and checks bundles with the same
verification as `synthgate bundle verify` (core/bundle_verify.py).
"""

from synthgate_client.client import DEFAULT_URL, Client
from synthgate_client.errors import (
    BundleInvalid,
    Conflict,
    NotFound,
    Refused,
    SynthgateError,
    Unavailable,
    Unreachable,
    WaitTimeout,
)
from synthgate_client.release import Progress, Release

__all__ = [
    "DEFAULT_URL",
    "BundleInvalid",
    "Client",
    "Conflict",
    "NotFound",
    "Progress",
    "Refused",
    "Release",
    "SynthgateError",
    "Unavailable",
    "Unreachable",
    "WaitTimeout",
]

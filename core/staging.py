"""A register form's upload, kept while the steward fixes the other fields.

A browser cannot fill a file input again, so an upload that came with an
invalid form is kept in private storage under the uploader's own prefix
(`staging/<user id>/<token>/`) and the form carries only the token. Nothing is
served from there; a token is looked up under its user's prefix only, so
another user's token finds nothing. A staged file is removed once the dataset
is registered, replaced by the next upload, and expires after `STAGED_SECONDS`
(swept whenever a file is staged, and by the worker's retention sweep, so that
raw rows nobody registered do not stay in storage).
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from core.errors import InternalError
from core.storage import Storage, copy_hashed

log = logging.getLogger(__name__)

STAGED_SECONDS = 3600
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
_PREFIX = "staging"


@dataclass(frozen=True)
class StagedUpload:
    token: str
    filename: str
    key: str
    sha256: str


def _dir(user_id: int, token: str) -> str:
    return f"{_PREFIX}/{int(user_id)}/{token}"


def stage(storage: Storage, user_id: int, source: BinaryIO, filename: str, tmp_dir: Path) -> StagedUpload:
    """Keep an upload for `user_id`; its token goes in the form."""
    sweep(storage)
    token = secrets.token_urlsafe(18)
    suffix = Path(filename).suffix.lower()[:12]
    key = f"{_dir(user_id, token)}/upload{suffix}"
    local = tmp_dir / f"staged-{token}{suffix}"
    try:
        sha256 = copy_hashed(source, local)
        storage.put_file(key, local)
    finally:
        local.unlink(missing_ok=True)
    name = Path(filename).name[:256]
    meta = {"filename": name, "key": key, "sha256": sha256, "created": time.time()}
    storage.put_bytes(f"{_dir(user_id, token)}/meta.json", json.dumps(meta).encode())
    return StagedUpload(token, name, key, sha256)


def find(storage: Storage, user_id: int, token: str | None) -> StagedUpload | None:
    """The upload `user_id` staged under `token`, or None (unknown, someone else's, or expired)."""
    if not token or not _TOKEN.match(token):
        return None
    meta_key = f"{_dir(user_id, token)}/meta.json"
    if not storage.exists(meta_key):
        return None
    try:
        meta = json.loads(storage.get_bytes(meta_key))
    except (InternalError, ValueError):
        return None
    if time.time() - float(meta["created"]) > STAGED_SECONDS or not storage.exists(meta["key"]):
        discard(storage, user_id, token)
        return None
    return StagedUpload(token, str(meta["filename"]), str(meta["key"]), str(meta["sha256"]))


def discard(storage: Storage, user_id: int, token: str | None) -> None:
    if token and _TOKEN.match(token):
        storage.delete_prefix(_dir(user_id, token))


def sweep(storage: Storage, now: float | None = None) -> int:
    """Remove every staged upload older than STAGED_SECONDS; how many were removed."""
    now = time.time() if now is None else now
    removed = 0
    try:
        keys = storage.list_keys(_PREFIX + "/")
    except NotImplementedError:
        return 0
    for key in keys:
        if not key.endswith("/meta.json"):
            continue
        try:
            created = float(json.loads(storage.get_bytes(key))["created"])
        except (InternalError, ValueError, KeyError, TypeError):
            created = 0.0  # unreadable: swept like an expired one
        if now - created > STAGED_SECONDS:
            storage.delete_prefix(key.removesuffix("/meta.json"))
            removed += 1
    return removed

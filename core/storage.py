"""Private storage for raw uploads, job artifacts and bundles.

`Storage` is the small interface an S3-compatible store can implement; the
default `LocalStorage` keeps files under SYNTHGATE_DATA_DIR/storage, which is
never served by the web app: every download goes through an authorised route.
"""

from __future__ import annotations

import abc
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from core.errors import InternalError, InvalidRequest
from core.settings import Settings, get_settings

__all__ = ["Storage", "LocalStorage", "get_storage", "sha256_file"]


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _check_key(key: str) -> str:
    parts = key.split("/")
    if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise InvalidRequest(f"invalid storage key {key!r}")
    return key


class Storage(abc.ABC):
    """Keys are relative paths such as 'datasets/3/raw.csv'."""

    @abc.abstractmethod
    def put_file(self, key: str, source: str | Path) -> None: ...

    @abc.abstractmethod
    def put_bytes(self, key: str, data: bytes) -> None: ...

    @abc.abstractmethod
    def get_bytes(self, key: str) -> bytes: ...

    @abc.abstractmethod
    def open(self, key: str) -> BinaryIO: ...

    @abc.abstractmethod
    def exists(self, key: str) -> bool: ...

    @abc.abstractmethod
    def delete_prefix(self, prefix: str) -> None: ...

    @abc.abstractmethod
    @contextmanager
    def local_path(self, key: str) -> Iterator[Path]:
        """A local file path holding the object, for libraries that read files."""

    @abc.abstractmethod
    def size(self, key: str) -> int: ...

    def list_keys(self, prefix: str) -> list[str]:
        """Every key under `prefix` ('audit/checkpoints/'), sorted; object stores list natively."""
        raise NotImplementedError(f"{type(self).__name__} cannot list keys")


class LocalStorage(Storage):
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o700)

    def _path(self, key: str) -> Path:
        return self.root / _check_key(key)

    def _atomic_write(self, key: str, writer) -> None:  # type: ignore[no-untyped-def]
        dest = self._path(key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                writer(fh)
            os.chmod(tmp, 0o600)
            os.replace(tmp, dest)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def put_file(self, key: str, source: str | Path) -> None:
        def write(fh: BinaryIO) -> None:
            with open(source, "rb") as src:
                shutil.copyfileobj(src, fh, 1 << 20)

        self._atomic_write(key, write)

    def put_bytes(self, key: str, data: bytes) -> None:
        self._atomic_write(key, lambda fh: fh.write(data))

    def get_bytes(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError as exc:
            raise InternalError(f"stored object missing: {key}") from exc

    def open(self, key: str) -> BinaryIO:
        try:
            return open(self._path(key), "rb")
        except FileNotFoundError as exc:
            raise InternalError(f"stored object missing: {key}") from exc

    def exists(self, key: str) -> bool:
        return self._path(key).exists()

    def delete_prefix(self, prefix: str) -> None:
        path = self._path(prefix.rstrip("/"))
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()

    @contextmanager
    def local_path(self, key: str) -> Iterator[Path]:
        path = self._path(key)
        if not path.exists():
            raise InternalError(f"stored object missing: {key}")
        yield path

    def size(self, key: str) -> int:
        return self._path(key).stat().st_size

    def list_keys(self, prefix: str) -> list[str]:
        base = self._path(prefix.rstrip("/"))
        if not base.is_dir():
            return []
        return sorted(p.relative_to(self.root).as_posix() for p in base.rglob("*")
                      if p.is_file() and not p.name.startswith(".tmp-"))


def get_storage(settings: Settings | None = None) -> Storage:
    settings = settings or get_settings()
    assert settings.storage_dir is not None
    return LocalStorage(settings.storage_dir)

"""Private storage for raw uploads, job artifacts and bundles.

`Storage` is the small interface both backends implement. The default
`LocalStorage` keeps files under SYNTHGATE_DATA_DIR/storage, which is never
served by the web app: every download goes through an authorised route.

`S3Storage` keeps them in an S3-compatible object store (AWS S3, MinIO, Ceph
RGW, GCS in S3 mode), selected by `SYNTHGATE_STORAGE_URL=s3://bucket/prefix`,
with `SYNTHGATE_S3_ENDPOINT_URL` for a store other than AWS and credentials from
boto3's usual chain (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, a profile, an
instance role). Then web servers and workers on different machines share
nothing but the database, the broker and the bucket. Files go up with boto3's
managed transfer (multipart above 8 MB, streamed from disk) and come down as
streams; `SYNTHGATE_S3_SSE` (`AES256` or `aws:kms`) asks for server-side
encryption of every object. The bucket must be private: no object is ever
made public, and every download is proxied through an authorised route.
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
from typing import Any, BinaryIO

from core.errors import InternalError, InvalidRequest
from core.settings import Settings, get_settings

__all__ = ["LocalStorage", "S3Storage", "Storage", "copy_hashed", "get_storage", "sha256_file"]


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def copy_hashed(source: BinaryIO, dest: str | Path, chunk_size: int = 1 << 20) -> str:
    """Copy a stream (an upload) to a file in chunks, never holding it whole; returns its sha256."""
    h = hashlib.sha256()
    with open(dest, "wb") as out:
        for chunk in iter(lambda: source.read(chunk_size), b""):
            h.update(chunk)
            out.write(chunk)
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

    def _atomic_write(self, key: str, writer) -> None:
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
        return sorted(
            p.relative_to(self.root).as_posix()
            for p in base.rglob("*")
            if p.is_file() and not p.name.startswith(".tmp-")
        )


class S3Storage(Storage):
    """Objects under `prefix` in `bucket` of an S3-compatible store (see the module docstring)."""

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        sse: str | None = None,
        client: Any = None,
    ) -> None:
        if not bucket:
            raise InvalidRequest("the storage URL names no bucket: use s3://bucket/prefix")
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.sse = sse or None
        if client is None:
            import boto3
            from botocore.config import Config

            client = boto3.client(
                "s3",
                endpoint_url=endpoint_url or None,
                region_name=region or None,
                config=Config(retries={"max_attempts": 5, "mode": "standard"}),
            )
        self._s3 = client

    def _key(self, key: str) -> str:
        key = _check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _extra(self) -> dict[str, str]:
        return {"ServerSideEncryption": self.sse} if self.sse else {}

    def _missing(self, exc: Exception) -> bool:
        code = str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))
        return code in ("404", "NoSuchKey", "NotFound")

    def put_file(self, key: str, source: str | Path) -> None:
        self._s3.upload_file(str(source), self.bucket, self._key(key), ExtraArgs=self._extra() or None)

    def put_bytes(self, key: str, data: bytes) -> None:
        self._s3.put_object(Bucket=self.bucket, Key=self._key(key), Body=data, **self._extra())

    def _get(self, key: str) -> Any:
        from botocore.exceptions import ClientError

        try:
            return self._s3.get_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as exc:
            if self._missing(exc):
                raise InternalError(f"stored object missing: {key}") from exc
            raise

    def get_bytes(self, key: str) -> bytes:
        return bytes(self._get(key)["Body"].read())

    def open(self, key: str) -> BinaryIO:
        return self._get(key)["Body"]  # a stream: read in chunks, never held whole

    def _head(self, key: str) -> dict[str, Any] | None:
        from botocore.exceptions import ClientError

        try:
            return dict(self._s3.head_object(Bucket=self.bucket, Key=self._key(key)))
        except ClientError as exc:
            if self._missing(exc):
                return None
            raise

    def exists(self, key: str) -> bool:
        return self._head(key) is not None

    def _list(self, prefix: str) -> Iterator[str]:
        full = self._key(prefix.rstrip("/")) + "/"
        for page in self._s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=full):
            for obj in page.get("Contents", []):
                yield obj["Key"]

    def delete_prefix(self, prefix: str) -> None:
        keys = list(self._list(prefix))
        if self.exists(prefix.rstrip("/")):
            keys.append(self._key(prefix.rstrip("/")))
        for i in range(0, len(keys), 1000):
            self._s3.delete_objects(
                Bucket=self.bucket, Delete={"Objects": [{"Key": k} for k in keys[i : i + 1000]], "Quiet": True}
            )

    @contextmanager
    def local_path(self, key: str) -> Iterator[Path]:
        """The object downloaded (streamed) to a private temporary file, removed afterwards."""
        from botocore.exceptions import ClientError

        fd, tmp = tempfile.mkstemp(prefix="synthgate-", suffix=Path(key).suffix)
        os.close(fd)
        try:
            try:
                self._s3.download_file(self.bucket, self._key(key), tmp)
            except ClientError as exc:
                if self._missing(exc):
                    raise InternalError(f"stored object missing: {key}") from exc
                raise
            yield Path(tmp)
        finally:
            Path(tmp).unlink(missing_ok=True)

    def size(self, key: str) -> int:
        head = self._head(key)
        if head is None:
            raise InternalError(f"stored object missing: {key}")
        return int(head["ContentLength"])

    def list_keys(self, prefix: str) -> list[str]:
        cut = len(self.prefix) + 1 if self.prefix else 0
        return sorted(k[cut:] for k in self._list(prefix))


def parse_storage_url(url: str) -> tuple[str, str]:
    """`s3://bucket/prefix` -> (bucket, prefix)."""
    if not url.startswith("s3://"):
        raise InvalidRequest(
            f"SYNTHGATE_STORAGE_URL must be s3://bucket/prefix (or empty for local storage), got {url!r}"
        )
    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    return bucket, prefix


def get_storage(settings: Settings | None = None) -> Storage:
    settings = settings or get_settings()
    if settings.storage_url:
        bucket, prefix = parse_storage_url(settings.storage_url)
        return S3Storage(
            bucket, prefix, endpoint_url=settings.s3_endpoint_url, region=settings.s3_region, sse=settings.s3_sse
        )
    assert settings.storage_dir is not None
    return LocalStorage(settings.storage_dir)

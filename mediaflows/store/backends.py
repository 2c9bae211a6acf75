"""Where a profile store keeps its bytes: a directory on this machine, or a bucket on S3 or an
S3-compatible server (s3fs for I/O, boto3 for presigned URLs); and the mapping of their failures
onto the error tree (a transient fault is :class:`StoreUnavailableError`, retried)."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import quote

from mediaflows.errors import (
    ConfigurationError,
    MediaflowsError,
    StoreUnavailableError,
    is_transient,
)
from mediaflows.files import atomic_path, atomic_write
from mediaflows.settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


class Backend(Protocol):
    def read_bytes(self, key: str) -> bytes | None: ...
    def write_bytes(self, key: str, data: bytes) -> None: ...
    def put_file(self, key: str, src: Path, move: bool = False) -> None: ...
    def get_file(self, key: str, dest: Path) -> None: ...
    def local_path(self, key: str) -> Path | None: ...
    def list_names(self, prefix: str) -> list[str]: ...
    def url(self, key: str, name: str, content_type: str) -> str: ...
    def delete(self, key: str) -> None: ...


class LocalBackend:
    """A directory on this machine."""

    def __init__(self, root: Path) -> None:
        self.root = root.expanduser().resolve()

    def _path(self, key: str) -> Path:
        return self.root / key

    def read_bytes(self, key: str) -> bytes | None:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            return None

    def write_bytes(self, key: str, data: bytes) -> None:
        atomic_write(self._path(key), data)

    def put_file(self, key: str, src: Path, move: bool = False) -> None:
        with atomic_path(self._path(key)) as tmp:
            if move:
                try:
                    os.replace(src, tmp)  # same filesystem: no copy of a large output
                except OSError:
                    shutil.copyfile(src, tmp)
            else:
                shutil.copyfile(src, tmp)

    def get_file(self, key: str, dest: Path) -> None:
        shutil.copyfile(self._path(key), dest)

    def local_path(self, key: str) -> Path | None:
        return self._path(key)

    def list_names(self, prefix: str) -> list[str]:
        directory = self._path(prefix)
        if not directory.is_dir():
            return []
        return sorted(p.name for p in directory.iterdir() if not p.name.startswith("."))

    def url(self, key: str, name: str, content_type: str) -> str:
        return self._path(key).as_uri()

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)


class S3Backend:
    """A bucket (and prefix) on S3 or an S3-compatible server, through s3fs; URLs through boto3."""

    def __init__(self, url: str, settings: Settings) -> None:
        import s3fs

        bucket_and_prefix = url.removeprefix("s3://").strip("/")
        if not bucket_and_prefix:
            raise ConfigurationError(f"store URL {url!r} names no bucket")
        self.bucket, _, prefix = bucket_and_prefix.partition("/")
        self.prefix = f"{prefix}/" if prefix else ""
        self.settings = settings
        self._client_kwargs: dict[str, Any] = {}
        if settings.store.s3_region:
            self._client_kwargs["region_name"] = settings.store.s3_region
        creds: dict[str, Any] = {}
        if settings.store.s3_access_key_id and settings.store.s3_secret_access_key:
            creds = {
                "key": settings.store.s3_access_key_id.get_secret_value(),
                "secret": settings.store.s3_secret_access_key.get_secret_value(),
            }
        self.fs = s3fs.S3FileSystem(
            endpoint_url=settings.store.s3_endpoint_url,
            client_kwargs=self._client_kwargs,
            **creds,
        )
        self._creds = creds
        self._boto: S3Client | None = None

    def _full(self, key: str) -> str:
        return f"{self.bucket}/{self.prefix}{key}"

    def read_bytes(self, key: str) -> bytes | None:
        try:
            data: bytes = self.fs.cat_file(self._full(key))
        except FileNotFoundError:
            return None
        return data

    def write_bytes(self, key: str, data: bytes) -> None:
        self.fs.pipe_file(self._full(key), data)

    def put_file(self, key: str, src: Path, move: bool = False) -> None:
        # A single PUT, or a multipart upload that becomes visible only when completed: atomic.
        self.fs.put_file(str(src), self._full(key))

    def get_file(self, key: str, dest: Path) -> None:
        self.fs.get_file(self._full(key), str(dest))

    def local_path(self, key: str) -> Path | None:
        return None

    def list_names(self, prefix: str) -> list[str]:
        path = self._full(prefix).rstrip("/")
        try:
            entries = self.fs.ls(path, detail=False, refresh=True)
        except FileNotFoundError:
            return []
        return sorted(e.rsplit("/", 1)[-1] for e in entries)

    def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm_file(self._full(key))

    def _client(self) -> S3Client:
        if self._boto is None:
            import boto3

            session = boto3.session.Session(
                aws_access_key_id=self._creds.get("key"),
                aws_secret_access_key=self._creds.get("secret"),
            )
            self._boto = session.client(
                "s3", endpoint_url=self.settings.store.s3_endpoint_url, **self._client_kwargs
            )
        return self._boto

    def url(self, key: str, name: str, content_type: str) -> str:
        return self._client().generate_presigned_url(
            "get_object",
            Params={
                "Bucket": self.bucket,
                "Key": f"{self.prefix}{key}",
                "ResponseContentType": content_type,
                "ResponseContentDisposition": f"inline; filename*=UTF-8''{quote(name)}",
            },
            ExpiresIn=self.settings.store.media_url_expiry_s,
        )


@contextlib.contextmanager
def store_errors(what: str) -> Iterator[None]:
    """Map backend failures onto the error tree: transient ones become StoreUnavailableError."""
    try:
        yield
    except MediaflowsError:
        raise
    except PermissionError as exc:
        raise ConfigurationError(f"store refused {what}: {exc}") from exc
    except Exception as exc:
        if is_transient(exc) or _is_s3_server_error(exc):
            raise StoreUnavailableError(f"store failed during {what}: {exc}") from exc
        raise


def _is_s3_server_error(exc: BaseException) -> bool:
    """True for an S3 5xx/throttling answer (s3fs wraps them in a plain OSError)."""
    cause: BaseException | None = exc
    while cause is not None:
        response = getattr(cause, "response", None)
        if isinstance(response, dict):
            status = response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            code = response.get("Error", {}).get("Code", "")
            if status >= 500 or code in {
                "SlowDown",
                "RequestTimeout",
                "Throttling",
                "InternalError",
            }:
                return True
        if is_transient(cause) and cause is not exc:
            return True
        cause = cause.__cause__ or cause.__context__
    return False

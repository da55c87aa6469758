"""Where stored media live: a folder (``FileStore``, the default, under the data dir) or an
S3-compatible object store (``S3Store``, for several replicas). Both keep bytes under a key and
read any byte range of them back; neither knows tasks.

The S3 client is aiobotocore: botocore's own request signing and S3 rules (path- or host-style
buckets, any endpoint: AWS, MinIO, R2, Ceph) on aiohttp, which the gateway already runs for its
upstreams, so it adds no second HTTP stack; it is maintained with botocore release by release.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from gateway.config import MediaSettings, S3Settings

if TYPE_CHECKING:
    from types_aiobotocore_s3 import S3Client

CHUNK_BYTES = 256 * 1024
WHOLE_READ_BYTES = 1024 * 1024


def _read_range(path: Path, first: int, last: int) -> bytes:
    with path.open("rb") as file:
        file.seek(first)
        return file.read(last - first + 1)


class MediaStore(Protocol):
    async def put(self, key: str, data: bytes, content_type: str) -> None:
        """Keep ``data`` under ``key``, whole or not at all."""

    def read(self, key: str, first: int, last: int) -> AsyncIterator[bytes]:
        """Bytes ``first``..``last`` (inclusive) of what ``key`` holds, in chunks."""

    async def exists(self, key: str) -> bool: ...

    async def delete(self, key: str) -> None:
        """Forget ``key``; nothing happens if it is not there."""

    async def close(self) -> None: ...


class FileStore:
    """Objects as files under ``root``; a put writes a temporary file and renames it."""

    def __init__(self, root: Path) -> None:
        self._root = root

    def _path(self, key: str) -> Path:
        path = (self._root / key).resolve()
        if not path.is_relative_to(self._root.resolve()):
            raise ValueError(f"media key outside the store: {key!r}")
        return path

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        await asyncio.to_thread(self._write, self._path(key), data)

    @staticmethod
    def _write(path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".put-")
        try:
            with os.fdopen(handle, "wb") as file:
                file.write(data)
            os.replace(temporary, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise

    async def read(self, key: str, first: int, last: int) -> AsyncIterator[bytes]:
        """A range of up to ``WHOLE_READ_BYTES`` in one worker-thread call, a longer one in
        ``CHUNK_BYTES`` pieces."""
        path = self._path(key)
        if last - first < WHOLE_READ_BYTES:
            yield await asyncio.to_thread(_read_range, path, first, last)
            return
        file = await asyncio.to_thread(path.open, "rb")
        try:
            await asyncio.to_thread(file.seek, first)
            left = last - first + 1
            while left > 0:
                chunk = await asyncio.to_thread(file.read, min(CHUNK_BYTES, left))
                if not chunk:
                    return
                left -= len(chunk)
                yield chunk
        finally:
            file.close()

    async def exists(self, key: str) -> bool:
        return await asyncio.to_thread(self._path(key).is_file)

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self._path(key).unlink, True)

    async def close(self) -> None:
        return None


class S3Store:
    """Objects in one bucket of an S3-compatible store, under ``settings.prefix``."""

    def __init__(self, settings: S3Settings) -> None:
        if not settings.bucket:
            raise ValueError("S3Store needs a bucket")
        self._settings = settings
        self._bucket = settings.bucket
        self._exit = contextlib.AsyncExitStack()
        self._client: S3Client | None = None
        self._presigner: Any = None

    async def start(self) -> None:
        # imported here: botocore takes a second to import, which a process without S3 skips
        from aiobotocore.config import AioConfig
        from aiobotocore.session import get_session

        settings = self._settings
        s3: Any = {"addressing_style": "path" if settings.path_style else "auto"}
        options: dict[str, Any] = {
            "region_name": settings.region,
            "endpoint_url": settings.endpoint_url,
        }
        if settings.access_key_id is not None and settings.secret_access_key is not None:
            options["aws_access_key_id"] = settings.access_key_id.get_secret_value()
            options["aws_secret_access_key"] = settings.secret_access_key.get_secret_value()
        config = AioConfig(
            s3=s3,
            signature_version="s3v4",
            retries={"max_attempts": 3, "mode": "standard"},
            connect_timeout=5,
            read_timeout=30,
        )
        creating = get_session().create_client("s3", config=config, **options)
        self._client = await self._exit.enter_async_context(creating)
        from botocore.config import Config
        from botocore.session import get_session as get_botocore_session

        # presigning is signing alone, no request: botocore's own client does it in place
        self._presigner = get_botocore_session().create_client(
            "s3", config=Config(s3=s3, signature_version="s3v4"), **options
        )

    def presigned_url(self, key: str, expires_s: int) -> str:
        """A URL at the store itself that reads ``key`` for ``expires_s`` seconds."""
        if self._presigner is None:
            raise RuntimeError("S3Store.start() was not awaited")
        url: str = self._presigner.generate_presigned_url(
            "get_object",
            Params={"Bucket": self._bucket, "Key": self._key(key)},
            ExpiresIn=expires_s,
        )
        return url

    @property
    def client(self) -> S3Client:
        if self._client is None:
            raise RuntimeError("S3Store.start() was not awaited")
        return self._client

    def _key(self, key: str) -> str:
        return self._settings.prefix + key

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        await self.client.put_object(
            Bucket=self._bucket, Key=self._key(key), Body=data, ContentType=content_type
        )

    async def read(self, key: str, first: int, last: int) -> AsyncIterator[bytes]:
        answer = await self.client.get_object(
            Bucket=self._bucket, Key=self._key(key), Range=f"bytes={first}-{last}"
        )
        body = answer["Body"]
        try:
            async for chunk in body.iter_chunks(CHUNK_BYTES):
                yield chunk
        finally:
            body.close()

    async def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            await self.client.head_object(Bucket=self._bucket, Key=self._key(key))
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        return True

    async def delete(self, key: str) -> None:
        await self.client.delete_object(Bucket=self._bucket, Key=self._key(key))

    async def close(self) -> None:
        await self._exit.aclose()


async def open_store(settings: MediaSettings, data_dir: Path) -> MediaStore:
    """The store the settings name: S3 when a bucket is set, else the media folder."""
    if settings.s3.bucket:
        store = S3Store(settings.s3)
        await store.start()
        return store
    return FileStore(settings.dir or data_dir / "media")

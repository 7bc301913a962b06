"""Shared storage for the files Portico makes for customers to download (OPS-5).

Invoice PDFs and invoice archives live here, so any web node serves a file that
any worker wrote. ``[storage] backend`` chooses where (docs/storage.md):

- ``local``: a folder (``[storage] path``, default ``<data_dir>/files``); one
  machine, or a folder every node mounts;
- ``database``: the ``stored_file`` table of Portico's own database, so there is
  nothing more to run or back up (each file is read whole: for files of a few MB);
- ``s3``: a bucket of any S3-compatible store (AWS S3, MinIO, Ceph, ...), through
  boto3 (``pip install 'portico[s3]'``).

A key is a relative path (``invoices/12/INV-000042.pdf``). Files are written
once: ``put`` creates a key only when it is absent and says whether it did, so
of two processes storing the same document at once the first one wins and
nobody overwrites it (an issued invoice's PDF never changes). ``open`` gives the
file to stream with its size, ETag and time; on the local backend it is a real
file, which gunicorn sends with ``sendfile``.
"""

from __future__ import annotations

import hashlib
import io
import mimetypes
import os
import re
import shutil
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import BinaryIO, Iterator

import peewee
from peewee import BigIntegerField, BlobField, CharField

from engine.db import BaseModel, UTCDateTimeField, utcnow
from engine.settings import SettingsError

BACKENDS = ("local", "database", "s3")
#: A key: relative, slash-separated names that do not start with a dot (no "..", no hidden files).
KEY = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._@+=-]*(/[A-Za-z0-9_][A-Za-z0-9._@+=-]*)*")
MAX_KEY = 400
CHUNK = 256 * 1024


@dataclass(frozen=True)
class FileInfo:
    """What a download needs to know about a stored file without reading it."""

    key: str
    size: int
    etag: str  # an opaque validator, without quotes
    modified: datetime  # timezone-aware UTC
    content_type: str


class Opened:
    """A stored file open for reading: ``info``, and ``file`` (``read()``, ``close()``).

    On the local backend ``file`` is a real file (``fileno()``), so a WSGI server
    can ``sendfile`` it. Use it as a context manager, or hand ``file`` to the
    response, which closes it once sent.
    """

    def __init__(self, info: FileInfo, file: BinaryIO):
        self.info = info
        self.file = file

    def read(self) -> bytes:
        with self:
            return self.file.read()

    def chunks(self, size: int = CHUNK) -> Iterator[bytes]:
        with self:
            while chunk := self.file.read(size):
                yield chunk

    def close(self) -> None:
        self.file.close()

    def __enter__(self) -> "Opened":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class StoredFile(BaseModel):
    """A file of the database backend. Written once, by key; ``sha256`` is its ETag."""

    key = CharField(max_length=MAX_KEY, unique=True)
    size = BigIntegerField()
    sha256 = CharField(max_length=64)
    content_type = CharField(max_length=100)
    data = BlobField()
    created_at = UTCDateTimeField(default=utcnow)


def check_key(key: str) -> str:
    """``key`` if it is a valid key (see ``KEY``), else ValueError."""
    if not isinstance(key, str) or len(key) > MAX_KEY or not KEY.fullmatch(key):
        raise ValueError(f"storage key {key!r} is not a relative path of plain names")
    return key


def guess_type(key: str) -> str:
    return mimetypes.guess_type(key)[0] or "application/octet-stream"


def _as_bytes(data: bytes | BinaryIO) -> bytes:
    return data if isinstance(data, (bytes, bytearray, memoryview)) else data.read()


class Storage:
    """The interface every backend implements."""

    backend = ""

    def put(self, key: str, data: bytes | BinaryIO, content_type: str | None = None) -> bool:
        """Store ``data`` (bytes or a readable binary file) under ``key`` unless the key exists.

        True when this call stored it; False when the key was already there (the
        stored file is left as it was: the first writer wins).
        """
        raise NotImplementedError

    def info(self, key: str) -> FileInfo | None:
        """The file's size, ETag and time, or None when there is no such key."""
        raise NotImplementedError

    def exists(self, key: str) -> bool:
        return self.info(key) is not None

    def open(self, key: str) -> Opened | None:
        """The file to read (and its info), or None when there is no such key."""
        raise NotImplementedError

    def read(self, key: str) -> bytes | None:
        opened = self.open(key)
        return opened.read() if opened is not None else None

    def delete(self, key: str) -> bool:
        """Remove the file; True when there was one."""
        raise NotImplementedError

    def keys(self, prefix: str = "") -> Iterator[FileInfo]:
        """Every stored file whose key starts with ``prefix`` (a folder: ``"archives/"``)."""
        raise NotImplementedError

    def url(self, key: str, *, filename: str | None = None, seconds: int = 300) -> str | None:
        """A short-lived URL the store itself serves the file at, where the backend has one."""
        return None

    def describe(self) -> str:
        """Where the files are, for logs and ``portico storage``; never a secret."""
        raise NotImplementedError


class LocalStorage(Storage):
    """Files in a folder. ``put`` writes a temporary file and hard-links it into place, so a
    reader never sees half a file and an existing file is never replaced."""

    backend = "local"

    def __init__(self, root: Path):
        self.root = Path(root)

    def path(self, key: str) -> Path:
        return self.root / check_key(key)

    def put(self, key, data, content_type=None) -> bool:
        final = self.path(key)
        if final.exists():
            return False
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = final.with_name(f".{final.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            with open(tmp, "wb") as out:
                if isinstance(data, (bytes, bytearray, memoryview)):
                    out.write(data)
                else:
                    shutil.copyfileobj(data, out, CHUNK)
                out.flush()
                os.fsync(out.fileno())
            os.link(tmp, final)  # create-if-absent
            return True
        except FileExistsError:
            return False
        finally:
            tmp.unlink(missing_ok=True)

    @staticmethod
    def _info(key: str, st: os.stat_result) -> FileInfo:
        # Size and modification time, as nginx does: no reading, no hashing.
        return FileInfo(
            key,
            st.st_size,
            f"{st.st_mtime_ns:x}-{st.st_size:x}",
            datetime.fromtimestamp(st.st_mtime, timezone.utc),
            guess_type(key),
        )

    def info(self, key):
        try:
            return self._info(key, self.path(key).stat())
        except (FileNotFoundError, NotADirectoryError):
            return None

    def open(self, key):
        try:
            file = open(self.path(key), "rb")
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None
        return Opened(self._info(key, os.fstat(file.fileno())), file)

    def delete(self, key) -> bool:
        try:
            self.path(key).unlink()
            return True
        except FileNotFoundError:
            return False

    def keys(self, prefix=""):
        for folder, dirs, files in os.walk(self.root):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in sorted(files):
                key = Path(folder, name).relative_to(self.root).as_posix()
                if name.startswith(".") or not key.startswith(prefix):
                    continue
                try:
                    yield self._info(key, Path(folder, name).stat())
                except FileNotFoundError:  # deleted meanwhile
                    continue

    def describe(self) -> str:
        return f"local folder {self.root}"


class DatabaseStorage(Storage):
    """Files in the ``stored_file`` table of the portal's database (one row each)."""

    backend = "database"

    def put(self, key, data, content_type=None) -> bool:
        body = _as_bytes(data)
        rows = (
            StoredFile.insert(
                key=check_key(key),
                size=len(body),
                sha256=hashlib.sha256(body).hexdigest(),
                content_type=content_type or guess_type(key),
                data=body,
                created_at=utcnow(),
            )
            .on_conflict_ignore()
            .as_rowcount()
            .execute()
        )
        return rows == 1

    _META = (
        StoredFile.key,
        StoredFile.size,
        StoredFile.sha256,
        StoredFile.created_at,
        StoredFile.content_type,
    )

    @staticmethod
    def _info(row: StoredFile) -> FileInfo:
        return FileInfo(row.key, row.size, row.sha256, row.created_at, row.content_type)

    def info(self, key):
        row = StoredFile.select(*self._META).where(StoredFile.key == check_key(key)).first()
        return self._info(row) if row is not None else None

    def open(self, key):
        row = (
            StoredFile.select(*self._META, StoredFile.data)
            .where(StoredFile.key == check_key(key))
            .first()
        )
        return Opened(self._info(row), io.BytesIO(bytes(row.data))) if row is not None else None

    def delete(self, key) -> bool:
        return StoredFile.delete().where(StoredFile.key == check_key(key)).execute() > 0

    def keys(self, prefix=""):
        query = StoredFile.select(*self._META).order_by(StoredFile.key)
        if prefix:
            query = query.where(peewee.fn.SUBSTR(StoredFile.key, 1, len(prefix)) == prefix)
        for row in query.iterator():
            yield self._info(row)

    def describe(self) -> str:
        return "database (table stored_file)"


class S3Storage(Storage):
    """Objects in an S3-compatible bucket, under ``s3_prefix``. Writes are conditional
    (``If-None-Match: *``), so the store itself refuses to replace a file."""

    backend = "s3"

    def __init__(self, conf):
        self.conf = conf
        self.bucket = conf.s3_bucket
        self.prefix = conf.s3_prefix
        self._client = None
        self._lock = threading.Lock()

    @property
    def client(self):
        # A client per storage, made on first use (boto3 clients are thread-safe; making one
        # is not, and costs tens of milliseconds).
        if self._client is None:
            with self._lock:
                if self._client is None:
                    import boto3
                    from botocore.config import Config

                    c = self.conf
                    self._client = boto3.session.Session().client(
                        "s3",
                        endpoint_url=c.s3_endpoint_url or None,
                        region_name=c.s3_region or None,
                        aws_access_key_id=c.s3_access_key_id or None,
                        aws_secret_access_key=c.s3_secret_access_key or None,
                        config=Config(
                            s3={"addressing_style": c.s3_addressing_style},
                            connect_timeout=5,
                            read_timeout=30,
                            retries={"max_attempts": 3, "mode": "standard"},
                        ),
                    )
        return self._client

    def _key(self, key: str) -> str:
        return self.prefix + check_key(key)

    @staticmethod
    def _missing(exc) -> bool:
        error = exc.response.get("Error", {})
        return error.get("Code") in ("404", "NoSuchKey", "NotFound")

    @staticmethod
    def _info_of(key: str, answer: dict) -> FileInfo:
        return FileInfo(
            key,
            answer["ContentLength"],
            answer["ETag"].strip('"'),
            answer["LastModified"].astimezone(timezone.utc),
            answer.get("ContentType") or guess_type(key),
        )

    def put(self, key, data, content_type=None) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.put_object(
                Bucket=self.bucket,
                Key=self._key(key),
                Body=data,
                ContentType=content_type or guess_type(key),
                IfNoneMatch="*",
            )
            return True
        except ClientError as exc:
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if status in (409, 412):  # there already, or being written by another writer
                return False
            raise

    def info(self, key):
        from botocore.exceptions import ClientError

        try:
            return self._info_of(
                key, self.client.head_object(Bucket=self.bucket, Key=self._key(key))
            )
        except ClientError as exc:
            if self._missing(exc):
                return None
            raise

    def open(self, key):
        from botocore.exceptions import ClientError

        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as exc:
            if self._missing(exc):
                return None
            raise
        return Opened(self._info_of(key, answer), answer["Body"])

    def delete(self, key) -> bool:
        if not self.exists(key):
            return False
        self.client.delete_object(Bucket=self.bucket, Key=self._key(key))
        return True

    def keys(self, prefix=""):
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.prefix + prefix
        )
        for page in pages:
            for item in page.get("Contents", []):
                key = item["Key"][len(self.prefix) :]
                yield FileInfo(
                    key,
                    item["Size"],
                    item["ETag"].strip('"'),
                    item["LastModified"].astimezone(timezone.utc),
                    guess_type(key),
                )

    def url(self, key, *, filename=None, seconds=300) -> str:
        params = {"Bucket": self.bucket, "Key": self._key(key)}
        if filename:
            params["ResponseContentDisposition"] = f'attachment; filename="{filename}"'
        return self.client.generate_presigned_url("get_object", Params=params, ExpiresIn=seconds)

    def describe(self) -> str:
        where = self.conf.s3_endpoint_url or "AWS"
        return f"s3://{self.bucket}/{self.prefix} at {where}"


def open_storage(settings, backend: str | None = None, path: str | None = None) -> Storage:
    """The storage ``settings`` name (``backend``/``path`` override them, for copying)."""
    conf = settings.storage
    backend = backend or conf.backend
    if backend == "local":
        return LocalStorage(Path(path or conf.path or settings.data_path / "files").expanduser())
    if backend == "database":
        return DatabaseStorage()
    if backend == "s3":
        try:
            import boto3  # noqa: F401
        except ImportError:
            raise SettingsError(
                "storage.backend: 's3' needs boto3: pip install 'portico[s3]'"
            ) from None
        return S3Storage(conf)
    raise SettingsError(
        f"storage.backend: unknown backend {backend!r} (one of: {', '.join(BACKENDS)})"
    )


def copy(source: Storage, target: Storage, prefix: str = "", progress=None) -> tuple[int, int]:
    """Copy every file under ``prefix`` from ``source`` into ``target``; files already there
    are left alone. Returns (copied, already there); ``progress(1)`` after each file."""
    copied = present = 0
    for info in source.keys(prefix):
        if target.exists(info.key):
            present += 1
        else:
            opened = source.open(info.key)
            if opened is not None:
                with opened:
                    body = opened.file.read()
                if target.put(info.key, body, info.content_type):
                    copied += 1
                else:
                    present += 1
        if progress is not None:
            progress(1)
    return copied, present

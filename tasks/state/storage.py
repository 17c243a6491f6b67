"""S3-compatible object storage (SeaweedFS locally, any S3 in production).

Every key is built here from a job id and an index, never from user input, so a
title or a voice name can never become part of a path.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import OrderedDict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from chorus.configs import Settings
from chorus.tasks.errors import ObjectMissing, StorageError

# Audiobooks above 16 MiB go up in 16 MiB parts.
_TRANSFER = TransferConfig(multipart_threshold=16 * 1024 * 1024, multipart_chunksize=16 * 1024 * 1024)


JOBS_PREFIX = "jobs/"
S3_CONNECTIONS = 64


def job_prefix(job_id: str) -> str:
    """Every object of a job lives under this prefix (its segments live in the
    shared cache, ``cache/``, bounded by the cache's own limit)."""
    return f"{JOBS_PREFIX}{job_id}/"


def plan_key(job_id: str) -> str:
    return f"{job_prefix(job_id)}plan.json"


def audiobook_key(job_id: str, audio_format: str) -> str:
    return f"{job_prefix(job_id)}audiobook.{audio_format}"


def speaker_key(voice_id: str) -> str:
    return f"voices/{voice_id}/prompt.wav"


def manifest_key(job_id: str) -> str:
    return f"{job_prefix(job_id)}manifest.json"


def subtitles_key(job_id: str, kind: str) -> str:
    return f"{job_prefix(job_id)}subtitles.{kind}"


def words_key(job_id: str) -> str:
    return f"{job_prefix(job_id)}words.json"


def chapter_key(job_id: str, chapter: int, audio_format: str) -> str:
    return f"{job_prefix(job_id)}chapters/{chapter + 1:03d}.{audio_format}"


def original_key(job_id: str) -> str:
    """The uploaded EPUB of a job whose read-along EPUB keeps its pages."""
    return f"{job_prefix(job_id)}original.epub"


PRESIGNED_KEPT = 10_000  # presigned URLs kept for reuse, newest first


def download_name(title: str, audio_format: str) -> str:
    """The file name a browser saves an audiobook under: its title, made safe."""
    stem = re.sub(r"[^A-Za-z0-9._ -]+", "", title).strip() or "audiobook"
    return f"{stem[:80]}.{audio_format}"


def _client(settings: Settings, endpoint: str) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=settings.s3_access_key or None,
        aws_secret_access_key=settings.s3_secret_key or None,
        region_name=settings.s3_region,
        config=Config(
            s3={"addressing_style": "path"},
            signature_version="s3v4",
            # S3 away for a moment (restarted, overloaded): each request is
            # tried again with backoff; connection errors and 5xx count.
            retries={"mode": settings.s3_retry_mode, "max_attempts": settings.s3_max_attempts},
            connect_timeout=5,
            read_timeout=60,
            # Connections are kept and reused: one per thread that may call at
            # once (a worker's segments in flight, the API's threads).
            max_pool_connections=S3_CONNECTIONS,
            # A checksum only where S3 requires one (multi-object delete): the
            # request is signed with its payload's SHA-256 all the same.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        ),
    )


class Storage:
    def __init__(self, settings: Settings) -> None:
        self.bucket = settings.s3_bucket
        self.presign_seconds = settings.presign_seconds
        self._presigned: OrderedDict[tuple[str, str | None], tuple[str, float]] = OrderedDict()
        self._presign_lock = threading.Lock()
        self.s3 = _client(settings, settings.s3_endpoint)
        public = settings.s3_public_endpoint
        self._presigner = _client(settings, public) if public else self.s3

    def _call(self, operation: str, key: str, fn: Any, /, **kwargs: Any) -> Any:
        try:
            return fn(Bucket=self.bucket, **kwargs)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "NoSuchUpload", "404"):
                raise ObjectMissing(f"S3 {operation} {self.bucket}/{key}: no such object") from exc
            raise StorageError(f"S3 {operation} {self.bucket}/{key} failed: {exc}") from exc
        except BotoCoreError as exc:
            raise StorageError(f"S3 {operation} {self.bucket}/{key} failed: {exc}") from exc

    def ensure_bucket(self) -> None:
        try:
            self.s3.head_bucket(Bucket=self.bucket)
            return
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket", "NotFound"):
                raise StorageError(f"S3 head_bucket {self.bucket} failed: {exc}") from exc
        except BotoCoreError as exc:
            raise StorageError(f"S3 head_bucket {self.bucket} failed: {exc}") from exc
        self._call("create_bucket", "", self.s3.create_bucket)

    def ping(self) -> None:
        self._call("head_bucket", "", self.s3.head_bucket)

    def put_bytes(self, key: str, data: bytes, content_type: str) -> None:
        self._call("put", key, self.s3.put_object, Key=key, Body=data, ContentType=content_type)

    def put_json(self, key: str, document: Any) -> None:
        body = json.dumps(document, ensure_ascii=False).encode("utf-8")
        self.put_bytes(key, body, "application/json")

    def get_bytes(self, key: str) -> bytes:
        response = self._call("get", key, self.s3.get_object, Key=key)
        return response["Body"].read()

    def get_json(self, key: str) -> Any:
        return json.loads(self.get_bytes(key))

    def upload_file(self, path: Path, key: str, content_type: str) -> None:
        """Upload a file from disk; multipart above the threshold, so memory
        does not grow with the size of the book. A failed multipart upload is
        aborted: boto3 tries, and where its abort failed too (S3 was the
        problem), this tries again; the watchdog aborts what a dead process left."""
        try:
            self.s3.upload_file(
                str(path), self.bucket, key, ExtraArgs={"ContentType": content_type}, Config=_TRANSFER
            )
        except (ClientError, BotoCoreError) as exc:
            try:
                self.abort_uploads(key)
            except StorageError:
                pass  # S3 is still failing; the watchdog's sweep aborts it later
            raise StorageError(f"S3 upload {self.bucket}/{key} failed: {exc}") from exc

    def uploads_in_progress(self, prefix: str) -> list[dict[str, Any]]:
        """Multipart uploads begun under ``prefix`` and neither completed nor
        aborted: {"Key", "UploadId", "Initiated"} each."""
        paginator = self.s3.get_paginator("list_multipart_uploads")
        try:
            return [
                upload
                for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix)
                for upload in page.get("Uploads", [])
            ]
        except (ClientError, BotoCoreError) as exc:
            raise StorageError(f"S3 list uploads {self.bucket}/{prefix} failed: {exc}") from exc

    def abort_uploads(self, prefix: str, older_than_s: float = 0.0) -> int:
        """Abort the multipart uploads under ``prefix`` begun more than
        ``older_than_s`` seconds ago; their parts stop taking space."""
        cutoff = datetime.now(UTC) - timedelta(seconds=older_than_s)
        aborted = 0
        for upload in self.uploads_in_progress(prefix):
            if upload["Initiated"] > cutoff:
                continue
            try:
                self._call("abort upload", upload["Key"], self.s3.abort_multipart_upload,
                           Key=upload["Key"], UploadId=upload["UploadId"])
            except ObjectMissing:  # completed or aborted meanwhile
                continue
            aborted += 1
        return aborted

    def delete_keys(self, keys: list[str]) -> None:
        for start in range(0, len(keys), 1000):  # S3 deletes at most 1000 per call
            batch = [{"Key": k} for k in keys[start : start + 1000]]
            self._call("delete", batch[0]["Key"], self.s3.delete_objects, Delete={"Objects": batch, "Quiet": True})

    def delete_prefix(self, prefix: str) -> int:
        """Delete every object under ``prefix``; how many there were."""
        keys = self.list_keys(prefix)
        if keys:
            self.delete_keys(keys)
        return len(keys)

    def list_keys(self, prefix: str) -> list[str]:
        paginator = self.s3.get_paginator("list_objects_v2")
        try:
            return [
                item["Key"]
                for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix)
                for item in page.get("Contents", [])
            ]
        except (ClientError, BotoCoreError) as exc:
            raise StorageError(f"S3 list {self.bucket}/{prefix} failed: {exc}") from exc

    def presign(self, key: str, filename: str | None = None) -> str:
        """A time-limited GET URL for the object. Signing costs about half a
        millisecond, and clients poll: a URL is handed out again while it has
        at least half its lifetime left (so every URL given lives at least
        ``presign_seconds / 2``)."""
        cached = self.presigned(key, filename)
        if cached is not None:
            return cached
        params = {"Bucket": self.bucket, "Key": key}
        if filename:
            params["ResponseContentDisposition"] = f'attachment; filename="{filename}"'
        url = self._presigner.generate_presigned_url("get_object", Params=params, ExpiresIn=self.presign_seconds)
        with self._presign_lock:
            self._presigned[(key, filename)] = (url, time.monotonic() + self.presign_seconds / 2)
            while len(self._presigned) > PRESIGNED_KEPT:
                self._presigned.popitem(last=False)
        return url

    def presigned(self, key: str, filename: str | None = None) -> str | None:
        """The URL ``presign`` would hand out without signing, if there is one."""
        with self._presign_lock:
            entry = self._presigned.get((key, filename))
        return entry[0] if entry and time.monotonic() < entry[1] else None

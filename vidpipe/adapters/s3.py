"""S3 behind one small adapter: presigned uploads and downloads, files and folders.

What can go wrong: every S3 or botocore failure (a missing key, a denied call,
an unreachable endpoint) is raised as :class:`~vidpipe.domain.errors.StorageError`
naming the bucket and key, chained to the botocore error. A wrong argument
(a negative size, an expiry of zero) is a :class:`~vidpipe.domain.errors.ValidationFailed`.
"""

from __future__ import annotations

import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from boto3.exceptions import Boto3Error
from botocore.exceptions import BotoCoreError, ClientError

from vidpipe.domain.errors import StorageError, UploadNotOpen, ValidationFailed
from vidpipe.domain.stored_objects import ObjectInfo, UploadedPart

DEFAULT_CONTENT_TYPE = "application/octet-stream"

# What the HLS players and browsers expect for each file our stages write.
CONTENT_TYPES = {
    ".m3u8": "application/vnd.apple.mpegurl",
    ".ts": "video/mp2t",
    ".m4s": "video/iso.segment",
    ".mp4": "video/mp4",
    ".jpg": "image/jpeg",
    ".vtt": "text/vtt",
}

# Files a browser should save rather than show: the MP4 download is the only
# .mp4 the stages write (segments are .ts). Stored on the object, so presigned
# S3 URLs and CloudFront signed URLs both carry it; the name is the key's last part.
CONTENT_DISPOSITIONS = {".mp4": "attachment"}

# A ladder writes a few hundred small segments: a handful of parallel PUTs hides
# the round trips without hammering a local endpoint. boto3 clients are
# thread-safe, so the workers share ours.
UPLOAD_WORKERS = 8
DOWNLOAD_CHUNK_BYTES = 8 * 1024 * 1024
# The most keys one DeleteObjects call takes.
DELETE_BATCH = 1000

# head_object answers a missing key with a bare HTTP status, get_object with NoSuchKey.
_MISSING_CODES = frozenset({"404", "NoSuchKey", "NotFound"})

# boto3's transfer methods (upload_file, download_file) wrap some failures in
# their own Boto3Error subclasses (S3UploadFailedError, RetriesExceededError).
_S3_FAILURES = (BotoCoreError, ClientError, Boto3Error)
_S3Failure = BotoCoreError | ClientError | Boto3Error


def content_type_for(path: Path | str) -> str:
    """The Content-Type we store a file under, chosen by its extension."""
    return CONTENT_TYPES.get(Path(path).suffix.lower(), DEFAULT_CONTENT_TYPE)


def _error_code(exc: _S3Failure) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


class S3ObjectStore:
    """One bucket, reached through a boto3 S3 client."""

    def __init__(self, client: Any, bucket: str) -> None:
        self._client = client
        self.bucket = bucket

    def _where(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def _storage_error(self, action: str, key: str, exc: _S3Failure) -> StorageError:
        code = _error_code(exc)
        if code in _MISSING_CODES:
            return StorageError(f"cannot {action} {self._where(key)}: no such object")
        return StorageError(f"cannot {action} {self._where(key)}: {code or type(exc).__name__}: {exc}")

    def presigned_post(self, key: str, *, content_type: str, size: int, expires_s: int) -> dict[str, Any]:
        """A browser form upload (``{url, fields}``) that S3 accepts only for exactly
        this key, this Content-Type and exactly ``size`` bytes.

        Raises ValidationFailed for a negative size or a non-positive expiry,
        StorageError when botocore cannot sign (no credentials)."""
        if size < 0 or expires_s <= 0:
            raise ValidationFailed(f"bad presigned POST request: size={size}, expires_s={expires_s}")
        # The Content-Type goes into the fields (so the browser sends it) and into
        # the conditions (so S3 refuses a form that changes it); the key condition
        # is added by botocore itself from Key.
        conditions: list[Any] = [
            {"Content-Type": content_type},
            ["content-length-range", size, size],
        ]
        try:
            post: dict[str, Any] = self._client.generate_presigned_post(
                Bucket=self.bucket,
                Key=key,
                Fields={"Content-Type": content_type},
                Conditions=conditions,
                ExpiresIn=expires_s,
            )
        except _S3_FAILURES as exc:
            raise self._storage_error("presign a POST for", key, exc) from exc
        return {"url": post["url"], "fields": post["fields"]}

    def presigned_get(self, key: str, *, expires_s: int, version_id: str | None = None) -> str:
        """A URL that fetches the object with a plain GET until it expires; with
        ``version_id``, that version and no other (the id is signed into the URL,
        so whoever reads it by ranges, FFmpeg included, gets the same bytes
        whatever is written to the key later).

        Signing is local: the object is not checked to exist. Raises
        ValidationFailed for a non-positive expiry, StorageError when botocore
        cannot sign."""
        if expires_s <= 0:
            raise ValidationFailed(f"bad presigned GET request: expires_s={expires_s}")
        params = {"Bucket": self.bucket, "Key": key} | ({"VersionId": version_id} if version_id else {})
        try:
            return str(self._client.generate_presigned_url("get_object", Params=params, ExpiresIn=expires_s))
        except _S3_FAILURES as exc:
            raise self._storage_error("presign a GET for", key, exc) from exc

    def download(self, key: str, path: Path, *, version_id: str | None = None, etag: str | None = None) -> None:
        """Write the object to ``path`` (its folder is created): with ``version_id``
        that version, with ``etag`` only if the bytes still have that ETag.

        Raises StorageError for a missing key or version, an ETag that differs
        (another write replaced the object) or any S3 failure; a partly
        written file may be left behind."""
        path.parent.mkdir(parents=True, exist_ok=True)
        pinned = ({"VersionId": version_id} if version_id else {}) | ({"IfMatch": f'"{etag}"'} if etag else {})
        # One streamed GET rather than boto3's parallel ranged GETs: as fast
        # from Lambda for a source video, and ministack answers each ranged GET
        # by reading the whole object (1 GiB took 123 s ranged, 14 s streamed).
        try:
            body = self._client.get_object(Bucket=self.bucket, Key=key, **pinned)["Body"]
            with path.open("wb") as handle:
                shutil.copyfileobj(body, handle, DOWNLOAD_CHUNK_BYTES)
        except _S3_FAILURES as exc:
            raise self._storage_error("download", key, exc) from exc

    def version_with_etag(self, key: str, etag: str) -> str | None:
        """The id of a version of ``key`` whose bytes have ``etag`` (the newest
        such), or None when there is none (or the bucket keeps no versions).

        For an "Object Created" event without a version id (ministack sends
        none; AWS does when versioning is on): equal ETags mean equal bytes,
        so any version with the accepted ETag is the accepted upload.
        Raises StorageError for any S3 failure."""
        try:
            pages = self._client.get_paginator("list_object_versions").paginate(Bucket=self.bucket, Prefix=key)
            versions = [v for page in pages for v in page.get("Versions", [])]
        except _S3_FAILURES as exc:
            raise self._storage_error("list the versions of", key, exc) from exc
        matching = [v for v in versions if v.get("Key") == key and str(v.get("ETag", "")).strip('"') == etag.strip('"')]
        newest = max(matching, key=lambda v: v.get("LastModified") or 0, default=None)
        version_id = str(newest.get("VersionId") or "") if newest else ""
        return version_id if version_id and version_id != "null" else None

    def copy_version(self, key: str, version_id: str, destination_key: str) -> None:
        """Copy one version of ``key`` to ``destination_key`` in the same bucket
        (for a reader that cannot ask for a version: MediaConvert). Managed
        copy, so sources above 5 GiB are copied in parts. Raises StorageError."""
        try:
            self._client.copy(
                {"Bucket": self.bucket, "Key": key, "VersionId": version_id}, self.bucket, destination_key
            )
        except _S3_FAILURES as exc:
            raise self._storage_error("copy", key, exc) from exc

    def upload_file(self, path: Path, key: str, *, content_type: str | None = None) -> None:
        """Store the local file at ``key``, with a Content-Type chosen by extension
        unless given.

        Raises StorageError for any S3 failure; OSError when ``path`` cannot be read."""
        extra = {"ContentType": content_type or content_type_for(path)}
        if disposition := CONTENT_DISPOSITIONS.get(Path(key).suffix.lower()):
            extra["ContentDisposition"] = disposition
        try:
            self._client.upload_file(str(path), self.bucket, key, ExtraArgs=extra)
        except _S3_FAILURES as exc:
            raise self._storage_error("upload", key, exc) from exc

    def upload_tree(self, local_dir: Path, prefix: str) -> list[str]:
        """Upload every file under ``local_dir`` to ``prefix`` + its relative posix
        path and return the keys, sorted. ``prefix`` names a folder: a missing
        trailing slash is added.

        Raises StorageError when any upload fails (after the others have run:
        some objects may already be stored, and a retry overwrites them);
        ValidationFailed when ``local_dir`` is not a directory."""
        if not local_dir.is_dir():
            raise ValidationFailed(f"not a directory: {local_dir}")
        folder = prefix if not prefix or prefix.endswith("/") else prefix + "/"
        files = sorted(path for path in local_dir.rglob("*") if path.is_file())
        keys = [folder + path.relative_to(local_dir).as_posix() for path in files]
        with ThreadPoolExecutor(max_workers=UPLOAD_WORKERS) as pool:
            futures = [pool.submit(self.upload_file, path, key) for path, key in zip(files, keys, strict=True)]
        # Leaving the with-block waited for every upload; report the first failure.
        for future in futures:
            future.result()
        return sorted(keys)

    def read_text(self, key: str) -> str:
        """The object's body decoded as UTF-8 (playlists, WebVTT, manifests).

        Raises StorageError for a missing key or any S3 failure;
        UnicodeDecodeError when the body is not UTF-8."""
        try:
            response = self._client.get_object(Bucket=self.bucket, Key=key)
            body: bytes = response["Body"].read()
        except _S3_FAILURES as exc:
            raise self._storage_error("read", key, exc) from exc
        return body.decode("utf-8")

    def head(self, key: str) -> ObjectInfo | None:
        """Size, type, ETag (without quotes), date and user metadata of the object,
        or None when there is no such object.

        Raises StorageError for any other S3 failure (a denied HeadObject on a
        bucket without ListBucket permission also answers 403, not 404)."""
        try:
            response = self._client.head_object(Bucket=self.bucket, Key=key)
        except _S3_FAILURES as exc:
            if _error_code(exc) in _MISSING_CODES:
                return None
            raise self._storage_error("inspect", key, exc) from exc
        return ObjectInfo(
            size=int(response.get("ContentLength", 0)),
            content_type=str(response.get("ContentType", DEFAULT_CONTENT_TYPE)),
            etag=str(response.get("ETag", "")).strip('"'),
            last_modified=response.get("LastModified"),
            metadata=dict(response.get("Metadata") or {}),
        )

    # ---------------------------------------------------------- multipart uploads

    def start_multipart(self, key: str, *, content_type: str) -> str:
        """Begin a multipart upload of ``key``; returns its upload id. Raises StorageError."""
        try:
            response = self._client.create_multipart_upload(Bucket=self.bucket, Key=key, ContentType=content_type)
        except _S3_FAILURES as exc:
            raise self._storage_error("start a multipart upload of", key, exc) from exc
        return str(response["UploadId"])

    def presigned_part(self, key: str, *, upload_id: str, part_number: int, expires_s: int) -> str:
        """A URL that PUTs one part of this upload (and of no other: the upload id,
        the key and the part number are all signed). Raises ValidationFailed, StorageError."""
        if not 1 <= part_number <= 10_000 or expires_s <= 0:
            raise ValidationFailed(f"bad part URL request: part_number={part_number}, expires_s={expires_s}")
        try:
            return str(
                self._client.generate_presigned_url(
                    "upload_part",
                    Params={"Bucket": self.bucket, "Key": key, "UploadId": upload_id, "PartNumber": part_number},
                    ExpiresIn=expires_s,
                )
            )
        except _S3_FAILURES as exc:
            raise self._storage_error("presign a part of", key, exc) from exc

    def upload_part(self, key: str, *, upload_id: str, part_number: int, body: bytes) -> UploadedPart:
        """PUT one part of this upload from memory (a URL import streams its
        source this way, one part at a time). Raises StorageError."""
        try:
            response = self._client.upload_part(
                Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=part_number, Body=body
            )
        except _S3_FAILURES as exc:
            raise self._storage_error("upload a part of", key, exc) from exc
        return UploadedPart(part_number=part_number, etag=str(response["ETag"]), size=len(body))

    def list_parts(self, key: str, *, upload_id: str) -> list[UploadedPart]:
        """Every part S3 holds of this upload, by part number. Raises StorageError
        (also when the upload is unknown: completed or aborted)."""
        parts: list[UploadedPart] = []
        marker = 0
        try:
            while True:
                response = self._client.list_parts(
                    Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumberMarker=marker, MaxParts=1000
                )
                parts.extend(
                    UploadedPart(part_number=int(p["PartNumber"]), etag=str(p["ETag"]), size=int(p["Size"]))
                    for p in response.get("Parts", [])
                )
                if not response.get("IsTruncated"):
                    return parts
                marker = int(response["NextPartNumberMarker"])
        except _S3_FAILURES as exc:
            raise self._storage_error("list the parts of", key, exc) from exc

    def complete_multipart(self, key: str, *, upload_id: str, parts: list[UploadedPart]) -> None:
        """Join the parts into the object, only if nothing is at ``key`` yet
        (``If-None-Match: *``): an upload key is written once.

        Raises UploadNotOpen when the key already holds an object, StorageError
        for any other S3 failure."""
        ordered = sorted(parts, key=lambda part: part["part_number"])
        try:
            self._client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=key,
                UploadId=upload_id,
                MultipartUpload={"Parts": [{"PartNumber": p["part_number"], "ETag": p["etag"]} for p in ordered]},
                IfNoneMatch="*",
            )
        except _S3_FAILURES as exc:
            if _error_code(exc) == "PreconditionFailed":
                raise UploadNotOpen(f"{self._where(key)} was already written: an upload is accepted once") from exc
            raise self._storage_error("complete the upload of", key, exc) from exc

    def abort_multipart(self, key: str, *, upload_id: str) -> None:
        """Drop the upload and its parts; an upload already gone is fine. Raises StorageError."""
        try:
            self._client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
        except _S3_FAILURES as exc:
            if _error_code(exc) == "NoSuchUpload":
                return
            raise self._storage_error("abort the upload of", key, exc) from exc

    def delete_prefix(self, prefix: str) -> int:
        """Delete everything under the folder ``prefix``: every object, every
        older version and every delete marker (a versioned bucket would
        otherwise keep the bytes), in batches of 1000. Returns how many
        versions went; an empty folder is fine (0).

        Raises ValidationFailed for a prefix that is not one folder of a job
        (empty, or without its trailing slash: "jobs/ab" would take "jobs/abc/"
        too); StorageError for any S3 failure, some objects possibly deleted
        already (deleting again finishes the job)."""
        if not prefix.endswith("/") or prefix.count("/") < 2:
            raise ValidationFailed(f"refusing to delete {prefix!r}: not a job's folder (e.g. jobs/{{job_id}}/)")
        deleted = 0
        try:
            pages = self._client.get_paginator("list_object_versions").paginate(Bucket=self.bucket, Prefix=prefix)
            for page in pages:
                versions = [
                    {"Key": item["Key"], "VersionId": item["VersionId"]}
                    for item in page.get("Versions", []) + page.get("DeleteMarkers", [])
                ]
                for start in range(0, len(versions), DELETE_BATCH):
                    batch = versions[start : start + DELETE_BATCH]
                    answer = self._client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})
                    if answer.get("Errors"):
                        first = answer["Errors"][0]
                        raise StorageError(
                            f"cannot delete {self._where(first.get('Key', prefix))}: "
                            f"{first.get('Code')}: {first.get('Message')}"
                        )
                    deleted += len(batch)
        except _S3_FAILURES as exc:
            raise self._storage_error("delete the folder", prefix, exc) from exc
        return deleted

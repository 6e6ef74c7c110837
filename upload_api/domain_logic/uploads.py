"""Creating an upload: check the request, record the job, sign the S3 POST.

What can go wrong: ValidationFailed (bad filename), UploadTooLarge,
UnsupportedMediaType (each a 4xx with the reason), StorageError/JobStoreError.
"""

from __future__ import annotations

import unicodedata
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from vidpipe.errors import UnsupportedMediaType, UploadTooLarge, ValidationFailed
from vidpipe.events import UPLOAD_KEY_PREFIX, utc_now
from vidpipe.jobs import Job

MAX_FILENAME_CHARS = 255


class JobCreator(Protocol):
    def create(self, job: Job) -> None: ...


class UploadSigner(Protocol):
    def presigned_post(self, key: str, *, content_type: str, size: int, expires_s: int) -> dict[str, Any]: ...


@dataclass(frozen=True)
class UploadRequest:
    filename: str
    content_type: str
    size: int


@dataclass(frozen=True)
class UploadLimits:
    max_bytes: int
    url_ttl_s: int


def upload_key(job_id: str) -> str:
    """The user's filename never goes into a key: it lives in the job record."""
    return f"{UPLOAD_KEY_PREFIX}{job_id}/source"


def check_upload_request(request: UploadRequest, limits: UploadLimits) -> None:
    """Refuse up front what would fail later anyway."""
    name = request.filename.strip()
    if not name:
        raise ValidationFailed("filename must not be empty")
    if len(name) > MAX_FILENAME_CHARS:
        raise ValidationFailed(f"filename is longer than {MAX_FILENAME_CHARS} characters")
    if any(unicodedata.category(char) == "Cc" for char in name):
        raise ValidationFailed("filename contains control characters")
    content_type = request.content_type.strip().lower()
    if not content_type.startswith("video/") or content_type == "video/":
        raise UnsupportedMediaType(f"content type {request.content_type!r} is not a video type (video/...)")
    if request.size <= 0:
        raise ValidationFailed("size must be a positive number of bytes")
    if request.size > limits.max_bytes:
        raise UploadTooLarge(
            f"the file is {request.size} bytes; the largest accepted upload is {limits.max_bytes} bytes"
        )


def create_upload(
    request: UploadRequest,
    *,
    limits: UploadLimits,
    jobs: JobCreator,
    signer: UploadSigner,
    new_job_id: str | None = None,
) -> dict[str, Any]:
    """Record a job AWAITING_UPLOAD and return ``{job_id, upload}`` for the client."""
    check_upload_request(request, limits)
    job_id = new_job_id or uuid.uuid4().hex
    now = utc_now()
    content_type = request.content_type.strip().lower()
    job = Job.new(job_id, filename=request.filename.strip(), content_type=content_type, size=request.size, now=now)
    jobs.create(job)
    post = signer.presigned_post(
        upload_key(job_id), content_type=content_type, size=request.size, expires_s=limits.url_ttl_s
    )
    expires_at = datetime.now(UTC) + timedelta(seconds=limits.url_ttl_s)
    return {
        "job_id": job_id,
        "upload": {
            "method": "POST",
            "url": post["url"],
            "fields": post["fields"],
            "expires_at": expires_at.isoformat(timespec="seconds").replace("+00:00", "Z"),
        },
    }

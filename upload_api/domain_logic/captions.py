"""Adding a caption file to a READY job: ``POST /jobs/{id}/captions``.

The request is checked and recorded in the job (``captions[i]``, status
AWAITING_UPLOAD), and the answer is a presigned POST like a video's. The upload
then lands at ``captions/{job_id}/{caption_id}``, where the captions function
(transcode.handlers.captions) validates it and adds it to the master playlist.

What can go wrong: ValidationFailed for a bad language tag, label or file
name; UnsupportedMediaType for a type that is not SubRip or WebVTT;
UploadTooLarge above MAX_CAPTION_BYTES; UploadNotOpen when the job is not READY
or has MAX_CAPTIONS captions already; ConcurrentUpdate (after retries) and the
stores' errors.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any, Protocol

from vidpipe.domain.errors import (
    ConcurrentUpdate,
    UnsupportedMediaType,
    UploadNotOpen,
    UploadTooLarge,
    ValidationFailed,
)
from vidpipe.domain.events import utc_now
from vidpipe.domain.jobs import Job, JobStatus
from vidpipe.domain.storage_keys import caption_upload_key
from vidpipe.domain.webvtt import MAX_CAPTION_BYTES

MAX_CAPTIONS = 20
CAPTION_CONTENT_TYPES = frozenset({"text/vtt", "application/x-subrip", "text/srt", "text/plain"})
CAPTION_EXTENSIONS = (".srt", ".vtt")
# A BCP 47 tag as players match it: a primary language and optional subtags (en, pt-BR, zh-Hant).
_LANGUAGE_TAG = re.compile(r"^[A-Za-z]{2,3}(?:-[A-Za-z0-9]{1,8}){0,3}$")


class JobStore(Protocol):
    def get(self, job_id: str) -> Job: ...
    def save(self, job: Job, *, expected_version: int) -> Job: ...


class PostSigner(Protocol):
    def presigned_post(self, key: str, *, content_type: str, size: int, expires_s: int) -> dict[str, Any]: ...


@dataclass(frozen=True)
class CaptionRequest:
    language: str
    label: str
    filename: str
    content_type: str
    size: int


def check_caption_request(request: CaptionRequest) -> None:
    """Raise the error of the first field that is wrong (see the module docstring)."""
    if not _LANGUAGE_TAG.match(request.language):
        raise ValidationFailed(f"language must be a BCP 47 tag such as 'en' or 'pt-BR', not {request.language!r}")
    if not request.label.strip() or any(char in request.label for char in '"\r\n'):
        raise ValidationFailed("label must be a non-empty name without double quotes or line breaks")
    if not request.filename.lower().endswith(CAPTION_EXTENSIONS):
        raise ValidationFailed(f"filename must end in {' or '.join(CAPTION_EXTENSIONS)} (SubRip or WebVTT)")
    if request.content_type.split(";")[0].strip().lower() not in CAPTION_CONTENT_TYPES:
        raise UnsupportedMediaType(
            f"content_type {request.content_type!r} is not a caption file; send one of {sorted(CAPTION_CONTENT_TYPES)}"
        )
    if request.size > MAX_CAPTION_BYTES:
        raise UploadTooLarge(f"a caption file may be at most {MAX_CAPTION_BYTES} bytes, not {request.size}")


def add_caption(
    job: Job, request: CaptionRequest, *, jobs: JobStore, signer: PostSigner, url_ttl_s: int
) -> dict[str, Any]:
    """Record the caption in the job and return ``{caption_id, status, upload}``
    where ``upload`` is ``{method: POST, url, fields}``."""
    check_caption_request(request)
    caption_id = uuid.uuid4().hex[:16]
    caption = {
        "caption_id": caption_id,
        "language": request.language,
        "label": request.label.strip(),
        "filename": request.filename,
        "content_type": request.content_type,
        "size": request.size,
        "status": "AWAITING_UPLOAD",
        "error": None,
        "created_at": utc_now(),
    }
    for attempt in range(5):
        if job.status is not JobStatus.READY:
            raise UploadNotOpen(f"captions can be added to a READY job; job {job.job_id} is {job.status.value}")
        if len(job.captions) >= MAX_CAPTIONS:
            raise UploadNotOpen(f"job {job.job_id} has {MAX_CAPTIONS} captions already, the most it may have")
        job.captions.append(caption)
        try:
            jobs.save(job, expected_version=job.version)
            break
        except ConcurrentUpdate:
            if attempt == 4:
                raise
            job = jobs.get(job.job_id)
    post = signer.presigned_post(
        caption_upload_key(job.job_id, caption_id),
        content_type=request.content_type,
        size=request.size,
        expires_s=url_ttl_s,
    )
    return {
        "caption_id": caption_id,
        "status": caption["status"],
        "upload": {"method": "POST", "url": post["url"], "fields": post["fields"]},
    }

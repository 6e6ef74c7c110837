"""Creating and finishing uploads: check the request, record the job, sign S3 requests.

Up to the multipart threshold a file goes up in ONE presigned POST whose policy
pins the key, the content type and the exact size. Above it, S3 multipart:
the client PUTs parts to presigned part URLs (fetching more as it goes), can
ask which parts S3 already has (to resume), and asks us to complete, which
checks every part against what S3 holds. Either way S3 sends one "Object
Created" event and the job moves on the same way.

What can go wrong: ValidationFailed (bad filename or part numbers),
UploadTooLarge, UnsupportedMediaType, UploadNotOpen (the job takes no more
upload calls), UploadIncomplete (a part missing, resized or changed), each a
4xx with the reason; StorageError/JobStoreError for our own failures.
"""

from __future__ import annotations

import math
import re
import unicodedata
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from upload_api.domain_logic.job_details import checked_passthrough, checked_title
from vidpipe.domain import storage_keys
from vidpipe.domain.errors import (
    QuotaExceeded,
    UnsupportedMediaType,
    UploadIncomplete,
    UploadNotOpen,
    UploadTooLarge,
    ValidationFailed,
)
from vidpipe.domain.events import utc_now
from vidpipe.domain.job_transitions import UPLOAD_CANCELLED, end_upload
from vidpipe.domain.jobs import Job, JobStatus
from vidpipe.domain.quotas import JobReader, OwnerLimits, UsageStore, admit_and_record, release_if_ended
from vidpipe.domain.stored_objects import UploadedPart

MAX_FILENAME_CHARS = 255
# Bidirectional overrides and isolates: "clip\u202Egnp.mp4" displays as "clipmp4.png".
# Joiners and other format characters stay allowed (emoji sequences need them).
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
MiB = 1024 * 1024
# S3's limits: parts of 5 MiB to 5 GiB (the last may be smaller), 10,000 at most.
MIN_PART_BYTES = 8 * MiB  # above S3's 5 MiB floor: fewer requests, same resume granularity in practice
MAX_PART_BYTES = 5 * 1024 * MiB
MAX_PARTS = 10_000
FIRST_PART_BATCH = 50  # part URLs handed out with the plan; more on request
MAX_PART_URLS_PER_CALL = 100


class JobCreator(Protocol):
    def create(self, job: Job) -> None: ...


class JobSaver(Protocol):
    def save(self, job: Job, *, expected_version: int) -> Job: ...


class UploadSigner(Protocol):
    def presigned_post(self, key: str, *, content_type: str, size: int, expires_s: int) -> dict[str, Any]: ...


class MultipartStore(Protocol):
    def start_multipart(self, key: str, *, content_type: str) -> str: ...

    def presigned_part(self, key: str, *, upload_id: str, part_number: int, expires_s: int) -> str: ...

    def list_parts(self, key: str, *, upload_id: str) -> list[UploadedPart]: ...

    def complete_multipart(self, key: str, *, upload_id: str, parts: list[UploadedPart]) -> None: ...

    def abort_multipart(self, key: str, *, upload_id: str) -> None: ...


# The content type S3 stores and later serves the source with: exactly
# "video/<subtype>", the subtype in RFC 6838's restricted-name grammar. No
# parameters, no ";", no spaces: "video/x;text/html" would otherwise reach the
# presigned POST's policy and the object's Content-Type as it is.
VIDEO_CONTENT_TYPE = re.compile(r"video/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}")


@dataclass(frozen=True)
class OwnerQuota:
    """The per-owner limits and where their usage is counted (vidpipe.domain.quotas);
    ``jobs`` is read to take back slots of jobs that ended without freeing theirs."""

    limits: OwnerLimits
    usage: UsageStore
    jobs: JobReader


@dataclass(frozen=True)
class UploadRequest:
    filename: str
    content_type: str
    size: int
    title: str | None = None
    passthrough: str | None = None


@dataclass(frozen=True)
class UploadLimits:
    max_bytes: int
    url_ttl_s: int
    multipart_threshold_bytes: int = 100 * MiB


def upload_key(job_id: str) -> str:
    """The user's filename never goes into a key: it lives in the job record."""
    return storage_keys.upload_key(job_id)


def check_upload_request(request: UploadRequest, limits: UploadLimits) -> None:
    """Refuse up front what would fail later anyway, and filenames no browser
    sends. The name never reaches a key, but it is shown in pages and may one
    day name a download, so it must be one name: no path separators (a
    browser's File.name never has one), no control characters, no
    bidirectional overrides, at most MAX_FILENAME_CHARS characters (code
    points, so 200 CJK characters are fine)."""
    name = request.filename.strip()
    if not name:
        raise ValidationFailed("filename must not be empty")
    if len(name) > MAX_FILENAME_CHARS:
        raise ValidationFailed(f"filename is longer than {MAX_FILENAME_CHARS} characters")
    if any(unicodedata.category(char) == "Cc" for char in name):
        raise ValidationFailed("filename contains control characters")
    if "/" in name or "\\" in name or name in (".", ".."):
        raise ValidationFailed("filename must be a file's name, not a path (no '/' or '\\', not '.' or '..')")
    if any(char in BIDI_CONTROLS for char in name):
        raise ValidationFailed("filename contains bidirectional text controls, which can disguise its extension")
    content_type = request.content_type.strip().lower()
    if not VIDEO_CONTENT_TYPE.fullmatch(content_type):
        raise UnsupportedMediaType(
            f"content type {request.content_type!r} is not a video type: video/<subtype> with no parameters"
        )
    if request.size <= 0:
        raise ValidationFailed("size must be a positive number of bytes")
    if request.size > min(limits.max_bytes, MAX_PART_BYTES * MAX_PARTS):
        raise UploadTooLarge(
            f"the file is {request.size} bytes; the largest accepted upload is {limits.max_bytes} bytes"
        )
    checked_title(request.title)
    checked_passthrough(request.passthrough)


def plan_parts(size: int) -> tuple[int, int]:
    """(part_size, part_count) for a multipart upload of ``size`` bytes: parts of
    at least MIN_PART_BYTES, whole MiB, few enough to stay within 10,000."""
    part_size = max(MIN_PART_BYTES, math.ceil(size / MAX_PARTS / MiB) * MiB)
    if part_size > MAX_PART_BYTES:
        raise UploadTooLarge(f"{size} bytes cannot be uploaded in {MAX_PARTS} parts of at most 5 GiB")
    return part_size, math.ceil(size / part_size)


def _expires_at(ttl_s: int) -> str:
    moment = datetime.now(UTC) + timedelta(seconds=ttl_s)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def create_upload(
    request: UploadRequest,
    *,
    limits: UploadLimits,
    jobs: JobCreator,
    signer: UploadSigner | MultipartStore,
    owner: str = "anonymous",
    new_job_id: str | None = None,
    quota: OwnerQuota | None = None,
) -> dict[str, Any]:
    """Record a job AWAITING_UPLOAD and return ``{job_id, upload}`` for the client:
    a presigned POST, or above the threshold a multipart plan with the first part URLs.

    With ``quota``, the job is recorded in one write with one of the owner's
    active-job slots and its size charged to the owner's day (QuotaExceeded
    otherwise, and nothing is recorded)."""
    check_upload_request(request, limits)
    job_id = new_job_id or uuid.uuid4().hex
    record: Callable[[Job], None] = jobs.create
    if quota is not None:
        now = datetime.now(UTC)

        def record(job: Job) -> None:
            admit_and_record(job, request.size, limits=quota.limits, usage=quota.usage, jobs=quota.jobs, now=now)

    return _create_upload(request, job_id, limits=limits, record=record, signer=signer, owner=owner)


def _create_upload(
    request: UploadRequest,
    job_id: str,
    *,
    limits: UploadLimits,
    record: Callable[[Job], None],
    signer: UploadSigner | MultipartStore,
    owner: str,
) -> dict[str, Any]:
    content_type = request.content_type.strip().lower()
    key = upload_key(job_id)
    job = Job.new(
        job_id,
        filename=request.filename.strip(),
        content_type=content_type,
        size=request.size,
        now=utc_now(),
        owner=owner,
        title=checked_title(request.title),
        passthrough=checked_passthrough(request.passthrough),
    )
    if request.size <= limits.multipart_threshold_bytes:
        record(job)
        post = signer.presigned_post(  # type: ignore[union-attr]
            key, content_type=content_type, size=request.size, expires_s=limits.url_ttl_s
        )
        upload = {"method": "POST", "url": post["url"], "fields": post["fields"]}
    else:
        part_size, part_count = plan_parts(request.size)
        # Started before the job is recorded (the job holds its id). Refused by
        # a limit, it is aborted at once; if recording fails otherwise, the
        # bucket's lifecycle rule aborts the orphan upload.
        upload_id = signer.start_multipart(key, content_type=content_type)  # type: ignore[union-attr]
        job.upload = {"upload_id": upload_id, "part_size": part_size, "part_count": part_count}
        try:
            record(job)
        except (QuotaExceeded, UploadTooLarge):
            signer.abort_multipart(key, upload_id=upload_id)  # type: ignore[union-attr]
            raise
        first = range(1, min(part_count, FIRST_PART_BATCH) + 1)
        upload = {
            "method": "MULTIPART",
            "upload_id": upload_id,
            "part_size": part_size,
            "part_count": part_count,
            "parts": _part_urls(job, first, signer, limits.url_ttl_s),  # type: ignore[arg-type]
        }
    return {"job_id": job_id, "upload": {**upload, "expires_at": _expires_at(limits.url_ttl_s)}}


def _open_multipart(job: Job) -> dict[str, Any]:
    """The job's multipart plan; UploadNotOpen unless it still awaits a multipart upload."""
    if not job.upload.get("upload_id"):
        raise UploadNotOpen(f"job {job.job_id} was not created for a multipart upload")
    if job.status is not JobStatus.AWAITING_UPLOAD:
        raise UploadNotOpen(f"job {job.job_id} is {job.status.value}: its upload is closed")
    return job.upload


def _part_urls(job: Job, numbers: Any, store: MultipartStore, ttl_s: int) -> list[dict[str, Any]]:
    upload_id = job.upload["upload_id"]
    return [
        {
            "part_number": n,
            "url": store.presigned_part(upload_key(job.job_id), upload_id=upload_id, part_number=n, expires_s=ttl_s),
        }
        for n in numbers
    ]


def sign_parts(job: Job, part_numbers: list[int], *, store: MultipartStore, ttl_s: int) -> dict[str, Any]:
    """Fresh part URLs for the job's own upload (never another's: the URLs sign its key and upload id)."""
    plan = _open_multipart(job)
    if not part_numbers or len(part_numbers) > MAX_PART_URLS_PER_CALL:
        raise ValidationFailed(f"ask for 1 to {MAX_PART_URLS_PER_CALL} part numbers at a time")
    bad = [n for n in part_numbers if not 1 <= n <= plan["part_count"]]
    if bad:
        raise ValidationFailed(f"part numbers out of range 1..{plan['part_count']}: {bad[:5]}")
    numbers = sorted(set(part_numbers))
    return {"parts": _part_urls(job, numbers, store, ttl_s), "expires_at": _expires_at(ttl_s)}


def uploaded_parts(job: Job, *, store: MultipartStore) -> dict[str, Any]:
    """What S3 already holds of the job's upload, for a client that resumes."""
    plan = _open_multipart(job)
    parts = store.list_parts(upload_key(job.job_id), upload_id=plan["upload_id"])
    return {
        "upload_id": plan["upload_id"],
        "part_size": plan["part_size"],
        "part_count": plan["part_count"],
        "parts": [dict(part) for part in parts],
    }


def complete_upload(job: Job, claimed: list[dict[str, Any]], *, store: MultipartStore) -> dict[str, Any]:
    """Complete the job's multipart upload once every part the client lists is
    the one S3 holds (same ETag), every part is there, and the sizes add up to
    the size declared when the upload was created."""
    plan = _open_multipart(job)
    expected_numbers = set(range(1, plan["part_count"] + 1))
    claimed_etags = {int(part["part_number"]): str(part["etag"]).strip('"') for part in claimed}
    if set(claimed_etags) != expected_numbers or len(claimed) != len(expected_numbers):
        missing = sorted(expected_numbers - set(claimed_etags))[:5]
        raise UploadIncomplete(f"list every part 1..{plan['part_count']} exactly once (missing e.g. {missing})")
    held = {part["part_number"]: part for part in store.list_parts(upload_key(job.job_id), upload_id=plan["upload_id"])}
    for number in sorted(expected_numbers):
        part = held.get(number)
        if part is None:
            raise UploadIncomplete(f"S3 has no part {number} yet")
        if part["etag"].strip('"') != claimed_etags[number]:
            raise UploadIncomplete(f"part {number} differs from what S3 holds (ETag mismatch)")
    total = sum(part["size"] for part in held.values() if part["part_number"] in expected_numbers)
    declared = int(job.source.get("size", 0))
    if total != declared:
        raise UploadIncomplete(f"the parts hold {total} bytes, the upload was declared as {declared} bytes")
    store.complete_multipart(
        upload_key(job.job_id), upload_id=plan["upload_id"], parts=[held[n] for n in sorted(expected_numbers)]
    )
    return {"job_id": job.job_id, "status": job.status.value}


CANCELLED = {"code": UPLOAD_CANCELLED, "message": "the upload was cancelled before it finished"}


def cancel_upload(
    job: Job,
    *,
    jobs: JobSaver,
    store: MultipartStore,
    now: str | None = None,
    usage: UsageStore | None = None,
) -> Job:
    """FAIL (UPLOAD_CANCELLED) a job whose upload has not arrived, abort its
    multipart upload if it has one, and free its active-job slot in ``usage``.
    (The sweep EXPIREs the uploads nobody finished or cancelled.)

    Raises UploadNotOpen when the upload already arrived or the job ended;
    ConcurrentUpdate when the job changed meanwhile (the upload just arrived)."""
    ended = end_upload(job, status=JobStatus.FAILED, error=CANCELLED, now=now or utc_now())
    if ended is None:
        raise UploadNotOpen(f"job {job.job_id} is {job.status.value}: there is no upload to cancel")
    saved = jobs.save(ended, expected_version=job.version)
    if usage is not None:
        release_if_ended(saved, usage=usage)
    if job.upload.get("upload_id"):
        store.abort_multipart(upload_key(job.job_id), upload_id=job.upload["upload_id"])
    return saved

"""Creating a job whose source the service fetches from a URL (``POST /uploads
{source_url}``) instead of the browser uploading it.

The URL is checked here with the rules the import function applies again at
every hop (vidpipe.adapters.source_fetcher), so a URL that leads inside is a
400 at once rather than a failed job later. The job waits AWAITING_UPLOAD, like
a browser upload, until the import function has written its upload key; S3's
event then moves it on the same way. The active-job slot is taken now; the
bytes are charged by the import, once the size is known.

What can go wrong: DestinationRefused (code SOURCE_URL_REFUSED, 400),
QuotaExceeded (429), QueueError/JobStoreError for our own failures (then the
job, if it was recorded, ends FAILED with IMPORT_NOT_STARTED and frees its slot).
"""

from __future__ import annotations

import unicodedata
import uuid
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

from upload_api.domain_logic.job_details import checked_passthrough, checked_title
from upload_api.domain_logic.uploads import BIDI_CONTROLS, MAX_FILENAME_CHARS, OwnerQuota
from vidpipe.domain.errors import InfrastructureError
from vidpipe.domain.events import utc_now
from vidpipe.domain.job_transitions import end_upload
from vidpipe.domain.jobs import Job, JobStatus
from vidpipe.domain.quotas import admit_upload, release_if_ended, undo_admission

IMPORT_METHOD = "IMPORT"
IMPORT_NOT_STARTED = "IMPORT_NOT_STARTED"
FALLBACK_FILENAME = "imported-video"
# Unknown until the answer comes; the probe decides what the bytes are.
UNKNOWN_CONTENT_TYPE = "application/octet-stream"


class SourceUrlChecker(Protocol):
    def check(self, url: str) -> Any: ...


class ImportQueue(Protocol):
    def request_import(self, job_id: str) -> None: ...


class ImportJobs(Protocol):
    def create(self, job: Job) -> None: ...

    def save(self, job: Job, *, expected_version: int) -> Job: ...


def filename_from_url(url: str) -> str:
    """The name the job shows: the URL path's last segment when it is a
    plausible file name (the rules of an uploaded file's name), else
    FALLBACK_FILENAME. Never a key: the name only labels the job."""
    name = unquote(urlsplit(url).path.rsplit("/", 1)[-1]).strip()
    plausible = (
        name
        and len(name) <= MAX_FILENAME_CHARS
        and name not in (".", "..")
        and not any(unicodedata.category(char) == "Cc" or char in BIDI_CONTROLS for char in name)
        and "/" not in name
        and "\\" not in name
    )
    return name if plausible else FALLBACK_FILENAME


def create_import(
    source_url: str,
    *,
    checker: SourceUrlChecker,
    jobs: ImportJobs,
    queue: ImportQueue,
    owner: str,
    quota: OwnerQuota | None = None,
    new_job_id: str | None = None,
    title: str | None = None,
    passthrough: str | None = None,
) -> dict[str, Any]:
    """Check ``source_url``, record a job AWAITING_UPLOAD that remembers it and
    queue its import; ``{job_id, status, upload: {method: "IMPORT", source_url}}``."""
    source_url = source_url.strip()
    title, passthrough = checked_title(title), checked_passthrough(passthrough)
    checker.check(source_url)
    job_id = new_job_id or uuid.uuid4().hex
    now = datetime.now(UTC)
    if quota is not None:
        admit_upload(owner, job_id, 0, limits=quota.limits, usage=quota.usage, jobs=quota.jobs, now=now)
    parts = urlsplit(source_url)
    job = Job.new(
        job_id,
        filename=filename_from_url(source_url),
        content_type=UNKNOWN_CONTENT_TYPE,
        size=0,
        now=utc_now(),
        owner=owner,
        title=title,
        passthrough=passthrough,
    )
    # Where the bytes are shown as the scheme and host only: a signed URL's
    # query is a credential. The whole URL stays in ``upload``, never shown.
    job.source["imported_from"] = f"{parts.scheme}://{parts.netloc.rsplit('@', 1)[-1]}"
    job.upload = {"method": IMPORT_METHOD, "source_url": source_url}
    try:
        jobs.create(job)
    except Exception:
        if quota is not None:
            undo_admission(owner, job_id, 0, usage=quota.usage, now=now)
        raise
    try:
        queue.request_import(job_id)
    except InfrastructureError as exc:
        _not_started(job, jobs=jobs, quota=quota)
        raise exc
    return {
        "job_id": job_id,
        "status": JobStatus.AWAITING_UPLOAD.value,
        "upload": {"method": IMPORT_METHOD, "source_url": source_url},
    }


def _not_started(job: Job, *, jobs: ImportJobs, quota: OwnerQuota | None) -> None:
    """The job was recorded but its import could not be queued: end it now
    rather than let it wait for the expiry sweep, and give its slot back."""
    error = {"code": IMPORT_NOT_STARTED, "message": "the import could not be started; submit the URL again"}
    ended = end_upload(job, status=JobStatus.FAILED, error=error, now=utc_now())
    if ended is None:
        return
    try:
        saved = jobs.save(ended, expected_version=job.version)
        if quota is not None:
            release_if_ended(saved, usage=quota.usage)
    except InfrastructureError:
        pass  # the sweep expires the job later; the caller gets the first failure

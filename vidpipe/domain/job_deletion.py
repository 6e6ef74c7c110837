"""Deleting a job (DELETE /jobs/{id}): its upload, its work files, its outputs, its record.

The order is what makes it safe while the job is still processing:

1. mark the job DELETING (a conditional save): from then on the API answers
   404 for it, it leaves GET /jobs, its output grants are refused, no stage
   starts work for it and the status function ignores its events;
2. give its owner's active-job slot back;
3. abort its multipart upload if one is open, and delete every version under
   ``uploads/{job_id}/`` and ``chunks/{job_id}/`` (uploads bucket) and
   ``jobs/{job_id}/`` (outputs bucket);
4. delete the record.

A stage already at work when step 1 happens reads the job again after each
write and deletes what it wrote (vidpipe.runtime.deletion_guard); the status
function deletes the folders of a job that is gone when an event for it still
arrives (a MediaConvert job finishing after the delete). Each step can be
repeated: a delete that stopped half way (a timeout, an S3 error) is finished
by the next DELETE of the same job, which still finds it (DELETING). Once the
record is gone, DELETE answers 404 like any unknown job.

What can go wrong: StorageError / JobStoreError (503: the job stays DELETING,
hidden, and DELETE again finishes it); ConcurrentUpdate when the job kept
changing under every attempt to mark it (a burst of stage events: retry).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Protocol

from vidpipe.domain import storage_keys
from vidpipe.domain.errors import ConcurrentUpdate
from vidpipe.domain.jobs import Job, JobStatus
from vidpipe.domain.quotas import UsageStore, release_if_ended

# The status function writes a job a few times per second at most; a handful
# of tries gets the mark in between.
MARK_ATTEMPTS = 5


class DeletableJobs(Protocol):
    def get(self, job_id: str) -> Job: ...
    def save(self, job: Job, *, expected_version: int) -> Job: ...
    def delete(self, job_id: str) -> None: ...


class Folders(Protocol):
    def delete_prefix(self, prefix: str) -> int: ...


class UploadsFolders(Folders, Protocol):
    def abort_multipart(self, key: str, *, upload_id: str) -> None: ...


@dataclass(frozen=True)
class Deleted:
    """What a delete removed: the job as it was, and how many S3 objects (versions) went."""

    job_id: str
    status_before: str
    objects_deleted: int


def marked_for_deletion(job: Job, *, now: str) -> Job | None:
    """``job`` DELETING, or None when it already is."""
    if job.is_deleting:
        return None
    marked = copy.deepcopy(job)
    marked.status = JobStatus.DELETING
    marked.updated_at = max(job.updated_at, now)
    return marked


def delete_job(
    job: Job,
    *,
    jobs: DeletableJobs,
    uploads: UploadsFolders,
    outputs: Folders,
    usage: UsageStore | None,
    now: str,
) -> Deleted:
    """Delete ``job`` in the order the module doc gives; see there for errors."""
    status_before = job.status.value
    marked = _mark(job, jobs=jobs, now=now)
    if usage is not None:
        release_if_ended(marked, usage=usage)
    upload_id = marked.upload.get("upload_id")
    if upload_id:
        uploads.abort_multipart(storage_keys.upload_key(job.job_id), upload_id=upload_id)
    removed = sum(uploads.delete_prefix(folder) for folder in storage_keys.uploads_bucket_folders(job.job_id))
    removed += sum(outputs.delete_prefix(folder) for folder in storage_keys.outputs_bucket_folders(job.job_id))
    jobs.delete(job.job_id)
    return Deleted(job_id=job.job_id, status_before=status_before, objects_deleted=removed)


def _mark(job: Job, *, jobs: DeletableJobs, now: str) -> Job:
    """The job saved as DELETING (re-read and marked again when a stage event got there first)."""
    for attempt in range(1, MARK_ATTEMPTS + 1):
        marked = marked_for_deletion(job, now=now)
        if marked is None:
            return job
        try:
            return jobs.save(marked, expected_version=job.version)
        except ConcurrentUpdate:
            if attempt == MARK_ATTEMPTS:
                raise
            job = jobs.get(job.job_id)
    raise AssertionError("unreachable")

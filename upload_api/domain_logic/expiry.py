"""Abandoned uploads: a job whose bytes never arrived is EXPIRED after a while.

A scheduled rule runs the sweep; the sweep reads the sparse index of jobs
still AWAITING_UPLOAD, oldest first, and ends each one older than the expiry
(aborting its multipart upload, if any). A job whose upload arrives while it is
being expired keeps going: the conditional write loses and we skip it."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Protocol

from upload_api.domain_logic.uploads import JobSaver, MultipartStore, end_awaiting_upload
from vidpipe.errors import ConcurrentUpdate, UploadNotOpen
from vidpipe.jobs import Job, JobStatus

SWEEP_BATCH = 100


class AwaitingUploads(JobSaver, Protocol):
    def list_awaiting_upload(self, *, created_before: str, limit: int = SWEEP_BATCH) -> list[Job]: ...


def iso_utc(moment: datetime) -> str:
    """The same text form as job timestamps, so the two compare as strings."""
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


def expire_abandoned_uploads(
    jobs: AwaitingUploads, store: MultipartStore, *, now: datetime, expiry_s: int
) -> list[str]:
    """End every job created more than ``expiry_s`` before ``now`` whose upload
    has not arrived; returns their ids. At most SWEEP_BATCH per call: the next
    run takes the rest."""
    cutoff = iso_utc(now - timedelta(seconds=expiry_s))
    expired = []
    for job in jobs.list_awaiting_upload(created_before=cutoff, limit=SWEEP_BATCH):
        try:
            end_awaiting_upload(job, status=JobStatus.EXPIRED, jobs=jobs, store=store, now=iso_utc(now))
        except (UploadNotOpen, ConcurrentUpdate):
            continue  # the upload arrived meanwhile (or the index lagged): not abandoned
        expired.append(job.job_id)
    return expired

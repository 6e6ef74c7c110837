"""The periodic sweep: no job may wait forever.

A scheduled rule runs it; it reads the sparse index of unfinished jobs, oldest
first, and

* EXPIREs a job whose upload never arrived within the expiry (aborting its
  multipart upload, if any);
* FAILs a job that has not moved for the stall limit: every attempt of a stage
  was killed or timed out, so nothing reported, and its message waits in a
  dead-letter queue (``vidpipe redrive`` sends it back once the cause is fixed).

A job that moves while it is being swept keeps going: the conditional write
loses and we skip it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from upload_api.domain_logic.uploads import JobSaver, MultipartStore, end_awaiting_upload
from vidpipe.errors import ConcurrentUpdate, UploadNotOpen
from vidpipe.events import JobFinished, iso_utc
from vidpipe.job_store import AWAITING_UPLOAD, IN_PROGRESS
from vidpipe.jobs import Job, JobStatus, StageStatus, fail_stalled

SWEEP_BATCH = 100


class OpenJobs(JobSaver, Protocol):
    def list_open(self, state: str, *, since_before: str, limit: int = SWEEP_BATCH) -> list[Job]: ...


class EventPublisher(Protocol):
    def publish(self, event: JobFinished) -> None: ...


@dataclass
class SweepResult:
    expired: list[str] = field(default_factory=list)
    stalled: list[str] = field(default_factory=list)


def sweep(
    jobs: OpenJobs,
    store: MultipartStore,
    publisher: EventPublisher,
    *,
    now: datetime,
    upload_expiry_s: int,
    stall_limit_s: int,
) -> SweepResult:
    """One pass: expire abandoned uploads, fail stalled jobs (at most
    SWEEP_BATCH of each; the next run takes the rest)."""
    result = SweepResult()
    cutoff = iso_utc(now - timedelta(seconds=upload_expiry_s))
    for job in jobs.list_open(AWAITING_UPLOAD, since_before=cutoff, limit=SWEEP_BATCH):
        try:
            end_awaiting_upload(job, status=JobStatus.EXPIRED, jobs=jobs, store=store, now=iso_utc(now))
        except (UploadNotOpen, ConcurrentUpdate):
            continue  # the upload arrived meanwhile (or the index lagged): not abandoned
        result.expired.append(job.job_id)

    cutoff = iso_utc(now - timedelta(seconds=stall_limit_s))
    for job in jobs.list_open(IN_PROGRESS, since_before=cutoff, limit=SWEEP_BATCH):
        unfinished = sorted(
            stage.value for stage, state in job.stages.items() if state.status is not StageStatus.COMPLETED
        )
        error = {
            "code": "STAGE_STALLED",
            "message": f"no progress for {stall_limit_s} s: {', '.join(unfinished) or 'a stage'} did not finish "
            "(its function was stopped or timed out on every attempt; the message is in a dead-letter queue)",
        }
        failed = fail_stalled(job, error=error, now=iso_utc(now))
        if failed is None:
            continue
        try:
            jobs.save(failed, expected_version=job.version)
        except ConcurrentUpdate:
            continue  # it moved after all
        publisher.publish(JobFinished(job_id=job.job_id, status=JobStatus.FAILED.value, error=error))
        result.stalled.append(job.job_id)
    return result

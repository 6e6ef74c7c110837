"""The periodic sweep: no job may wait forever.

A scheduled rule runs it; it reads the sparse index of unfinished jobs, oldest
first, and

* EXPIREs a job whose upload never arrived within the expiry (aborting its
  multipart upload, if any);
* FAILs a job whose stage message is in a dead-letter queue (DEAD_LETTERED):
  the last attempt died without a word (killed, past its timeout), so nothing
  reported; or whose report is in the status function's dead-letter queue (a
  lost chunk report would otherwise leave the job waiting for the stall
  limit). The message stays there for ``vidpipe redrive``, and a redriven
  report that completes the stage overrides this verdict (vidpipe.domain.jobs);
* FAILs a job that has not moved for the stall limit (STAGE_STALLED), the
  backstop for whatever else leaves a job without news;
* publishes the "Job Ready" / "Job Failed" still pending in the outbox of a job
  that finished more than ``outbox_grace_s`` ago (its publish failed and no
  retry got through), with the event's own id, so receivers drop a copy;
* finishes the delete of a job left DELETING for ``delete_grace_s`` (the API
  call stopped half way and the client never asked again): every step of
  :func:`vidpipe.domain.job_deletion.delete_job` can be repeated.

A job that moves while it is being swept keeps going: the conditional write
loses and we skip it. Every job it ends frees its owner's active-job slot
(vidpipe.domain.quotas), including one it finds already ended by an earlier pass
that died before freeing it.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from vidpipe.domain.errors import (
    ConcurrentUpdate,
    EventPublishError,
    JobNotFound,
    JobStoreError,
    StorageError,
    UploadNotOpen,
)
from vidpipe.domain.events import JobFinished, iso_utc
from vidpipe.domain.finished_event_outbox import publish_finished_event
from vidpipe.domain.job_deletion import DeletableJobs, Folders, UploadsFolders, delete_job
from vidpipe.domain.job_transitions import end_upload, fail_stalled, mark_finished
from vidpipe.domain.jobs import (
    AWAITING_UPLOAD,
    BEING_DELETED,
    FINISHED_EVENT_PENDING,
    IN_PROGRESS,
    Job,
    JobStatus,
    StageStatus,
)
from vidpipe.domain.quotas import UsageStore, release_if_ended
from vidpipe.domain.storage_keys import UPLOAD_KEY_PREFIX

# The status function's own retries publish a pending "Job Ready" within
# minutes; the sweep steps in only after that.
OUTBOX_GRACE_S = 15 * 60
# A DELETE takes seconds; one still DELETING after this was interrupted.
DELETE_GRACE_S = 10 * 60

SWEEP_BATCH = 100
# The name of the status function's dead-letter queue among the sweep's queues.
STATUS_QUEUE = "status"
UPLOAD_EXPIRED = {"code": "UPLOAD_EXPIRED", "message": "the upload did not arrive in time"}


class OpenJobs(DeletableJobs, Protocol):
    def save(self, job: Job, *, expected_version: int) -> Job: ...

    def list_open(self, state: str, *, since_before: str, limit: int = SWEEP_BATCH) -> list[Job]: ...

    def get(self, job_id: str) -> Job: ...


class MultipartUploads(Protocol):
    def abort_multipart(self, key: str, *, upload_id: str) -> None: ...


class DeadLetters(Protocol):
    def stranded_jobs(self) -> dict[str, str]:
        """``{job_id: stage}`` for the messages waiting in the stages' dead-letter queues."""
        ...


class EventPublisher(Protocol):
    def publish(self, event: JobFinished) -> None: ...


@dataclass(frozen=True)
class JobFolders:
    """The two buckets' folders of a job, for finishing a delete."""

    uploads: UploadsFolders
    outputs: Folders


@dataclass
class SweepResult:
    expired: list[str] = field(default_factory=list)
    dead_lettered: list[str] = field(default_factory=list)
    stalled: list[str] = field(default_factory=list)
    republished: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)


def sweep(
    jobs: OpenJobs,
    store: MultipartUploads,
    publisher: EventPublisher,
    *,
    now: datetime,
    upload_expiry_s: int,
    stall_limit_s: int,
    dead_letters: DeadLetters | None = None,
    max_attempts: int = 3,
    outbox_grace_s: int = OUTBOX_GRACE_S,
    usage: UsageStore | None = None,
    folders: JobFolders | None = None,
    delete_grace_s: int = DELETE_GRACE_S,
) -> SweepResult:
    """One pass: expire abandoned uploads, fail dead-lettered and stalled jobs
    (at most SWEEP_BATCH of each kind; the next run takes the rest)."""
    result = SweepResult()
    cutoff = iso_utc(now - timedelta(seconds=upload_expiry_s))
    for job in jobs.list_open(AWAITING_UPLOAD, since_before=cutoff, limit=SWEEP_BATCH):
        try:
            expire_upload(job, jobs=jobs, store=store, now=iso_utc(now), usage=usage)
        except (UploadNotOpen, ConcurrentUpdate):
            continue  # the upload arrived meanwhile (or the index lagged): not abandoned
        result.expired.append(job.job_id)

    stranded = dead_letters.stranded_jobs() if dead_letters else {}
    for job_id, stage in sorted(stranded.items())[:SWEEP_BATCH]:
        try:
            job = jobs.get(job_id)
        except JobNotFound:
            continue
        if stage == STATUS_QUEUE:
            # A stage's report (a finished chunk, say) that the status function
            # could not record: without it the job would wait for the stall limit.
            what = "a report on the job could not be recorded (every attempt of the status function failed)"
        else:
            what = (
                f"the {stage} stage gave up after {max_attempts} attempts that ended without a report "
                "(killed or timed out)"
            )
        error = {
            "code": "DEAD_LETTERED",
            "message": f"{what}; its message waits in the dead-letter queue for `vidpipe redrive`",
        }
        if _fail(job, error, jobs=jobs, publisher=publisher, now=now, usage=usage):
            result.dead_lettered.append(job_id)

    cutoff = iso_utc(now - timedelta(seconds=stall_limit_s))
    for job in jobs.list_open(IN_PROGRESS, since_before=cutoff, limit=SWEEP_BATCH):
        unfinished = sorted(
            stage.value for stage, state in job.stages.items() if state.status is not StageStatus.COMPLETED
        )
        error = {
            "code": "STAGE_STALLED",
            "message": f"no progress for {stall_limit_s} s: {', '.join(unfinished) or 'a stage'} did not finish",
        }
        if _fail(job, error, jobs=jobs, publisher=publisher, now=now, usage=usage):
            result.stalled.append(job.job_id)

    cutoff = iso_utc(now - timedelta(seconds=outbox_grace_s))
    for job in jobs.list_open(FINISHED_EVENT_PENDING, since_before=cutoff, limit=SWEEP_BATCH):
        try:
            if publish_finished_event(jobs, publisher, job, now=now.timestamp) is not None:
                result.republished.append(job.job_id)
        except EventPublishError:
            continue  # the bus is still failing: the next sweep tries again

    if folders is not None:
        cutoff = iso_utc(now - timedelta(seconds=delete_grace_s))
        for job in jobs.list_open(BEING_DELETED, since_before=cutoff, limit=SWEEP_BATCH):
            try:
                delete_job(
                    job, jobs=jobs, uploads=folders.uploads, outputs=folders.outputs, usage=usage, now=iso_utc(now)
                )
            except (StorageError, JobStoreError, ConcurrentUpdate):
                continue  # still DELETING: the next sweep tries again
            result.deleted.append(job.job_id)
    return result


def expire_upload(
    job: Job, *, jobs: OpenJobs, store: MultipartUploads, now: str, usage: UsageStore | None = None
) -> Job:
    """EXPIRE a job whose upload never arrived, abort its multipart upload if
    it has one, and free its owner's active-job slot in ``usage``.

    Raises UploadNotOpen when the upload already arrived or the job ended;
    ConcurrentUpdate when the job changed meanwhile (the upload just arrived)."""
    ended = end_upload(job, status=JobStatus.EXPIRED, error=UPLOAD_EXPIRED, now=now)
    if ended is None:
        raise UploadNotOpen(f"job {job.job_id} is {job.status.value}: there is no upload to expire")
    saved = jobs.save(ended, expected_version=job.version)
    if usage is not None:
        release_if_ended(saved, usage=usage)
    if job.upload.get("upload_id"):
        store.abort_multipart(f"{UPLOAD_KEY_PREFIX}{job.job_id}/source", upload_id=job.upload["upload_id"])
    return saved


def _fail(
    job: Job,
    error: dict[str, str],
    *,
    jobs: OpenJobs,
    publisher: EventPublisher,
    now: datetime,
    usage: UsageStore | None = None,
) -> bool:
    """Save ``job`` FAILED with ``error``, free its owner's slot and announce it;
    False when it is not in progress or moved meanwhile (the conditional write lost)."""
    failed = fail_stalled(job, error=error, now=iso_utc(now))
    if failed is None:
        if usage is not None:
            release_if_ended(job, usage=usage)  # ended already (a dead-lettered job found again)
        return False
    mark_finished(failed, previous_status=job.status, version=job.version + 1, now=iso_utc(now))
    try:
        saved = jobs.save(failed, expected_version=job.version)
    except ConcurrentUpdate:
        return False
    if usage is not None:
        release_if_ended(saved, usage=usage)
    # If the bus fails, the job is FAILED with its event in the outbox: the next sweep publishes it.
    with contextlib.suppress(EventPublishError):
        publish_finished_event(jobs, publisher, saved, now=now.timestamp)
    return True

"""Recording a pipeline event on its job.

The status function gets every event at least once and in any order, while
other copies of itself update the same job. :func:`record_event` does one
read-modify-write under the job store's optimistic lock and retries it when
another writer got there first; :func:`vidpipe.jobs.apply_event` makes the
change itself idempotent and order-safe.

Only the writer whose save moved the job to READY or FAILED sees
``became_terminal``: the version check lets exactly one save make that move,
so "Job Ready" / "Job Failed" is published by one invocation only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from vidpipe.errors import ConcurrentUpdate, JobNotFound
from vidpipe.events import JobFinished, Stage, StageEvent, StitchRequested, UploadCompleted
from vidpipe.jobs import Job, JobStatus, StageStatus, all_chunks_done, apply_event

# Enough for the few stage events of one job that land together; beyond it the
# error goes back to SQS, which redelivers later when the burst is over.
MAX_ATTEMPTS = 5

FINISHED_STATUSES = frozenset({JobStatus.READY, JobStatus.FAILED})


class JobStorePort(Protocol):
    """What :func:`record_event` needs of a job store (DynamoJobStore in AWS)."""

    def get(self, job_id: str) -> Job:
        """The latest job; raises JobNotFound."""
        ...

    def save(self, job: Job, *, expected_version: int) -> Job:
        """Write ``job`` if the stored version is still ``expected_version``;
        return it at the new version. Raises ConcurrentUpdate otherwise."""
        ...


@dataclass(frozen=True)
class JobUpdate:
    """The job after an event, and what the event did to it."""

    job: Job
    changed: bool
    became_terminal: bool
    # The job's status before this event (for the timeline's "state change").
    previous_status: JobStatus | None = None

    def finished_event(self) -> JobFinished | None:
        """The "Job Ready" / "Job Failed" event to publish, only for the update that finished the job."""
        if not self.became_terminal:
            return None
        return JobFinished(job_id=self.job.job_id, status=self.job.status.value, error=self.job.error)


def record_event(
    store: JobStorePort,
    event: StageEvent | UploadCompleted,
    *,
    max_attempts: int = MAX_ATTEMPTS,
) -> JobUpdate | None:
    """Apply ``event`` to its job and save it; None when there is no such job
    (the caller logs it and drops the message: retrying cannot make the job appear).

    An event that changes nothing (a duplicate, a stale report) writes nothing
    and returns the stored job with ``changed=False``.

    Raises ConcurrentUpdate when every attempt lost the version check, and
    whatever else the store raises (JobStoreError): both mean "redeliver later".
    """
    for attempt in range(1, max_attempts + 1):
        try:
            current = store.get(event.job_id)
        except JobNotFound:
            return None
        updated = apply_event(current, event)
        if updated is None:
            return JobUpdate(job=current, changed=False, became_terminal=False)
        try:
            saved = store.save(updated, expected_version=current.version)
        except ConcurrentUpdate:
            # Someone else saved in between: re-read and apply again. No sleep:
            # the conflict means the job moved on, so the next read is fresh.
            if attempt == max_attempts:
                raise
            continue
        # (FAILED → READY is a move too: a stage finishing after the sweep's verdict, see vidpipe.jobs.)
        became_terminal = saved.status in FINISHED_STATUSES and saved.status is not current.status
        return JobUpdate(job=saved, changed=True, became_terminal=became_terminal, previous_status=current.status)
    raise ValueError(f"max_attempts must be at least 1, not {max_attempts}")


def stitch_request(event: StageEvent | UploadCompleted, update: JobUpdate) -> StitchRequested | None:
    """The "Stitch Requested" work order to publish after a finished-chunk report,
    once the job counts every chunk of its transcode; None otherwise.

    Normally only the report that completed the count asks (the version check
    lets one save make that move). A report that changed nothing asks again
    while the stage is still not COMPLETED: had the status function died between
    saving the last chunk and publishing, nothing else would ever ask. The stitch
    is idempotent, so an extra request costs a few playlist writes."""
    if not isinstance(event, StageEvent) or event.stage is not Stage.TRANSCODE or not (event.chunks or {}).get(
        "finished"
    ):
        return None
    stage = update.job.stages[Stage.TRANSCODE]
    if stage.status in (StageStatus.COMPLETED, StageStatus.FAILED) or not all_chunks_done(stage):
        return None
    return StitchRequested(job_id=update.job.job_id, total=int(stage.chunks["total"]))

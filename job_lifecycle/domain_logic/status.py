"""Recording a pipeline event on its job.

The status function gets every event at least once and in any order, while
other copies of itself update the same job. :func:`record_event` does one
read-modify-write under the job store's optimistic lock and retries it when
another writer got there first; :func:`vidpipe.domain.job_transitions.apply_event` makes the
change itself idempotent and order-safe.

Only the writer whose save moved the job to READY or FAILED sees
``became_terminal``: the version check lets exactly one save make that move.
That save also puts "Job Ready" / "Job Failed" in the job's outbox (see
:func:`vidpipe.domain.job_transitions.mark_finished`);
:func:`vidpipe.domain.finished_event_outbox.publish_finished_event` publishes
it and then clears it. If the publish fails, the message is redelivered: the
event changes nothing this time, but the outbox is still pending, so the retry
publishes it (and, failing that, the sweep does). What "once" means here: the
event is published at least once, always with the same id, and each webhook
receiver gets it delivered once (the webhooks function skips a receiver that
already took that id).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from vidpipe.domain.errors import ConcurrentUpdate, JobNotFound
from vidpipe.domain.events import JobFinished, Stage, StageEvent, StitchRequested, UploadCompleted, utc_now
from vidpipe.domain.finished_event_outbox import MAX_ATTEMPTS, OutboxStore, conflict_pause_s, pending_finished_event
from vidpipe.domain.job_transitions import FINISHED_STATUSES, all_chunks_done, apply_event, mark_finished
from vidpipe.domain.jobs import Job, JobStatus, StageStatus


@dataclass(frozen=True)
class JobUpdate:
    """The job after an event, and what the event did to it."""

    job: Job
    changed: bool
    became_terminal: bool
    # The job's status before this event (for the timeline's "state change").
    previous_status: JobStatus | None = None

    def new_status(self) -> JobStatus | None:
        """The status this event moved the job to; None when it left the status as it was."""
        if not self.changed or self.job.status == self.previous_status:
            return None
        return self.job.status

    def finished_event(self) -> JobFinished | None:
        """The "Job Ready" / "Job Failed" event to publish, only for the update that finished the job."""
        if not self.became_terminal:
            return None
        return pending_finished_event(self.job)


def record_event(
    store: OutboxStore,
    event: StageEvent | UploadCompleted,
    *,
    max_attempts: int = MAX_ATTEMPTS,
    pause: Callable[[float], None] = time.sleep,
) -> JobUpdate | None:
    """Apply ``event`` to its job and save it; None when there is no such job
    (the caller logs it and drops the message: retrying cannot make the job appear).

    An event that changes nothing (a duplicate, a stale report) writes nothing
    and returns the stored job with ``changed=False``.

    The save that makes the job READY or FAILED puts "Job Ready"/"Job Failed"
    in its outbox; publish it with
    :func:`vidpipe.domain.finished_event_outbox.publish_finished_event`.

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
        # The save that finishes the job also fills its outbox (one write).
        mark_finished(updated, previous_status=current.status, version=current.version + 1, now=utc_now())
        try:
            saved = store.save(updated, expected_version=current.version)
        except ConcurrentUpdate:
            # Someone else saved in between: re-read and apply again, after a
            # jittered pause so the writers that collided do not meet again.
            if attempt == max_attempts:
                raise
            pause(conflict_pause_s(attempt))
            continue
        # (FAILED → READY is a move too: a stage finishing after the sweep's verdict, see vidpipe.domain.jobs.)
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
    if (
        not isinstance(event, StageEvent)
        or event.stage is not Stage.TRANSCODE
        or not (event.chunks or {}).get("finished")
    ):
        return None
    stage = update.job.stages[Stage.TRANSCODE]
    if stage.status in (StageStatus.COMPLETED, StageStatus.FAILED) or not all_chunks_done(stage):
        return None
    return StitchRequested(job_id=update.job.job_id, total=int(stage.chunks["total"]))

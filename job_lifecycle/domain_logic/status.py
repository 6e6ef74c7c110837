"""Recording a pipeline event on its job.

The status function gets every event at least once and in any order, while
other copies of itself update the same job. :func:`record_event` does one
read-modify-write under the job store's optimistic lock and retries it when
another writer got there first; :func:`vidpipe.domain.job_transitions.apply_event` makes the
change itself idempotent and order-safe.

Only the writer whose save moved the job to READY or FAILED sees
``became_terminal``: the version check lets exactly one save make that move.
That save also puts "Job Ready" / "Job Failed" in the job's outbox (see
:func:`vidpipe.domain.job_transitions.mark_finished`); :func:`publish_finished_event` publishes
it and then clears it. If the publish fails, the message is redelivered: the
event changes nothing this time, but the outbox is still pending, so the retry
publishes it (and, failing that, the sweep does). What "once" means here: the
event is published at least once, always with the same id, and each webhook
receiver gets it delivered once (the webhooks function skips a receiver that
already took that id).
"""

from __future__ import annotations

import contextlib
import copy
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from vidpipe.domain.errors import ConcurrentUpdate, JobNotFound
from vidpipe.domain.events import JobFinished, Stage, StageEvent, StitchRequested, UploadCompleted, utc_now
from vidpipe.domain.job_transitions import FINISHED_STATUSES, all_chunks_done, apply_event, mark_finished, published
from vidpipe.domain.jobs import Job, JobStatus, StageStatus

# Enough for the few stage events of one job that land together; beyond it the
# error goes back to SQS, which redelivers later when the burst is over.
MAX_ATTEMPTS = 5
# Pause before a retry after a lost version check: a random share of a window
# that doubles each time ("full jitter"). Without it, writers that collided
# re-read and collide again in lockstep.
CONFLICT_BACKOFF_S = 0.02


class JobStorePort(Protocol):
    """What :func:`record_event` needs of a job store (DynamoJobStore in AWS)."""

    def get(self, job_id: str) -> Job:
        """The latest job; raises JobNotFound."""
        ...

    def save(self, job: Job, *, expected_version: int) -> Job:
        """Write ``job`` if the stored version is still ``expected_version``;
        return it at the new version. Raises ConcurrentUpdate otherwise."""
        ...


class FinishedEventPublisher(Protocol):
    def publish(self, event: JobFinished) -> None:
        """Raises EventPublishError when the event did not reach the bus."""
        ...


def conflict_pause_s(attempt: int, *, jitter: Callable[[float, float], float] = random.uniform) -> float:
    """How long to wait after the ``attempt``-th lost version check: anywhere in
    [0, CONFLICT_BACKOFF_S * 2**(attempt-1)], so colliding writers spread out."""
    return jitter(0.0, CONFLICT_BACKOFF_S * 2 ** (attempt - 1))


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


def pending_finished_event(job: Job) -> JobFinished | None:
    """The "Job Ready" / "Job Failed" waiting in ``job``'s outbox, None when nothing waits."""
    if not job.finished_event_pending or job.finished_event is None:
        return None
    outbox = job.finished_event
    status = str(outbox["status"])
    return JobFinished(
        job_id=job.job_id,
        status=status,
        error=job.error if status == JobStatus.FAILED.value else None,
        occurred_at=str(outbox["occurred_at"]),
        event_id=str(outbox["id"]),
    )


# While one delivery publishes a job's outbox event, the others leave it to
# it: two stage reports handled at once would otherwise both publish, and two
# copies of one event reach the webhook function together, where neither sees
# the other's delivery yet. A claim older than this (its holder died) is taken over.
PUBLISH_CLAIM_S = 60


def publish_finished_event(
    store: JobStorePort,
    publisher: FinishedEventPublisher,
    job: Job,
    *,
    max_attempts: int = MAX_ATTEMPTS,
    now: Callable[[], float] = time.time,
) -> JobFinished | None:
    """Claim the event in ``job``'s outbox, publish it, then mark it published;
    return it, or None when nothing was pending or another delivery holds it.

    Raises EventPublishError when the publish fails: the claim is let go and
    the outbox stays pending, so the redelivered message (or the sweep)
    publishes the same event, same id, again. If marking it published keeps
    losing the version check, it stays pending too: one more publish of the
    same id later, which receivers drop."""
    event = pending_finished_event(job)
    if event is None or event.event_id is None:
        return None
    event_id = event.event_id
    claimed = _claim_outbox(store, job, event_id, max_attempts=max_attempts, now=now)
    if claimed is None:
        return None
    try:
        publisher.publish(event)
    except Exception:
        _release_claim(store, claimed)
        raise
    # Marked published; if that keeps losing the version check it stays pending:
    # one more publish of the same id later, which receivers drop.
    _save_change(store, claimed, lambda current: published(current, event_id), max_attempts=max_attempts)
    return event


def _claim_outbox(
    store: JobStorePort, job: Job, event_id: str, *, max_attempts: int, now: Callable[[], float]
) -> Job | None:
    """``job`` saved with this delivery's claim on its pending event; None when
    the event is no longer pending, another delivery's claim is still fresh, or
    others kept winning the version check (the sweep is the backstop)."""

    def claim(current: Job) -> Job | None:
        outbox = current.finished_event or {}
        if not current.finished_event_pending or outbox.get("id") != event_id:
            return None
        if int(outbox.get("claimed_until", 0)) > now():
            return None
        claiming = copy.deepcopy(current)
        claiming.finished_event = {**outbox, "claimed_until": int(now()) + PUBLISH_CLAIM_S}
        return claiming

    return _save_change(store, job, claim, max_attempts=max_attempts)


def _save_change(
    store: JobStorePort, job: Job, change: Callable[[Job], Job | None], *, max_attempts: int
) -> Job | None:
    """Save ``change(job)``, re-reading the job and applying the change again
    after each lost version check (with a jittered pause); the saved job, or
    None when the change no longer applies, the job is gone or every attempt lost."""
    for attempt in range(1, max_attempts + 1):
        changed = change(job)
        if changed is None:
            return None
        try:
            return store.save(changed, expected_version=job.version)
        except ConcurrentUpdate:
            if attempt == max_attempts:
                return None
            time.sleep(conflict_pause_s(attempt))
            try:
                job = store.get(job.job_id)
            except JobNotFound:
                return None
    return None


def _release_claim(store: JobStorePort, claimed: Job) -> None:
    """Let another delivery publish at once (best effort: a claim that stays
    only delays the next publish by PUBLISH_CLAIM_S)."""
    released = copy.deepcopy(claimed)
    released.finished_event = {k: v for k, v in (claimed.finished_event or {}).items() if k != "claimed_until"}
    with contextlib.suppress(Exception):
        store.save(released, expected_version=claimed.version)


def record_event(
    store: JobStorePort,
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
    in its outbox; publish it with :func:`publish_finished_event`.

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

"""The job's outbox: "Job Ready" / "Job Failed" published at least once, always
with the same id.

Whoever ends a job (the status function, the sweep, the import function) saves
the verdict and its event in one conditional write
(:func:`vidpipe.domain.job_transitions.mark_finished`), then calls
:func:`publish_finished_event`: claim the event, put it on the bus, mark it
published. A publish that fails leaves it pending, and a retry (the redelivered
message, or the sweep after OUTBOX_GRACE_S) publishes the same id again; each
webhook receiver is sent an id once.
"""

from __future__ import annotations

import contextlib
import copy
import random
import time
from collections.abc import Callable
from typing import Protocol

from vidpipe.domain.errors import ConcurrentUpdate, JobNotFound
from vidpipe.domain.events import JobFinished
from vidpipe.domain.job_transitions import published
from vidpipe.domain.jobs import Job, JobStatus

# Enough for the few writers of one job that land together; beyond it the
# caller's retry (SQS, the sweep) takes over.
MAX_ATTEMPTS = 5
# Pause before a retry after a lost version check: a random share of a window
# that doubles each time ("full jitter"). Without it, writers that collided
# re-read and collide again in lockstep.
CONFLICT_BACKOFF_S = 0.02


class OutboxStore(Protocol):
    """What publishing needs of a job store (DynamoJobStore in AWS)."""

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
    store: OutboxStore,
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
    store: OutboxStore, job: Job, event_id: str, *, max_attempts: int, now: Callable[[], float]
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


def _save_change(store: OutboxStore, job: Job, change: Callable[[Job], Job | None], *, max_attempts: int) -> Job | None:
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


def _release_claim(store: OutboxStore, claimed: Job) -> None:
    """Let another delivery publish at once (best effort: a claim that stays
    only delays the next publish by PUBLISH_CLAIM_S)."""
    released = copy.deepcopy(claimed)
    released.finished_event = {k: v for k, v in (claimed.finished_event or {}).items() if k != "claimed_until"}
    with contextlib.suppress(Exception):
        store.save(released, expected_version=claimed.version)

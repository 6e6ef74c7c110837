"""The job record and the rules that move it forward.

A job is created AWAITING_UPLOAD by the upload API; everything after that is
decided by :func:`apply_event`, a pure function the status Lambda calls for
each event it receives. Events arrive at least once and in any order, so the
rules are monotonic:

* a stage's status only moves PENDING → RUNNING → COMPLETED | FAILED, and its
  progress only grows; a terminal stage ignores everything after;
* the job's status only moves AWAITING_UPLOAD → UPLOADED → PROCESSING →
  READY | FAILED (a stage event before the upload event simply skips UPLOADED);
  the first failure recorded is the job's error;
* a READY or FAILED job keeps its status, but its stages still take their own
  events: the other stage of a failed job goes on and may finish, and the
  record must not depend on whether its events came before or after the
  failure. Only an EXPIRED job ignores everything;
* an event that changes nothing returns ``None``: the caller writes nothing;
* a job accepts ONE upload: the first "Object Created" of its key that the
  status function applies is recorded (:func:`accept_upload`: its ETag,
  version and sequencer) and every stage reads exactly that version. A later
  write to the key (the presigned POST re-sent) changes nothing, and a job
  cancelled or expired before its upload arrived accepts none.
  :func:`why_no_stage_runs` says when a stage must not work for an upload.

One exception, on purpose: the sweep fails a job from silence (its stage's
message was dead-lettered, or nothing moved for hours; see :data:`SWEEP_VERDICTS`).
That is a guess, not a report. If the stage does finish after all (its message
was sent back with ``vidpipe redrive``), its COMPLETED event overrides the guess:
the stage completes, and when every stage has, the job becomes READY.
"""

from __future__ import annotations

import copy
from typing import Any

from vidpipe.domain.events import Stage, StageEvent, StageEventKind, UploadCompleted
from vidpipe.domain.jobs import (
    SWEEP_VERDICTS,
    TERMINAL_JOB_STATUSES,
    Job,
    JobStatus,
    StageState,
    StageStatus,
)

_JOB_RANK = {
    JobStatus.AWAITING_UPLOAD: 0,
    JobStatus.UPLOADED: 1,
    JobStatus.PROCESSING: 2,
    JobStatus.READY: 3,
    JobStatus.FAILED: 3,
    JobStatus.EXPIRED: 3,
    # Above everything: no event moves a job out of DELETING.
    JobStatus.DELETING: 4,
}
_STAGE_RANK = {StageStatus.PENDING: 0, StageStatus.RUNNING: 1, StageStatus.COMPLETED: 2, StageStatus.FAILED: 2}


def apply_event(job: Job, event: StageEvent | UploadCompleted) -> Job | None:
    """The job after ``event``, or None when the event changes nothing
    (a duplicate, a stale progress report, an event for a finished stage,
    anything after EXPIRED or once the job is being deleted)."""
    if job.status in (JobStatus.EXPIRED, JobStatus.DELETING):
        return None
    updated = copy.deepcopy(job)
    if isinstance(event, UploadCompleted):
        accepted = accept_upload(job, event)
        if accepted is None:
            return None
        updated = accepted
    else:
        _apply_stage_event(updated, event)
    if updated == job:
        return None
    updated.updated_at = max(job.updated_at, event.occurred_at)
    return updated


def _apply_stage_event(job: Job, event: StageEvent) -> None:
    stage = job.stages[event.stage]
    # The probe result rides on the Started event, which may be delivered after
    # the stage has already completed: keep it even then.
    if event.source:
        job.source.update(event.source)
    overrides_the_sweep = _completes_a_stage_the_sweep_failed(job, stage, event)
    if (
        event.stage is Stage.TRANSCODE
        and (event.kind is StageEventKind.COMPLETED or (event.outputs or {}).get("playable"))
        and (stage.status is not StageStatus.FAILED or overrides_the_sweep)
    ):
        # Playable from the first playable outputs (the lowest rung) or, at the
        # latest, from the completed ladder; the earliest report wins, in
        # whatever order they arrive. A transcode that failed is not playable.
        job.playable_at = min(job.playable_at or event.occurred_at, event.occurred_at)
    if overrides_the_sweep:
        stage.status = StageStatus.COMPLETED
        stage.progress = 1.0
        stage.outputs = dict(event.outputs or {})
        if all(state.status is StageStatus.COMPLETED for state in job.stages.values()):
            job.status, job.error = JobStatus.READY, None
        return
    if stage.status in (StageStatus.COMPLETED, StageStatus.FAILED):
        return
    if event.kind is StageEventKind.FAILED:
        stage.status = StageStatus.FAILED
        if event.stage is Stage.TRANSCODE:
            # Whatever played early is not the job's video: the same record
            # whichever of "playable" and "failed" came first.
            job.playable_at = None
        if job.error is None:
            job.error = event.error or {"code": "STAGE_FAILED", "message": f"{event.stage.value} failed"}
        _advance_job(job, JobStatus.FAILED)
        return
    if event.chunks:
        _count_chunks(stage, event.chunks)
    if event.kind is StageEventKind.COMPLETED:
        stage.status = StageStatus.COMPLETED
        stage.progress = 1.0
        stage.outputs = dict(event.outputs or {})
    else:
        if (event.outputs or {}).get("playable"):
            stage.outputs = dict(event.outputs or {})  # the preview, until the ladder completes
        if _STAGE_RANK[StageStatus.RUNNING] > _STAGE_RANK[stage.status]:
            stage.status = StageStatus.RUNNING
        if event.progress is not None:
            stage.progress = max(stage.progress, min(1.0, event.progress))
    all_done = all(state.status is StageStatus.COMPLETED for state in job.stages.values())
    _advance_job(job, JobStatus.READY if all_done else JobStatus.PROCESSING)


# Share of a chunked transcode's progress that the split stands for; the chunks
# share the rest, up to 0.99 (1.0 is for the stitched, completed stage).
_SPLIT_SHARE = 0.05


def _count_chunks(stage: StageState, report: dict[str, Any]) -> None:
    """Record a chunk plan or finished chunks. A set union: a chunk reported twice
    (at-least-once delivery, a retried encode) counts once, in any order."""
    total = int(report.get("total") or stage.chunks.get("total") or 0)
    finished = sorted(set(stage.chunks.get("finished", [])) | {int(index) for index in report.get("finished", [])})
    stage.chunks = {"total": total, "done": len(finished), "finished": finished}
    if total:
        stage.progress = max(stage.progress, min(0.99, _SPLIT_SHARE + (1 - _SPLIT_SHARE) * len(finished) / total))


def all_chunks_done(stage: StageState) -> bool:
    """The stage was chunked and every chunk is encoded (the stitch may run)."""
    total = int(stage.chunks.get("total") or 0)
    return total > 0 and int(stage.chunks.get("done") or 0) >= total


def _completes_a_stage_the_sweep_failed(job: Job, stage: StageState, event: StageEvent) -> bool:
    return (
        event.kind is StageEventKind.COMPLETED
        and stage.status is StageStatus.FAILED
        and job.status is JobStatus.FAILED
        and (job.error or {}).get("code") in SWEEP_VERDICTS
    )


# Why a job ended before its upload arrived; such a job accepts no upload.
UPLOAD_CANCELLED = "UPLOAD_CANCELLED"


def accepted_upload(job: Job) -> dict[str, str] | None:
    """Which write of the upload key the job accepted (UploadCompleted.identity), or None yet."""
    accepted = job.upload.get("accepted")
    return dict(accepted) if accepted else None


def ended_before_upload(job: Job) -> bool:
    """Cancelled (DELETE /uploads/{id}) or expired before any upload was accepted."""
    return accepted_upload(job) is None and (
        job.status is JobStatus.EXPIRED
        or (job.status is JobStatus.FAILED and (job.error or {}).get("code") == UPLOAD_CANCELLED)
    )


def accept_upload(job: Job, upload: UploadCompleted) -> Job | None:
    """The job with ``upload`` accepted as its source (size recorded, UPLOADED),
    or None when nothing changes: the job already accepted a write of its key
    (this one: a duplicate; another: a later write, which must do nothing), or
    it ended before its upload arrived.

    A job past UPLOADED without an accepted upload (its stage events came first,
    or it was created before uploads were pinned) accepts this one too, so the
    record does not depend on the order events arrive in."""
    if accepted_upload(job) is not None or ended_before_upload(job):
        return None
    updated = copy.deepcopy(job)
    updated.upload["accepted"] = upload.identity()
    updated.source["size"] = upload.size
    _advance_job(updated, JobStatus.UPLOADED)
    updated.updated_at = max(job.updated_at, upload.occurred_at)
    return updated


def awaits_acceptance(job: Job) -> bool:
    """The job has not decided about its upload yet: the status function has
    not applied the upload's event (a stage that got it first waits)."""
    return accepted_upload(job) is None and job.status is JobStatus.AWAITING_UPLOAD


def why_no_stage_runs(job: Job, upload: UploadCompleted) -> str | None:
    """None when a stage may work on ``upload`` for ``job``; otherwise the reason
    it must not (logged by the stage, whose message is then dropped, not retried):

    * the job accepted another write of its key (a re-sent upload), or none
      (cancelled or expired before it arrived);
    * the job is READY (its outputs are final: nothing may overwrite them),
      EXPIRED, or FAILED. A failure the sweep inferred from silence
      (SWEEP_VERDICTS) is the exception: ``vidpipe redrive`` sends the stage's
      message back to finish the job after all."""
    if job.is_deleting:
        return "the job is being deleted"
    accepted = accepted_upload(job)
    if accepted is None and ended_before_upload(job):
        return f"the job is {job.status.value} and accepted no upload"
    if accepted is None and job.status is JobStatus.AWAITING_UPLOAD:
        return "the job has not accepted an upload yet"
    # (No accepted upload past AWAITING_UPLOAD: a job under way since before
    # uploads were pinned; it reads the key as it is.)
    if accepted is not None and accepted != upload.identity():
        return "a later write to the upload key: the job keeps the upload it accepted"
    if job.status is JobStatus.FAILED and (job.error or {}).get("code") in SWEEP_VERDICTS:
        return None
    if job.status in TERMINAL_JOB_STATUSES:
        return f"the job is {job.status.value}: no stage runs for a finished job"
    return None


def end_upload(job: Job, *, status: JobStatus, error: dict[str, str] | None, now: str) -> Job | None:
    """The job ended before its upload arrived: cancelled by the user (FAILED
    with UPLOAD_CANCELLED) or abandoned (EXPIRED). None when the upload already
    arrived (or the job already ended): then there is nothing to end."""
    if job.status is not JobStatus.AWAITING_UPLOAD or status not in (JobStatus.FAILED, JobStatus.EXPIRED):
        return None
    ended = copy.deepcopy(job)
    ended.status = status
    ended.error = error
    ended.updated_at = max(job.updated_at, now)
    return ended


def fail_stalled(job: Job, *, error: dict[str, str], now: str) -> Job | None:
    """The job FAILED because it stopped moving (its stage function was killed or
    timed out on every attempt, so nothing reported). None unless in progress."""
    if job.status not in (JobStatus.UPLOADED, JobStatus.PROCESSING):
        return None
    failed = copy.deepcopy(job)
    failed.status = JobStatus.FAILED
    failed.error = error
    for state in failed.stages.values():
        if state.status in (StageStatus.PENDING, StageStatus.RUNNING):
            state.status = StageStatus.FAILED
    failed.updated_at = max(job.updated_at, now)
    return failed


FINISHED_STATUSES = frozenset({JobStatus.READY, JobStatus.FAILED})


def mark_finished(job: Job, *, previous_status: JobStatus, version: int, now: str) -> None:
    """Put "Job Ready" / "Job Failed" in ``job``'s outbox when this change makes
    it READY or FAILED (from ``previous_status``); ``version`` is the version the
    save will write, ``now`` when the verdict was recorded (the event's time).

    The id is ``{job_id}:{status}:v{version}``: the version check lets one save
    make a given move, so each move has one id, the same however often the event
    is published again (a retried status message, the sweep). A job the sweep
    failed that later becomes READY (see SWEEP_VERDICTS) gets a second event,
    with its own id; if the first was still pending, the newer verdict replaces it."""
    if job.status not in FINISHED_STATUSES or job.status is previous_status:
        return
    job.finished_event = {
        "id": f"{job.job_id}:{job.status.value}:v{version}",
        "status": job.status.value,
        "occurred_at": now,
        "pending": True,
    }


def published(job: Job, event_id: str) -> Job | None:
    """``job`` with its outbox event ``event_id`` marked published; None when it
    is not the pending one (already cleared, or replaced by a newer verdict)."""
    if not job.finished_event_pending or (job.finished_event or {}).get("id") != event_id:
        return None
    cleared = copy.deepcopy(job)
    cleared.finished_event = {**(job.finished_event or {}), "pending": False}
    return cleared


def _advance_job(job: Job, status: JobStatus) -> None:
    if _JOB_RANK[status] > _JOB_RANK[job.status]:
        job.status = status

"""Per-owner limits: how many jobs one owner may have in progress at once, and
how many bytes and minutes of video they may send per UTC day.

Why: without them one API token could submit twenty 30-minute videos and fan
out past the account's Lambda concurrency, throttling every other user.

Where each limit is counted (race-safe conditional writes on usage items of
the jobs table, see vidpipe.adapters.usage_store):

* active jobs: at ``POST /uploads`` the new job's id joins the owner's set of
  active jobs, on condition that the set is smaller than the limit, so two
  concurrent requests cannot both take the last slot. The id leaves the set
  when the job ends (status function, sweep, ``DELETE /uploads``). Leaving is
  removing an id from a set, so a duplicate delivery cannot free a slot twice;
  and before refusing, a full set is checked against the jobs themselves, so
  a slot whose release was lost (a crash between saving the job and releasing
  it) is taken back instead of leaking for good. An upload takes its slot,
  charges its bytes and records its job in ONE transaction
  (:func:`admit_and_record`), so a function killed half way cannot leak a
  slot, and the request pays one DynamoDB round trip instead of three.
* bytes per day: the declared size, charged at ``POST /uploads`` (S3 enforces
  it: the presigned POST pins the size, a multipart upload must add up to it).
* minutes per day: charged when the transcode stage has probed the upload,
  the first moment the duration is known; once per job however often the
  stage runs. Over the limit, the job fails ``QUOTA_EXCEEDED``. A new upload is
  refused at once while the day's minutes are used up.

Daily quotas are not given back when a job fails or is cancelled: they count
what was sent and processed, and giving back would let a user loop
upload-cancel without bound.

What can go wrong: :class:`~vidpipe.domain.errors.QuotaExceeded` (429, ``Retry-After``),
:class:`~vidpipe.domain.errors.UploadTooLarge` for an upload larger than a whole
day's allowance, and whatever the usage store raises (JobStoreError).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal, Protocol

from vidpipe.domain.errors import JobNotFound, QuotaExceeded, UploadTooLarge
from vidpipe.domain.jobs import Job, JobStatus

# One of the owner's jobs may end any moment: a short, honest wait.
ACTIVE_JOBS_RETRY_AFTER_S = 30
# DELETING: a job being deleted holds no slot, whatever it was doing.
ENDED_STATUSES = frozenset({JobStatus.READY, JobStatus.FAILED, JobStatus.EXPIRED, JobStatus.DELETING})


@dataclass(frozen=True)
class OwnerLimits:
    active_jobs: int
    upload_bytes_per_day: int
    video_minutes_per_day: float

    @property
    def video_seconds_per_day(self) -> int:
        return int(self.video_minutes_per_day * 60)


# Which limit refused an admission: the owner's jobs in progress, or the day's
# allowance (bytes, or minutes already used up).
Refusal = Literal["active_jobs", "daily_allowance"]


@dataclass(frozen=True)
class DailyUsage:
    upload_bytes: int = 0
    video_seconds: int = 0


class UsageStore(Protocol):
    """Counters per owner (DynamoUsageStore in AWS). Every method is one atomic write or read."""

    def take_active_slot(self, owner: str, job_id: str, *, limit: int) -> bool:
        """Add ``job_id`` to the owner's active jobs unless they hold ``limit`` already."""
        ...

    def release_active_slot(self, owner: str, job_id: str) -> None:
        """Remove ``job_id`` from the owner's active jobs (nothing if it is not there)."""
        ...

    def active_job_ids(self, owner: str) -> set[str]: ...

    def add_upload_bytes(self, owner: str, day: str, size: int, *, limits: OwnerLimits) -> bool:
        """Add ``size`` to the day's bytes unless that passes the limit or the
        day's video seconds are used up; False when refused."""
        ...

    def refund_upload_bytes(self, owner: str, day: str, size: int) -> None: ...

    def add_video_seconds_once(self, owner: str, day: str, job_id: str, seconds: int, *, limit: int) -> bool:
        """Add ``seconds`` for ``job_id`` unless already added for it (then True
        without adding) or the total would pass ``limit`` (False)."""
        ...

    def daily_usage(self, owner: str, day: str) -> DailyUsage: ...

    def record_admitted_job(self, job: Job, size: int, *, day: str, limits: OwnerLimits) -> Refusal | None:
        """In one atomic write: take an active-job slot for ``job``, charge ``size``
        bytes to ``day`` and record the job. None when done; otherwise the limit
        that refused it, and nothing is written. ConcurrentUpdate when a job with
        that id exists already."""
        ...


class JobReader(Protocol):
    def get(self, job_id: str) -> Job: ...


def usage_day(now: datetime) -> str:
    """The UTC day a usage counts in, ``YYYY-MM-DD``."""
    return now.astimezone(UTC).strftime("%Y-%m-%d")


def seconds_until_next_day(now: datetime) -> int:
    """Seconds until the UTC day's window rolls over (at least 1)."""
    moment = now.astimezone(UTC)
    midnight = datetime(moment.year, moment.month, moment.day, tzinfo=UTC) + timedelta(days=1)
    return max(1, math.ceil((midnight - moment).total_seconds()))


def admit_upload(
    owner: str,
    job_id: str,
    size: int,
    *,
    limits: OwnerLimits,
    usage: UsageStore,
    jobs: JobReader,
    now: datetime,
) -> None:
    """Take an active-job slot for ``job_id`` and charge ``size`` bytes to today,
    or raise QuotaExceeded (taking nothing). Call :func:`undo_admission` if the
    job is not recorded after all. (An upload uses :func:`admit_and_record`,
    which records its job in the same write.)

    Raises UploadTooLarge when ``size`` alone is more than a whole day's allowance
    (waiting would not help, so not a 429)."""
    _refuse_more_than_a_day(size, limits)
    slot_taken = usage.take_active_slot(owner, job_id, limit=limits.active_jobs) or (
        _reclaim_ended_slots(owner, usage, jobs) and usage.take_active_slot(owner, job_id, limit=limits.active_jobs)
    )
    if not slot_taken:
        raise _active_jobs_exceeded(limits)
    day = usage_day(now)
    if usage.add_upload_bytes(owner, day, size, limits=limits):
        return
    usage.release_active_slot(owner, job_id)
    raise _daily_allowance_exceeded(owner, size, limits=limits, usage=usage, now=now)


def admit_and_record(
    job: Job,
    size: int,
    *,
    limits: OwnerLimits,
    usage: UsageStore,
    jobs: JobReader,
    now: datetime,
) -> None:
    """Record the new ``job`` together with its active-job slot and ``size``
    bytes charged to today, all or nothing; QuotaExceeded (nothing recorded)
    when a limit refuses it, UploadTooLarge when ``size`` alone is more than a
    whole day's allowance, ConcurrentUpdate when the job id exists."""
    _refuse_more_than_a_day(size, limits)
    day = usage_day(now)
    refusal = usage.record_admitted_job(job, size, day=day, limits=limits)
    if refusal == "active_jobs" and _reclaim_ended_slots(job.owner, usage, jobs):
        refusal = usage.record_admitted_job(job, size, day=day, limits=limits)
    if refusal == "active_jobs":
        raise _active_jobs_exceeded(limits)
    if refusal == "daily_allowance":
        raise _daily_allowance_exceeded(job.owner, size, limits=limits, usage=usage, now=now)


def _refuse_more_than_a_day(size: int, limits: OwnerLimits) -> None:
    if size > limits.upload_bytes_per_day:
        raise UploadTooLarge(
            f"the file is {size} bytes; at most {limits.upload_bytes_per_day} bytes may be uploaded per day"
        )


def _active_jobs_exceeded(limits: OwnerLimits) -> QuotaExceeded:
    return QuotaExceeded(
        f"you have {limits.active_jobs} jobs in progress, the most allowed at once: "
        "wait for one to finish (or cancel an upload) and try again",
        retry_after_s=ACTIVE_JOBS_RETRY_AFTER_S,
        limit="active_jobs",
    )


def _daily_allowance_exceeded(
    owner: str, size: int, *, limits: OwnerLimits, usage: UsageStore, now: datetime
) -> QuotaExceeded:
    """Why the day refused ``size`` bytes: its minutes are used up, or its bytes would be."""
    used = usage.daily_usage(owner, usage_day(now))
    wait_s = seconds_until_next_day(now)
    if used.video_seconds >= limits.video_seconds_per_day:
        return QuotaExceeded(
            f"today's {limits.video_minutes_per_day:g} minutes of video are used up; "
            f"uploads open again in {wait_s} s (00:00 UTC)",
            retry_after_s=wait_s,
            limit="video_minutes_per_day",
        )
    return QuotaExceeded(
        f"this upload ({size} bytes) would pass today's limit of {limits.upload_bytes_per_day} bytes "
        f"({used.upload_bytes} used); the limit resets in {wait_s} s (00:00 UTC)",
        retry_after_s=wait_s,
        limit="upload_bytes_per_day",
    )


def undo_admission(owner: str, job_id: str, size: int, *, usage: UsageStore, now: datetime) -> None:
    """Give back what :func:`admit_upload` took, for a job that was never recorded."""
    usage.release_active_slot(owner, job_id)
    usage.refund_upload_bytes(owner, usage_day(now), size)


def release_if_ended(job: Job, *, usage: UsageStore) -> bool:
    """Free the job's active slot once the job has ended (READY, FAILED or
    EXPIRED); True when it has. Safe to repeat: the slot is freed once."""
    if job.status not in ENDED_STATUSES:
        return False
    usage.release_active_slot(job.owner, job.job_id)
    return True


def charge_video_minutes(
    owner: str,
    job_id: str,
    duration_s: float,
    *,
    limits: OwnerLimits,
    usage: UsageStore,
    now: datetime,
) -> None:
    """Charge the probed duration of ``job_id`` to the owner's day, once per job.

    Raises QuotaExceeded when it does not fit in what is left of the day's
    minutes (the transcode stage then fails the job ``QUOTA_EXCEEDED``)."""
    seconds = max(1, math.ceil(duration_s))
    day = usage_day(now)
    limit = limits.video_seconds_per_day
    if usage.add_video_seconds_once(owner, day, job_id, seconds, limit=limit):
        return
    used = usage.daily_usage(owner, day).video_seconds
    wait_s = seconds_until_next_day(now)
    raise QuotaExceeded(
        f"this video lasts {seconds / 60:.1f} minutes, more than is left of today's "
        f"{limits.video_minutes_per_day:g} minutes ({max(0, limit - used) / 60:.1f} left); "
        f"upload it again after 00:00 UTC (in {wait_s} s)",
        retry_after_s=wait_s,
        limit="video_minutes_per_day",
    )


def _reclaim_ended_slots(owner: str, usage: UsageStore, jobs: JobReader) -> bool:
    """Free the slots of jobs that ended without freeing theirs; True when any was freed."""
    freed = False
    for job_id in sorted(usage.active_job_ids(owner)):
        try:
            job = jobs.get(job_id)
        except JobNotFound:
            # Not recorded yet: a concurrent POST /uploads holds this slot
            # between taking it and recording its job. Taking it back would
            # let both requests in.
            continue
        freed = release_if_ended(job, usage=usage) or freed
    return freed

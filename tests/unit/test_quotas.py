"""Per-owner limits (vidpipe.domain.quotas): admission at POST /uploads, freeing a
slot when a job ends, the day's minutes charged once per job, and honest
Retry-After values. A fake usage store with the real store's semantics (each
call atomic); the conditional writes themselves are tested with moto in
tests/adapters/test_usage_store_moto.py."""

from __future__ import annotations

import copy
from datetime import UTC, datetime

import pytest

from vidpipe.domain.errors import JobNotFound, QuotaExceeded, UploadTooLarge
from vidpipe.domain.jobs import Job, JobStatus
from vidpipe.domain.quotas import (
    ACTIVE_JOBS_RETRY_AFTER_S,
    DailyUsage,
    OwnerLimits,
    Refusal,
    admit_and_record,
    admit_upload,
    charge_video_minutes,
    release_if_ended,
    seconds_until_next_day,
    undo_admission,
    usage_day,
)

NOW = datetime(2026, 12, 3, 22, 0, 0, tzinfo=UTC)  # two hours before the day rolls over
LIMITS = OwnerLimits(active_jobs=2, upload_bytes_per_day=1000, video_minutes_per_day=10)


class FakeUsage:
    """In memory, with the semantics of DynamoUsageStore."""

    def __init__(self) -> None:
        self.active: dict[str, set[str]] = {}
        self.days: dict[tuple[str, str], dict] = {}
        self.recorded: dict[str, Job] = {}

    def _day(self, owner: str, day: str) -> dict:
        return self.days.setdefault((owner, day), {"bytes": 0, "seconds": 0, "charged": set()})

    def take_active_slot(self, owner: str, job_id: str, *, limit: int) -> bool:
        slots = self.active.setdefault(owner, set())
        if len(slots) >= limit:
            return False
        slots.add(job_id)
        return True

    def release_active_slot(self, owner: str, job_id: str) -> None:
        self.active.get(owner, set()).discard(job_id)

    def active_job_ids(self, owner: str) -> set[str]:
        return set(self.active.get(owner, set()))

    def add_upload_bytes(self, owner: str, day: str, size: int, *, limits: OwnerLimits) -> bool:
        counters = self._day(owner, day)
        over_bytes = counters["bytes"] + size > limits.upload_bytes_per_day
        if over_bytes or counters["seconds"] >= limits.video_seconds_per_day:
            return False
        counters["bytes"] += size
        return True

    def refund_upload_bytes(self, owner: str, day: str, size: int) -> None:
        self._day(owner, day)["bytes"] -= size

    def add_video_seconds_once(self, owner: str, day: str, job_id: str, seconds: int, *, limit: int) -> bool:
        counters = self._day(owner, day)
        if job_id in counters["charged"]:
            return True
        if counters["seconds"] + seconds > limit:
            return False
        counters["seconds"] += seconds
        counters["charged"].add(job_id)
        return True

    def daily_usage(self, owner: str, day: str) -> DailyUsage:
        counters = self._day(owner, day)
        return DailyUsage(upload_bytes=counters["bytes"], video_seconds=counters["seconds"])

    def record_admitted_job(self, job: Job, size: int, *, day: str, limits: OwnerLimits) -> Refusal | None:
        # All or nothing, as the store's transaction: check every condition first.
        counters = self._day(job.owner, day)
        if len(self.active.get(job.owner, set())) >= limits.active_jobs:
            return "active_jobs"
        over_bytes = counters["bytes"] + size > limits.upload_bytes_per_day
        if over_bytes or counters["seconds"] >= limits.video_seconds_per_day:
            return "daily_allowance"
        self.active.setdefault(job.owner, set()).add(job.job_id)
        counters["bytes"] += size
        self.recorded[job.job_id] = job
        return None


class FakeJobs:
    def __init__(self, *jobs: Job) -> None:
        self.jobs = {job.job_id: copy.deepcopy(job) for job in jobs}

    def get(self, job_id: str) -> Job:
        if job_id not in self.jobs:
            raise JobNotFound(job_id)
        return copy.deepcopy(self.jobs[job_id])


def job(job_id: str, status: JobStatus = JobStatus.AWAITING_UPLOAD, owner: str = "alice") -> Job:
    created = Job.new(
        job_id, filename="a.mp4", content_type="video/mp4", size=10, now="2026-12-03T21:00:00Z", owner=owner
    )
    created.status = status
    return created


def admit(usage: FakeUsage, jobs: FakeJobs, job_id: str, size: int = 10, owner: str = "alice") -> None:
    admit_upload(owner, job_id, size, limits=LIMITS, usage=usage, jobs=jobs, now=NOW)


# ------------------------------------------------------------------ the day's window


def test_GIVEN_a_moment_WHEN_its_window_is_asked_THEN_it_is_the_utc_day_and_retry_after_reaches_midnight() -> None:
    assert usage_day(NOW) == "2026-12-03"
    assert seconds_until_next_day(NOW) == 2 * 3600
    assert seconds_until_next_day(datetime(2026, 12, 3, 23, 59, 59, 500_000, tzinfo=UTC)) == 1
    assert seconds_until_next_day(datetime(2026, 12, 3, 0, 0, 0, tzinfo=UTC)) == 86400


# ------------------------------------------------------------------ active jobs


def test_GIVEN_an_owner_at_the_active_jobs_limit_WHEN_another_upload_is_asked_THEN_429_with_a_short_retry() -> None:
    usage, jobs = FakeUsage(), FakeJobs(job("j1"), job("j2"))
    admit(usage, jobs, "j1")
    admit(usage, jobs, "j2")

    with pytest.raises(QuotaExceeded) as refused:
        admit(usage, jobs, "j3")

    assert refused.value.http_status == 429
    assert refused.value.code == "QUOTA_EXCEEDED"
    assert refused.value.limit == "active_jobs"
    assert refused.value.retry_after_s == ACTIVE_JOBS_RETRY_AFTER_S
    assert "2 jobs in progress" in refused.value.message
    # Nothing was taken for the refused request: neither a slot nor bytes.
    assert usage.active_job_ids("alice") == {"j1", "j2"}
    assert usage.daily_usage("alice", "2026-12-03").upload_bytes == 20


def test_GIVEN_one_owner_at_the_limit_WHEN_another_owner_uploads_THEN_they_are_not_held_back() -> None:
    usage, jobs = FakeUsage(), FakeJobs()
    admit(usage, jobs, "j1")
    admit(usage, jobs, "j2")

    admit(usage, jobs, "b1", owner="bob")

    assert usage.active_job_ids("bob") == {"b1"}


@pytest.mark.parametrize("status", [JobStatus.READY, JobStatus.FAILED, JobStatus.EXPIRED])
def test_GIVEN_a_job_that_ended_WHEN_its_slot_is_released_THEN_a_new_upload_fits(status: JobStatus) -> None:
    usage, jobs = FakeUsage(), FakeJobs()
    admit(usage, jobs, "j1")
    admit(usage, jobs, "j2")

    assert release_if_ended(job("j1", status), usage=usage)
    assert release_if_ended(job("j1", status), usage=usage)  # a redelivery frees nothing more

    admit(usage, jobs, "j3")
    assert usage.active_job_ids("alice") == {"j2", "j3"}


@pytest.mark.parametrize("status", [JobStatus.AWAITING_UPLOAD, JobStatus.UPLOADED, JobStatus.PROCESSING])
def test_GIVEN_a_job_still_going_WHEN_release_is_asked_THEN_it_keeps_its_slot(status: JobStatus) -> None:
    usage = FakeUsage()
    admit(usage, FakeJobs(), "j1")

    assert not release_if_ended(job("j1", status), usage=usage)

    assert usage.active_job_ids("alice") == {"j1"}


def test_GIVEN_a_slot_whose_release_was_lost_WHEN_the_owner_is_full_THEN_the_ended_job_gives_it_back() -> None:
    # GIVEN j1 ended (the function died before freeing its slot), j2 still goes
    usage = FakeUsage()
    admit(usage, FakeJobs(), "j1")
    admit(usage, FakeJobs(), "j2")
    jobs = FakeJobs(job("j1", JobStatus.FAILED), job("j2", JobStatus.PROCESSING))

    admit(usage, jobs, "j3")

    assert usage.active_job_ids("alice") == {"j2", "j3"}


def test_GIVEN_a_slot_taken_by_a_job_not_yet_recorded_WHEN_the_owner_is_full_THEN_it_is_not_taken_back() -> None:
    # A concurrent POST /uploads took the slot and is about to record its job.
    usage, jobs = FakeUsage(), FakeJobs(job("j1", JobStatus.PROCESSING))
    admit(usage, jobs, "j1")
    admit(usage, jobs, "in-flight")

    with pytest.raises(QuotaExceeded):
        admit(usage, jobs, "j3")


# ------------------------------------------------------------------ bytes per day


def test_GIVEN_the_days_bytes_nearly_used_WHEN_a_larger_upload_is_asked_THEN_429_until_midnight() -> None:
    usage, jobs = FakeUsage(), FakeJobs()
    admit(usage, jobs, "j1", size=900)

    with pytest.raises(QuotaExceeded) as refused:
        admit(usage, jobs, "j2", size=101)

    assert refused.value.limit == "upload_bytes_per_day"
    assert refused.value.retry_after_s == 2 * 3600
    assert "900 used" in refused.value.message
    # The slot taken before the bytes were refused is given back.
    assert usage.active_job_ids("alice") == {"j1"}
    admit(usage, jobs, "j2", size=100)  # exactly the rest still fits


def test_GIVEN_an_upload_larger_than_a_whole_day_WHEN_asked_THEN_413_not_a_retry_that_cannot_help() -> None:
    usage = FakeUsage()

    with pytest.raises(UploadTooLarge):
        admit(usage, FakeJobs(), "j1", size=1001)

    assert usage.active_job_ids("alice") == set()


def test_GIVEN_the_days_minutes_used_up_WHEN_an_upload_is_asked_THEN_429_naming_the_minutes() -> None:
    usage, jobs = FakeUsage(), FakeJobs()
    charge_video_minutes("alice", "j0", 600, limits=LIMITS, usage=usage, now=NOW)

    with pytest.raises(QuotaExceeded) as refused:
        admit(usage, jobs, "j1")

    assert refused.value.limit == "video_minutes_per_day"
    assert refused.value.retry_after_s == 2 * 3600


def test_GIVEN_a_job_that_could_not_be_recorded_WHEN_admission_is_undone_THEN_slot_and_bytes_come_back() -> None:
    usage, jobs = FakeUsage(), FakeJobs()
    admit(usage, jobs, "j1", size=300)

    undo_admission("alice", "j1", 300, usage=usage, now=NOW)

    assert usage.active_job_ids("alice") == set()
    assert usage.daily_usage("alice", "2026-12-03").upload_bytes == 0


# ------------------------------------------------------------------ admission and record in one write


def record(usage: FakeUsage, jobs: FakeJobs, job_id: str, size: int = 10) -> None:
    admit_and_record(job(job_id), size, limits=LIMITS, usage=usage, jobs=jobs, now=NOW)


def test_GIVEN_room_WHEN_an_upload_is_admitted_and_recorded_THEN_job_slot_and_bytes_are_all_there() -> None:
    usage = FakeUsage()

    record(usage, FakeJobs(), "j1", size=300)

    assert set(usage.recorded) == {"j1"}
    assert usage.active_job_ids("alice") == {"j1"}
    assert usage.daily_usage("alice", "2026-12-03").upload_bytes == 300


def test_GIVEN_an_owner_at_the_limit_WHEN_recorded_THEN_429_and_nothing_written() -> None:
    usage, jobs = FakeUsage(), FakeJobs(job("j1", JobStatus.PROCESSING), job("j2", JobStatus.PROCESSING))
    record(usage, jobs, "j1")
    record(usage, jobs, "j2")

    with pytest.raises(QuotaExceeded) as refused:
        record(usage, jobs, "j3")

    assert refused.value.limit == "active_jobs"
    assert refused.value.retry_after_s == ACTIVE_JOBS_RETRY_AFTER_S
    assert set(usage.recorded) == {"j1", "j2"}
    assert usage.daily_usage("alice", "2026-12-03").upload_bytes == 20


def test_GIVEN_a_slot_whose_release_was_lost_WHEN_recording_at_the_limit_THEN_the_slot_is_taken_back() -> None:
    usage = FakeUsage()
    record(usage, FakeJobs(), "j1")
    record(usage, FakeJobs(), "j2")

    record(usage, FakeJobs(job("j1", JobStatus.READY), job("j2", JobStatus.PROCESSING)), "j3")

    assert usage.active_job_ids("alice") == {"j2", "j3"}
    assert "j3" in usage.recorded


@pytest.mark.parametrize("used_up", ["bytes", "minutes"])
def test_GIVEN_the_days_allowance_used_WHEN_recording_THEN_429_naming_it_and_no_slot_or_job(used_up: str) -> None:
    usage, jobs = FakeUsage(), FakeJobs()
    if used_up == "bytes":
        record(usage, jobs, "j0", size=950)
        usage.release_active_slot("alice", "j0")
    else:
        charge_video_minutes("alice", "j0", 600, limits=LIMITS, usage=usage, now=NOW)

    with pytest.raises(QuotaExceeded) as refused:
        record(usage, jobs, "j1", size=100)

    assert refused.value.limit == {"bytes": "upload_bytes_per_day", "minutes": "video_minutes_per_day"}[used_up]
    assert refused.value.retry_after_s == 2 * 3600
    assert "j1" not in usage.recorded
    assert usage.active_job_ids("alice") == set()


def test_GIVEN_an_upload_larger_than_a_day_WHEN_recording_THEN_413_and_nothing_written() -> None:
    usage = FakeUsage()

    with pytest.raises(UploadTooLarge):
        record(usage, FakeJobs(), "j1", size=1001)

    assert usage.recorded == {}
    assert usage.active_job_ids("alice") == set()


# ------------------------------------------------------------------ minutes per day


def test_GIVEN_a_probed_video_WHEN_charged_twice_THEN_it_counts_once() -> None:
    usage = FakeUsage()

    charge_video_minutes("alice", "j1", 240.2, limits=LIMITS, usage=usage, now=NOW)
    charge_video_minutes("alice", "j1", 240.2, limits=LIMITS, usage=usage, now=NOW)  # a retried stage

    assert usage.daily_usage("alice", "2026-12-03").video_seconds == 241


def test_GIVEN_a_video_longer_than_the_days_rest_WHEN_charged_THEN_quota_exceeded_says_what_is_left() -> None:
    usage = FakeUsage()
    charge_video_minutes("alice", "j1", 480, limits=LIMITS, usage=usage, now=NOW)

    with pytest.raises(QuotaExceeded) as refused:
        charge_video_minutes("alice", "j2", 180, limits=LIMITS, usage=usage, now=NOW)

    assert refused.value.limit == "video_minutes_per_day"
    assert refused.value.to_dict()["code"] == "QUOTA_EXCEEDED"
    assert "2.0 left" in refused.value.message
    assert refused.value.retry_after_s == 2 * 3600
    assert usage.daily_usage("alice", "2026-12-03").video_seconds == 480

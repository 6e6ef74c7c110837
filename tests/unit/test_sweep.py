"""The sweep: abandoned uploads EXPIRE, stalled jobs FAIL, moving jobs are left alone."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta

from job_lifecycle.domain_logic.sweep import JobFolders, iso_utc, sweep
from vidpipe.adapters.job_store import job_to_item
from vidpipe.domain.errors import ConcurrentUpdate, JobNotFound, StorageError
from vidpipe.domain.events import Stage
from vidpipe.domain.jobs import IN_PROGRESS, Job, JobStatus, StageStatus

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


class FakeJobs:
    """Keeps jobs in memory and checks versions like the real store."""

    def __init__(self, *jobs: Job) -> None:
        self.jobs = {job.job_id: copy.deepcopy(job) for job in jobs}

    def list_open(self, state: str, *, since_before: str, limit: int = 100) -> list[Job]:
        """The sparse index's answer, from the attributes the real store writes."""

        def open_since(job: Job) -> str | None:
            item = job_to_item(job)
            if item.get("open_state", {}).get("S") != state:
                return None
            return str(item["open_since"]["S"])

        found = [j for j in self.jobs.values() if (since := open_since(j)) is not None and since < since_before]
        return [copy.deepcopy(j) for j in found][:limit]

    def delete(self, job_id: str) -> None:
        assert self.jobs[job_id].is_deleting, "the store deletes only a DELETING job"
        del self.jobs[job_id]

    def get(self, job_id: str) -> Job:
        if job_id not in self.jobs:
            raise JobNotFound(f"no job {job_id}")
        return copy.deepcopy(self.jobs[job_id])

    def save(self, job: Job, *, expected_version: int) -> Job:
        if self.jobs[job.job_id].version != expected_version:
            raise ConcurrentUpdate("version moved")
        stored = copy.deepcopy(job)
        stored.version = expected_version + 1
        self.jobs[job.job_id] = stored
        return stored


class FakeUploads:
    def __init__(self) -> None:
        self.aborted: list[str] = []

    def abort_multipart(self, key: str, *, upload_id: str) -> None:
        self.aborted.append(upload_id)


class FakePublisher:
    def __init__(self) -> None:
        self.events: list = []

    def publish(self, event) -> None:
        self.events.append(event)


def job(job_id: str, status: JobStatus, *, age: timedelta, upload_id: str | None = None) -> Job:
    stamp = iso_utc(NOW - age)
    made = Job.new(job_id, filename="a.mp4", content_type="video/mp4", size=10, now=stamp)
    made.status = status
    if upload_id:
        made.upload = {"upload_id": upload_id, "part_size": 8, "part_count": 2}
    if status is JobStatus.PROCESSING:
        made.stages[Stage.THUMBNAILS].status = StageStatus.COMPLETED
        made.stages[Stage.TRANSCODE].status = StageStatus.RUNNING
    return made


class FakeDeadLetters:
    def __init__(self, stranded: dict[str, str]) -> None:
        self.stranded = stranded

    def stranded_jobs(self) -> dict[str, str]:
        return dict(self.stranded)


def run(
    jobs: FakeJobs,
    uploads: FakeUploads | None = None,
    publisher: FakePublisher | None = None,
    dead_letters: FakeDeadLetters | None = None,
):
    return sweep(
        jobs,
        uploads or FakeUploads(),
        publisher or FakePublisher(),
        now=NOW,
        upload_expiry_s=3600,
        stall_limit_s=7200,
        dead_letters=dead_letters,
    )


def test_GIVEN_an_upload_older_than_the_expiry_WHEN_swept_THEN_it_is_expired_and_its_multipart_aborted() -> None:
    jobs = FakeJobs(job("old", JobStatus.AWAITING_UPLOAD, age=timedelta(hours=2), upload_id="u-1"))
    uploads = FakeUploads()
    result = run(jobs, uploads)
    assert result.expired == ["old"]
    assert jobs.jobs["old"].status is JobStatus.EXPIRED
    assert jobs.jobs["old"].error["code"] == "UPLOAD_EXPIRED"
    assert uploads.aborted == ["u-1"]


def test_GIVEN_a_recent_upload_WHEN_swept_THEN_it_is_left_alone() -> None:
    jobs = FakeJobs(job("new", JobStatus.AWAITING_UPLOAD, age=timedelta(minutes=10)))
    assert run(jobs).expired == []
    assert jobs.jobs["new"].status is JobStatus.AWAITING_UPLOAD


def test_GIVEN_a_job_that_stopped_moving_WHEN_swept_THEN_it_fails_stalled_and_job_failed_is_published() -> None:
    jobs, publisher = FakeJobs(job("stuck", JobStatus.PROCESSING, age=timedelta(hours=3))), FakePublisher()
    result = run(jobs, publisher=publisher)
    stuck = jobs.jobs["stuck"]
    assert result.stalled == ["stuck"]
    assert stuck.status is JobStatus.FAILED and stuck.error["code"] == "STAGE_STALLED"
    assert "transcode" in stuck.error["message"]
    assert stuck.stages[Stage.TRANSCODE].status is StageStatus.FAILED
    assert stuck.stages[Stage.THUMBNAILS].status is StageStatus.COMPLETED
    assert [(e.job_id, e.status) for e in publisher.events] == [("stuck", "FAILED")]


def test_GIVEN_a_job_still_moving_or_finished_WHEN_swept_THEN_nothing_changes() -> None:
    jobs = FakeJobs(
        job("moving", JobStatus.PROCESSING, age=timedelta(minutes=5)),
        job("ready", JobStatus.READY, age=timedelta(days=2)),
        job("failed", JobStatus.FAILED, age=timedelta(days=2)),
    )
    before = copy.deepcopy(jobs.jobs)
    result = run(jobs)
    assert result.expired == [] and result.stalled == []
    assert jobs.jobs == before


def test_GIVEN_the_job_moved_between_read_and_write_WHEN_swept_THEN_it_is_skipped() -> None:
    jobs = FakeJobs(job("racing", JobStatus.PROCESSING, age=timedelta(hours=3)))
    listed = jobs.list_open

    def list_then_move(state: str, **kwargs):
        found = listed(state, **kwargs)
        if state == IN_PROGRESS:
            jobs.jobs["racing"].version += 1  # a stage event landed meanwhile
        return found

    jobs.list_open = list_then_move  # type: ignore[method-assign]
    publisher = FakePublisher()
    assert run(jobs, publisher=publisher).stalled == []
    assert jobs.jobs["racing"].status is JobStatus.PROCESSING
    assert publisher.events == []


def test_GIVEN_a_job_whose_stage_message_is_dead_lettered_WHEN_swept_THEN_it_fails_at_once_naming_the_stage() -> None:
    # GIVEN a job still PROCESSING, recent (far from the stall limit), whose
    # transcode message reached the dead-letter queue; and a finished job there too
    jobs = FakeJobs(
        job("killed", JobStatus.PROCESSING, age=timedelta(minutes=20)),
        job("done", JobStatus.READY, age=timedelta(minutes=20)),
    )
    publisher = FakePublisher()
    dead_letters = FakeDeadLetters({"killed": "transcode", "done": "thumbnails", "gone": "transcode"})

    # WHEN the sweep runs
    result = run(jobs, publisher=publisher, dead_letters=dead_letters)

    # THEN the job in progress is FAILED with DEAD_LETTERED, the finished one
    # and the unknown one are left alone, and Job Failed is published once
    killed = jobs.jobs["killed"]
    assert result.dead_lettered == ["killed"] and result.stalled == []
    assert killed.status is JobStatus.FAILED and killed.error["code"] == "DEAD_LETTERED"
    assert "transcode stage gave up after 3 attempts" in killed.error["message"]
    assert "vidpipe redrive" in killed.error["message"]
    assert jobs.jobs["done"].status is JobStatus.READY
    assert [(e.job_id, e.status) for e in publisher.events] == [("killed", "FAILED")]


def test_GIVEN_a_dead_lettered_job_already_failed_WHEN_swept_again_THEN_nothing_more_happens() -> None:
    jobs = FakeJobs(job("killed", JobStatus.PROCESSING, age=timedelta(minutes=20)))
    dead_letters = FakeDeadLetters({"killed": "transcode"})
    run(jobs, dead_letters=dead_letters)
    publisher = FakePublisher()

    result = run(jobs, publisher=publisher, dead_letters=dead_letters)

    assert result.dead_lettered == [] and publisher.events == []


def test_GIVEN_a_chunk_report_in_the_status_dead_letter_queue_WHEN_swept_THEN_the_job_fails_now_not_after_hours() -> (
    None
):
    # GIVEN a job 20 minutes into its transcode, far from the stall limit, whose
    # finished-chunk report the status function could not record
    jobs = FakeJobs(job("lost-report", JobStatus.PROCESSING, age=timedelta(minutes=20)))
    publisher = FakePublisher()

    result = run(jobs, publisher=publisher, dead_letters=FakeDeadLetters({"lost-report": "status"}))

    failed = jobs.jobs["lost-report"]
    assert result.dead_lettered == ["lost-report"]
    assert failed.status is JobStatus.FAILED and failed.error["code"] == "DEAD_LETTERED"
    assert "report on the job could not be recorded" in failed.error["message"]
    assert "vidpipe redrive" in failed.error["message"]
    assert [(e.job_id, e.status) for e in publisher.events] == [("lost-report", "FAILED")]


# ------------------------------------------------------------------ per-owner active-job slots


class FakeSlots:
    """The active-job part of a usage store (vidpipe.domain.quotas.UsageStore)."""

    def __init__(self, *job_ids: str) -> None:
        self.active = {"anonymous": set(job_ids)}

    def release_active_slot(self, owner: str, job_id: str) -> None:
        self.active.get(owner, set()).discard(job_id)


def test_GIVEN_expired_stalled_and_dead_lettered_jobs_WHEN_swept_THEN_each_frees_its_owners_slot() -> None:
    jobs = FakeJobs(
        job("abandoned", JobStatus.AWAITING_UPLOAD, age=timedelta(hours=2)),
        job("stuck", JobStatus.PROCESSING, age=timedelta(hours=3)),
        job("dead", JobStatus.PROCESSING, age=timedelta(minutes=5)),
        job("moving", JobStatus.PROCESSING, age=timedelta(minutes=5)),
    )
    slots = FakeSlots("abandoned", "stuck", "dead", "moving")

    sweep(
        jobs,
        FakeUploads(),
        FakePublisher(),
        now=NOW,
        upload_expiry_s=3600,
        stall_limit_s=7200,
        dead_letters=FakeDeadLetters({"dead": "transcode"}),
        usage=slots,
    )  # type: ignore[arg-type]

    assert slots.active["anonymous"] == {"moving"}


def test_GIVEN_a_dead_lettered_job_failed_by_a_pass_that_died_WHEN_swept_again_THEN_its_slot_is_freed() -> None:
    # An earlier pass saved the job FAILED and died before freeing its slot.
    jobs = FakeJobs(job("dead", JobStatus.FAILED, age=timedelta(minutes=5)))
    slots = FakeSlots("dead")

    sweep(
        jobs,
        FakeUploads(),
        FakePublisher(),
        now=NOW,
        upload_expiry_s=3600,
        stall_limit_s=7200,
        dead_letters=FakeDeadLetters({"dead": "transcode"}),
        usage=slots,
    )  # type: ignore[arg-type]

    assert slots.active["anonymous"] == set()


class FakeBucket:
    """A bucket's folders: objects by key; ``fail`` makes every delete raise."""

    def __init__(self, *keys: str, fail: bool = False) -> None:
        self.keys = set(keys)
        self.fail = fail
        self.aborted: list[str] = []

    def delete_prefix(self, prefix: str) -> int:
        if self.fail:
            raise StorageError("S3: SlowDown")
        gone = {key for key in self.keys if key.startswith(prefix)}
        self.keys -= gone
        return len(gone)

    def abort_multipart(self, key: str, *, upload_id: str) -> None:
        self.aborted.append(upload_id)


def deleting(job_id: str, *, age: timedelta) -> Job:
    made = job(job_id, JobStatus.DELETING, age=age)
    made.owner = "alice"
    return made


def test_GIVEN_a_delete_that_stopped_half_way_WHEN_swept_after_the_grace_THEN_it_is_finished() -> None:
    jobs = FakeJobs(deleting("old", age=timedelta(minutes=30)), deleting("new", age=timedelta(minutes=2)))
    uploads = FakeBucket("uploads/old/source", "captions/old/c1", "uploads/new/source", "uploads/other/source")
    outputs = FakeBucket("jobs/old/hls/master.m3u8", "jobs/new/hls/master.m3u8")

    result = sweep(
        jobs, uploads, FakePublisher(), now=NOW, upload_expiry_s=3600, stall_limit_s=7200,
        folders=JobFolders(uploads=uploads, outputs=outputs),
    )  # fmt: skip

    # the old one is finished (record and every folder), the recent one is left to its own DELETE
    assert result.deleted == ["old"]
    assert set(jobs.jobs) == {"new"}
    assert uploads.keys == {"uploads/new/source", "uploads/other/source"}
    assert outputs.keys == {"jobs/new/hls/master.m3u8"}


def test_GIVEN_storage_failing_WHEN_an_interrupted_delete_is_swept_THEN_the_job_stays_deleting_for_the_next_pass() -> (
    None
):
    jobs = FakeJobs(deleting("old", age=timedelta(minutes=30)))
    broken = FakeBucket("uploads/old/source", fail=True)

    result = sweep(
        jobs, broken, FakePublisher(), now=NOW, upload_expiry_s=3600, stall_limit_s=7200,
        folders=JobFolders(uploads=broken, outputs=FakeBucket()),
    )  # fmt: skip

    assert result.deleted == [] and jobs.jobs["old"].is_deleting

"""A stage that writes after its job was deleted removes what it wrote (vidpipe.runtime.deletion_guard),
and the delete itself goes in the order that makes that safe (vidpipe.domain.job_deletion)."""

from __future__ import annotations

from pathlib import Path

import pytest

from vidpipe.domain.errors import ConcurrentUpdate, JobDeleted, JobNotFound
from vidpipe.domain.job_deletion import delete_job
from vidpipe.domain.jobs import Job, JobStatus
from vidpipe.runtime.deletion_guard import WritesForLiveJob, job_is_gone

JOB = "j1"


def a_job(status: JobStatus = JobStatus.PROCESSING) -> Job:
    job = Job.new(JOB, filename="a.mp4", content_type="video/mp4", size=1, now="2026-01-01T00:00:00Z")
    job.status = status
    return job


class Jobs:
    """A job store that logs what happens, in order, with a shared ``log``."""

    def __init__(self, job: Job | None, log: list[str], conflicts: int = 0) -> None:
        self.job, self.log, self.conflicts = job, log, conflicts

    def get(self, job_id: str) -> Job:
        if self.job is None:
            raise JobNotFound(job_id)
        return self.job

    def save(self, job: Job, *, expected_version: int) -> Job:
        if self.conflicts:
            self.conflicts -= 1
            raise ConcurrentUpdate("a stage event got there first")
        self.log.append(f"save {job.status.value}")
        self.job = job
        return job

    def delete(self, job_id: str) -> None:
        self.log.append("delete record")
        self.job = None


class Bucket:
    def __init__(self, name: str, log: list[str]) -> None:
        self.name, self.log, self.keys = name, log, set[str]()

    def upload_tree(self, local_dir: Path, prefix: str) -> list[str]:
        written = [prefix + path.name for path in local_dir.iterdir()]
        self.keys |= set(written)
        return written

    def delete_prefix(self, prefix: str) -> int:
        self.log.append(f"delete {self.name}:{prefix}")
        gone = {key for key in self.keys if key.startswith(prefix)}
        self.keys -= gone
        return len(gone)

    def abort_multipart(self, key: str, *, upload_id: str) -> None:
        self.log.append(f"abort {upload_id}")


class Usage:
    def __init__(self, log: list[str]) -> None:
        self.log = log

    def release_active_slot(self, owner: str, job_id: str) -> None:
        self.log.append("release slot")


@pytest.fixture
def segments(tmp_path: Path) -> Path:
    (tmp_path / "seg0.ts").write_bytes(b"x")
    return tmp_path


@pytest.mark.parametrize("job", [None, a_job(JobStatus.DELETING)], ids=["gone", "deleting"])
def test_GIVEN_a_job_deleted_while_a_stage_worked_WHEN_the_stage_writes_THEN_its_folder_goes_and_it_stops(
    segments: Path, job: Job | None
) -> None:
    log: list[str] = []
    outputs = Bucket("outputs", log)
    guarded = WritesForLiveJob(outputs, jobs=Jobs(job, log), job_id=JOB, folder=f"jobs/{JOB}/")

    with pytest.raises(JobDeleted):
        guarded.upload_tree(segments, f"jobs/{JOB}/hls/")

    assert outputs.keys == set()
    assert log == [f"delete outputs:jobs/{JOB}/"]


def test_GIVEN_a_live_job_WHEN_the_stage_writes_THEN_the_files_stay(segments: Path) -> None:
    log: list[str] = []
    outputs = Bucket("outputs", log)
    guarded = WritesForLiveJob(outputs, jobs=Jobs(a_job(), log), job_id=JOB, folder=f"jobs/{JOB}/")

    assert guarded.upload_tree(segments, f"jobs/{JOB}/hls/") == [f"jobs/{JOB}/hls/seg0.ts"]
    assert outputs.keys == {f"jobs/{JOB}/hls/seg0.ts"} and log == []


def test_GIVEN_a_failed_job_WHEN_asked_if_gone_THEN_no_only_deleted_or_deleting_ones_are() -> None:
    assert not job_is_gone(Jobs(a_job(JobStatus.FAILED), []), JOB)
    assert job_is_gone(Jobs(a_job(JobStatus.DELETING), []), JOB)
    assert job_is_gone(Jobs(None, []), JOB)


def test_GIVEN_a_job_in_progress_WHEN_deleted_THEN_marked_first_then_slot_then_folders_then_record() -> None:
    log: list[str] = []
    job = a_job()
    job.upload = {"upload_id": "mpu-1", "part_size": 8, "part_count": 2}
    jobs = Jobs(job, log, conflicts=2)  # two stage events land in between: re-read, mark again

    deleted = delete_job(
        job,
        jobs=jobs,
        uploads=Bucket("uploads", log),
        outputs=Bucket("outputs", log),
        usage=Usage(log),  # type: ignore[arg-type]
        now="2026-01-01T00:01:00Z",
    )

    assert log == [
        "save DELETING",
        "release slot",
        "abort mpu-1",
        f"delete uploads:uploads/{JOB}/",
        f"delete uploads:chunks/{JOB}/",
        f"delete uploads:captions/{JOB}/",
        f"delete outputs:jobs/{JOB}/",
        "delete record",
    ]
    assert deleted.status_before == "PROCESSING"


def test_GIVEN_a_job_that_keeps_changing_WHEN_deleted_THEN_concurrent_update_and_nothing_is_removed() -> None:
    log: list[str] = []
    job = a_job()

    with pytest.raises(ConcurrentUpdate):
        delete_job(
            job,
            jobs=Jobs(job, log, conflicts=99),
            uploads=Bucket("uploads", log),
            outputs=Bucket("outputs", log),
            usage=None,
            now="2026-01-01T00:01:00Z",
        )

    assert log == []

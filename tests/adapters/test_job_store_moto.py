"""DynamoJobStore against moto's DynamoDB."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from tests.moto_resources import create_jobs_table, use_fake_credentials
from vidpipe.errors import ConcurrentUpdate, JobNotFound, JobStoreError, ValidationFailed
from vidpipe.events import Stage, StageEvent, StageEventKind
from vidpipe.job_store import DynamoJobStore
from vidpipe.jobs import Job, JobStatus, StageStatus, apply_event

TABLE = "vidpipe-test-jobs"


@pytest.fixture
def dynamodb(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    use_fake_credentials(monkeypatch)
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        create_jobs_table(client, TABLE)
        yield client


@pytest.fixture
def store(dynamodb: Any) -> DynamoJobStore:
    return DynamoJobStore(dynamodb, TABLE)


def new_job(n: int) -> Job:
    return Job.new(
        f"job-{n:03d}",
        filename=f"clip {n}.mp4",
        content_type="video/mp4",
        size=1000 + n,
        now=f"2025-01-01T10:{n // 60:02d}:{n % 60:02d}.000000Z",
    )


def test_GIVEN_a_created_job_WHEN_read_THEN_it_is_the_same_job(store: DynamoJobStore) -> None:
    job = new_job(1)
    job.source.update({"duration_s": 12.345, "width": 1920, "fps": 29.97, "audio_codec": None})
    job.stages[Stage.TRANSCODE].progress = 0.1

    store.create(job)

    assert store.get(job.job_id) == job


def test_GIVEN_a_job_WHEN_created_again_THEN_concurrent_update_and_the_first_one_stays(
    store: DynamoJobStore,
) -> None:
    store.create(new_job(1))
    duplicate = new_job(1)
    duplicate.source["filename"] = "other.mp4"

    with pytest.raises(ConcurrentUpdate):
        store.create(duplicate)

    assert store.get("job-001").source["filename"] == "clip 1.mp4"


def test_GIVEN_no_job_WHEN_read_THEN_job_not_found(store: DynamoJobStore) -> None:
    with pytest.raises(JobNotFound):
        store.get("nope")


def test_GIVEN_a_stored_job_WHEN_saved_at_its_version_THEN_version_goes_up_and_the_change_is_kept(
    store: DynamoJobStore,
) -> None:
    store.create(new_job(1))
    current = store.get("job-001")
    event = StageEvent(job_id="job-001", stage=Stage.TRANSCODE, kind=StageEventKind.PROGRESS, progress=0.5)
    updated = apply_event(current, event)
    assert updated is not None

    saved = store.save(updated, expected_version=current.version)

    assert saved.version == 1
    stored = store.get("job-001")
    assert stored == saved
    assert stored.status is JobStatus.PROCESSING
    assert stored.stages[Stage.TRANSCODE].status is StageStatus.RUNNING
    assert stored.stages[Stage.TRANSCODE].progress == 0.5


def test_GIVEN_two_writers_read_the_same_version_WHEN_both_save_THEN_the_second_gets_concurrent_update(
    store: DynamoJobStore,
) -> None:
    store.create(new_job(1))
    first, second = store.get("job-001"), store.get("job-001")
    first.status = JobStatus.UPLOADED
    second.status = JobStatus.PROCESSING

    store.save(first, expected_version=first.version)
    with pytest.raises(ConcurrentUpdate):
        store.save(second, expected_version=second.version)

    assert store.get("job-001").status is JobStatus.UPLOADED


def test_GIVEN_no_job_WHEN_saved_THEN_concurrent_update_not_a_silent_insert(store: DynamoJobStore) -> None:
    with pytest.raises(ConcurrentUpdate):
        store.save(new_job(7), expected_version=0)

    with pytest.raises(JobNotFound):
        store.get("job-007")


def test_GIVEN_jobs_created_over_time_WHEN_listed_in_pages_THEN_newest_first_and_each_once(
    store: DynamoJobStore,
) -> None:
    for n in [3, 1, 4, 0, 2, 6, 5]:
        store.create(new_job(n))

    seen: list[str] = []
    token: str | None = None
    for _ in range(10):
        page, token = store.list_recent(limit=3, next_token=token)
        assert len(page) <= 3
        seen += [job.job_id for job in page]
        if token is None:
            break

    assert seen == [f"job-{n:03d}" for n in [6, 5, 4, 3, 2, 1, 0]]


def test_GIVEN_a_listed_page_WHEN_read_THEN_jobs_are_whole(store: DynamoJobStore) -> None:
    store.create(new_job(1))

    page, token = store.list_recent()

    assert page == [new_job(1)]
    assert token is None


@pytest.mark.parametrize(
    "token",
    [
        "not base64 !",
        base64.urlsafe_b64encode(b"not json").decode(),
        base64.urlsafe_b64encode(b"[1]").decode(),
        base64.urlsafe_b64encode(json.dumps({"job_id": {"S": "x"}}).encode()).decode(),
        base64.urlsafe_b64encode(
            json.dumps({"job_id": {"S": "x"}, "record_type": {"S": "secret"}, "created_at": {"S": "2025"}}).encode()
        ).decode(),
    ],
    ids=["not-base64", "not-json", "not-an-object", "missing-keys", "other-partition"],
)
def test_GIVEN_a_token_we_did_not_issue_WHEN_listing_THEN_validation_failed(store: DynamoJobStore, token: str) -> None:
    with pytest.raises(ValidationFailed):
        store.list_recent(next_token=token)


@pytest.mark.parametrize("limit", [0, 101])
def test_GIVEN_a_limit_out_of_range_WHEN_listing_THEN_validation_failed(store: DynamoJobStore, limit: int) -> None:
    with pytest.raises(ValidationFailed):
        store.list_recent(limit=limit)


def test_GIVEN_no_table_WHEN_reading_THEN_job_store_error(dynamodb: Any) -> None:
    with pytest.raises(JobStoreError, match="ResourceNotFoundException") as raised:
        DynamoJobStore(dynamodb, "no-such-table").get("job-001")

    assert not isinstance(raised.value, JobNotFound)


def test_GIVEN_a_value_dynamodb_cannot_hold_WHEN_created_THEN_job_store_error(store: DynamoJobStore) -> None:
    job = new_job(1)
    job.source["duration_s"] = float("nan")

    with pytest.raises(JobStoreError, match="cannot store"):
        store.create(job)

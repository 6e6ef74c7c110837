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
from vidpipe.adapters.job_store import DynamoJobStore
from vidpipe.domain.errors import ConcurrentUpdate, JobNotFound, JobStoreError, ValidationFailed
from vidpipe.domain.events import Stage, StageEvent, StageEventKind
from vidpipe.domain.job_transitions import apply_event
from vidpipe.domain.jobs import Job, JobStatus, StageStatus

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


def new_job(n: int, owner: str = "alice") -> Job:
    return Job.new(
        f"job-{n:03d}",
        filename=f"clip {n}.mp4",
        content_type="video/mp4",
        size=1000 + n,
        now=f"2025-01-01T10:{n // 60:02d}:{n % 60:02d}.000000Z",
        owner=owner,
    )


def token_of(key: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode()


def all_pages(store: DynamoJobStore, owner: str, limit: int) -> list[list[str]]:
    pages: list[list[str]] = []
    token: str | None = None
    for _ in range(20):
        page, token = store.list_recent(owner, limit=limit, next_token=token)
        assert len(page) <= limit
        pages.append([job.job_id for job in page])
        if token is None:
            return pages
    raise AssertionError("paging never ended")


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

    pages = all_pages(store, "alice", limit=3)

    assert sum(pages, []) == [f"job-{n:03d}" for n in [6, 5, 4, 3, 2, 1, 0]]


def test_GIVEN_jobs_of_two_owners_WHEN_each_lists_THEN_each_sees_only_theirs_newest_first_in_pages(
    store: DynamoJobStore,
) -> None:
    # GIVEN interleaved creation times, so a listing that ignored the owner would mix them
    for n in range(9):
        store.create(new_job(n, owner="alice" if n % 3 else "bob"))

    # WHEN
    alice = all_pages(store, "alice", limit=2)
    bob = all_pages(store, "bob", limit=2)

    # THEN
    assert sum(alice, []) == [f"job-{n:03d}" for n in [8, 7, 5, 4, 2, 1]]
    assert sum(bob, []) == [f"job-{n:03d}" for n in [6, 3, 0]]
    assert all(len(page) == 2 for page in alice[:3]) and all(len(page) == 2 for page in bob[:1])
    assert store.list_recent("carol") == ([], None)


def test_GIVEN_a_listed_page_WHEN_read_THEN_jobs_are_whole(store: DynamoJobStore) -> None:
    store.create(new_job(1))

    page, token = store.list_recent("alice")

    assert page == [new_job(1)]
    assert page[0].owner == "alice"
    assert token is None


def test_GIVEN_a_token_issued_to_one_owner_WHEN_another_owner_pages_with_it_THEN_validation_failed(
    store: DynamoJobStore,
) -> None:
    for n in range(3):
        store.create(new_job(n, owner="alice"))
        store.create(new_job(10 + n, owner="bob"))
    _, alices_token = store.list_recent("alice", limit=1)
    assert alices_token is not None

    with pytest.raises(ValidationFailed):
        store.list_recent("bob", limit=1, next_token=alices_token)

    # The token still works for the owner it was issued to.
    page, _ = store.list_recent("alice", limit=1, next_token=alices_token)
    assert [job.job_id for job in page] == ["job-001"]


@pytest.mark.parametrize(
    "token",
    [
        "not base64 !",
        base64.urlsafe_b64encode(b"not json").decode(),
        base64.urlsafe_b64encode(b"[1]").decode(),
        token_of({"job_id": {"S": "x"}}),
        token_of({"job_id": {"S": "x"}, "owner": {"S": "bob"}, "created_at": {"S": "2025"}}),
        token_of(
            {"job_id": {"S": "x"}, "owner": {"S": "alice"}, "created_at": {"S": "2025"}, "record_type": {"S": "secret"}}
        ),
        token_of({"job_id": {"S": "x"}, "record_type": {"S": "secret"}, "created_at": {"S": "2025"}}),
        token_of({"job_id": {"S": "x"}, "owner": {"N": "1"}, "created_at": {"S": "2025"}}),
        token_of({"job_id": {"S": "x"}, "owner": {"S": ["alice"]}, "created_at": {"S": "2025"}}),
        token_of({"job_id": {"S": "x"}, "owner": "alice", "created_at": {"S": "2025"}}),
    ],
    ids=[
        "not-base64",
        "not-json",
        "not-an-object",
        "missing-keys",
        "other-partition",
        "extra-key",
        "old-index-keys",
        "owner-not-a-string-type",
        "owner-not-a-string",
        "not-attribute-values",
    ],
)
def test_GIVEN_a_token_we_did_not_issue_WHEN_listing_THEN_validation_failed(store: DynamoJobStore, token: str) -> None:
    with pytest.raises(ValidationFailed):
        store.list_recent("alice", next_token=token)


@pytest.mark.parametrize("limit", [0, -1, 101])
def test_GIVEN_a_limit_out_of_range_WHEN_listing_THEN_validation_failed(store: DynamoJobStore, limit: int) -> None:
    with pytest.raises(ValidationFailed, match="limit"):
        store.list_recent("alice", limit=limit)


@pytest.mark.parametrize("limit", [1, 100])
def test_GIVEN_a_limit_at_the_bounds_WHEN_listing_THEN_at_most_that_many(store: DynamoJobStore, limit: int) -> None:
    for n in range(3):
        store.create(new_job(n))

    page, token = store.list_recent("alice", limit=limit)

    assert [job.job_id for job in page] == ["job-002", "job-001", "job-000"][:limit]
    assert (token is None) == (limit >= 3)


def test_GIVEN_no_table_WHEN_reading_THEN_job_store_error(dynamodb: Any) -> None:
    with pytest.raises(JobStoreError, match="ResourceNotFoundException") as raised:
        DynamoJobStore(dynamodb, "no-such-table").get("job-001")

    assert not isinstance(raised.value, JobNotFound)


def test_GIVEN_a_value_dynamodb_cannot_hold_WHEN_created_THEN_job_store_error(store: DynamoJobStore) -> None:
    job = new_job(1)
    job.source["duration_s"] = float("nan")

    with pytest.raises(JobStoreError, match="cannot store"):
        store.create(job)

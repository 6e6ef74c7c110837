"""DynamoUsageStore against moto's DynamoDB: the per-owner counters are
conditional writes on usage items of the jobs table (the template's key
schema), so concurrent requests of one owner cannot pass the last slot, and
the usage items never look like jobs."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from tests.moto_resources import create_jobs_table, use_fake_credentials
from vidpipe.adapters import usage_store
from vidpipe.adapters.job_store import DynamoJobStore
from vidpipe.adapters.usage_store import DynamoUsageStore, daily_key
from vidpipe.domain.errors import ConcurrentUpdate, JobNotFound, JobStoreError, QuotaExceeded
from vidpipe.domain.jobs import Job
from vidpipe.domain.quotas import OwnerLimits, admit_and_record, admit_upload, charge_video_minutes

TABLE = "vidpipe-test-jobs"
DAY = "2026-12-03"
NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
LIMITS = OwnerLimits(active_jobs=3, upload_bytes_per_day=10_000, video_minutes_per_day=10)


@pytest.fixture
def dynamodb(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    use_fake_credentials(monkeypatch)
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        create_jobs_table(client, TABLE)
        yield client


@pytest.fixture
def usage(dynamodb: Any) -> DynamoUsageStore:
    return DynamoUsageStore(dynamodb, TABLE)


class OneRequestAtATime:
    """The client with DynamoDB's guarantee and no more: each request is atomic
    (moto's in-process backend is not thread-safe on its own), while threads
    interleave freely between requests, where a read-then-write would race."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        call = getattr(self._client, name)

        def atomic(**kwargs: Any) -> Any:
            with self._lock:
                return call(**kwargs)

        return atomic


def new_job(job_id: str, owner: str = "alice") -> Job:
    return Job.new(
        job_id, filename="a.mp4", content_type="video/mp4", size=100, now="2026-12-03T12:00:00Z", owner=owner
    )


def all_at_once(count: int, call: Callable[[int], Any]) -> list[Any]:
    """``call(0)`` .. ``call(count - 1)``, each on its own thread, released
    together; their results in that order."""
    start = threading.Barrier(count)
    results: list[Any] = [None] * count

    def run(n: int) -> None:
        start.wait()
        results[n] = call(n)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_GIVEN_an_owner_with_free_slots_WHEN_slots_are_taken_and_released_THEN_the_set_follows(
    usage: DynamoUsageStore,
) -> None:
    assert usage.take_active_slot("alice", "j1", limit=2)
    assert usage.take_active_slot("alice", "j2", limit=2)
    assert not usage.take_active_slot("alice", "j3", limit=2)

    usage.release_active_slot("alice", "j1")
    usage.release_active_slot("alice", "j1")  # a repeat is harmless
    usage.release_active_slot("alice", "never-there")

    assert usage.active_job_ids("alice") == {"j2"}
    assert usage.take_active_slot("alice", "j3", limit=2)
    assert usage.active_job_ids("bob") == set()


@pytest.mark.parametrize("records_the_job", [False, True], ids=["slot and bytes", "slot, bytes and job at once"])
def test_GIVEN_twelve_concurrent_uploads_of_one_owner_WHEN_admitted_THEN_exactly_the_limit_pass(
    dynamodb: Any, records_the_job: bool
) -> None:
    usage = DynamoUsageStore(OneRequestAtATime(dynamodb), TABLE)
    jobs = DynamoJobStore(dynamodb, TABLE)

    def upload(n: int) -> str | None:
        job = new_job(f"job-{n}")
        try:
            if records_the_job:
                admit_and_record(job, 100, limits=LIMITS, usage=usage, jobs=jobs, now=NOW)
            else:
                admit_upload("alice", job.job_id, 100, limits=LIMITS, usage=usage, jobs=jobs, now=NOW)
        except QuotaExceeded:
            return None
        return job.job_id

    admitted = [job_id for job_id in all_at_once(12, upload) if job_id is not None]

    assert len(admitted) == LIMITS.active_jobs
    assert usage.active_job_ids("alice") == set(admitted)
    # Only the admitted uploads were charged (and, at once, recorded).
    assert usage.daily_usage("alice", DAY).upload_bytes == 100 * LIMITS.active_jobs
    recorded = {job.job_id for job in jobs.list_recent("alice")[0]}
    assert recorded == (set(admitted) if records_the_job else set())


def test_GIVEN_the_days_bytes_WHEN_charged_concurrently_THEN_the_limit_is_never_passed(dynamodb: Any) -> None:
    usage = DynamoUsageStore(OneRequestAtATime(dynamodb), TABLE)

    results = all_at_once(8, lambda _: usage.add_upload_bytes("alice", DAY, 3_000, limits=LIMITS))

    assert results.count(True) == 3  # 3 x 3,000 fits in 10,000; a fourth would not
    assert usage.daily_usage("alice", DAY).upload_bytes == 9_000


def test_GIVEN_a_video_WHEN_its_minutes_are_charged_again_THEN_the_day_counts_it_once(
    usage: DynamoUsageStore,
) -> None:
    assert usage.add_video_seconds_once("alice", DAY, "j1", 400, limit=600)
    assert usage.add_video_seconds_once("alice", DAY, "j1", 400, limit=600)  # a retried stage
    assert not usage.add_video_seconds_once("alice", DAY, "j2", 201, limit=600)
    assert usage.add_video_seconds_once("alice", DAY, "j2", 200, limit=600)

    assert usage.daily_usage("alice", DAY).video_seconds == 600
    # The minutes used up, the day takes no more bytes either.
    assert not usage.add_upload_bytes("alice", DAY, 1, limits=LIMITS)


def test_GIVEN_a_video_longer_than_the_days_rest_WHEN_charged_THEN_quota_exceeded(usage: DynamoUsageStore) -> None:
    charge_video_minutes("alice", "j1", 500, limits=LIMITS, usage=usage, now=NOW)

    with pytest.raises(QuotaExceeded):
        charge_video_minutes("alice", "j2", 101, limits=LIMITS, usage=usage, now=NOW)


def test_GIVEN_usage_items_in_the_jobs_table_WHEN_read_as_jobs_or_listed_THEN_they_are_not_jobs(
    dynamodb: Any, usage: DynamoUsageStore
) -> None:
    jobs = DynamoJobStore(dynamodb, TABLE)
    jobs.create(
        Job.new("j1", filename="a.mp4", content_type="video/mp4", size=1, now="2026-12-03T12:00:00Z", owner="alice")
    )
    usage.take_active_slot("alice", "j1", limit=3)
    usage.add_upload_bytes("alice", DAY, 1, limits=LIMITS)

    with pytest.raises(JobNotFound):
        jobs.get(daily_key("alice", DAY)["job_id"]["S"])
    with pytest.raises(JobNotFound):
        jobs.get("usage#active#alice")
    listed, _ = jobs.list_recent("alice")
    assert [job.job_id for job in listed] == ["j1"]
    item = dynamodb.get_item(TableName=TABLE, Key=daily_key("alice", DAY))["Item"]
    assert int(item["usage_expires_at"]["N"]) > int(NOW.timestamp())  # the table's TTL removes it later


# ------------------------------------------------------------------ slot, bytes and job in one transaction


def test_GIVEN_room_WHEN_a_job_is_recorded_with_its_usage_THEN_job_slot_and_bytes_are_written_together(
    dynamodb: Any, usage: DynamoUsageStore
) -> None:
    assert usage.record_admitted_job(new_job("j1"), 100, day=DAY, limits=LIMITS) is None

    assert DynamoJobStore(dynamodb, TABLE).get("j1").owner == "alice"
    assert usage.active_job_ids("alice") == {"j1"}
    assert usage.daily_usage("alice", DAY).upload_bytes == 100


def test_GIVEN_a_refusing_limit_WHEN_a_job_is_recorded_THEN_the_limit_is_named_and_nothing_is_written(
    dynamodb: Any, usage: DynamoUsageStore
) -> None:
    for n in range(LIMITS.active_jobs):
        assert usage.record_admitted_job(new_job(f"j{n}"), 100, day=DAY, limits=LIMITS) is None

    assert usage.record_admitted_job(new_job("full"), 100, day=DAY, limits=LIMITS) == "active_jobs"
    usage.release_active_slot("alice", "j0")
    assert usage.record_admitted_job(new_job("big"), 9_701, day=DAY, limits=LIMITS) == "daily_allowance"

    jobs = DynamoJobStore(dynamodb, TABLE)
    for refused in ("full", "big"):
        with pytest.raises(JobNotFound):
            jobs.get(refused)
    assert usage.active_job_ids("alice") == {"j1", "j2"}
    assert usage.daily_usage("alice", DAY).upload_bytes == 100 * LIMITS.active_jobs


def test_GIVEN_a_job_id_taken_WHEN_recorded_again_THEN_concurrent_update_and_nothing_charged_twice(
    usage: DynamoUsageStore,
) -> None:
    usage.record_admitted_job(new_job("j1"), 100, day=DAY, limits=LIMITS)
    usage.release_active_slot("alice", "j1")

    with pytest.raises(ConcurrentUpdate):
        usage.record_admitted_job(new_job("j1"), 100, day=DAY, limits=LIMITS)

    assert usage.active_job_ids("alice") == set()
    assert usage.daily_usage("alice", DAY).upload_bytes == 100


class ConflictsFirst:
    """A client whose transactions meet another write in flight ``conflicts``
    times (DynamoDB's TransactionConflict) before they go through."""

    def __init__(self, client: Any, conflicts: int) -> None:
        self._client = client
        self.conflicts = conflicts
        self.attempts = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def transact_write_items(self, **request: Any) -> Any:
        self.attempts += 1
        if self.attempts <= self.conflicts:
            reasons = [{"Code": "TransactionConflict"}, {"Code": "None"}, {"Code": "None"}]
            raise ClientError(
                {"Error": {"Code": "TransactionCanceledException"}, "CancellationReasons": reasons},
                "TransactWriteItems",
            )
        return self._client.transact_write_items(**request)


def test_GIVEN_transaction_conflicts_WHEN_recording_THEN_retried_until_written_or_a_store_error(
    dynamodb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(usage_store, "TRANSACTION_RETRY_WAIT_S", 0.0)
    twice = ConflictsFirst(dynamodb, conflicts=2)

    assert DynamoUsageStore(twice, TABLE).record_admitted_job(new_job("j1"), 100, day=DAY, limits=LIMITS) is None
    assert twice.attempts == 3
    assert DynamoJobStore(dynamodb, TABLE).get("j1").job_id == "j1"

    always = ConflictsFirst(dynamodb, conflicts=1_000)
    with pytest.raises(JobStoreError):
        DynamoUsageStore(always, TABLE).record_admitted_job(new_job("j2"), 100, day=DAY, limits=LIMITS)
    assert always.attempts == usage_store.TRANSACTION_ATTEMPTS

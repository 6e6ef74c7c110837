"""DynamoTimeline against moto: a duplicate is one entry with its delivery count,
entries come back in time order, and DynamoDB failures become JobStoreError."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from tests.moto_resources import REGION, create_job_events_table, use_fake_credentials
from vidpipe.adapters.timeline_store import DynamoTimeline
from vidpipe.domain.errors import JobStoreError
from vidpipe.domain.timeline import TimelineEntry

TABLE = "vidpipe-test-job-events"
JOB_ID = "3f2b8c1e7d4a4e2b9c612a5d8e0f4b17"


@pytest.fixture
def dynamodb(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    use_fake_credentials(monkeypatch)
    with mock_aws():
        client = boto3.client("dynamodb", region_name=REGION)
        create_job_events_table(client, TABLE)
        yield client


def entry(at: str, what: str, identity: str = "", **details: Any) -> TimelineEntry:
    return TimelineEntry(
        job_id=JOB_ID,
        at=at,
        what=what,
        function="status",
        request_id="req",
        identity=identity or f"{at}{what}",
        details=details,
        recorded_at=at,
    )


def test_GIVEN_the_same_entry_written_three_times_WHEN_read_THEN_one_entry_delivered_three_times(dynamodb) -> None:
    timeline = DynamoTimeline(dynamodb, TABLE)
    first = entry("2025-03-14T09:27:41.000001Z", "transcode.completed", identity="e1", job_status="READY")
    duplicate = entry("2025-03-14T09:27:41.000001Z", "transcode.completed", identity="e1")

    timeline.record(first)
    timeline.record(duplicate)
    timeline.record(duplicate)

    [stored] = timeline.entries(JOB_ID)
    assert stored.deliveries == 3
    assert stored.details == {"job_status": "READY"}  # the first copy is kept


def test_GIVEN_entries_written_out_of_order_WHEN_read_THEN_in_time_order_with_numbers_intact(dynamodb) -> None:
    timeline = DynamoTimeline(dynamodb, TABLE)
    for at, what in [
        ("2025-03-14T09:27:45.5Z", "transcode.completed"),
        ("2025-03-14T09:27:40.1Z", "job.created"),
        ("2025-03-14T09:27:42.25Z", "transcode.progress"),
    ]:
        timeline.record(entry(at, what, progress=0.25, size=7_340_032))

    stored = timeline.entries(JOB_ID)

    assert [e.what for e in stored] == ["job.created", "transcode.progress", "transcode.completed"]
    assert stored[1].details == {"progress": 0.25, "size": 7_340_032}


def test_GIVEN_another_job_WHEN_read_THEN_its_entries_are_not_mixed_in(dynamodb) -> None:
    timeline = DynamoTimeline(dynamodb, TABLE)
    timeline.record(entry("2025-03-14T09:27:40Z", "job.created"))

    assert timeline.entries("someone-elses-job") == []


def test_GIVEN_a_missing_table_WHEN_written_THEN_job_store_error(dynamodb) -> None:
    with pytest.raises(JobStoreError, match="job.created"):
        DynamoTimeline(dynamodb, "no-such-table").record(entry("2025-03-14T09:27:40Z", "job.created"))

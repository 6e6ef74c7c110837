"""A terminal event cannot be lost: "Job Ready" / "Job Failed" waits in the job's
outbox (saved with the verdict, in one conditional write) until it is on the
bus. A failed publish is repeated by the redelivered status message or by the
sweep, always with the same id, and each webhook receiver is sent it once."""

from __future__ import annotations

import copy
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from job_lifecycle.domain_logic.status import record_event
from job_lifecycle.domain_logic.sweep import sweep
from job_lifecycle.domain_logic.webhook_delivery import JobFinishedNotice, deliver
from tests.unit.test_record_event import JOB_ID, InMemoryJobStore, stage_event
from tests.unit.test_webhooks import FakeRegistry, FakeSender, FakeTimeline
from vidpipe.adapters.job_store import item_to_job, job_to_item
from vidpipe.domain.access import WEBHOOK_SIGNING, SigningKeys
from vidpipe.domain.errors import EventPublishError, JobStoreError
from vidpipe.domain.events import JobFinished, Stage, StageEventKind, iso_utc
from vidpipe.domain.finished_event_outbox import conflict_pause_s, publish_finished_event
from vidpipe.domain.jobs import FINISHED_EVENT_PENDING, Job, JobStatus, StageStatus
from vidpipe.domain.timeline import Invocation
from vidpipe.domain.webhooks import Webhook


def current_time() -> datetime:
    """The status function stamps its verdicts with the real clock, so every test
    reads it when it runs: a time taken at import would be minutes old by the
    end of a full run, and the sweep's grace would not have passed yet."""
    return datetime.now(UTC)


WEBHOOK_KEYS = SigningKeys(WEBHOOK_SIGNING, "k1", {"k1": "webhook-key-for-the-outbox-tests"})


class Bus:
    """An EventBridge stand-in: fails the first ``failures`` publishes, keeps the
    rest as EventBridge would deliver them (each PutEvents gets a fresh id)."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.delivered: list[dict] = []

    def publish(self, event: JobFinished) -> None:
        if self.failures:
            self.failures -= 1
            raise EventPublishError("PutEvents: ServiceUnavailable")
        self.delivered.append(
            {
                "version": "0",
                "id": str(uuid.uuid4()),
                "detail-type": event.detail_type,
                "source": "vidpipe.status",
                "time": event.occurred_at,
                "detail": event.detail(),
            }
        )


class OutboxStore(InMemoryJobStore):
    """The in-memory store, with the sweep's index of jobs whose event waits."""

    def __init__(self) -> None:
        super().__init__()
        self.fail_saves = 0
        self.saves_before_failing = 0

    def save(self, job: Job, *, expected_version: int) -> Job:
        if self.fail_saves and self.saves_before_failing:
            self.saves_before_failing -= 1
        elif self.fail_saves:
            self.fail_saves -= 1
            raise JobStoreError("DynamoDB: ProvisionedThroughputExceededException")
        return super().save(job, expected_version=expected_version)

    def list_open(self, state: str, *, since_before: str, limit: int = 100) -> list[Job]:
        found = []
        for job in self.jobs.values():
            item = job_to_item(job)  # the real index attributes
            if item.get("open_state", {}).get("S") == state and item["open_since"]["S"] < since_before:
                found.append(copy.deepcopy(job))
        return found[:limit]


def processing_job(store: OutboxStore) -> None:
    job = Job.new(
        JOB_ID, filename="a.mp4", content_type="video/mp4", size=10, now=iso_utc(current_time() - timedelta(hours=1))
    )
    job.status = JobStatus.PROCESSING
    job.owner = "alice"
    job.stages[Stage.THUMBNAILS].status = StageStatus.COMPLETED
    store.jobs[JOB_ID] = job


def status_function(store: OutboxStore, bus: Bus) -> None:
    """What the status handler does with one delivery of the completing event."""
    completed = stage_event(Stage.TRANSCODE, StageEventKind.COMPLETED, outputs={"hls": "x"})
    update = record_event(store, completed, pause=lambda _: None)
    assert update is not None
    publish_finished_event(store, bus, update.job)


def webhook_posts(bus: Bus) -> list[str]:
    """Run the webhooks function on every event the bus delivered; the URLs posted to."""
    registry = FakeRegistry([Webhook("alice", "hook-1", "https://receiver.example/h", "t")])
    sender, timeline = FakeSender(answers={"https://receiver.example/h": [200] * 5}), FakeTimeline()

    class Jobs:
        def get(self, job_id: str) -> Job:
            return Job.new(job_id, filename="a", content_type="video/mp4", size=1, now="t", owner="alice")

    for n, event in enumerate(bus.delivered, start=1):
        deliver(
            JobFinishedNotice.from_event(event),
            jobs=Jobs(),
            registry=registry,
            timeline=timeline,
            sender=sender,
            signing_keys=WEBHOOK_KEYS,
            invocation=Invocation("webhooks", f"r{n}"),
            attempt=1,
            last_attempt=False,
        )
    return [url for url, _, _ in sender.sent]


def test_GIVEN_the_publish_fails_after_the_save_WHEN_the_message_is_redelivered_THEN_job_ready_goes_out_once() -> None:
    store, bus = OutboxStore(), Bus(failures=1)
    processing_job(store)

    with pytest.raises(EventPublishError):
        status_function(store, bus)  # READY is saved, the publish fails: SQS redelivers
    assert store.jobs[JOB_ID].status is JobStatus.READY and store.jobs[JOB_ID].finished_event_pending
    status_function(store, bus)  # the redelivery changes nothing, but the outbox is pending
    status_function(store, bus)  # a duplicate after that publishes nothing more

    [event] = bus.delivered
    assert event["detail-type"] == "Job Ready"
    assert event["detail"]["event_id"] == store.jobs[JOB_ID].finished_event["id"]
    assert not store.jobs[JOB_ID].finished_event_pending
    assert webhook_posts(bus) == ["https://receiver.example/h"]


def test_GIVEN_the_publish_succeeded_but_its_clearing_failed_WHEN_the_sweep_runs_THEN_same_id_one_webhook_post() -> (
    None
):
    now = current_time()
    store, bus = OutboxStore(), Bus(failures=1)
    processing_job(store)
    with pytest.raises(EventPublishError):
        status_function(store, bus)
    # the claim and the publish work this time, marking it published does not
    store.fail_saves, store.saves_before_failing = 1, 1
    with pytest.raises(JobStoreError):
        status_function(store, bus)
    assert store.jobs[JOB_ID].finished_event_pending

    early = sweep(store, None, bus, now=now, upload_expiry_s=3600, stall_limit_s=6 * 3600, outbox_grace_s=10**9)
    result = sweep(store, None, bus, now=now + timedelta(minutes=30), upload_expiry_s=3600, stall_limit_s=6 * 3600)

    assert early.republished == [] and result.republished == [JOB_ID]
    first, second = bus.delivered
    assert first["id"] != second["id"]  # two PutEvents, two EventBridge ids...
    assert first["detail"]["event_id"] == second["detail"]["event_id"]  # ...one event
    assert first["detail"] == second["detail"]
    assert not store.jobs[JOB_ID].finished_event_pending
    assert webhook_posts(bus) == ["https://receiver.example/h"]


def test_GIVEN_the_sweep_fails_a_stalled_job_WHEN_its_publish_fails_THEN_the_next_sweep_publishes_it() -> None:
    now = current_time()
    store, bus = OutboxStore(), Bus(failures=1)
    processing_job(store)
    stalled_at = now + timedelta(hours=7)

    first = sweep(store, None, bus, now=stalled_at, upload_expiry_s=3600, stall_limit_s=6 * 3600)
    assert first.stalled == [JOB_ID] and bus.delivered == []
    assert store.jobs[JOB_ID].status is JobStatus.FAILED and store.jobs[JOB_ID].finished_event_pending
    sweep(store, None, bus, now=stalled_at + timedelta(hours=1), upload_expiry_s=3600, stall_limit_s=6 * 3600)

    [event] = bus.delivered
    assert event["detail-type"] == "Job Failed"
    assert event["detail"]["error"]["code"] == "STAGE_STALLED"
    assert event["detail"]["event_id"] == f"{JOB_ID}:FAILED:v1"


def test_GIVEN_a_job_with_its_event_pending_WHEN_stored_THEN_it_is_in_the_sweeps_index_until_published() -> None:
    store = OutboxStore()
    processing_job(store)
    status_function(store, Bus(failures=0))
    published = store.jobs[JOB_ID]
    pending = copy.deepcopy(published)
    pending.finished_event = {**(published.finished_event or {}), "pending": True}

    assert job_to_item(pending)["open_state"] == {"S": FINISHED_EVENT_PENDING}
    assert "open_state" not in job_to_item(published)
    assert item_to_job(job_to_item(pending)).finished_event == pending.finished_event
    assert job_to_item(pending)["open_since"] == {"S": pending.finished_event["occurred_at"]}


def test_GIVEN_lost_version_checks_WHEN_retried_THEN_the_pauses_are_jittered_and_grow_within_a_bound() -> None:
    pauses = [conflict_pause_s(attempt) for attempt in (1, 2, 3, 4) for _ in range(50)]
    first, fourth = pauses[:50], pauses[150:]

    assert len(set(first)) > 40  # not lockstep: every writer waits its own time
    assert all(0 <= p <= 0.02 for p in first) and all(0 <= p <= 0.16 for p in fourth)
    assert max(fourth) > 0.02


def test_GIVEN_another_writer_wins_WHEN_recording_THEN_it_pauses_before_re_reading() -> None:
    store, pauses = OutboxStore(), []
    processing_job(store)

    def other_writer() -> None:
        store.jobs[JOB_ID].version += 1

    store.before_save = other_writer
    completed = stage_event(Stage.TRANSCODE, StageEventKind.COMPLETED)
    record_event(store, completed, pause=pauses.append)

    assert len(pauses) == 1 and 0 <= pauses[0] <= 0.02


def test_GIVEN_two_deliveries_holding_the_same_pending_job_WHEN_both_publish_THEN_only_the_claimant_does() -> None:
    # Two stage reports of one job handled at once: both read the job with its
    # "Job Ready" pending; without a claim both would publish, and the two
    # copies would reach the webhook function together.
    store, bus = OutboxStore(), Bus(failures=0)
    processing_job(store)
    completed = stage_event(Stage.TRANSCODE, StageEventKind.COMPLETED, outputs={"hls": "x"})
    update = record_event(store, completed, pause=lambda _: None)
    assert update is not None
    seen_by_first = seen_by_second = store.jobs[JOB_ID]

    first = publish_finished_event(store, bus, seen_by_first)
    second = publish_finished_event(store, bus, seen_by_second)

    assert first is not None and second is None
    assert len(bus.delivered) == 1
    assert not store.jobs[JOB_ID].finished_event_pending


def test_GIVEN_a_claim_whose_holder_died_WHEN_its_time_is_up_THEN_another_delivery_publishes() -> None:
    now = current_time()
    store, bus = OutboxStore(), Bus(failures=0)
    processing_job(store)
    update = record_event(
        store, stage_event(Stage.TRANSCODE, StageEventKind.COMPLETED, outputs={"hls": "x"}), pause=lambda _: None
    )
    assert update is not None
    job = store.jobs[JOB_ID]
    job.finished_event = {**(job.finished_event or {}), "claimed_until": int(now.timestamp()) + 60}

    assert publish_finished_event(store, bus, job, now=lambda: now.timestamp()) is None
    assert publish_finished_event(store, bus, store.jobs[JOB_ID], now=lambda: now.timestamp() + 61) is not None
    assert len(bus.delivered) == 1

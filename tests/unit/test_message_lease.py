"""The lease a stage holds on its SQS message while it works (vidpipe.runtime.sqs_message_policy)."""

from __future__ import annotations

import threading
import time

import pytest

from vidpipe.runtime.sqs_message_policy import MAX_FAILURES_IN_A_ROW, MessageLease


class RecordedVisibility:
    """Stands in for SQS ChangeMessageVisibility: records each call's seconds."""

    def __init__(self, failing_calls: set[int] | None = None) -> None:
        self.calls: list[int] = []
        self.threads: list[str] = []
        self.failing_calls = failing_calls or set()  # which calls fail, counting from 1
        self.attempts = 0

    def __call__(self, seconds: int) -> None:
        self.attempts += 1
        if self.attempts in self.failing_calls:
            raise RuntimeError("ThrottlingException")
        self.calls.append(seconds)
        self.threads.append(threading.current_thread().name)


def test_GIVEN_a_lease_WHEN_entered_THEN_the_message_is_taken_for_one_lease_at_once_in_the_callers_thread() -> None:
    visibility = RecordedVisibility()

    with MessageLease(visibility, lease_s=60):
        assert visibility.calls == [60]
        assert visibility.threads == [threading.current_thread().name]


def test_GIVEN_work_longer_than_a_lease_WHEN_it_runs_THEN_the_lease_is_renewed_every_third_and_stops_after() -> None:
    visibility = RecordedVisibility()

    with MessageLease(visibility, lease_s=1) as lease:
        time.sleep(1.5)  # a third of a second between renewals: about four

    renewed = len(visibility.calls) - 1
    assert renewed >= 2
    assert lease.renewals == renewed
    assert set(visibility.calls) == {1}
    time.sleep(0.5)
    assert len(visibility.calls) == renewed + 1  # nothing renews once the work is over


def test_GIVEN_one_renewal_that_fails_WHEN_the_work_goes_on_THEN_renewing_goes_on_too() -> None:
    visibility = RecordedVisibility(failing_calls={2})  # the first renewal fails, say SQS throttled it

    with MessageLease(visibility, lease_s=1) as lease:
        time.sleep(1.8)  # about five renewals
        finished = True

    assert finished
    assert lease.failed_renewals == 1
    assert lease.renewals >= 2  # the ones after the failure were made


def test_GIVEN_renewals_that_keep_failing_WHEN_the_work_goes_on_THEN_it_gives_up_after_a_lease_of_failures() -> None:
    visibility = RecordedVisibility(failing_calls=set(range(2, 100)))

    with MessageLease(visibility, lease_s=1) as lease:
        time.sleep(3.0)  # nine chances to renew; it stops after three
        finished = True

    assert finished
    assert visibility.attempts == 1 + MAX_FAILURES_IN_A_ROW
    assert (lease.renewals, lease.failed_renewals) == (0, MAX_FAILURES_IN_A_ROW)


def test_GIVEN_work_that_raises_WHEN_inside_a_lease_THEN_the_error_passes_through_and_the_thread_ends() -> None:
    visibility = RecordedVisibility()
    lease = MessageLease(visibility, lease_s=30)

    with pytest.raises(ValueError, match="boom"), lease:
        raise ValueError("boom")

    assert not lease._thread.is_alive()


def test_GIVEN_a_lease_shorter_than_a_second_WHEN_made_THEN_value_error() -> None:
    with pytest.raises(ValueError, match="at least 1 second"):
        MessageLease(RecordedVisibility(), lease_s=0)

"""What happens to an SQS message while its work runs and when it fails, the
same for the stage functions, the chunk functions and the webhook deliveries:

* held in short, renewed leases (:class:`MessageLease`, :func:`hold_message`);
* after a failed attempt, offered again after our backoff rather than the
  queue's visibility timeout (:func:`schedule_retry`); after the last attempt,
  at once, so it reaches the dead-letter queue now. The rules themselves
  (backoff, last attempt, the error a job gets when the attempts run out) are
  pure: :mod:`vidpipe.domain.delivery_attempts`;
* every event of an attempt names it (:class:`StageAttempt`).

Why leases: a stage queue's visibility timeout must outlast the longest transcode (90
minutes), so a function that dies without a word (killed, out of memory, past
Lambda's hard timeout) would leave its message invisible that long before SQS
offers it again. Instead the stage takes the message for ``lease_s`` at a time
and renews the lease every third of it from a background thread: while the
function lives the message stays hidden; once it dies, the message is back
within one lease, and the retry (or, after the last attempt, the dead-letter
queue) follows at once.

What can go wrong: a failed renewal (SQS throttled, a network blip) is logged
and the next one is tried on time; the lease outlives one or two failures.
After MAX_FAILURES_IN_A_ROW failures in a row the lease has run out anyway
(or the receipt is no longer valid), so the thread stops; the message may then
be offered again while the first attempt still runs. That is safe (every stage
is idempotent, see docs/RELIABILITY.md), only wasteful.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

from vidpipe.adapters.aws_clients import sqs_client
from vidpipe.domain.delivery_attempts import is_last_attempt, retry_delay_s
from vidpipe.domain.events import iso_utc
from vidpipe.runtime.observability import logger
from vidpipe.runtime.settings import get_settings

# Renewing at a third of the lease leaves two chances to renew before it ends.
RENEWALS_PER_LEASE = 3
# As many failures in a row as renewals per lease: by the last one the lease
# has ended and SQS may already have handed the message to someone else.
MAX_FAILURES_IN_A_ROW = RENEWALS_PER_LEASE

SetVisibility = Callable[[int], None]


class MessageLease:
    """A context manager: ``with MessageLease(set_visibility, lease_s=120): work()``.

    ``set_visibility(seconds)`` makes the message invisible for that long from
    now (SQS ChangeMessageVisibility). The first lease is taken on entry, in
    the caller's thread; renewals run in a daemon thread until exit."""

    def __init__(self, set_visibility: SetVisibility, *, lease_s: int) -> None:
        if lease_s < 1:
            raise ValueError(f"lease_s must be at least 1 second, not {lease_s}")
        self._set_visibility = set_visibility
        self.lease_s = lease_s
        self.renewals = 0
        self.failed_renewals = 0
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._renew_until_stopped, name="message-lease", daemon=True)

    def __enter__(self) -> MessageLease:
        self._set_visibility(self.lease_s)
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stopped.set()
        self._thread.join()

    def _renew_until_stopped(self) -> None:
        interval_s = self.lease_s / RENEWALS_PER_LEASE
        failures_in_a_row = 0
        while not self._stopped.wait(interval_s):
            try:
                self._set_visibility(self.lease_s)
            except Exception:
                failures_in_a_row += 1
                self.failed_renewals += 1
                if failures_in_a_row >= MAX_FAILURES_IN_A_ROW:
                    logger.exception(
                        "could not renew the message's lease %d times in a row; giving up, SQS may offer it again",
                        failures_in_a_row,
                    )
                    return
                logger.warning("could not renew the message's lease; trying again", exc_info=True)
                continue
            failures_in_a_row = 0
            self.renewals += 1


def schedule_retry(receipt_handle: str, receive_count: int) -> None:
    """Cut a failed message's wait to the backoff of its attempt (to zero after
    the last one, so SQS moves it to the dead-letter queue now rather than after
    the visibility timeout). Never raises: the retry then simply comes later."""
    settings = get_settings()
    if not settings.queue_url:
        return
    last = is_last_attempt(receive_count, settings.max_receive_count)
    delay = 0 if last else retry_delay_s(receive_count, settings.retry_base_s)
    try:
        sqs_client().change_message_visibility(
            QueueUrl=settings.queue_url, ReceiptHandle=receipt_handle, VisibilityTimeout=delay
        )
        logger.info("retry scheduled", extra={"attempt": receive_count, "retry_in_s": delay})
    except Exception:
        logger.exception("could not shorten the retry delay")


def hold_message(receipt_handle: str | None, *, queue_url: str, lease_s: int) -> AbstractContextManager[Any]:
    """A lease on the record's message, or nothing when there is no message to
    hold (a direct invocation, or leases turned off with lease_s=0)."""
    if not (receipt_handle and queue_url and lease_s > 0):
        return nullcontext()

    def set_visibility(seconds: int) -> None:
        sqs_client().change_message_visibility(
            QueueUrl=queue_url, ReceiptHandle=receipt_handle, VisibilityTimeout=seconds
        )

    return MessageLease(set_visibility, lease_s=lease_s)


@dataclass(frozen=True)
class StageAttempt:
    """Which invocation runs this attempt, and since when its message waited:
    carried on every event of the attempt (``trace``) so the job's timeline can
    tell queue wait from work; ``retry_in_s`` is the backoff if it fails."""

    function: str = ""
    request_id: str = ""
    number: int = 1
    queued_at: str | None = None
    retry_in_s: int | None = None

    def trace(self) -> dict[str, Any]:
        found: dict[str, Any] = {"function": self.function, "request_id": self.request_id, "attempt": self.number}
        if self.queued_at:
            found["queued_at"] = self.queued_at
        return found


def queued_at_of(sent_timestamp_ms: str | int | None) -> str | None:
    """SQS's SentTimestamp (epoch milliseconds) as ISO-8601 UTC, None when absent."""
    try:
        return iso_utc(datetime.fromtimestamp(int(sent_timestamp_ms) / 1000, UTC))  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        return None

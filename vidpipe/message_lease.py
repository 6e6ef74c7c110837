"""Holding an SQS message in short, renewed leases while its work runs.

A stage queue's visibility timeout must outlast the longest transcode (90
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
from types import TracebackType

from vidpipe.observability import logger

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

"""The rules for a message SQS delivers again and again: how long a failed
attempt waits before the next one, when an attempt is the last, and the error
a job is failed with when the attempts run out. Pure, so the stage runner, the
chunk functions' work orders and the webhook deliveries apply the same rules;
the SQS side (leases, visibility): :mod:`vidpipe.runtime.sqs_message_policy`.
"""

from __future__ import annotations

from vidpipe.domain.errors import VidpipeError

# The longest backoff: SQS's visibility timeout may be longer, our retries are not.
MAX_RETRY_DELAY_S = 900


def retry_delay_s(attempt: int, base_s: int) -> int:
    """How long a failed message waits before its next attempt: base, 4x base,
    16x base..., at most 15 minutes."""
    return int(min(MAX_RETRY_DELAY_S, base_s * 4 ** max(0, attempt - 1)))


def is_last_attempt(receive_count: int, max_receive_count: int) -> bool:
    """After this attempt SQS moves the message to the dead-letter queue."""
    return receive_count >= max_receive_count


def gave_up_error(exc: BaseException, receive_count: int, *, what: str = "") -> dict[str, str]:
    """The job's error when its last attempt failed with ``exc``: our own error's
    code, INTERNAL_ERROR for anything else, and how many attempts it took
    (``what`` names the piece of work, e.g. "chunk 3 of 10")."""
    error = (
        exc.to_dict()
        if isinstance(exc, VidpipeError)
        else {"code": "INTERNAL_ERROR", "message": f"{type(exc).__name__}: {exc}"}
    )
    prefix = f"{what} gave up" if what else "gave up"
    return {**error, "message": f"{prefix} after {receive_count} attempts: {error['message']}"}

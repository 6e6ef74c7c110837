"""Publishing our events to the EventBridge bus.

What can go wrong: :class:`~vidpipe.domain.errors.EventPublishError` when PutEvents
fails as a call (denied, throttled, unreachable, a detail over 256 KB) or
accepts the call but rejects the entry (``FailedEntryCount`` > 0). Either way
the event was not published, and the caller should let its SQS message be
redelivered.
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from vidpipe.domain.errors import EventPublishError
from vidpipe.domain.events import SOURCE_PREFIX, ChunkRequested, JobFinished, StageEvent, StitchRequested


class EventBridgePublisher:
    """Puts events on one bus under one ``source`` (``vidpipe.<publisher>``)."""

    def __init__(self, client: Any, bus_name: str, source: str) -> None:
        # The status function only reads sources under our prefix: a typo here
        # would make every event vanish, so refuse it at start-up.
        if not source.startswith(SOURCE_PREFIX):
            raise ValueError(f"event source must start with {SOURCE_PREFIX!r}, not {source!r}")
        self._client = client
        self.bus_name = bus_name
        self.source = source

    def publish(self, event: StageEvent | JobFinished | ChunkRequested | StitchRequested) -> None:
        """Put one event on the bus; its detail carries the job id.

        Raises EventPublishError when the event was not accepted."""
        entry = {
            "EventBusName": self.bus_name,
            "Source": self.source,
            "DetailType": event.detail_type,
            "Detail": json.dumps(event.detail()),
        }
        try:
            response = self._client.put_events(Entries=[entry])
        except (BotoCoreError, ClientError) as exc:
            raise EventPublishError(f"cannot publish {event.detail_type!r} for job {event.job_id}: {exc}") from exc
        if response.get("FailedEntryCount", 0):
            failed = (response.get("Entries") or [{}])[0]
            raise EventPublishError(
                f"EventBridge rejected {event.detail_type!r} for job {event.job_id}: "
                f"{failed.get('ErrorCode', 'unknown')}: {failed.get('ErrorMessage', '')}"
            )

"""Writing what a route did on the job's timeline (GET /jobs/{id}/events)."""

from __future__ import annotations

from typing import Any

from upload_api.routes.stores import timeline
from vidpipe.domain.errors import VidpipeError
from vidpipe.domain.events import utc_now
from vidpipe.domain.timeline import Invocation, TimelineEntry
from vidpipe.runtime.observability import logger


def record_on_timeline(lambda_context: Any, job_id: str, what: str, details: dict[str, Any]) -> None:
    """Best effort: the caller's request has succeeded, a missing timeline entry must not fail it."""
    invocation = Invocation.of(lambda_context)
    entry = TimelineEntry(
        job_id=job_id,
        at=utc_now(),
        what=what,
        function=invocation.function,
        request_id=invocation.request_id,
        identity=invocation.request_id,
        details=details,
    )
    try:
        timeline().record(entry)
    except VidpipeError:
        logger.exception("could not write to the job's timeline", extra={"job_id": job_id, "what": what})

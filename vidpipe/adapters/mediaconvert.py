"""Submitting jobs to AWS Elemental MediaConvert (the other transcode backend).

The request itself is built by :mod:`transcode.domain_logic.mediaconvert_job`;
this adapter only sends it. MediaConvert answers on its own later, through the
"MediaConvert Job State Change" events (see :mod:`vidpipe.domain.mediaconvert_events`).

What can go wrong: :class:`~vidpipe.domain.errors.MediaConvertError` (retryable, like
every InfrastructureError) when CreateJob fails: refused, throttled, role not
passable, service unreachable.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from vidpipe.domain.errors import MediaConvertError


class MediaConvertJobs:
    """Creates MediaConvert jobs with one boto3 ``mediaconvert`` client."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def submit(self, request: dict[str, Any]) -> str:
        """Create the job described by ``request`` (CreateJob's keyword
        arguments); return MediaConvert's job id."""
        try:
            response = self._client.create_job(**request)
        except (BotoCoreError, ClientError) as exc:
            raise MediaConvertError(f"MediaConvert did not accept the job: {exc}") from exc
        return str(response["Job"]["Id"])

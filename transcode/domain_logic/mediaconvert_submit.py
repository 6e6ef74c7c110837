"""Hand one upload to MediaConvert: probe it, plan the ladder, submit the job.

The MediaConvert path plans exactly as the FFmpeg path does (ffprobe on the
downloaded source, the same duration limit, :func:`plan_ladder`), so a source
gets the same renditions whichever backend a deployment uses. The job's
progress and outputs come back later as "MediaConvert Job State Change" events.

What can go wrong: the MediaError of :func:`vidpipe.adapters.ffmpeg.probe.probe_media`,
MediaTooLong, UnsupportedDimensions (final: the job FAILS); MediaConvertError
and FfmpegError (retryable).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

from transcode.domain_logic.ladder import DEFAULT_LADDER, LadderConfig, RateControl, plan_ladder
from transcode.domain_logic.mediaconvert_job import build_create_job_request
from transcode.domain_logic.transcoding import probe_source
from vidpipe.domain.source_info import SourceInfo


class JobSubmitter(Protocol):
    def submit(self, request: dict[str, Any]) -> str:
        """Create the job; return the service's job id."""
        ...


def submit_ladder_job(
    source_path: Path,
    *,
    job_id: str,
    source_url: str,
    outputs_url: str,
    stack_name: str,
    role_arn: str,
    submitter: JobSubmitter,
    timeout_s: float,
    max_duration_s: float | None = None,
    rate_control: str = "QVBR",
    ladder_config: LadderConfig = DEFAULT_LADDER,
    on_probed: Callable[[SourceInfo], None] | None = None,
) -> str:
    """Probe ``source_path`` (the upload found at ``source_url``), plan its ladder
    and submit the MediaConvert job writing under ``outputs_url``; return
    MediaConvert's job id."""
    source = probe_source(source_path, timeout_s=timeout_s, max_duration_s=max_duration_s)
    if on_probed is not None:
        on_probed(source)
    request = build_create_job_request(
        job_id=job_id,
        stack_name=stack_name,
        role_arn=role_arn,
        source_url=source_url,
        outputs_url=outputs_url,
        source=source,
        # MediaConvert runs its own rate control (QVBR or CBR) on the fixed ladder's
        # averages and peaks: the per-title CRF belongs to the FFmpeg backend.
        ladder=plan_ladder(source, replace(ladder_config, rate_control=RateControl.FIXED)),
        rate_control=rate_control,
    )
    return submitter.submit(request)

"""Transcode domain: plan the ladder, build the FFmpeg arguments, run them.

No AWS here: see ``transcode.handlers`` for the Lambda wiring."""

from transcode.domain_logic.ladder import DEFAULT_LADDER, LadderConfig, Rendition, Rung, plan_ladder
from transcode.domain_logic.transcoding import (
    TranscodeResult,
    rendition_summary,
    source_summary,
    transcode_to_hls,
)

__all__ = [
    "DEFAULT_LADDER",
    "LadderConfig",
    "Rendition",
    "Rung",
    "TranscodeResult",
    "plan_ladder",
    "rendition_summary",
    "source_summary",
    "transcode_to_hls",
]

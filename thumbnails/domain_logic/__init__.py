"""Thumbnails domain: plan the storyboard, sample frames with FFmpeg, write the images."""

from thumbnails.domain_logic.poster import choose_poster
from thumbnails.domain_logic.storyboard import Cue, StoryboardPlan, plan_storyboard, render_vtt
from thumbnails.domain_logic.thumbnail_set import ThumbnailResult, make_thumbnails

__all__ = [
    "Cue",
    "StoryboardPlan",
    "ThumbnailResult",
    "choose_poster",
    "make_thumbnails",
    "plan_storyboard",
    "render_vtt",
]

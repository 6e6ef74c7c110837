"""The thumbnails stage: poster, thumbnails, sprite sheet and WebVTT storyboard of a video."""

from thumbnails.domain_logic import ThumbnailResult, make_thumbnails

__all__ = ["ThumbnailResult", "make_thumbnails"]

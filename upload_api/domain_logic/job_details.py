"""A job's title and passthrough: checked when an upload is created, the title
renamed later (PATCH /jobs/{id}).

The title is the user's name for the video, shown in lists; the passthrough is
the caller's own opaque string (an id in their system, say), stored and given
back as it is, never interpreted. Both go out with the job and its webhooks.

What can go wrong: ValidationFailed (400) for a title that is blank, too long
or holds control characters, or a passthrough that is too long.
"""

from __future__ import annotations

import copy
import unicodedata

from vidpipe.domain.errors import ValidationFailed
from vidpipe.domain.jobs import Job

MAX_TITLE_CHARS = 200
MAX_PASSTHROUGH_CHARS = 255


def checked_title(title: str | None) -> str | None:
    """The title to store (trimmed), or None for none. A title is shown in
    pages and lists, so it must be one line of text: no control characters
    (newlines, tabs, NUL), at most MAX_TITLE_CHARS characters (code points)."""
    if title is None:
        return None
    trimmed = title.strip()
    if not trimmed:
        raise ValidationFailed("title must not be blank (send null to have none)")
    if len(trimmed) > MAX_TITLE_CHARS:
        raise ValidationFailed(f"title is longer than {MAX_TITLE_CHARS} characters")
    if any(unicodedata.category(char) == "Cc" for char in trimmed):
        raise ValidationFailed("title contains control characters (newlines, tabs...)")
    return trimmed


def checked_passthrough(passthrough: str | None) -> str | None:
    """The passthrough as it came (opaque: not trimmed, not judged), at most
    MAX_PASSTHROUGH_CHARS characters."""
    if passthrough is not None and len(passthrough) > MAX_PASSTHROUGH_CHARS:
        raise ValidationFailed(f"passthrough is longer than {MAX_PASSTHROUGH_CHARS} characters")
    return passthrough


def renamed(job: Job, title: str | None, *, now: str) -> Job | None:
    """``job`` with its new title, or None when the title is already that one.
    Raises ValidationFailed for a bad title."""
    new_title = checked_title(title)
    if new_title == job.title:
        return None
    changed = copy.deepcopy(job)
    changed.title = new_title
    changed.updated_at = max(job.updated_at, now)
    return changed

"""How much a stage's scratch folder (Lambda's /tmp, EphemeralStorage) can still hold.

A stage that downloads more than its folder holds fails with "No space left on
device" on every attempt; checked first, the job fails at once with its own
code and the sizes in the message.

What can go wrong: :func:`check_scratch_room` raises SourceTooLarge.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from vidpipe.domain.errors import SourceTooLarge

# Kept free beside the input for what the stage writes (a ladder of two
# minutes, thumbnails, a sprite): far below this.
OUTPUT_HEADROOM_BYTES = 512 * 1024 * 1024


def free_scratch_bytes(folder: Path) -> int:
    return shutil.disk_usage(folder).free


def check_scratch_room(
    folder: Path, needed_bytes: int, *, what: str, free_bytes: Callable[[Path], int] | None = None
) -> None:
    """Raise SourceTooLarge unless ``folder`` can hold ``needed_bytes`` of ``what``
    and the stage's outputs besides."""
    free = (free_bytes or free_scratch_bytes)(folder)
    if needed_bytes + OUTPUT_HEADROOM_BYTES > free:
        raise SourceTooLarge(
            f"{what} is {needed_bytes} bytes; this stage can hold {max(0, free - OUTPUT_HEADROOM_BYTES)} "
            "bytes of it (its scratch space, less room for the outputs)"
        )

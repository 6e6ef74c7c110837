"""Read a WebVTT storyboard and check it against its sprite sheet.

Shared by the thumbnails tests and the end-to-end test (which runs it on the
files fetched from the output URLs). Independent of the code that writes the
VTT on purpose: a test that parsed with the writer's own arithmetic would agree
with any bug in it.

What can go wrong: :func:`parse_vtt` raises ValueError on text that is not
WebVTT; :func:`assert_storyboard_consistent` raises AssertionError naming the
first cue that breaks a rule.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

_TIMESTAMP = re.compile(r"^(?:(\d{2,}):)?([0-5]\d):([0-5]\d)\.(\d{3})$")
_XYWH = re.compile(r"^(?P<image>[^#]+)#xywh=(?P<x>\d+),(?P<y>\d+),(?P<w>\d+),(?P<h>\d+)$")


@dataclass(frozen=True)
class VttCue:
    start_s: float
    end_s: float
    text: str

    @property
    def image(self) -> str:
        """The part of the text before ``#``: the sprite's name or URL."""
        return self.text.partition("#")[0]

    @property
    def xywh(self) -> tuple[int, int, int, int] | None:
        """The ``#xywh=x,y,w,h`` rectangle, or None when the text has none."""
        match = _XYWH.match(self.text)
        if match is None:
            return None
        return int(match["x"]), int(match["y"]), int(match["w"]), int(match["h"])


def parse_vtt_timestamp(value: str) -> float:
    """``HH:MM:SS.mmm`` or ``MM:SS.mmm`` in seconds. Raises ValueError otherwise."""
    match = _TIMESTAMP.match(value.strip())
    if match is None:
        raise ValueError(f"not a WebVTT timestamp: {value!r}")
    hours, minutes, seconds, millis = match.groups()
    return int(hours or 0) * 3600 + int(minutes) * 60 + int(seconds) + int(millis) / 1000


def parse_vtt(text: str) -> list[VttCue]:
    """The cues of a WebVTT file, in file order; NOTE, STYLE and REGION blocks
    are skipped. Raises ValueError when the header is missing or a cue's
    timing line is malformed."""
    lines = text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if not lines or not (lines[0] == "WEBVTT" or lines[0].startswith(("WEBVTT ", "WEBVTT\t"))):
        raise ValueError("a WebVTT file starts with the line WEBVTT")
    blocks: list[list[str]] = []
    current: list[str] = []
    for line in lines[1:]:
        if line.strip():
            current.append(line)
        elif current:
            blocks.append(current)
            current = []
    if current:
        blocks.append(current)

    cues = []
    for block in blocks:
        if block[0].startswith(("NOTE", "STYLE", "REGION")) and "-->" not in block[0]:
            continue
        # An optional cue identifier comes before the timing line.
        timing_index = 0 if "-->" in block[0] else 1
        if timing_index >= len(block) or "-->" not in block[timing_index]:
            raise ValueError(f"cue without a timing line: {block!r}")
        start, _, rest = block[timing_index].partition("-->")
        end = rest.strip().split()[0] if rest.strip() else ""
        cues.append(
            VttCue(
                start_s=parse_vtt_timestamp(start),
                end_s=parse_vtt_timestamp(end),
                text="\n".join(block[timing_index + 1 :]),
            )
        )
    return cues


def assert_storyboard_consistent(
    cues: list[VttCue],
    *,
    sprite_width: int,
    sprite_height: int,
    duration_s: float,
    tolerance_s: float = 0.05,
) -> None:
    """Check a storyboard against its sprite sheet:

    * the cues cover [0, duration] in order, without gaps or overlaps, and none
      is empty;
    * every cue names the same image and carries an ``#xywh`` rectangle lying
      inside the sprite;
    * the rectangles are the cells of one grid, filled row by row: cue k sits
      at column k % columns, row k // columns, where columns and rows are what
      the sprite's size holds.

    Raises AssertionError naming the first rule broken."""
    assert cues, "the storyboard has no cue"
    assert math.isclose(cues[0].start_s, 0.0, abs_tol=1e-9), f"first cue starts at {cues[0].start_s}"
    assert abs(cues[-1].end_s - duration_s) <= tolerance_s, (
        f"last cue ends at {cues[-1].end_s}, the video lasts {duration_s}"
    )
    for before, after in zip(cues, cues[1:], strict=False):
        assert math.isclose(before.end_s, after.start_s, abs_tol=1e-9), f"gap or overlap between {before} and {after}"
    for cue in cues:
        assert cue.end_s > cue.start_s, f"empty cue {cue}"

    images = {cue.image for cue in cues}
    assert len(images) == 1, f"cues point at several images: {sorted(images)}"
    rectangles = []
    for cue in cues:
        rectangle = cue.xywh
        assert rectangle is not None, f"cue without #xywh: {cue}"
        x, y, w, h = rectangle
        assert w > 0 and h > 0, f"empty rectangle in {cue}"
        assert x + w <= sprite_width and y + h <= sprite_height, (
            f"{cue} lies outside the {sprite_width}x{sprite_height} sprite"
        )
        rectangles.append(rectangle)

    tile_sizes = {(w, h) for _, _, w, h in rectangles}
    assert len(tile_sizes) == 1, f"tiles of several sizes: {sorted(tile_sizes)}"
    ((tile_w, tile_h),) = tile_sizes
    assert sprite_width % tile_w == 0 and sprite_height % tile_h == 0, (
        f"a {sprite_width}x{sprite_height} sprite is not a grid of {tile_w}x{tile_h} tiles"
    )
    columns, rows = sprite_width // tile_w, sprite_height // tile_h
    assert rows == math.ceil(len(cues) / columns), (
        f"{len(cues)} tiles in {columns} columns need {math.ceil(len(cues) / columns)} rows, the sprite has {rows}"
    )
    for index, (x, y, _, _) in enumerate(rectangles):
        expected = ((index % columns) * tile_w, (index // columns) * tile_h)
        assert (x, y) == expected, f"cue {index} is at {(x, y)}, its grid cell at {expected}"

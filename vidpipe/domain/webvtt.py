"""Subtitle text: SubRip and WebVTT read into cues, checked, and written back
as segmented WebVTT for an HLS ``SUBTITLES`` rendition.

Pure text in, text out. Used for the text tracks FFmpeg extracts from an
upload (always WebVTT) and for caption files users add to a READY job (SubRip
or WebVTT; see :func:`read_caption_file`).

Segmented WebVTT (RFC 8216, 3.5): each segment is a WebVTT file holding every
cue that overlaps its time window, with an ``X-TIMESTAMP-MAP`` header that
ties its clock to the video's MPEG-TS clock. FFmpeg's MPEG-TS muxer starts the
video at 1.4 s (PTS 126000 on the 90 kHz clock) when the source starts at 0,
so cue time 0 maps to that.

What can go wrong: :func:`parse_srt`, :func:`parse_webvtt` and
:func:`read_caption_file` raise InvalidCaptions with the line that is wrong.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from vidpipe.domain.errors import InvalidCaptions

# FFmpeg's MPEG-TS muxer puts media time 0 at 1.4 s (its default mux delay, twice):
# where a single-pass ladder's segments start. (The chunked path's start later:
# transcode.domain_logic.chunk_encoding.CHUNKED_MPEGTS_TIME_ZERO.) Each subtitle
# segment's X-TIMESTAMP-MAP names the video's value, or players show the cues off by the difference.
MPEGTS_TIME_ZERO = 126000
MPEGTS_CLOCK_HZ = 90_000
SEGMENT_NAME = "seg_{index:05d}.vtt"
# A caption file users add: the biggest we read, and the most cues (a feature film has ~2,000).
MAX_CAPTION_BYTES = 1024 * 1024
MAX_CUES = 20_000

_SRT_TIMING = re.compile(
    r"^\s*(\d{1,3}):(\d{1,2}):(\d{1,2})[,.](\d{1,3})\s*-->\s*(\d{1,3}):(\d{1,2}):(\d{1,2})[,.](\d{1,3})"
)
_VTT_TIME = r"(?:(\d{1,3}):)?(\d{2}):(\d{2})\.(\d{3})"
_VTT_TIMING = re.compile(rf"^{_VTT_TIME}\s+-->\s+{_VTT_TIME}(?:\s+(.*))?$")


@dataclass(frozen=True)
class Cue:
    start_s: float
    end_s: float
    text: str  # one or more lines, never a blank one (that would end the cue)
    settings: str = ""  # WebVTT cue settings (position, align...), kept as written


def parse_srt(text: str) -> list[Cue]:
    """The cues of a SubRip file. Cue numbers are optional, ``,`` or ``.`` before
    the milliseconds are both taken (both are seen in the wild); HTML-like tags
    (<i>, <b>, <u>) are kept, WebVTT has them too. Raises InvalidCaptions for a
    block without a timing line, an end before its start, or no cue at all."""
    cues: list[Cue] = []
    for block_start, block in _blocks(text):
        lines = block
        if lines and lines[0].strip().isdigit() and len(lines) > 1:
            lines = lines[1:]
        match = _SRT_TIMING.match(lines[0])
        if not match:
            raise InvalidCaptions(
                f"line {block_start + 1}: expected a SubRip timing line like "
                f"'00:00:01,000 --> 00:00:02,500', found {lines[0][:80]!r}"
            )
        numbers = [int(group) for group in match.groups()]
        start = _seconds(numbers[0], numbers[1], numbers[2], _milliseconds(match.group(4)))
        end = _seconds(numbers[4], numbers[5], numbers[6], _milliseconds(match.group(8)))
        cues.append(_checked_cue(start, end, lines[1:], "", block_start))
    return _non_empty(cues)


def parse_webvtt(text: str) -> list[Cue]:
    """The cues of a WebVTT file (NOTE, STYLE and REGION blocks are skipped,
    cue identifiers dropped). Raises InvalidCaptions when the file does not start
    with ``WEBVTT``, a cue's timing is malformed or ends before it starts, or
    there is no cue."""
    body = text.lstrip("\ufeff")
    first_line = body.split("\n", 1)[0].rstrip("\r")
    if not (first_line == "WEBVTT" or first_line.startswith(("WEBVTT ", "WEBVTT\t"))):
        raise InvalidCaptions("line 1: a WebVTT file must start with 'WEBVTT'")
    cues: list[Cue] = []
    for index, (block_start, block) in enumerate(_blocks(body)):
        if index == 0 or block[0].startswith(("NOTE", "STYLE", "REGION")):
            continue  # the header block, comments, style sheets, regions
        lines = block if "-->" in block[0] else block[1:]  # an identifier line first
        match = _VTT_TIMING.match(lines[0].strip()) if lines else None
        if not match:
            raise InvalidCaptions(
                f"line {block_start + 1}: expected a WebVTT timing line like "
                f"'00:01.000 --> 00:02.500', found {block[0][:80]!r}"
            )
        groups = match.groups()
        start_h, start_m, start_s, start_ms, end_h, end_m, end_s, end_ms = (int(value or 0) for value in groups[0:8])
        start = _seconds(start_h, start_m, start_s, start_ms)
        end = _seconds(end_h, end_m, end_s, end_ms)
        cues.append(_checked_cue(start, end, lines[1:], groups[8] or "", block_start))
    return _non_empty(cues)


def read_caption_file(data: bytes) -> list[Cue]:
    """The cues of a caption file a user uploaded, WebVTT or SubRip (told by
    its first line). Raises InvalidCaptions for a file over MAX_CAPTION_BYTES,
    not in UTF-8, or not valid in its format."""
    if len(data) > MAX_CAPTION_BYTES:
        raise InvalidCaptions(f"the caption file is {len(data)} bytes; we accept up to {MAX_CAPTION_BYTES}")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidCaptions(f"the caption file is not UTF-8 text (byte {exc.start} is not)") from exc
    if text.lstrip("\ufeff").startswith("WEBVTT"):
        return parse_webvtt(text)
    return parse_srt(text)


def render_webvtt(cues: Sequence[Cue], *, timestamp_map: bool = True, mpegts_time_zero: int = MPEGTS_TIME_ZERO) -> str:
    """A WebVTT file of ``cues``, with the HLS ``X-TIMESTAMP-MAP`` header (media time 0
    is ``mpegts_time_zero`` on the video segments' clock) unless told not to."""
    lines = ["WEBVTT"]
    if timestamp_map:
        lines.append(f"X-TIMESTAMP-MAP=MPEGTS:{mpegts_time_zero},LOCAL:00:00:00.000")
    lines.append("")
    for cue in cues:
        timing = f"{format_timestamp(cue.start_s)} --> {format_timestamp(cue.end_s)}"
        lines += [f"{timing} {cue.settings}".rstrip(), cue.text, ""]
    return "\n".join(lines) + "\n"


def format_timestamp(seconds: float) -> str:
    """``HH:MM:SS.mmm``, the form every WebVTT reader takes."""
    total_ms = round(seconds * 1000)
    hours, rest = divmod(total_ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    return f"{hours:02d}:{minutes:02d}:{rest // 1000:02d}.{rest % 1000:03d}"


def segment_cues(
    cues: Sequence[Cue], *, duration_s: float, segment_s: float, mpegts_time_zero: int = MPEGTS_TIME_ZERO
) -> list[str]:
    """The WebVTT segments of a rendition lasting ``duration_s``: one per
    ``segment_s`` window (the last one shorter), each with every cue that
    overlaps its window, whole (players drop the copies: same times, same text).
    A cue past ``duration_s`` goes in the last segment. At least one segment."""
    count = max(1, math.ceil(duration_s / segment_s - 1e-9))
    segments = []
    for index in range(count):
        start, end = index * segment_s, (index + 1) * segment_s
        last = index == count - 1
        inside = [cue for cue in cues if cue.end_s > start and (cue.start_s < end or last)]
        segments.append(render_webvtt(inside, mpegts_time_zero=mpegts_time_zero))
    return segments


def render_subtitle_playlist(*, duration_s: float, segment_s: float) -> str:
    """The media playlist of the segments :func:`segment_cues` makes for the same figures."""
    count = max(1, math.ceil(duration_s / segment_s - 1e-9))
    lines = [
        "#EXTM3U",
        "#EXT-X-VERSION:6",
        f"#EXT-X-TARGETDURATION:{max(1, math.ceil(segment_s))}",
        "#EXT-X-MEDIA-SEQUENCE:0",
        "#EXT-X-PLAYLIST-TYPE:VOD",
    ]
    for index in range(count):
        length = min(segment_s, duration_s - index * segment_s) if duration_s > 0 else segment_s
        lines += [f"#EXTINF:{max(length, 0.001):.6f},", SEGMENT_NAME.format(index=index)]
    lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"


def _blocks(text: str) -> list[tuple[int, list[str]]]:
    """Blocks of non-blank lines, with the 0-based line each starts on."""
    blocks: list[tuple[int, list[str]]] = []
    current: list[str] = []
    start = 0
    for number, raw in enumerate(text.replace("\r\n", "\n").replace("\r", "\n").split("\n")):
        line = raw.rstrip()
        if line.strip():
            if not current:
                start = number
            current.append(line)
        elif current:
            blocks.append((start, current))
            current = []
    if current:
        blocks.append((start, current))
    return blocks


def _checked_cue(start: float, end: float, text_lines: list[str], settings: str, line: int) -> Cue:
    if end <= start:
        raise InvalidCaptions(f"line {line + 1}: the cue ends ({end:.3f} s) before it starts ({start:.3f} s)")
    # "-->" in a cue's text would end it early in a WebVTT reader.
    text = "\n".join(text_line.replace("-->", "->") for text_line in text_lines)
    return Cue(start_s=start, end_s=end, text=text, settings=settings.strip())


def _non_empty(cues: list[Cue]) -> list[Cue]:
    if not cues:
        raise InvalidCaptions("the file has no cue")
    if len(cues) > MAX_CUES:
        raise InvalidCaptions(f"the file has {len(cues)} cues; we accept up to {MAX_CUES}")
    return sorted(cues, key=lambda cue: (cue.start_s, cue.end_s))


def _milliseconds(digits: str) -> int:
    """SubRip's fraction as milliseconds: ``5`` is 500 ms, ``05`` 50 ms."""
    return int(digits.ljust(3, "0"))


def _seconds(hours: int, minutes: int, seconds: int, milliseconds: int) -> float:
    return hours * 3600 + minutes * 60 + seconds + milliseconds / 1000

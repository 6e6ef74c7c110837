"""Stitching: the chunks' segments, in order, become each rendition's media
playlist, and the master playlist is written over them.

Only text is written: no media is touched, the segments stay where the chunk
encoders (transcode.domain_logic.chunk_encoding) put them.

What can go wrong: ValueError when a chunk is missing or repeated, or lacks a
rendition; OSError when the output folder is not writable.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

from transcode.domain_logic.chunk_encoding import ChunkOutput, Segment
from transcode.domain_logic.hls import (
    MASTER_PLAYLIST_NAME,
    MEDIA_PLAYLIST_NAME,
    PlaylistMeasurement,
    measure_segments,
    write_master_playlist,
)
from transcode.domain_logic.ladder import Rendition
from vidpipe.domain.subtitles import SubtitleRendition


def render_media_playlist(segments: Sequence[Segment]) -> str:
    """A VOD media playlist of ``segments`` in order, as FFmpeg's HLS muxer writes
    one (version 6: EXT-X-INDEPENDENT-SEGMENTS)."""
    target = max(1, math.ceil(max(segment.duration_s for segment in segments)))
    lines = [
        "#EXTM3U",
        "#EXT-X-VERSION:6",
        f"#EXT-X-TARGETDURATION:{target}",
        "#EXT-X-MEDIA-SEQUENCE:0",
        "#EXT-X-PLAYLIST-TYPE:VOD",
        "#EXT-X-INDEPENDENT-SEGMENTS",
    ]
    for segment in segments:
        lines += [f"#EXTINF:{segment.duration_s:.6f},", segment.uri]
    lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"


def stitch_playlists(
    outputs: Sequence[ChunkOutput],
    ladder: Sequence[Rendition],
    *,
    has_audio: bool,
    frame_rate: Fraction,
    output_dir: Path,
    subtitles: Sequence[SubtitleRendition] = (),
) -> dict[str, PlaylistMeasurement]:
    """Write ``{rendition}/index.m3u8`` (every chunk's segments, in chunk order)
    and ``master.m3u8`` into ``output_dir``; return what each rendition measures.

    Only text is written: the segments stay where the chunk encoders put them.
    Raises ValueError when a chunk is missing or repeated, or lacks a rendition."""
    ordered = sorted(outputs, key=lambda output: output.index)
    if [output.index for output in ordered] != list(range(len(ordered))) or not ordered:
        raise ValueError(f"chunks to stitch are not 0..n-1: {[output.index for output in ordered]}")
    measured = {}
    for rendition in ladder:
        try:
            segments = [segment for output in ordered for segment in output.segments[rendition.name]]
        except KeyError as exc:
            raise ValueError(f"a chunk has no {rendition.name} rendition") from exc
        folder = output_dir / rendition.name
        folder.mkdir(parents=True, exist_ok=True)
        (folder / MEDIA_PLAYLIST_NAME).write_text(render_media_playlist(segments), encoding="utf-8")
        target = max(1, math.ceil(max(segment.duration_s for segment in segments)))
        measured[rendition.name] = measure_segments(
            [(segment.duration_s, segment.size_bytes * 8) for segment in segments], target
        )
    write_master_playlist(
        ladder, has_audio, output_dir / MASTER_PLAYLIST_NAME, frame_rate=frame_rate, measured=measured,
        subtitles=subtitles,
    )  # fmt: skip
    return measured

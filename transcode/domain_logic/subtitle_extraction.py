"""The upload's text subtitle tracks as HLS ``SUBTITLES`` renditions.

One FFmpeg run reads the source once and writes every text track as a whole
WebVTT file (FFmpeg's webvtt encoder turns mov_text, SubRip and ASS/SSA into
plain WebVTT text, styling dropped); Python then cuts each into segments on the
video's segment grid (:mod:`vidpipe.domain.webvtt`) beside the video
renditions: ``subs-{n}/index.m3u8`` and ``subs-{n}/seg_00000.vtt``...

Subtitles never fail a video: a track FFmpeg cannot extract is reported in
``skipped`` with the reason, as bitmap tracks are.

Used by the single-process transcode (:mod:`transcode.domain_logic.transcoding`)
and, on the chunked path, split in two: the planner extracts
(:func:`extract_subtitle_texts`, tiny text kept in the plan) and the stitch
writes the renditions (:func:`write_subtitle_renditions`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vidpipe.adapters.ffmpeg.inputs import source_input_args
from vidpipe.adapters.ffmpeg.process import run_ffmpeg
from vidpipe.domain.errors import FfmpegError, InvalidCaptions, MediaError
from vidpipe.domain.source_info import SourceInfo
from vidpipe.domain.subtitles import SubtitleRendition, renditions_for
from vidpipe.domain.webvtt import (
    MPEGTS_TIME_ZERO,
    SEGMENT_NAME,
    parse_webvtt,
    render_subtitle_playlist,
    segment_cues,
)

# Extraction reads the whole file but decodes no picture: seconds even for an hour.
EXTRACT_TIMEOUT_S = 300.0


@dataclass
class ExtractedSubtitles:
    """Each text track's WebVTT text by rendition, and the tracks left out (with why)."""

    texts: dict[str, str] = field(default_factory=dict)  # rendition name -> WebVTT text
    renditions: list[SubtitleRendition] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "texts": self.texts,
            "renditions": [rendition.to_dict() for rendition in self.renditions],
            "skipped": self.skipped,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> ExtractedSubtitles:
        data = data or {}
        renditions = [SubtitleRendition.from_dict(item) for item in data.get("renditions", [])]
        return cls(dict(data.get("texts") or {}), renditions, list(data.get("skipped") or []))


def extract_args(source_ref: Path | str, source: SourceInfo, scratch: Path) -> list[str]:
    """FFmpeg arguments writing every text track of ``source`` to
    ``scratch/subs-{position}.vtt`` in one run (no video, no audio)."""
    args = source_input_args(source_ref, source.demuxer)
    for track in source.subtitles:
        if track.is_text:
            args += ["-map", f"0:s:{track.position}", "-c:s", "webvtt", "-f", "webvtt",
                     str(scratch / f"subs-{track.position}.vtt")]  # fmt: skip
    return args


def extract_subtitle_texts(
    source_ref: Path | str, source: SourceInfo, scratch: Path, *, timeout_s: float = EXTRACT_TIMEOUT_S
) -> ExtractedSubtitles:
    """The WebVTT text of every text track of ``source`` (read from a path, or a
    presigned URL), and the tracks skipped. No FFmpeg run when there is no text track."""
    skipped = [track.skipped() for track in source.subtitles if not track.is_text]
    renditions = renditions_for(source.subtitles)
    if not renditions:
        return ExtractedSubtitles(skipped=skipped)
    scratch = scratch.absolute()
    scratch.mkdir(parents=True, exist_ok=True)
    try:
        run_ffmpeg(extract_args(source_ref, source, scratch), timeout_s=min(timeout_s, EXTRACT_TIMEOUT_S))
    except (FfmpegError, MediaError) as exc:
        reason = f"the subtitle tracks could not be extracted: {exc}"
        return ExtractedSubtitles(skipped=skipped + [_skipped(r, reason) for r in renditions])
    extracted = ExtractedSubtitles(skipped=skipped)
    for rendition in renditions:
        path = scratch / f"{rendition.name}.vtt"
        text = path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""
        try:
            parse_webvtt(text)
        except InvalidCaptions as exc:
            extracted.skipped.append(_skipped(rendition, f"the track holds no usable cue ({exc})"))
            continue
        extracted.texts[rendition.name] = text
        extracted.renditions.append(rendition)
    return extracted


def write_subtitle_renditions(
    extracted: ExtractedSubtitles,
    output_dir: Path,
    *,
    duration_s: float,
    segment_s: float,
    mpegts_time_zero: int = MPEGTS_TIME_ZERO,
) -> list[SubtitleRendition]:
    """Write each extracted track as segmented WebVTT with its media playlist
    under ``output_dir/{name}/``; return the renditions written."""
    for rendition in extracted.renditions:
        write_rendition_files(
            output_dir / rendition.name,
            extracted.texts[rendition.name],
            duration_s=duration_s,
            segment_s=segment_s,
            mpegts_time_zero=mpegts_time_zero,
        )
    return list(extracted.renditions)


def write_rendition_files(
    folder: Path, webvtt_text: str, *, duration_s: float, segment_s: float, mpegts_time_zero: int = MPEGTS_TIME_ZERO
) -> None:
    """``index.m3u8`` and its ``seg_NNNNN.vtt`` segments for one rendition's cues
    (``mpegts_time_zero``: where media time 0 is on the video segments' clock)."""
    cues = parse_webvtt(webvtt_text)
    folder.mkdir(parents=True, exist_ok=True)
    segments = segment_cues(cues, duration_s=duration_s, segment_s=segment_s, mpegts_time_zero=mpegts_time_zero)
    for index, segment in enumerate(segments):
        (folder / SEGMENT_NAME.format(index=index)).write_text(segment, encoding="utf-8")
    playlist = render_subtitle_playlist(duration_s=duration_s, segment_s=segment_s)
    (folder / "index.m3u8").write_text(playlist, encoding="utf-8")


def subtitle_outputs(renditions: Sequence[SubtitleRendition], skipped: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The transcode outputs' ``subtitles`` and ``subtitles_skipped`` (left out when empty)."""
    outputs: dict[str, Any] = {}
    if renditions:
        outputs["subtitles"] = [rendition.to_dict() for rendition in renditions]
    if skipped:
        outputs["subtitles_skipped"] = list(skipped)
    return outputs


def _skipped(rendition: SubtitleRendition, reason: str) -> dict[str, Any]:
    position = int(rendition.name.rsplit("-", 1)[1])
    return {"track": position, "codec": None, "language": rendition.language, "reason": reason}

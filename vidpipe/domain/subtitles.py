"""Subtitle tracks of an upload, and the HLS ``SUBTITLES`` renditions made
from them or from caption files added later.

Text tracks (mov_text, SubRip, WebVTT, ASS/SSA) become renditions; bitmap
tracks (PGS, DVB, DVD) cannot be written as WebVTT without OCR, so they are
reported in the job (``outputs.subtitles_skipped``), never dropped silently.

A rendition lives in its own folder beside the video renditions
(``hls/subs-0/index.m3u8`` for an embedded track, ``hls/captions-<id>/...`` for
an added file) and is listed in the master playlist as an ``EXT-X-MEDIA``
of TYPE=SUBTITLES in one group, which every variant names (``SUBTITLES="subs"``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

SUBTITLE_GROUP = "subs"
TEXT_SUBTITLE_CODECS = frozenset({"mov_text", "subrip", "srt", "webvtt", "ass", "ssa", "text"})
BITMAP_SUBTITLE_CODECS = frozenset({"hdmv_pgs_subtitle", "dvb_subtitle", "dvd_subtitle", "xsub"})
# ISO 639-2 codes containers carry, to the shorter BCP 47 tags players match
# against the user's language; any other code is passed on as it is.
_TWO_LETTER = {
    "eng": "en", "fra": "fr", "fre": "fr", "deu": "de", "ger": "de", "spa": "es", "ita": "it",
    "por": "pt", "nld": "nl", "dut": "nl", "jpn": "ja", "zho": "zh", "chi": "zh", "kor": "ko",
    "rus": "ru", "ara": "ar", "pol": "pl", "swe": "sv", "tur": "tr", "hin": "hi",
}  # fmt: skip


@dataclass(frozen=True)
class SubtitleTrack:
    """One subtitle stream of the upload, as ffprobe lists it."""

    position: int  # among the subtitle streams: FFmpeg's ``0:s:{position}``
    codec: str
    language: str | None  # BCP 47 (``en``), None when the file says nothing or "und"
    title: str | None
    default: bool = False
    forced: bool = False

    @property
    def is_text(self) -> bool:
        return self.codec in TEXT_SUBTITLE_CODECS

    def skipped(self) -> dict[str, Any]:
        """Its entry in ``outputs.subtitles_skipped`` (a bitmap or unknown track)."""
        kind = "a bitmap subtitle format" if self.codec in BITMAP_SUBTITLE_CODECS else "not a text subtitle format"
        reason = f"{self.codec} is {kind}; only text subtitles (mov_text, SubRip, WebVTT, ASS/SSA) become captions"
        return {"track": self.position, "codec": self.codec, "language": self.language, "reason": reason}


def language_tag(code: object) -> str | None:
    """A BCP 47 tag for a container's language code; None for none or ``und``."""
    text = str(code or "").strip()
    if not text or text.lower() in ("und", "unknown", "zxx", "mis"):
        return None
    return _TWO_LETTER.get(text.lower(), text)


def subtitle_tracks(streams: Iterable[dict[str, Any]]) -> tuple[SubtitleTrack, ...]:
    """The subtitle streams of ffprobe's ``streams`` list, in file order."""
    tracks: list[SubtitleTrack] = []
    for stream in (s for s in streams if s.get("codec_type") == "subtitle"):
        tags = {str(key).lower(): value for key, value in (stream.get("tags") or {}).items()}
        disposition = stream.get("disposition") or {}
        tracks.append(
            SubtitleTrack(
                position=len(tracks),
                codec=str(stream.get("codec_name") or "unknown"),
                language=language_tag(tags.get("language")),
                title=str(tags["title"])[:100] if tags.get("title") else None,
                default=bool(disposition.get("default")),
                forced=bool(disposition.get("forced")),
            )
        )
    return tuple(tracks)


@dataclass(frozen=True)
class SubtitleRendition:
    """A SUBTITLES rendition: ``{name}/index.m3u8`` under the job's ``hls/``."""

    name: str
    label: str  # NAME in the master playlist: what a player's captions menu shows
    language: str | None
    default: bool = False
    forced: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "label": self.label, "language": self.language, "default": self.default}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SubtitleRendition:
        return cls(str(data["name"]), str(data["label"]), data.get("language"), bool(data.get("default")))

    @property
    def playlist(self) -> str:
        return f"{self.name}/index.m3u8"

    def media_tag(self) -> str:
        """Its ``EXT-X-MEDIA`` line. DEFAULT only for the track the file marked so;
        AUTOSELECT for every non-forced one, so a player may pick it by the user's
        language (RFC 8216 4.3.4.1: DEFAULT=YES requires AUTOSELECT=YES)."""
        attributes = [
            "TYPE=SUBTITLES",
            f'GROUP-ID="{SUBTITLE_GROUP}"',
            f'NAME="{_quoted(self.label)}"',
            *([f'LANGUAGE="{_quoted(self.language)}"'] if self.language else []),
            f"DEFAULT={'YES' if self.default else 'NO'}",
            f"AUTOSELECT={'YES' if self.default or not self.forced else 'NO'}",
            *(["FORCED=YES"] if self.forced else []),
            f'URI="{self.playlist}"',
        ]
        return f"#EXT-X-MEDIA:{','.join(attributes)}"


def renditions_for(tracks: Sequence[SubtitleTrack]) -> list[SubtitleRendition]:
    """One rendition per text track, named ``subs-{position}``, labelled by its
    title, else its language, else "Subtitles N". At most one is DEFAULT: the
    first the file marks default."""
    renditions = []
    default_taken = False
    for track in (track for track in tracks if track.is_text):
        default = track.default and not default_taken
        default_taken = default_taken or default
        label = track.title or track.language or f"Subtitles {track.position + 1}"
        renditions.append(
            SubtitleRendition(f"subs-{track.position}", label, track.language, default=default, forced=track.forced)
        )
    return renditions


def master_with_subtitles(master: str, renditions: Sequence[SubtitleRendition]) -> str:
    """``master`` (any master playlist: ours or MediaConvert's) with ``renditions``
    listed: their EXT-X-MEDIA lines (replacing any with the same URI, so a
    repeat changes nothing) before the first variant, and ``SUBTITLES="subs"``
    on every ``EXT-X-STREAM-INF`` that has no SUBTITLES group yet."""
    ours = {rendition.playlist for rendition in renditions}
    kept = [line for line in master.splitlines() if not _is_media_tag_for(line, ours)]
    lines: list[str] = []
    inserted = False
    for line in kept:
        if line.startswith("#EXT-X-STREAM-INF:"):
            if not inserted:
                lines += [rendition.media_tag() for rendition in renditions]
                inserted = True
            if "SUBTITLES=" not in line and renditions:
                line = f'{line},SUBTITLES="{SUBTITLE_GROUP}"'
        lines.append(line)
    if not inserted:
        lines += [rendition.media_tag() for rendition in renditions]
    return "\n".join(lines) + "\n"


def _is_media_tag_for(line: str, playlists: set[str]) -> bool:
    return line.startswith("#EXT-X-MEDIA:") and any(f'URI="{playlist}"' in line for playlist in playlists)


def _quoted(value: str) -> str:
    """An HLS quoted-string may hold neither a double quote nor a line break."""
    return value.replace('"', "'").replace("\n", " ").replace("\r", " ")

"""ffprobe and playlist checks shared by the FFmpeg integration tests and the
end-to-end tests.

Every function takes a local path or an ``http(s)://`` URL (a presigned S3 URL
of an output, say). For URLs ffprobe is allowed the network protocols HLS needs;
that whitelist belongs here, in tests, never in production code, which reads
local files only.
"""

from __future__ import annotations

import json
import re
import struct
import subprocess
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin

from vidpipe.adapters.ffmpeg.process import ffmpeg_environment, find_tool

Target = str | Path
TEST_PROBE_PROTOCOLS = "file,http,https,tcp,tls,crypto"
_ATTRIBUTE = re.compile(r'([A-Z0-9-]+)=("[^"]*"|[^,]*)')


def _is_url(target: Target) -> bool:
    return isinstance(target, str) and target.startswith(("http://", "https://"))


def _ffprobe_input(target: Target) -> str:
    return str(target) if _is_url(target) else f"file:{target}"


def ffprobe_json(target: Target, *options: str, timeout_s: float = 60.0) -> dict:
    """ffprobe's JSON for ``target`` with the given ``-show_*``/``-select_streams``
    options. Raises AssertionError with ffprobe's stderr when it fails."""
    args = [
        find_tool("ffprobe"),
        "-v", "error",
        "-protocol_whitelist", TEST_PROBE_PROTOCOLS,
        "-print_format", "json",
        *options,
        _ffprobe_input(target),
    ]  # fmt: skip
    completed = subprocess.run(
        args, capture_output=True, text=True, timeout=timeout_s, env=ffmpeg_environment(), check=False
    )
    assert completed.returncode == 0, f"ffprobe {target} failed: {completed.stderr.strip()}"
    return json.loads(completed.stdout or "{}")


@dataclass(frozen=True)
class Probe:
    """ffprobe's view of a file or a media playlist: its streams and container."""

    streams: list[dict]
    format: dict

    @property
    def video(self) -> list[dict]:
        return [stream for stream in self.streams if stream.get("codec_type") == "video"]

    @property
    def audio(self) -> list[dict]:
        return [stream for stream in self.streams if stream.get("codec_type") == "audio"]

    @property
    def duration_s(self) -> float:
        """The container duration (for a playlist: that of its segments)."""
        return float(self.format["duration"])


def probe(target: Target) -> Probe:
    """Streams and format of ``target`` in one ffprobe run."""
    data = ffprobe_json(target, "-show_streams", "-show_format")
    return Probe(streams=data.get("streams", []), format=data.get("format", {}))


def video_streams(target: Target) -> list[dict]:
    return probe(target).video


def audio_streams(target: Target) -> list[dict]:
    return probe(target).audio


def duration_s(target: Target) -> float:
    return probe(target).duration_s


def keyframe_times(target: Target) -> list[float]:
    """Presentation times (s) of the first video stream's keyframes, from packet
    flags, so nothing is decoded."""
    packets = ffprobe_json(target, "-select_streams", "v:0", "-show_entries", "packet=pts_time,flags")["packets"]
    return [float(packet["pts_time"]) for packet in packets if "K" in packet.get("flags", "")]


def read_text(target: Target) -> str:
    """The text of a local file or of a URL (a playlist)."""
    if _is_url(target):
        with urllib.request.urlopen(str(target), timeout=30) as response:
            return response.read().decode("utf-8")
    return Path(target).read_text(encoding="utf-8")


def resolve(base: Target, reference: str) -> Target:
    """``reference`` (as written in a playlist) resolved against the playlist ``base``."""
    if _is_url(base):
        return urljoin(str(base), reference)
    return Path(base).parent / reference


@dataclass(frozen=True)
class Variant:
    """One ``#EXT-X-STREAM-INF`` entry of a master playlist."""

    attributes: dict[str, str]  # quotes removed
    uri: str

    @property
    def bandwidth(self) -> int:
        return int(self.attributes["BANDWIDTH"])

    @property
    def resolution(self) -> tuple[int, int]:
        width, _, height = self.attributes["RESOLUTION"].partition("x")
        return int(width), int(height)

    @property
    def codecs(self) -> list[str]:
        return self.attributes["CODECS"].split(",")


def parse_master_playlist(text: str) -> list[Variant]:
    """The variants of a master playlist, in the order listed. Raises
    AssertionError when it is not one (no ``#EXTM3U``, a STREAM-INF without URI)."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    assert lines and lines[0] == "#EXTM3U", "not an HLS playlist"
    variants: list[Variant] = []
    pending: dict[str, str] | None = None
    for line in lines[1:]:
        if line.startswith("#EXT-X-STREAM-INF:"):
            pending = {name: value.strip('"') for name, value in _ATTRIBUTE.findall(line.partition(":")[2])}
        elif not line.startswith("#"):
            assert pending is not None, f"URI {line!r} without #EXT-X-STREAM-INF"
            variants.append(Variant(attributes=pending, uri=line))
            pending = None
    assert pending is None, "#EXT-X-STREAM-INF without URI"
    return variants


def master_variants(master: Target) -> list[Variant]:
    return parse_master_playlist(read_text(master))


def segment_durations(media_playlist: Target) -> list[float]:
    """The ``#EXTINF`` durations of a media playlist."""
    return [
        float(line.partition(":")[2].split(",")[0])
        for line in read_text(media_playlist).splitlines()
        if line.startswith("#EXTINF:")
    ]


def mp4_top_level_boxes(data: bytes) -> list[str]:
    """The types of the MP4's top-level boxes, in file order (ISO BMFF: a 32-bit
    size, a 4-character type; size 1 means a 64-bit size follows)."""
    types, offset = [], 0
    while offset + 8 <= len(data):
        size, kind = struct.unpack_from(">I4s", data, offset)
        if size == 1:
            size = struct.unpack_from(">Q", data, offset + 8)[0]
        types.append(kind.decode("ascii"))
        if size < 8:  # 0: the box runs to the end of the file
            break
        offset += size
    return types

"""Embedded subtitle tracks with real FFmpeg: a clip made here with a mov_text
track becomes a SUBTITLES rendition listed in the master playlist."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from transcode.domain_logic.transcoding import transcode_to_hls
from vidpipe.adapters.ffmpeg.process import ffmpeg_environment, find_tool

pytestmark = pytest.mark.ffmpeg

SRT = "1\n00:00:00,500 --> 00:00:01,500\nBonjour\n\n2\n00:00:02,000 --> 00:00:02,800\nAu revoir\n"


def test_GIVEN_a_clip_with_a_mov_text_track_WHEN_transcoded_THEN_a_subtitles_rendition_is_listed(
    tmp_path: Path,
) -> None:
    (tmp_path / "subs.srt").write_text(SRT, encoding="utf-8")
    clip = tmp_path / "clip.mp4"
    subprocess.run(
        [find_tool("ffmpeg"), "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=160x120:rate=25:duration=3",
         "-i", str(tmp_path / "subs.srt"), "-map", "0", "-map", "1", "-c:v", "libx264", "-c:s", "mov_text",
         "-metadata:s:s:0", "language=fra", str(clip)],
        check=True, env=ffmpeg_environment(),
    )  # fmt: skip

    result = transcode_to_hls(clip, tmp_path / "out", timeout_s=120)

    master = (tmp_path / "out" / "master.m3u8").read_text()
    assert 'TYPE=SUBTITLES,GROUP-ID="subs",NAME="fr",LANGUAGE="fr"' in master
    assert 'URI="subs-0/index.m3u8"' in master
    assert all('SUBTITLES="subs"' in line for line in master.splitlines() if line.startswith("#EXT-X-STREAM-INF"))
    segment = (tmp_path / "out" / "subs-0" / "seg_00000.vtt").read_text()
    assert "Bonjour" in segment and "Au revoir" in segment
    assert result.subtitles.skipped == []

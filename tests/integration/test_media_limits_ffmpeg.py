"""The memory limit on real FFmpeg runs: a limit too small for the ladder fails
the job with MEMORY_LIMIT_EXCEEDED and says which setting to look at; the
default limit leaves room for a 1080p ladder."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from transcode.domain_logic.transcoding import transcode_to_hls
from vidpipe.adapters.ffmpeg.limits import memory_limit_mb
from vidpipe.adapters.ffmpeg.process import ffmpeg_environment, find_tool
from vidpipe.domain.errors import MemoryLimitExceeded

pytestmark = pytest.mark.ffmpeg

SAMPLE = Path(__file__).resolve().parents[2] / "sample_media" / "landscape_16x9_stereo.mp4"


@pytest.mark.parametrize("limit_mb", [300, 450, 600])
def test_GIVEN_a_limit_too_small_for_the_ladder_WHEN_transcoded_THEN_memory_limit_exceeded(
    limit_mb: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # ffprobe fits in these; the decoder plus four x264 encoders do not.
    monkeypatch.setenv("FFMPEG_MEMORY_LIMIT_MB", str(limit_mb))

    with pytest.raises(MemoryLimitExceeded, match=f"more than the {limit_mb} MiB .*FFMPEG_MEMORY_LIMIT_MB") as caught:
        transcode_to_hls(SAMPLE, tmp_path / "out", timeout_s=60)

    assert caught.value.code == "MEMORY_LIMIT_EXCEEDED"


def test_GIVEN_the_default_limit_WHEN_a_1080p_clip_is_transcoded_THEN_the_whole_ladder_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FFMPEG_MEMORY_LIMIT_MB", raising=False)
    assert (memory_limit_mb() or 0) >= 2048
    clip = tmp_path / "1080p.mp4"
    subprocess.run(
        [find_tool("ffmpeg"), "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=1920x1080:rate=30:duration=2",
         "-f", "lavfi", "-i", "sine=duration=2", "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac",
         "-shortest", str(clip)],
        env=ffmpeg_environment(), check=True, timeout=120,
    )  # fmt: skip

    result = transcode_to_hls(clip, tmp_path / "out", timeout_s=300)

    assert [rendition.name for rendition in result.renditions] == ["1080p", "720p", "480p", "360p", "240p"]

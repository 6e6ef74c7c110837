"""The benchmarks' generated sources (nothing large is committed): a test
pattern with a tone, H.264/AAC in a fast-start MP4, as a phone or a screen
recorder uploads it."""

from __future__ import annotations

import subprocess
from pathlib import Path

from vidpipe.adapters.ffmpeg.process import ffmpeg_environment, find_tool


def generate_test_pattern(
    folder: Path, *, width: int, height: int, seconds: int, video_bitrate: str, keyframe_every: int
) -> Path:
    """``seconds`` of ``width``x``height`` at 30 fps with a keyframe every
    ``keyframe_every`` frames, stereo 48 kHz; the file's path in ``folder``."""
    path = folder / f"bench_{height}p_{seconds}s.mp4"
    subprocess.run(
        [find_tool("ffmpeg"), "-hide_banner", "-loglevel", "error", "-y",
         "-f", "lavfi", "-i", f"testsrc2=s={width}x{height}:r=30:d={seconds}",
         "-f", "lavfi", "-i", f"sine=f=440:r=48000:d={seconds}",
         "-c:v", "libx264", "-preset", "ultrafast", "-b:v", video_bitrate, "-g", str(keyframe_every),
         "-pix_fmt", "yuv420p", "-c:a", "aac", "-ac", "2", "-b:a", "128k", "-movflags", "+faststart", str(path)],
        env=ffmpeg_environment(), check=True,
    )  # fmt: skip
    return path

"""Real FFmpeg: early playback in the single-process path. The lowest rung is
written (and playable on its own) before the rest of the ladder, which a second
process encodes at the same time, and the final outputs are the same ladder as
without it."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from tests import media_checks
from transcode.domain_logic import transcoding
from transcode.domain_logic.hls import MASTER_PLAYLIST_NAME, MEDIA_PLAYLIST_NAME
from transcode.domain_logic.ladder import Rendition
from transcode.domain_logic.transcoding import transcode_to_hls
from vidpipe.adapters.ffmpeg.process import run_ffmpeg
from vidpipe.domain.errors import FfmpegError

pytestmark = pytest.mark.ffmpeg

SAMPLES = Path(__file__).resolve().parents[2] / "sample_media"
SAMPLE = SAMPLES / "landscape_16x9_stereo.mp4"


def test_GIVEN_early_playback_WHEN_transcoded_THEN_the_lowest_rung_alone_is_playable_first(tmp_path: Path) -> None:
    output_dir = tmp_path / "hls"
    seen: list[tuple[str, list[str], float]] = []
    progress: list[float] = []

    def on_lowest_rung(rendition: Rendition) -> None:
        # what a player would get at this moment (the other rungs may be half-written)
        variants = media_checks.master_variants(output_dir / MASTER_PLAYLIST_NAME)
        duration = media_checks.duration_s(output_dir / rendition.name / MEDIA_PLAYLIST_NAME)
        seen.append((rendition.name, [v.uri for v in variants], duration))

    result = transcode_to_hls(
        SAMPLE, output_dir, timeout_s=120, on_lowest_rung=on_lowest_rung, on_progress=progress.append
    )

    # THEN the callback came once, with only the lowest rung listed, and complete
    assert seen == [("240p", ["240p/index.m3u8"], pytest.approx(6.0, abs=0.1))]
    # AND the final master lists the whole ladder, highest first, each rung complete
    names = [r.name for r in result.renditions]
    assert names == ["720p", "480p", "360p", "240p"]
    assert [v.uri for v in media_checks.master_variants(output_dir / MASTER_PLAYLIST_NAME)] == [
        f"{name}/index.m3u8" for name in names
    ]
    keyframes = {
        name: [round(t, 3) for t in media_checks.keyframe_times(output_dir / name / MEDIA_PLAYLIST_NAME)]
        for name in names
    }
    assert len({tuple(times) for times in keyframes.values()}) == 1  # still aligned across the two passes
    # AND progress never went backwards across the two passes
    assert progress == sorted(progress) and progress[-1] == 1.0


@pytest.mark.parametrize("failing_pass", ["lowest rung", "other rungs"])
def test_GIVEN_one_early_playback_pass_fails_WHEN_transcoding_THEN_the_other_ffmpeg_is_stopped_and_the_failure_raised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing_pass: str
) -> None:
    # GIVEN one pass that fails once the other's FFmpeg is running, and the
    # other read at the clip's own pace (-re), so it would run for 20 s
    started: list[subprocess.Popen[Any]] = []
    real_popen = subprocess.Popen

    def popen_and_record(*args: Any, **kwargs: Any) -> subprocess.Popen[Any]:
        process = real_popen(*args, **kwargs)
        started.append(process)
        return process

    monkeypatch.setattr(subprocess, "Popen", popen_and_record)

    def one_pass(args: Sequence[str], *, niceness_change: int = 0, **kwargs: Any) -> None:
        is_lowest = niceness_change != 0
        if is_lowest == (failing_pass == "lowest rung"):
            while not any(p for p in started if "-re" in p.args):
                time.sleep(0.01)
            raise FfmpegError(f"the {failing_pass} pass failed")
        run_ffmpeg(["-re", *args], niceness_change=niceness_change, **kwargs)

    monkeypatch.setattr(transcoding, "run_ffmpeg", one_pass)
    progress: list[float] = []

    # WHEN the ladder is transcoded with early playback
    with pytest.raises(FfmpegError, match=f"the {failing_pass} pass failed"):
        transcode_to_hls(
            SAMPLES / "long_20s_640x360.mp4", tmp_path / "hls", timeout_s=120,
            on_lowest_rung=lambda _rendition: None, on_progress=progress.append,
        )  # fmt: skip

    # THEN the other pass's FFmpeg was killed, not left to encode for nothing
    [other] = [p for p in started if "-re" in p.args]
    assert other.returncode == -signal.SIGKILL

"""Real FFmpeg: early playback in the single-process path. The lowest rung is
written (and playable on its own) before the rest of the ladder, and the final
outputs are the same ladder as without it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import media_checks
from transcode.domain_logic.hls import MASTER_PLAYLIST_NAME, MEDIA_PLAYLIST_NAME
from transcode.domain_logic.ladder import Rendition
from transcode.domain_logic.transcoding import transcode_to_hls

pytestmark = pytest.mark.ffmpeg

SAMPLE = Path(__file__).resolve().parents[2] / "sample_media" / "landscape_16x9_stereo.mp4"


def test_GIVEN_early_playback_WHEN_transcoded_THEN_the_lowest_rung_alone_is_playable_first(tmp_path: Path) -> None:
    output_dir = tmp_path / "hls"
    seen: list[tuple[str, list[str], list[str], float]] = []
    progress: list[float] = []

    def on_lowest_rung(rendition: Rendition) -> None:
        # what a player would get at this moment
        variants = media_checks.master_variants(output_dir / MASTER_PLAYLIST_NAME)
        folders = sorted(p.name for p in output_dir.iterdir() if p.is_dir())
        duration = media_checks.duration_s(output_dir / rendition.name / MEDIA_PLAYLIST_NAME)
        seen.append((rendition.name, [v.uri for v in variants], folders, duration))

    result = transcode_to_hls(
        SAMPLE, output_dir, timeout_s=120, on_lowest_rung=on_lowest_rung, on_progress=progress.append
    )

    # THEN the callback came once, with only the lowest rung written and listed, complete
    assert seen == [("240p", ["240p/index.m3u8"], ["240p"], pytest.approx(6.0, abs=0.1))]
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

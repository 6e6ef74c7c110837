"""Real FFmpeg: the chunked path's audio is encoded chunk by chunk, and the
joins between chunks must neither click nor drift.

The source is a pure 440 Hz tone at 44.1 kHz, where 8 s chunks do not fall on
AAC frame boundaries (8 s is 344.5 frames), so the planner's frame grid is
really exercised. A tone is the hardest case for a join: any discontinuity
spreads over every frequency and stands out of AAC's small, steady coding
error. We decode the stitched audio and the source and compare them sample by
sample: the error near a join must look like the error anywhere else."""

from __future__ import annotations

import math
import subprocess
from array import array
from pathlib import Path

import pytest

from transcode.domain_logic import chunk_audio
from transcode.domain_logic.chunk_planning import plan_chunks
from transcode.domain_logic.chunking import transcode_chunked
from transcode.domain_logic.hls import MEDIA_PLAYLIST_NAME
from transcode.domain_logic.ladder import ladder_from_text
from vidpipe.adapters.ffmpeg.probe import probe_media
from vidpipe.adapters.ffmpeg.process import ffmpeg_environment, find_tool

pytestmark = pytest.mark.ffmpeg

RATE = 44100
CHUNK_S = 8
WINDOW = 256  # samples per error measurement: a click lasts a few of them


@pytest.fixture(scope="module")
def tone_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tone") / "tone_20s_44k.mp4"
    subprocess.run(
        [find_tool("ffmpeg"), "-v", "error", "-f", "lavfi", "-i", "testsrc2=s=320x180:r=30:d=20",
         "-f", "lavfi", "-i", f"aevalsrc=0.3*sin(2*PI*440*t):s={RATE}:d=20",
         "-c:v", "libx264", "-preset", "ultrafast", "-g", "60", "-c:a", "aac", "-b:a", "128k", str(path)],
        env=ffmpeg_environment(), check=True, timeout=120,
    )  # fmt: skip
    return path


def decode_left_channel(target: Path) -> array:
    """Every audio sample of ``target`` (left channel, float), as the player hears it."""
    raw = subprocess.run(
        [find_tool("ffmpeg"), "-v", "error", "-protocol_whitelist", "file", "-i", f"file:{target}",
         "-map", "0:a:0", "-ac", "1", "-ar", str(RATE), "-f", "f32le", "-"],
        env=ffmpeg_environment(), check=True, capture_output=True, timeout=120,
    ).stdout  # fmt: skip
    samples = array("f")
    samples.frombytes(raw)
    return samples


def best_lag(reference: array, decoded: array, around: int, spread: int = 64) -> int:
    """The shift of ``decoded`` against ``reference`` with the least error on one
    second of tone (the stitched track starts with the encoder's priming frame)."""
    start, length = RATE, 2048

    def error(lag: int) -> float:
        return sum((decoded[start + lag + i] - reference[start + i]) ** 2 for i in range(length))

    return min(range(around - spread, around + spread + 1), key=error)


def window_errors(reference: array, decoded: array, lag: int) -> list[float]:
    """RMS difference per WINDOW samples, over the whole track."""
    count = min(len(reference), len(decoded) - lag) // WINDOW
    errors = []
    for window in range(count):
        base = window * WINDOW
        total = sum((decoded[base + lag + i] - reference[base + i]) ** 2 for i in range(WINDOW))
        errors.append(math.sqrt(total / WINDOW))
    return errors


def join_and_elsewhere_errors(source: Path, chunked_dir: Path) -> tuple[float, float, list[int]]:
    """The largest window error within a frame of any join, the largest elsewhere
    (the first and last half second left out: fades of the codec itself), and the joins."""
    plan = plan_chunks(probe_media(source), chunk_s=CHUNK_S)
    joins = [chunk.audio_start for chunk in plan.chunks if chunk.audio_start is not None]
    reference = decode_left_channel(source)
    decoded = decode_left_channel(chunked_dir / "180p" / MEDIA_PLAYLIST_NAME)
    lag = best_lag(reference, decoded, around=1024)
    errors = window_errors(reference, decoded, lag)
    near, elsewhere = [], []
    for index, error in enumerate(errors):
        middle = index * WINDOW + WINDOW // 2
        if middle < RATE // 2 or middle > len(errors) * WINDOW - RATE // 2:
            continue
        (near if any(abs(middle - join) <= 1024 + WINDOW for join in joins) else elsewhere).append(error)
    return max(near), max(elsewhere), joins


def test_GIVEN_44k_audio_cut_into_chunks_WHEN_stitched_THEN_the_joins_neither_click_nor_drift(
    tone_source: Path, tmp_path: Path
) -> None:
    result = transcode_chunked(tone_source, tmp_path / "hls", timeout_s=300, chunk_s=CHUNK_S,
                               ladder_config=ladder_from_text("180:300"))  # fmt: skip
    assert [rendition.name for rendition in result.renditions] == ["180p"]

    near, elsewhere, joins = join_and_elsewhere_errors(tone_source, tmp_path / "hls")

    assert len(joins) == 2 and all(join % 1024 for join in (RATE * 8, RATE * 16))  # GIVEN joins off the 8 s marks
    # No click: the error at a join is AAC's ordinary coding error (a click from an
    # encoder restarted at the join measured several times larger).
    assert near <= 1.5 * elsewhere, (near, elsewhere)
    # No drift: the whole track is as long as the source's, to the AAC frame.
    decoded = decode_left_channel(tmp_path / "hls" / "180p" / MEDIA_PLAYLIST_NAME)
    assert abs(len(decoded) - 1024 - RATE * 20) <= 1024


def test_GIVEN_chunks_encoded_without_preroll_THEN_the_join_check_sees_the_clicks(
    tone_source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check above can fail: with each chunk's encoder started cold at its
    first sample (no pre-roll), the same measurement finds the joins."""
    monkeypatch.setattr(chunk_audio, "AUDIO_PREROLL_FRAMES", 0)
    transcode_chunked(tone_source, tmp_path / "hls", timeout_s=300, chunk_s=CHUNK_S,
                      ladder_config=ladder_from_text("180:300"))  # fmt: skip

    near, elsewhere, _ = join_and_elsewhere_errors(tone_source, tmp_path / "hls")

    assert near > 1.5 * elsewhere, (near, elsewhere)

"""Real FFmpeg: the chunked path (plan, encode chunk by chunk from the source,
stitch) on a 20 s sample cut into three 8 s chunks, checked against the source
and against the single-process ladder of the same file."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests import media_checks
from transcode.domain_logic.chunk_planning import plan_chunks
from transcode.domain_logic.chunking import ChunkedTimings, transcode_chunked
from transcode.domain_logic.hls import MASTER_PLAYLIST_NAME, MEDIA_PLAYLIST_NAME
from transcode.domain_logic.transcoding import TranscodeResult, transcode_to_hls
from vidpipe.adapters.ffmpeg.probe import probe_media
from vidpipe.adapters.ffmpeg.process import ffmpeg_environment, find_tool

pytestmark = pytest.mark.ffmpeg

SAMPLE = Path(__file__).resolve().parents[2] / "sample_media" / "long_20s_640x360.mp4"
CHUNK_S = 8
TIMEOUT_S = 300.0


def packet_times(target: Path, stream: str) -> list[float]:
    """Presentation times of every packet of one stream, in playback order."""
    packets = media_checks.ffprobe_json(target, "-select_streams", stream, "-show_entries", "packet=pts_time")
    return sorted(float(packet["pts_time"]) for packet in packets["packets"])


def keyframe_times(playlist: Path) -> list[float]:
    return [round(t, 3) for t in media_checks.keyframe_times(playlist)]


def frame_count(target: Path) -> int:
    data = media_checks.ffprobe_json(
        target, "-select_streams", "v:0", "-count_packets", "-show_entries", "stream=nb_read_packets"
    )
    return int(data["streams"][0]["nb_read_packets"])


@pytest.fixture(scope="module")
def outputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[TranscodeResult, Path]]:
    """The sample transcoded both ways, once for the module."""
    root = tmp_path_factory.mktemp("chunked")
    timings: list[ChunkedTimings] = []
    chunked = transcode_chunked(
        SAMPLE, root / "chunked", timeout_s=TIMEOUT_S, chunk_s=CHUNK_S, on_timings=timings.append
    )
    single = transcode_to_hls(SAMPLE, root / "single", timeout_s=TIMEOUT_S)
    assert len(timings) == 1 and len(timings[0].chunks_s) == 3  # GIVEN three chunks really were made
    return {"chunked": (chunked, root / "chunked"), "single": (single, root / "single")}


def test_GIVEN_the_sample_WHEN_planned_THEN_three_chunks_cut_a_quarter_frame_before_8s_and_16s() -> None:
    source = probe_media(SAMPLE)

    plan = plan_chunks(source, chunk_s=CHUNK_S)

    early = 1 / 120  # a quarter frame
    assert [(chunk.start_s, chunk.end_s) for chunk in plan.chunks] == [
        (None, pytest.approx(8 - early)),
        (pytest.approx(8 - early), pytest.approx(16 - early)),
        (pytest.approx(16 - early), None),
    ]
    # 48 kHz: the first AAC frame at or after each cut (8 s is exactly frame 375)
    assert [(chunk.audio_start, chunk.audio_end) for chunk in plan.chunks] == [
        (None, 375 * 1024),
        (375 * 1024, 750 * 1024),
        (750 * 1024, None),
    ]


def test_GIVEN_chunked_output_THEN_every_rendition_has_exactly_the_sources_frames(outputs) -> None:
    result, folder = outputs["chunked"]
    expected = frame_count(SAMPLE)

    assert expected == 600
    for rendition in result.renditions:
        assert frame_count(folder / rendition.name / MEDIA_PLAYLIST_NAME) == expected, rendition.name


def test_GIVEN_chunked_output_THEN_timestamps_run_on_without_gap_or_overlap_across_chunks(outputs) -> None:
    result, folder = outputs["chunked"]
    frame_s = 1 / 30
    audio_packet_s = 1024 / 48000

    for rendition in result.renditions:
        playlist = folder / rendition.name / MEDIA_PLAYLIST_NAME
        video = packet_times(playlist, "v:0")
        audio = packet_times(playlist, "a:0")
        video_steps = [later - earlier for earlier, later in zip(video, video[1:], strict=False)]
        audio_steps = [later - earlier for earlier, later in zip(audio, audio[1:], strict=False)]
        assert all(abs(step - frame_s) < 0.001 for step in video_steps), (rendition.name, video_steps)
        assert all(abs(step - audio_packet_s) < 0.001 for step in audio_steps), rendition.name


def test_GIVEN_chunked_output_THEN_audio_and_video_keep_the_single_process_alignment_within_a_frame(outputs) -> None:
    chunked, chunked_dir = outputs["chunked"]
    _, single_dir = outputs["single"]
    frame_s = 1 / 30

    for rendition in chunked.renditions:
        offsets = {}
        for name, folder in (("chunked", chunked_dir), ("single", single_dir)):
            playlist = folder / rendition.name / MEDIA_PLAYLIST_NAME
            video, audio = packet_times(playlist, "v:0"), packet_times(playlist, "a:0")
            # Where the audio starts and ends, measured from the first picture.
            offsets[name] = (audio[0] - video[0], audio[-1] - video[0], video[-1] - video[0])
        for chunked_offset, single_offset in zip(offsets["chunked"], offsets["single"], strict=True):
            assert abs(chunked_offset - single_offset) <= frame_s, (rendition.name, offsets)


def test_GIVEN_chunked_output_THEN_ffmpeg_decodes_every_rendition_end_to_end_without_error(outputs) -> None:
    result, folder = outputs["chunked"]

    for rendition in result.renditions:
        decoded = subprocess.run(
            [find_tool("ffmpeg"), "-v", "error", "-protocol_whitelist", "file",
             "-i", f"file:{folder / rendition.name / MEDIA_PLAYLIST_NAME}", "-f", "null", "-"],
            capture_output=True, text=True, timeout=120, env=ffmpeg_environment(), check=False,
        )  # fmt: skip
        assert decoded.returncode == 0 and decoded.stderr.strip() == "", decoded.stderr


def test_GIVEN_chunked_output_THEN_keyframes_are_aligned_across_renditions_and_every_segment_starts_on_one(
    outputs,
) -> None:
    result, folder = outputs["chunked"]

    keyframes = {
        rendition.name: keyframe_times(folder / rendition.name / MEDIA_PLAYLIST_NAME) for rendition in result.renditions
    }

    assert len({tuple(times) for times in keyframes.values()}) == 1, keyframes
    first = next(iter(keyframes.values()))
    # one keyframe per 4 s segment: five for 20 s
    assert len(first) == 5 and [round(b - a, 3) for a, b in zip(first, first[1:], strict=False)] == [4.0] * 4


def test_GIVEN_both_paths_THEN_same_renditions_and_durations(outputs) -> None:
    chunked, chunked_dir = outputs["chunked"]
    single, single_dir = outputs["single"]

    assert chunked.renditions == single.renditions
    chunked_master = media_checks.master_variants(chunked_dir / MASTER_PLAYLIST_NAME)
    single_master = media_checks.master_variants(single_dir / MASTER_PLAYLIST_NAME)
    assert [(v.uri, v.resolution, v.codecs) for v in chunked_master] == [
        (v.uri, v.resolution, v.codecs) for v in single_master
    ]
    for rendition in chunked.renditions:
        chunked_durations = media_checks.segment_durations(chunked_dir / rendition.name / MEDIA_PLAYLIST_NAME)
        single_durations = media_checks.segment_durations(single_dir / rendition.name / MEDIA_PLAYLIST_NAME)
        assert chunked_durations == pytest.approx(single_durations, abs=0.01)
        assert media_checks.duration_s(chunked_dir / rendition.name / MEDIA_PLAYLIST_NAME) == pytest.approx(
            media_checks.duration_s(single_dir / rendition.name / MEDIA_PLAYLIST_NAME), abs=1 / 30
        )


@pytest.fixture(scope="module")
def sparse_keyframes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample re-encoded with a single keyframe: no chunk start can be copied."""
    path = tmp_path_factory.mktemp("sparse") / "one_keyframe.mp4"
    subprocess.run(
        [find_tool("ffmpeg"), "-v", "error", "-i", str(SAMPLE), "-c:v", "libx264", "-preset", "ultrafast",
         "-g", "1000", "-keyint_min", "1000", "-sc_threshold", "0", "-c:a", "copy", str(path)],
        env=ffmpeg_environment(), check=True, timeout=120,
    )  # fmt: skip
    return path


def test_GIVEN_one_keyframe_in_the_whole_source_WHEN_chunked_THEN_every_boundary_is_reencoded_frame_exact(
    sparse_keyframes: Path, tmp_path: Path
) -> None:
    assert media_checks.keyframe_times(sparse_keyframes) == [0.0]

    timings: list[ChunkedTimings] = []
    result = transcode_chunked(
        sparse_keyframes, tmp_path / "hls", timeout_s=TIMEOUT_S, chunk_s=CHUNK_S, on_timings=timings.append
    )

    assert len(timings[0].chunks_s) == 3
    for rendition in result.renditions:
        playlist = tmp_path / "hls" / rendition.name / MEDIA_PLAYLIST_NAME
        assert frame_count(playlist) == 600
        video = packet_times(playlist, "v:0")
        assert all(abs(b - a - 1 / 30) < 0.001 for a, b in zip(video, video[1:], strict=False))


def remade(tmp_path: Path, name: str, *options: str) -> Path:
    """The sample rewritten by FFmpeg with ``options`` (between input and output)."""
    path = tmp_path / name
    subprocess.run([find_tool("ffmpeg"), "-v", "error", "-i", str(SAMPLE), *options, str(path)],
                   env=ffmpeg_environment(), check=True, timeout=120)  # fmt: skip
    return path


def test_GIVEN_audio_ending_after_5s_of_20_WHEN_chunked_THEN_later_chunks_carry_silence_to_the_end(
    tmp_path: Path,
) -> None:
    short_audio = remade(tmp_path, "short_audio.mp4", "-c:v", "copy", "-af", "atrim=0:5", "-c:a", "aac")

    result = transcode_chunked(short_audio, tmp_path / "hls", timeout_s=TIMEOUT_S, chunk_s=CHUNK_S)

    playlist = tmp_path / "hls" / result.renditions[-1].name / MEDIA_PLAYLIST_NAME
    assert frame_count(playlist) == 600
    video, audio = packet_times(playlist, "v:0"), packet_times(playlist, "a:0")
    assert audio[-1] == pytest.approx(video[-1], abs=0.1)  # every chunk has audio: players do not stall
    assert all(abs(b - a - 1024 / 48000) < 0.001 for a, b in zip(audio, audio[1:], strict=False))


def test_GIVEN_an_mpegts_upload_WHEN_chunked_THEN_remuxed_once_for_seeking_and_frame_exact(tmp_path: Path) -> None:
    transport_stream = remade(tmp_path, "sample.ts", "-c", "copy", "-f", "mpegts")

    result = transcode_chunked(transport_stream, tmp_path / "hls", timeout_s=TIMEOUT_S, chunk_s=CHUNK_S,
                               work_dir=tmp_path / "work")  # fmt: skip

    assert (tmp_path / "work" / "seekable.mkv").exists()
    for rendition in result.renditions:
        assert frame_count(tmp_path / "hls" / rendition.name / MEDIA_PLAYLIST_NAME) == 600


def test_GIVEN_a_variable_frame_rate_source_WHEN_chunked_THEN_the_same_frames_and_durations_as_one_pass(
    tmp_path: Path,
) -> None:
    # 30 fps for 10 s, then every other frame dropped (15 fps), kept as variable frame rate
    variable = remade(
        tmp_path,
        "vfr.mp4",
        "-vf",
        r"select='lt(t\,10)+not(mod(n\,2))'",
        "-fps_mode",
        "vfr",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-c:a",
        "copy",
    )
    assert frame_count(variable) == 450  # GIVEN really variable: 300 + 150 frames over 20 s

    chunked = transcode_chunked(variable, tmp_path / "chunked", timeout_s=TIMEOUT_S, chunk_s=CHUNK_S)
    transcode_to_hls(variable, tmp_path / "single", timeout_s=TIMEOUT_S)

    for rendition in chunked.renditions:
        chunked_playlist = tmp_path / "chunked" / rendition.name / MEDIA_PLAYLIST_NAME
        single_playlist = tmp_path / "single" / rendition.name / MEDIA_PLAYLIST_NAME
        assert frame_count(chunked_playlist) == frame_count(single_playlist), rendition.name
        assert media_checks.duration_s(chunked_playlist) == pytest.approx(
            media_checks.duration_s(single_playlist), abs=1 / 15
        )
        video = packet_times(chunked_playlist, "v:0")
        assert len(set(video)) == len(video)  # no frame twice across a join


def test_GIVEN_a_chunk_length_not_a_multiple_of_the_segment_THEN_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="multiple"):
        transcode_chunked(SAMPLE, tmp_path, timeout_s=TIMEOUT_S, chunk_s=6)

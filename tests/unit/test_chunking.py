"""The chunk planner, the chunk encoder's arguments and the stitcher (no FFmpeg needed)."""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import pytest

from tests import media_checks
from tests.filter_graph_text import filters_in, graph_of
from transcode.domain_logic.chunk_audio import adts_frames, audio_window, keep_adts_frames
from transcode.domain_logic.chunk_encoding import ChunkOutput, Segment, build_chunk_args, build_chunk_audio_args
from transcode.domain_logic.chunk_planning import ChunkBounds, ChunkTask, check_chunk_length, plan_chunks
from transcode.domain_logic.chunk_stitching import stitch_playlists
from transcode.domain_logic.hls import build_hls_args, video_encoder_args
from transcode.domain_logic.ladder import plan_ladder
from vidpipe.domain.errors import FfmpegError
from vidpipe.domain.source_info import CODEC_WHITELIST, SourceInfo

SOURCE = SourceInfo(
    duration_s=100.0, width=1280, height=720, rotation=0, frame_rate=Fraction(30), video_codec="h264",
    audio_codec="aac", audio_channels=2, format_name="mov,mp4,m4a,3gp,3g2,mj2", audio_sample_rate=48000,
)  # fmt: skip
EARLY = 1 / 120  # a quarter frame at 30 fps


def test_GIVEN_100s_WHEN_planned_in_32s_chunks_THEN_cut_a_quarter_frame_early_and_a_short_tail_is_merged() -> None:
    plan = plan_chunks(SOURCE, chunk_s=32)

    # cuts before 32 and 64 s; the last 4 s (< 8 s, a quarter chunk) stay in the third chunk
    assert [(c.start_s, c.end_s) for c in plan.chunks] == [
        (None, pytest.approx(32 - EARLY)),
        (pytest.approx(32 - EARLY), pytest.approx(64 - EARLY)),
        (pytest.approx(64 - EARLY), None),
    ]
    # audio: 48 kHz, 32 s is exactly AAC frame 1500
    assert [(c.audio_start, c.audio_end) for c in plan.chunks] == [
        (None, 1500 * 1024),
        (1500 * 1024, 3000 * 1024),
        (3000 * 1024, None),
    ]


def test_GIVEN_44k_audio_WHEN_planned_THEN_audio_cuts_at_the_first_aac_frame_after_the_video_cut() -> None:
    plan = plan_chunks(replace(SOURCE, audio_sample_rate=44100), chunk_s=32)

    # (32 - 1/60) s * 44100 = 1410465 samples: frame 1378 (1411072) is the first at or after it
    assert [c.audio_start for c in plan.chunks] == [None, 1378 * 1024, 2756 * 1024]
    assert all(c.audio_start is None or c.audio_start % 1024 == 0 for c in plan.chunks)


def test_GIVEN_streams_starting_late_WHEN_planned_THEN_both_grids_start_where_their_stream_does() -> None:
    late = replace(SOURCE, duration_s=20.0, video_start_s=1.4, audio_start_s=0.5)

    plan = plan_chunks(late, chunk_s=8)

    assert [c.start_s for c in plan.chunks] == [None, pytest.approx(9.4 - EARLY), pytest.approx(17.4 - EARLY)]
    assert plan.audio_origin == 24000
    assert all((c.audio_start - 24000) % 1024 == 0 for c in plan.chunks[1:])


def test_GIVEN_no_audio_or_a_short_source_THEN_no_audio_bounds_and_one_chunk() -> None:
    assert plan_chunks(replace(SOURCE, audio_codec=None), chunk_s=32).chunks[1].audio_start is None
    assert plan_chunks(replace(SOURCE, duration_s=5.0), chunk_s=32).chunks == (ChunkBounds(None, None, None, None),)


def test_GIVEN_bad_chunk_lengths_THEN_refused() -> None:
    with pytest.raises(ValueError):
        plan_chunks(SOURCE, chunk_s=0)
    with pytest.raises(ValueError):
        check_chunk_length(30, 4)
    check_chunk_length(32, 4)


def middle_task(index: int = 1) -> ChunkTask:
    plan = plan_chunks(SOURCE, chunk_s=32)
    return ChunkTask.of(plan, index, plan_ladder(SOURCE), SOURCE)


def test_GIVEN_a_task_WHEN_sent_as_json_and_back_THEN_unchanged() -> None:
    task = middle_task()

    assert ChunkTask.from_dict(task.to_dict()) == task
    assert task.source_end_s == 100.0 and task.demuxer == "mov"


def test_GIVEN_chunks_THEN_audio_windows_keep_whole_frames_after_a_preroll_and_the_first_keeps_the_priming() -> None:
    plan = plan_chunks(SOURCE, chunk_s=32)
    windows = [audio_window(ChunkTask.of(plan, i, plan_ladder(SOURCE), SOURCE)) for i in range(plan.total)]

    # the first chunk: from the audio's first sample, priming frame kept, 1500 frames of its own
    assert (windows[0].first, windows[0].keep_from, windows[0].count, windows[0].kept_start) == (0, 0, 1501, -1024)
    # a middle one: two frames of pre-roll and two of post-roll, its own 1500 frames kept after priming + pre-roll
    middle = windows[1]
    assert (middle.first, middle.last) == (1500 * 1024 - 2048, 3000 * 1024 + 2048)
    assert (middle.keep_from, middle.count, middle.kept_start) == (3, 1500, 1500 * 1024)
    # the last: to the end of the audio
    assert (windows[2].last, windows[2].count) == (None, None)


def test_GIVEN_a_middle_chunk_WHEN_audio_args_built_THEN_seek_before_the_preroll_trim_to_the_window_and_pad() -> None:
    args = build_chunk_audio_args(
        middle_task(),
        "https://s3/bucket/uploads/j/source?X-Amz-Signature=s",
        Path("/w/a.aac"),
        bitrate_kbps=128,
        pad_to_samples=1500 * 1024 + 4096,
    )

    assert args[:4] == ["-copyts", "-noaccurate_seek", "-ss", f"{(1500 * 1024 - 2048) / 48000 - 1:.6f}"]
    assert args[args.index("-protocol_whitelist") + 1] == "https,tls,tcp"
    assert (
        args[args.index("-af") + 1] == f"atrim=start_pts={1500 * 1024 - 2048}:end_pts={3000 * 1024 + 2048},"
        f"apad=whole_len={1500 * 1024 + 4096}"
    )
    assert args[-3:] == ["-f", "adts", "/w/a.aac"]


def test_GIVEN_a_chunk_WHEN_args_built_THEN_it_reads_its_part_trims_exactly_and_uses_the_ladders_x264_options() -> None:
    ladder = tuple(plan_ladder(SOURCE))
    task = middle_task()

    args = build_chunk_args(task, Path("/w/source"), Path("/w/out/audio_0001.aac"), Path("/w/out"))

    assert args[:15] == [
        "-copyts", "-noaccurate_seek", "-ss", f"{32 - EARLY - 1:.6f}",
        "-protocol_whitelist", "file", "-f", "mov", "-format_whitelist", "mov",
        "-codec_whitelist", CODEC_WHITELIST, "-i", "file:/w/source",
        "-itsoffset",
    ]  # fmt: skip
    assert float(args[15]) == pytest.approx(1500 * 1024 / 48000)
    # constant rate on the whole file's grid from the last slot before the seek, then the chunk's exact frames
    assert filters_in(graph_of(args))[:3] == [
        f"fps=fps=30/1:start_time={30 + 29 / 30:.6f}",
        f"trim=end={64 - EARLY:.6f}:start={32 - EARLY:.6f}",
        "split=4",
    ]
    assert args[args.index("-c:a") : args.index("-c:a") + 2] == ["-c:a", "copy"]
    encoder = video_encoder_args(ladder, Fraction(30), 4, chunk_relative=True)
    start = args.index("-c:v")
    assert args[start : start + len(encoder)] == encoder
    # the same rate control as the single-process ladder, keyframes counted from the chunk's first frame
    single = build_hls_args(Path("/s"), SOURCE, ladder, Path("/o"))
    single_start = single.index("-c:v")
    assert [a for a in encoder if not a.startswith("expr:")] == [
        a for a in single[single_start : single_start + len(encoder)] if not a.startswith("expr:")
    ]
    assert args[-1] == "/w/out/%v/chunk_0001.m3u8"
    assert "/w/out/%v/c0001_%03d.ts" in args


def test_GIVEN_the_first_chunk_WHEN_args_built_THEN_no_seek_and_only_an_end_trim() -> None:
    args = build_chunk_args(middle_task(0), Path("/w/source"), None, Path("/w/out"))

    assert "-ss" not in args and "-map" in args and "1:a:0" not in args
    assert filters_in(graph_of(args))[:3] == ["fps=fps=30/1", f"trim=end={32 - EARLY:.6f}", "split=4"]


def adts_frame(payload: bytes) -> bytes:
    """A minimal ADTS frame (AAC LC, 48 kHz, stereo, no CRC) around ``payload``."""
    length = 7 + len(payload)
    return bytes([0xFF, 0xF1, 0x4C, 0x80 | (length >> 11), (length >> 3) & 0xFF, ((length & 7) << 5) | 0x1F,
                  0xFC]) + payload  # fmt: skip


def test_GIVEN_adts_WHEN_frames_kept_THEN_exactly_the_windows_frames_in_order(tmp_path: Path) -> None:
    frames = [adts_frame(bytes([n]) * (n + 1)) for n in range(8)]
    encoded, kept = tmp_path / "e.aac", tmp_path / "k.aac"
    encoded.write_bytes(b"".join(frames))

    assert adts_frames(encoded.read_bytes()) == frames
    window = audio_window(middle_task())
    assert keep_adts_frames(encoded, kept, replace(window, count=4)) == 4
    assert kept.read_bytes() == b"".join(frames[3:7])
    with pytest.raises(FfmpegError, match="4 were needed|9 were needed"):
        keep_adts_frames(encoded, kept, replace(window, count=9))
    encoded.write_bytes(b"".join(frames)[:-3])
    with pytest.raises(FfmpegError, match="truncated"):
        adts_frames(encoded.read_bytes())


def test_GIVEN_chunk_outputs_WHEN_stitched_THEN_playlists_list_every_segment_in_chunk_order(tmp_path: Path) -> None:
    ladder = plan_ladder(SOURCE)[-2:]
    outputs = [
        ChunkOutput(
            index, {r.name: [Segment(f"c{index:04d}_{n:03d}.ts", 4.0, 50_000) for n in range(2)] for r in ladder}
        )
        for index in (1, 0)  # arrival order does not matter
    ]

    measured = stitch_playlists(outputs, ladder, has_audio=True, frame_rate=Fraction(30), output_dir=tmp_path)

    playlist = tmp_path / ladder[0].name / "index.m3u8"
    text = playlist.read_text()
    assert [line for line in text.splitlines() if line.endswith(".ts")] == [
        "c0000_000.ts",
        "c0000_001.ts",
        "c0001_000.ts",
        "c0001_001.ts",
    ]
    assert text.endswith("#EXT-X-ENDLIST\n") and "#EXT-X-PLAYLIST-TYPE:VOD" in text
    assert media_checks.segment_durations(playlist) == [4.0] * 4
    assert measured[ladder[0].name].average_bps == 100_000
    variants = media_checks.master_variants(tmp_path / "master.m3u8")
    assert [v.uri for v in variants] == [f"{r.name}/index.m3u8" for r in ladder]
    assert variants[0].bandwidth == 100_000


def test_GIVEN_a_missing_chunk_WHEN_stitched_THEN_refused(tmp_path: Path) -> None:
    ladder = plan_ladder(SOURCE)[-1:]
    outputs = [ChunkOutput(i, {ladder[0].name: [Segment("x.ts", 4.0, 1)]}) for i in (0, 2)]

    with pytest.raises(ValueError, match="0..n-1"):
        stitch_playlists(outputs, ladder, has_audio=True, frame_rate=Fraction(30), output_dir=tmp_path)


def test_GIVEN_chunk_output_WHEN_sent_as_json_and_back_THEN_unchanged() -> None:
    output = ChunkOutput(4, {"240p": [Segment("c0004_000.ts", 4.0, 123)]})

    assert ChunkOutput.from_dict(output.to_dict()) == output


def test_GIVEN_a_120_fps_source_WHEN_planned_and_tasked_THEN_cuts_and_grid_are_those_of_the_60_fps_output() -> None:
    fast = replace(SOURCE, frame_rate=Fraction(120), video_start_s=0.5)

    plan = plan_chunks(fast, chunk_s=32)
    task = ChunkTask.of(plan, 1, plan_ladder(fast), fast)

    quarter_output_frame = 1 / 240
    assert plan.chunks[1].start_s == pytest.approx(0.5 + 32 - quarter_output_frame)
    assert task.frame_rate == Fraction(60)
    assert ChunkTask.from_dict(task.to_dict()).frame_rate == Fraction(60)
    graph = graph_of(build_chunk_args(task, Path("/w/source"), None, Path("/w/out")))
    # the grid starts on the whole file's 60 fps grid (from its first frame at 0.5 s),
    # at the last slot before the seek target (32.5 - 1/240 - 1 s)
    assert filters_in(graph)[0] == f"fps=fps=60/1:start_time={0.5 + 1859 / 60:.6f}"
    assert filters_in(graph)[1].startswith("trim=")
    encoder = build_chunk_args(task, Path("/w/source"), None, Path("/w/out"))
    assert encoder[encoder.index("-g") + 1] == "240"

"""The chunk planner, the chunk encoder's arguments and the stitcher (no FFmpeg needed)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest

from tests import media_checks
from transcode.domain_logic.chunking import (
    ChunkOutput,
    ChunkPlan,
    ChunkTask,
    Segment,
    build_chunk_args,
    build_split_args,
    check_chunk_length,
    plan_chunks,
    stitch_playlists,
)
from transcode.domain_logic.hls import build_hls_args, video_encoder_args
from transcode.domain_logic.ladder import plan_ladder
from vidpipe.media import SourceInfo

SOURCE = SourceInfo(
    duration_s=100.0, width=1280, height=720, rotation=0, frame_rate=Fraction(30), video_codec="h264",
    audio_codec="aac", audio_channels=2, format_name="mov,mp4,m4a,3gp,3g2,mj2",
)  # fmt: skip


def test_GIVEN_keyframes_every_2s_WHEN_planned_THEN_starts_on_the_grid_and_a_short_tail_is_merged() -> None:
    keyframes = [2.0 * n for n in range(50)]  # 0..98

    plan = plan_chunks(keyframes, 100.0, chunk_s=32)

    # 0, 32, 64, 96: the last 4 s (< 8 s, a quarter chunk) stay in the third chunk
    assert plan.starts_s == (0.0, 32.0, 64.0)
    assert not plan.reencode


def test_GIVEN_keyframes_off_the_grid_WHEN_planned_THEN_the_first_keyframe_after_each_target() -> None:
    keyframes = [0.0, 5.0, 10.0, 15.0, 35.0, 45.0, 60.0, 66.0, 90.0]

    plan = plan_chunks(keyframes, 100.0, chunk_s=32)

    assert plan.starts_s == (0.0, 35.0, 66.0)
    assert not plan.reencode


def test_GIVEN_a_gap_longer_than_half_a_chunk_WHEN_planned_THEN_the_split_reencodes_on_the_grid() -> None:
    plan = plan_chunks([0.0, 10.0, 60.0], 100.0, chunk_s=32)

    assert plan.reencode
    assert plan.starts_s == (0.0, 32.0, 64.0)


def test_GIVEN_a_source_starting_late_WHEN_planned_THEN_the_grid_starts_at_its_first_keyframe() -> None:
    keyframes = [1.4 + 2 * n for n in range(10)]

    plan = plan_chunks(keyframes, 20.0, chunk_s=8)

    assert plan.starts_s == pytest.approx((1.4, 9.4, 17.4))


def test_GIVEN_a_source_shorter_than_a_chunk_THEN_one_chunk() -> None:
    assert plan_chunks([0.0], 5.0, chunk_s=32).starts_s == (0.0,)


def test_GIVEN_bad_chunk_lengths_THEN_refused() -> None:
    with pytest.raises(ValueError):
        plan_chunks([0.0], 5.0, chunk_s=0)
    with pytest.raises(ValueError):
        check_chunk_length(30, 4)
    check_chunk_length(32, 4)


def test_GIVEN_a_task_WHEN_sent_as_json_and_back_THEN_unchanged() -> None:
    task = ChunkTask(3, 7, tuple(plan_ladder(SOURCE)), Fraction(30000, 1001), True, 4)

    assert ChunkTask.from_dict(task.to_dict()) == task


def test_GIVEN_a_chunk_WHEN_args_built_THEN_restricted_inputs_audio_copied_and_the_ladders_own_x264_options() -> None:
    ladder = tuple(plan_ladder(SOURCE))
    task = ChunkTask(2, 4, ladder, Fraction(30), True, 4)

    args = build_chunk_args(task, Path("/w/video_0002.ts"), Path("/w/audio_0002.ts"), Path("/w/out"))

    assert args[:11] == [
        "-copyts",
        "-protocol_whitelist", "file", "-f", "mpegts", "-format_whitelist", "mpegts", "-i", "file:/w/video_0002.ts",
        "-protocol_whitelist", "file",
    ]  # fmt: skip
    assert args[args.index("-c:a"): args.index("-c:a") + 2] == ["-c:a", "copy"]
    encoder = video_encoder_args(ladder, Fraction(30), 4, chunk_relative=True)
    start = args.index("-c:v")
    assert args[start: start + len(encoder)] == encoder
    # the same rate control as the single-process ladder, keyframes counted from the chunk's first frame
    single = build_hls_args(Path("/s"), SOURCE, ladder, Path("/o"))
    single_start = single.index("-c:v")
    assert [a for a in encoder if not a.startswith("expr:")] == [
        a for a in single[single_start: single_start + len(encoder)] if not a.startswith("expr:")
    ]
    assert args[-1] == "/w/out/%v/chunk_0002.m3u8"
    assert "/w/out/%v/c0002_%03d.ts" in args


def test_GIVEN_copy_plan_WHEN_split_args_built_THEN_video_copied_audio_encoded_once_cut_at_the_same_times() -> None:
    args = build_split_args(
        Path("/w/source"), SOURCE, ChunkPlan((0.0, 32.0, 64.0), False), Path("/w/chunks"),
        audio_bitrate_kbps=128, chunk_s=32,
    )  # fmt: skip

    assert args[:9] == ["-copyts", "-protocol_whitelist", "file", "-f", "mov", "-format_whitelist", "mov", "-i",
                        "file:/w/source"]
    assert args.count("-segment_times") == 2
    cuts = {args[i + 1] for i, a in enumerate(args) if a == "-segment_times"}
    assert cuts == {"41.999500,73.999500"}  # + the timeline offset, half a millisecond early
    assert args[args.index("-c:v") + 1] == "copy"
    assert args[args.index("-c:a") + 1] == "aac" and args[args.index("-b:a") + 1] == "128k"


def test_GIVEN_chunk_outputs_WHEN_stitched_THEN_playlists_list_every_segment_in_chunk_order(tmp_path: Path) -> None:
    ladder = plan_ladder(SOURCE)[-2:]
    outputs = [
        ChunkOutput(index, {r.name: [Segment(f"c{index:04d}_{n:03d}.ts", 4.0, 50_000) for n in range(2)]
                            for r in ladder})
        for index in (1, 0)  # arrival order does not matter
    ]

    measured = stitch_playlists(outputs, ladder, has_audio=True, frame_rate=Fraction(30), output_dir=tmp_path)

    playlist = tmp_path / ladder[0].name / "index.m3u8"
    text = playlist.read_text()
    assert [line for line in text.splitlines() if line.endswith(".ts")] == [
        "c0000_000.ts", "c0000_001.ts", "c0001_000.ts", "c0001_001.ts"
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


def test_GIVEN_a_one_chunk_plan_WHEN_split_args_built_THEN_the_segment_muxer_never_cuts() -> None:
    args = build_split_args(Path("/w/source"), SOURCE, ChunkPlan((0.0,), False), Path("/w/chunks"),
                            audio_bitrate_kbps=128, chunk_s=32)

    assert "-segment_times" not in args
    assert args[args.index("-segment_time") + 1] == str(10**9)

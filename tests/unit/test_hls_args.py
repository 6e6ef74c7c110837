"""The FFmpeg argument list for a ladder, and the master playlist (no FFmpeg needed)."""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import pytest

from tests.filter_graph_text import filters_in, graph_of
from transcode.domain_logic.h264_levels import h264_level_idc
from transcode.domain_logic.hls import (
    PlaylistMeasurement,
    build_hls_args,
    codecs_attribute,
    gop_frames,
    measure_media_playlist,
    render_master_playlist,
    video_encoder_args,
    write_master_playlist,
)
from transcode.domain_logic.ladder import DEFAULT_LADDER, RateControl, Rendition, plan_ladder
from vidpipe.domain.colour import SDR_BT709, VideoColour
from vidpipe.domain.errors import FfmpegError
from vidpipe.domain.source_info import CODEC_WHITELIST, SourceInfo

INPUT = Path("/scratch/job/source")
OUTPUT = Path("/scratch/job/out")
# The fixed ladder (average bitrates): the exact lists below pin its options down.
FIXED = replace(DEFAULT_LADDER, rate_control=RateControl.FIXED)


def source(
    width: int,
    height: int,
    *,
    channels: int,
    frame_rate: Fraction = Fraction(30),
    rotation: int = 0,
    colour: VideoColour = SDR_BT709,
) -> SourceInfo:
    return SourceInfo(
        duration_s=6.0,
        width=width,
        height=height,
        rotation=rotation,
        frame_rate=frame_rate,
        video_codec="h264",
        audio_codec="aac" if channels else None,
        audio_channels=channels,
        format_name="mov,mp4,m4a,3gp,3g2,mj2",
        colour=colour,
    )


def test_GIVEN_720p_stereo_source_WHEN_args_built_THEN_one_decode_four_rungs_with_audio_each() -> None:
    info = source(1280, 720, channels=2)

    args = build_hls_args(INPUT, info, plan_ladder(info, FIXED), OUTPUT)

    assert args == [
        "-protocol_whitelist", "file", "-f", "mov", "-format_whitelist", "mov", "-codec_whitelist", CODEC_WHITELIST,
        "-i", "file:/scratch/job/source",
        "-filter_complex",
        "[0:v:0]fps=fps=30/1[s0];[s0]split=4[s1][s2][s3][s4];"
        "[s1]scale=1280:720[s5];[s5]setsar=1[s6];[s6]format=yuv420p[s7];"
        "[s2]scale=854:480[s8];[s8]setsar=1[s9];[s9]format=yuv420p[s10];"
        "[s3]scale=640:360[s11];[s11]setsar=1[s12];[s12]format=yuv420p[s13];"
        "[s4]scale=426:240[s14];[s14]setsar=1[s15];[s15]format=yuv420p[s16]",
        "-map", "[s7]", "-map", "0:a:0",
        "-map", "[s10]", "-map", "0:a:0",
        "-map", "[s13]", "-map", "0:a:0",
        "-map", "[s16]", "-map", "0:a:0",
        "-c:v", "libx264", "-preset", "veryfast", "-profile:v", "high",
        "-sc_threshold", "0", "-g", "120", "-force_key_frames", "expr:gte(t,n_forced*4)",
        "-b:v:0", "2800k", "-maxrate:v:0", "3500k", "-bufsize:v:0", "7000k", "-level:v:0", "3.1",
        "-b:v:1", "1400k", "-maxrate:v:1", "1750k", "-bufsize:v:1", "3500k", "-level:v:1", "3.1",
        "-b:v:2", "800k", "-maxrate:v:2", "1000k", "-bufsize:v:2", "2000k", "-level:v:2", "3.0",
        "-b:v:3", "400k", "-maxrate:v:3", "500k", "-bufsize:v:3", "1000k", "-level:v:3", "3.0",
        "-color_primaries", "bt709", "-color_trc", "bt709", "-colorspace", "bt709", "-color_range", "tv",
        "-c:a", "aac", "-ac", "2",
        "-b:a:0", "128k", "-b:a:1", "128k", "-b:a:2", "128k", "-b:a:3", "128k",
        "-f", "hls", "-hls_time", "4", "-hls_playlist_type", "vod", "-hls_segment_type", "mpegts",
        "-hls_flags", "independent_segments",
        "-hls_segment_filename", "/scratch/job/out/%v/seg_%05d.ts",
        "-master_pl_name", "master.m3u8",
        "-var_stream_map", "v:0,a:0,name:720p v:1,a:1,name:480p v:2,a:2,name:360p v:3,a:3,name:240p",
        "/scratch/job/out/%v/index.m3u8",
    ]  # fmt: skip


def test_GIVEN_source_without_audio_WHEN_args_built_THEN_no_audio_map_codec_or_stream_map_entry() -> None:
    info = source(640, 360, channels=0)

    args = build_hls_args(INPUT, info, plan_ladder(info, FIXED), OUTPUT)

    assert args == [
        "-protocol_whitelist", "file", "-f", "mov", "-format_whitelist", "mov", "-codec_whitelist", CODEC_WHITELIST,
        "-i", "file:/scratch/job/source",
        "-filter_complex",
        "[0:v:0]fps=fps=30/1[s0];[s0]split=2[s1][s2];"
        "[s1]scale=640:360[s3];[s3]setsar=1[s4];[s4]format=yuv420p[s5];"
        "[s2]scale=426:240[s6];[s6]setsar=1[s7];[s7]format=yuv420p[s8]",
        "-map", "[s5]",
        "-map", "[s8]",
        "-c:v", "libx264", "-preset", "veryfast", "-profile:v", "high",
        "-sc_threshold", "0", "-g", "120", "-force_key_frames", "expr:gte(t,n_forced*4)",
        "-b:v:0", "800k", "-maxrate:v:0", "1000k", "-bufsize:v:0", "2000k", "-level:v:0", "3.0",
        "-b:v:1", "400k", "-maxrate:v:1", "500k", "-bufsize:v:1", "1000k", "-level:v:1", "3.0",
        "-color_primaries", "bt709", "-color_trc", "bt709", "-colorspace", "bt709", "-color_range", "tv",
        "-f", "hls", "-hls_time", "4", "-hls_playlist_type", "vod", "-hls_segment_type", "mpegts",
        "-hls_flags", "independent_segments",
        "-hls_segment_filename", "/scratch/job/out/%v/seg_%05d.ts",
        "-master_pl_name", "master.m3u8",
        "-var_stream_map", "v:0,name:360p v:1,name:240p",
        "/scratch/job/out/%v/index.m3u8",
    ]  # fmt: skip


def test_GIVEN_5_1_source_at_25_fps_WHEN_args_built_THEN_downmixed_to_stereo_and_gop_of_100() -> None:
    info = source(854, 480, channels=6, frame_rate=Fraction(25))

    args = build_hls_args(INPUT, info, plan_ladder(info, FIXED), OUTPUT, segment_s=6)

    assert args == [
        "-protocol_whitelist", "file", "-f", "mov", "-format_whitelist", "mov", "-codec_whitelist", CODEC_WHITELIST,
        "-i", "file:/scratch/job/source",
        "-filter_complex",
        "[0:v:0]fps=fps=25/1[s0];[s0]split=3[s1][s2][s3];"
        "[s1]scale=854:480[s4];[s4]setsar=1[s5];[s5]format=yuv420p[s6];"
        "[s2]scale=640:360[s7];[s7]setsar=1[s8];[s8]format=yuv420p[s9];"
        "[s3]scale=428:240[s10];[s10]setsar=1[s11];[s11]format=yuv420p[s12]",
        "-map", "[s6]", "-map", "0:a:0",
        "-map", "[s9]", "-map", "0:a:0",
        "-map", "[s12]", "-map", "0:a:0",
        "-c:v", "libx264", "-preset", "veryfast", "-profile:v", "high",
        "-sc_threshold", "0", "-g", "150", "-force_key_frames", "expr:gte(t,n_forced*6)",
        "-b:v:0", "1400k", "-maxrate:v:0", "1750k", "-bufsize:v:0", "3500k", "-level:v:0", "3.0",
        "-b:v:1", "800k", "-maxrate:v:1", "1000k", "-bufsize:v:1", "2000k", "-level:v:1", "3.0",
        "-b:v:2", "400k", "-maxrate:v:2", "500k", "-bufsize:v:2", "1000k", "-level:v:2", "3.0",
        "-color_primaries", "bt709", "-color_trc", "bt709", "-colorspace", "bt709", "-color_range", "tv",
        "-c:a", "aac", "-ac", "2",
        "-b:a:0", "128k", "-b:a:1", "128k", "-b:a:2", "128k",
        "-f", "hls", "-hls_time", "6", "-hls_playlist_type", "vod", "-hls_segment_type", "mpegts",
        "-hls_flags", "independent_segments",
        "-hls_segment_filename", "/scratch/job/out/%v/seg_%05d.ts",
        "-master_pl_name", "master.m3u8",
        "-var_stream_map", "v:0,a:0,name:480p v:1,a:1,name:360p v:2,a:2,name:240p",
        "/scratch/job/out/%v/index.m3u8",
    ]  # fmt: skip


def test_GIVEN_rotated_phone_clip_WHEN_args_built_THEN_scaled_to_portrait_display_size() -> None:
    info = source(1920, 1080, channels=2, rotation=90)

    args = build_hls_args(INPUT, info, plan_ladder(info, FIXED), OUTPUT)

    # the top rung: fps, split, then its scale
    assert filters_in(graph_of(args))[2:5] == ["scale=1080:1920", "setsar=1", "format=yuv420p"]
    assert args[args.index("-level:v:0") + 1] == "4.0"


def test_GIVEN_empty_ladder_WHEN_args_built_THEN_value_error() -> None:
    with pytest.raises(ValueError):
        build_hls_args(INPUT, source(640, 360, channels=2), [], OUTPUT)


def test_GIVEN_percent_in_output_folder_WHEN_args_built_THEN_value_error() -> None:
    info = source(640, 360, channels=2)

    with pytest.raises(ValueError):
        build_hls_args(INPUT, info, plan_ladder(info, FIXED), Path("/scratch/100%/out"))


@pytest.mark.parametrize(
    ("frame_rate", "segment_s", "expected"),
    [(Fraction(30), 4, 120), (Fraction(30000, 1001), 4, 120), (Fraction(24000, 1001), 4, 96), (Fraction(60), 2, 120)],
)
def test_GIVEN_frame_rate_WHEN_gop_computed_THEN_one_segment_of_frames_rounded_up(
    frame_rate: Fraction, segment_s: int, expected: int
) -> None:
    assert gop_frames(frame_rate, segment_s) == expected


@pytest.mark.parametrize(
    ("width", "height", "frame_rate", "max_kbps", "expected"),
    [
        (1920, 1080, Fraction(30), 6250, 40),  # 8160 MBs: above 3.2's 5120
        (1920, 1080, Fraction(60), 6250, 42),  # 489600 MB/s
        (1280, 720, Fraction(30), 3500, 31),
        (1280, 720, Fraction(60), 3500, 32),
        (854, 480, Fraction(30), 1750, 31),  # 1620 MBs x 30 = 48600 MB/s, above 3.0's 40500
        (854, 480, Fraction(25), 1750, 30),
        (160, 90, Fraction(30), 125, 30),  # never below 3.0
        # 3.1 High allows a 17500 kbit/s peak, but a 32000 kbit buffer needs 4.1 (4.0 holds 31250)
        (1280, 720, Fraction(30), 16000, 41),
    ],
)
def test_GIVEN_rendition_WHEN_level_computed_THEN_lowest_level_that_holds_it(
    width: int, height: int, frame_rate: Fraction, max_kbps: int, expected: int
) -> None:
    rendition = Rendition("x", width, height, max_kbps, max_kbps, 2 * max_kbps, 128)

    assert h264_level_idc(rendition, frame_rate) == expected


def test_GIVEN_rendition_WHEN_codecs_built_THEN_avc_high_with_level_and_aac_lc_only_with_audio() -> None:
    rendition = Rendition("720p", 1280, 720, 2800, 3500, 7000, 128)

    assert codecs_attribute(rendition, Fraction(30), has_audio=True) == "avc1.64001f,mp4a.40.2"
    assert codecs_attribute(rendition, Fraction(30), has_audio=False) == "avc1.64001f"


def test_GIVEN_ladder_without_measurements_WHEN_master_rendered_THEN_nominal_rates_highest_first() -> None:
    ladder = plan_ladder(source(1280, 720, channels=2), FIXED)[:2]

    text = render_master_playlist(ladder, True, frame_rate=Fraction(30000, 1001))

    assert text == (
        "#EXTM3U\n"
        "#EXT-X-VERSION:6\n"
        "#EXT-X-INDEPENDENT-SEGMENTS\n"
        "#EXT-X-STREAM-INF:BANDWIDTH=3628000,AVERAGE-BANDWIDTH=2928000,RESOLUTION=1280x720,"
        'FRAME-RATE=29.970,CODECS="avc1.64001f,mp4a.40.2"\n'
        "720p/index.m3u8\n"
        "#EXT-X-STREAM-INF:BANDWIDTH=1878000,AVERAGE-BANDWIDTH=1528000,RESOLUTION=854x480,"
        'FRAME-RATE=29.970,CODECS="avc1.64001f,mp4a.40.2"\n'
        "480p/index.m3u8\n"
    )


def test_GIVEN_measured_rates_WHEN_master_written_THEN_they_replace_the_nominal_ones(tmp_path: Path) -> None:
    ladder = plan_ladder(source(640, 360, channels=0), FIXED)[:1]
    master = tmp_path / "master.m3u8"
    master.write_text("what FFmpeg wrote")

    write_master_playlist(
        ladder, False, master, frame_rate=Fraction(25), measured={"360p": PlaylistMeasurement(4.0, 912_345, 801_234)}
    )

    assert master.read_text() == (
        "#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-INDEPENDENT-SEGMENTS\n"
        "#EXT-X-STREAM-INF:BANDWIDTH=912345,AVERAGE-BANDWIDTH=801234,RESOLUTION=640x360,"
        'FRAME-RATE=25.000,CODECS="avc1.64001e"\n'
        "360p/index.m3u8\n"
    )
    assert [p.name for p in tmp_path.iterdir()] == ["master.m3u8"]


def write_media_playlist(folder: Path, segments: list[tuple[float, int]], target_s: int = 4) -> Path:
    folder.mkdir()
    lines = ["#EXTM3U", "#EXT-X-VERSION:6", f"#EXT-X-TARGETDURATION:{target_s}", "#EXT-X-PLAYLIST-TYPE:VOD"]
    for index, (duration, size) in enumerate(segments):
        (folder / f"seg_{index:05d}.ts").write_bytes(b"\0" * size)
        lines += [f"#EXTINF:{duration:.6f},", f"seg_{index:05d}.ts"]
    (folder / "index.m3u8").write_text("\n".join([*lines, "#EXT-X-ENDLIST", ""]))
    return folder / "index.m3u8"


def test_GIVEN_segments_WHEN_measured_THEN_peak_of_the_busiest_segment_and_overall_average(
    tmp_path: Path,
) -> None:
    # 4 s at 1 Mbit/s, 4 s at 2 Mbit/s, then a 0.5 s tail at 4 Mbit/s: alone the tail is
    # too short to count (under half the 4 s target); with the segment before it, it
    # makes the busiest run: 10 Mbit in 4.5 s.
    playlist = write_media_playlist(tmp_path / "720p", [(4.0, 500_000), (4.0, 1_000_000), (0.5, 250_000)])

    measured = measure_media_playlist(playlist)

    assert measured == PlaylistMeasurement(duration_s=8.5, peak_bps=2_222_223, average_bps=1_647_059)


def test_GIVEN_clip_shorter_than_half_a_segment_WHEN_measured_THEN_peak_is_the_average(tmp_path: Path) -> None:
    playlist = write_media_playlist(tmp_path / "90p", [(1.0, 10_000)])

    assert measure_media_playlist(playlist) == PlaylistMeasurement(duration_s=1.0, peak_bps=80_000, average_bps=80_000)


def test_GIVEN_missing_segment_WHEN_measured_THEN_ffmpeg_error(tmp_path: Path) -> None:
    playlist = write_media_playlist(tmp_path / "240p", [(4.0, 1000)])
    (tmp_path / "240p" / "seg_00000.ts").unlink()

    with pytest.raises(FfmpegError):
        measure_media_playlist(playlist)


def test_GIVEN_crf_rungs_WHEN_encoder_args_built_THEN_each_rung_has_its_crf_under_its_cap() -> None:
    ladder = [
        Rendition("720p", 1280, 720, 2800, 3500, 7000, 128, crf=26.5),
        Rendition("480p", 854, 480, 1400, 1750, 3500, 128, crf=23.5),
    ]

    args = video_encoder_args(ladder, Fraction(30), 4)

    assert args[args.index("-crf:v:0") : args.index("-crf:v:0") + 8] == [
        "-crf:v:0", "26.5", "-maxrate:v:0", "3500k", "-bufsize:v:0", "7000k", "-level:v:0", "3.1",
    ]  # fmt: skip
    assert args[args.index("-crf:v:1") + 1] == "23.5"
    assert not any(arg.startswith("-b:v") for arg in args)


def test_GIVEN_a_119_88_fps_1080p_source_WHEN_args_built_THEN_fps_gop_and_levels_are_those_of_59_94() -> None:
    info = source(1920, 1080, channels=2, frame_rate=Fraction(120000, 1001))

    args = build_hls_args(INPUT, info, plan_ladder(info), OUTPUT)

    # one fps filter before the split: every rung at 59.94, every second frame of the source
    filters = filters_in(graph_of(args))
    assert filters[:2] == ["fps=fps=60000/1001", "split=5"]
    assert sum(1 for name in filters if name.startswith("fps=")) == 1
    assert args[args.index("-g") + 1] == "240"  # 4 s at 59.94, rounded up (480 at the source's rate)
    levels = [args[index + 1] for index, arg in enumerate(args) if arg.startswith("-level:v:")]
    assert levels == ["4.2", "3.2", "3.1", "3.1", "3.0"]  # 1080p at 60 is 4.2; at 120 it would be 5.1


def test_GIVEN_a_60_fps_source_WHEN_args_built_THEN_its_rate_is_kept() -> None:
    info = source(1280, 720, channels=2, frame_rate=Fraction(60))

    args = build_hls_args(INPUT, info, plan_ladder(info), OUTPUT)

    assert filters_in(graph_of(args))[:2] == ["fps=fps=60/1", "split=4"]
    assert args[args.index("-g") + 1] == "240"

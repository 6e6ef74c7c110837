"""Colour: the probe's colour facts, the policy for untagged sources, and the
exact filters and tags that make every output SDR BT.709 limited range (no
FFmpeg needed; tests/integration/test_colour_ffmpeg.py runs them)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest

from thumbnails.domain_logic.frame_grab import SkipFrames, build_frame_grab_args
from transcode.domain_logic.chunking import ChunkTask, build_chunk_args, plan_chunks
from transcode.domain_logic.hls import build_hls_args
from transcode.domain_logic.ladder import plan_ladder
from transcode.domain_logic.mediaconvert_job import build_create_job_request
from vidpipe.domain.colour import (
    SDR_BT709,
    VideoColour,
    assume_untagged,
    ladder_prefilter,
    rgb_scale_options,
    sdr_scale_options,
    tone_map_filters,
)
from vidpipe.domain.source_info import SourceInfo, parse_probe

# What ffprobe reports for an iPhone's default recording (HEVC 10-bit, HLG) and an HDR10 file.
IPHONE_HLG = VideoColour(
    transfer="arib-std-b67", primaries="bt2020", matrix="bt2020nc", range="tv", pixel_format="yuv420p10le"
)
HDR10_PQ = VideoColour(
    transfer="smpte2084", primaries="bt2020", matrix="bt2020nc", range="tv", pixel_format="yuv420p10le"
)
HLG_TO_SDR = (
    "zscale=tin=arib-std-b67:pin=bt2020:min=bt2020nc:rin=tv:t=linear:npl=100,format=gbrpf32le,"
    "zscale=p=bt709,tonemap=tonemap=hable:desat=0,zscale=t=bt709:m=bt709:r=tv,format=yuv420p"
)
BT709_TAGS = ["-color_primaries", "bt709", "-color_trc", "bt709", "-colorspace", "bt709", "-color_range", "tv"]


def source_info(width: int, height: int, colour: VideoColour, *, rotation: int = 0) -> SourceInfo:
    return SourceInfo(
        duration_s=100.0,
        width=width,
        height=height,
        rotation=rotation,
        frame_rate=Fraction(30),
        video_codec="hevc",
        audio_codec="aac",
        audio_channels=2,
        format_name="mov,mp4,m4a,3gp,3g2,mj2",
        audio_sample_rate=48000,
        colour=colour,
    )


def graph_of(args: list[str]) -> str:
    return args[args.index("-filter_complex") + 1]


# ------------------------------------------------------------------ the probe


def test_GIVEN_an_iphone_hlg_stream_WHEN_probed_THEN_its_colour_facts_and_10_bits() -> None:
    probe = {
        "format": {"format_name": "mov,mp4,m4a,3gp,3g2,mj2", "duration": "3.0"},
        "streams": [
            {"codec_type": "video", "codec_name": "hevc", "width": 1920, "height": 1080, "avg_frame_rate": "30/1",
             "pix_fmt": "yuv420p10le", "color_range": "tv", "color_space": "bt2020nc",
             "color_transfer": "arib-std-b67", "color_primaries": "bt2020"},
        ],
    }  # fmt: skip

    info = parse_probe(probe)

    assert info.colour == IPHONE_HLG
    assert info.colour.is_hdr and info.colour.bit_depth == 10


def test_GIVEN_a_stream_without_colour_tags_WHEN_probed_THEN_nothing_stated() -> None:
    probe = {
        "format": {"format_name": "matroska,webm", "duration": "3.0"},
        "streams": [{"codec_type": "video", "codec_name": "vp9", "width": 640, "height": 360, "avg_frame_rate": "25/1",
                     "pix_fmt": "yuv420p", "color_space": "unknown", "color_transfer": "unknown"}],
    }  # fmt: skip

    colour = parse_probe(probe).colour

    assert colour == VideoColour(pixel_format="yuv420p")
    assert not colour.is_hdr and colour.bit_depth == 8


def test_GIVEN_a_source_built_without_colour_THEN_it_states_nothing() -> None:
    # Constructors written before the colour fields keep working.
    assert source_info(640, 360, VideoColour()).colour == VideoColour()


# ------------------------------------------------------------------ untagged sources


@pytest.mark.parametrize(
    ("width", "height", "matrix"),
    [
        (640, 360, "smpte170m"),
        (720, 576, "smpte170m"),  # PAL SD
        (360, 640, "smpte170m"),  # an SD phone clip held upright
        (1280, 720, "bt709"),
        (720, 1280, "bt709"),  # an HD phone clip held upright
        (1024, 768, "bt709"),  # taller than PAL
    ],
)
def test_GIVEN_an_untagged_source_WHEN_assumed_THEN_bt601_for_sd_and_bt709_for_hd(
    width: int, height: int, matrix: str
) -> None:
    assert assume_untagged(VideoColour(pixel_format="yuv420p"), width, height) == VideoColour(
        matrix=matrix, range="tv", pixel_format="yuv420p"
    )


def test_GIVEN_an_untagged_jpeg_pixel_format_WHEN_assumed_THEN_full_range() -> None:
    assert assume_untagged(VideoColour(pixel_format="yuvj420p"), 640, 480).range == "pc"


def test_GIVEN_tagged_sources_WHEN_assumed_THEN_their_own_tags_stand() -> None:
    assert assume_untagged(IPHONE_HLG, 640, 360) == IPHONE_HLG
    assert assume_untagged(VideoColour(transfer="smpte2084"), 640, 360).matrix == "bt2020nc"


# ------------------------------------------------------------------ filters


def test_GIVEN_hlg_WHEN_tone_map_built_THEN_the_recipe_with_the_sources_own_properties() -> None:
    assert tone_map_filters(IPHONE_HLG) == HLG_TO_SDR


def test_GIVEN_pq_for_stills_WHEN_tone_map_built_THEN_it_ends_in_planar_rgb() -> None:
    assert tone_map_filters(HDR10_PQ, pixel_format="gbrp") == (
        "zscale=tin=smpte2084:pin=bt2020:min=bt2020nc:rin=tv:t=linear:npl=100,format=gbrpf32le,"
        "zscale=p=bt709,tonemap=tonemap=hable:desat=0,zscale=t=bt709,format=gbrp"
    )


def test_GIVEN_hdr_with_odd_tags_WHEN_tone_map_built_THEN_bt2020_assumed_and_full_range_read() -> None:
    colour = VideoColour(transfer="smpte2084", primaries="unknown-ish", matrix="gbr", range="pc")

    assert tone_map_filters(colour).startswith("zscale=tin=smpte2084:pin=bt2020:min=bt2020nc:rin=pc:")


def test_GIVEN_sdr_WHEN_tone_map_asked_THEN_value_error() -> None:
    with pytest.raises(ValueError, match="not HDR"):
        tone_map_filters(SDR_BT709)


@pytest.mark.parametrize(
    ("colour", "options"),
    [
        (SDR_BT709, ""),
        (VideoColour(matrix="bt709", range="tv"), ""),
        (VideoColour(matrix="smpte170m", range="tv"),
         "in_color_matrix=bt601:out_color_matrix=bt709:in_range=tv:out_range=tv"),
        (VideoColour(matrix="bt470bg", range="tv"),
         "in_color_matrix=bt601:out_color_matrix=bt709:in_range=tv:out_range=tv"),
        (VideoColour(matrix="bt709", range="pc"),
         "in_color_matrix=bt709:out_color_matrix=bt709:in_range=pc:out_range=tv"),
        (VideoColour(matrix="smpte170m", range="pc", pixel_format="yuvj420p"),
         "in_color_matrix=bt601:out_color_matrix=bt709:in_range=pc:out_range=tv"),
        (VideoColour(matrix="gbr", pixel_format="gbrp"), "out_color_matrix=bt709:out_range=tv"),
        (IPHONE_HLG, ""),  # the tone-map already ends in BT.709 limited
    ],
)  # fmt: skip
def test_GIVEN_a_source_WHEN_scale_options_built_THEN_converted_to_bt709_limited_only_when_needed(
    colour: VideoColour, options: str
) -> None:
    assert sdr_scale_options(colour) == options


def test_GIVEN_sources_WHEN_rgb_options_built_THEN_their_own_matrix_and_range() -> None:
    assert rgb_scale_options(VideoColour(matrix="smpte170m", range="pc")) == "in_color_matrix=bt601:in_range=pc"
    assert rgb_scale_options(SDR_BT709) == "in_color_matrix=bt709:in_range=tv"
    assert rgb_scale_options(VideoColour(pixel_format="gbrp")) == ""


def test_GIVEN_hdr_WHEN_ladder_prefilter_built_THEN_resized_to_the_top_rung_then_tone_mapped_once() -> None:
    assert ladder_prefilter(IPHONE_HLG, (1920, 1080)) == f"scale=1920:1080,{HLG_TO_SDR}"
    assert ladder_prefilter(SDR_BT709, (1920, 1080)) == ""


# ------------------------------------------------------------------ where the filters go


def test_GIVEN_a_4k_hlg_phone_clip_WHEN_ladder_args_built_THEN_tone_mapped_once_at_1080p_and_tagged_bt709() -> None:
    info = source_info(3840, 2160, IPHONE_HLG)

    args = build_hls_args(Path("/in/source"), info, plan_ladder(info), Path("/out"))

    assert graph_of(args) == (
        f"[0:v:0]fps=fps=30/1,scale=1920:1080,{HLG_TO_SDR},split=5[split0][split1][split2][split3][split4];"
        "[split0]scale=1920:1080,setsar=1,format=yuv420p[video0];"
        "[split1]scale=1280:720,setsar=1,format=yuv420p[video1];"
        "[split2]scale=854:480,setsar=1,format=yuv420p[video2];"
        "[split3]scale=640:360,setsar=1,format=yuv420p[video3];"
        "[split4]scale=426:240,setsar=1,format=yuv420p[video4]"
    )
    position = args.index("-color_primaries")
    assert args[position : position + len(BT709_TAGS)] == BT709_TAGS


def test_GIVEN_an_untagged_sd_source_WHEN_ladder_args_built_THEN_each_rung_converts_bt601_to_bt709() -> None:
    info = source_info(640, 360, VideoColour(pixel_format="yuv420p"))

    graph = graph_of(build_hls_args(Path("/in/source"), info, plan_ladder(info), Path("/out")))

    assert graph == (
        "[0:v:0]fps=fps=30/1,split=2[split0][split1];"
        "[split0]scale=640:360:in_color_matrix=bt601:out_color_matrix=bt709:in_range=tv:out_range=tv,"
        "setsar=1,format=yuv420p[video0];"
        "[split1]scale=426:240:in_color_matrix=bt601:out_color_matrix=bt709:in_range=tv:out_range=tv,"
        "setsar=1,format=yuv420p[video1]"
    )


def test_GIVEN_a_full_range_hd_source_WHEN_ladder_args_built_THEN_squeezed_to_limited_range() -> None:
    info = source_info(1280, 720, VideoColour(matrix="bt709", range="pc", pixel_format="yuvj420p"))

    graph = graph_of(build_hls_args(Path("/in/source"), info, plan_ladder(info), Path("/out")))

    assert "[split0]scale=1280:720:in_color_matrix=bt709:out_color_matrix=bt709:in_range=pc:out_range=tv," in graph


def test_GIVEN_a_pq_source_WHEN_chunked_THEN_every_chunk_tone_maps_like_the_single_pass() -> None:
    info = source_info(1920, 1080, HDR10_PQ)
    ladder = plan_ladder(info)
    plan = plan_chunks(info, chunk_s=32)

    task = ChunkTask.from_dict(ChunkTask.of(plan, 1, ladder, info).to_dict())
    chunk_graph = graph_of(build_chunk_args(task, Path("/in/source"), None, Path("/out")))
    single_graph = graph_of(build_hls_args(Path("/in/source"), info, ladder, Path("/out")))

    assert task.colour == HDR10_PQ
    tone_map = f"scale=1920:1080,{tone_map_filters(HDR10_PQ)},split=5"
    assert tone_map in chunk_graph and tone_map in single_graph
    assert chunk_graph.partition(tone_map)[2] == single_graph.partition(tone_map)[2]


def test_GIVEN_a_chunk_task_from_before_colour_WHEN_read_THEN_plain_bt709() -> None:
    info = source_info(1920, 1080, VideoColour())
    data = ChunkTask.of(plan_chunks(info, chunk_s=32), 0, plan_ladder(info), info).to_dict()
    del data["colour"]

    task = ChunkTask.from_dict(data)

    assert task.colour == VideoColour()
    assert "in_color_matrix" not in graph_of(build_chunk_args(task, Path("/in/source"), None, Path("/out")))


def test_GIVEN_an_hlg_clip_WHEN_frame_grab_built_THEN_tiles_and_candidates_tone_mapped_after_shrinking() -> None:
    args = build_frame_grab_args(
        Path("/in/source"),
        Path("/work"),
        interval_ms=1000,
        tile_count=3,
        tile_size=(160, 90),
        candidate_slots=(1,),
        candidate_size=(1280, 720),
        skip=SkipFrames.NON_KEY,
        demuxer="mov",
        colour=IPHONE_HLG,
    )

    to_rgb = tone_map_filters(IPHONE_HLG, pixel_format="gbrp")
    assert graph_of(args) == (
        "[0:V:0]fps=fps=1:start_time=0:round=near:eof_action=pass,split=2[slots][offered];"
        f"[slots]scale=160:90:flags=area,{to_rgb}[tiles];"
        f"[offered]select='eq(n,1)',scale=1280:720:flags=area,{to_rgb}[candidates]"
    )


# ------------------------------------------------------------------ MediaConvert


def mediaconvert_outputs(info: SourceInfo) -> tuple[list[dict], dict, dict]:
    request = build_create_job_request(
        job_id="job-1", stack_name="vidpipe", role_arn="arn:aws:iam::123456789012:role/mc",
        source_url="s3://uploads/uploads/job-1/source", outputs_url="s3://outputs/jobs/job-1/",
        source=info, ladder=plan_ladder(info),
    )  # fmt: skip
    hls_group, capture_group = request["Settings"]["OutputGroups"]
    return hls_group["Outputs"], capture_group["Outputs"][0], request["Settings"]["Inputs"][0]


def test_GIVEN_an_hlg_source_WHEN_mediaconvert_job_built_THEN_every_output_tone_mapped_to_709_limited() -> None:
    renditions, capture, _ = mediaconvert_outputs(source_info(1920, 1080, IPHONE_HLG))

    for output in renditions:
        description = output["VideoDescription"]
        assert description["ColorMetadata"] == "INSERT"
        assert description["VideoPreprocessors"] == {
            "ColorCorrector": {
                "ColorSpaceConversion": "FORCE_709",
                "SampleRangeConversion": "LIMITED_RANGE_SQUEEZE",
                "HdrToSdrToneMapper": "PRESERVE_DETAILS",
            }
        }
    assert capture["VideoDescription"]["VideoPreprocessors"]["ColorCorrector"] == {
        "ColorSpaceConversion": "FORCE_709",
        "HdrToSdrToneMapper": "PRESERVE_DETAILS",
    }


def test_GIVEN_an_hdr10_source_WHEN_mediaconvert_job_built_THEN_the_vibrant_tone_mapper() -> None:
    renditions, _, _ = mediaconvert_outputs(source_info(1920, 1080, HDR10_PQ))

    corrector = renditions[0]["VideoDescription"]["VideoPreprocessors"]["ColorCorrector"]
    assert corrector["HdrToSdrToneMapper"] == "VIBRANT"


@pytest.mark.parametrize(("width", "height", "fallback"), [(640, 360, "REC_601"), (1920, 1080, "REC_709")])
def test_GIVEN_an_untagged_sdr_source_WHEN_mediaconvert_job_built_THEN_read_as_players_read_it_and_forced_to_709(
    width: int, height: int, fallback: str
) -> None:
    renditions, _, input_settings = mediaconvert_outputs(source_info(width, height, VideoColour()))

    assert input_settings["VideoSelector"] == {"Rotate": "AUTO", "ColorSpace": fallback, "ColorSpaceUsage": "FALLBACK"}
    assert renditions[0]["VideoDescription"]["VideoPreprocessors"] == {
        "ColorCorrector": {"ColorSpaceConversion": "FORCE_709", "SampleRangeConversion": "LIMITED_RANGE_SQUEEZE"}
    }

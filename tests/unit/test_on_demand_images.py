"""What an on-demand image may be asked for (vidpipe.domain.image_requests) and
which segments of which rendition it is cut from (thumbnails.domain_logic.on_demand)."""

from __future__ import annotations

from typing import Any

import pytest

from thumbnails.domain_logic.on_demand import (
    MediaPlaylist,
    SegmentRef,
    choose_rendition,
    demuxer_for,
    parse_media_playlist,
    segments_covering,
)
from vidpipe.adapters.image_maker import refusal
from vidpipe.domain.errors import ValidationFailed
from vidpipe.domain.image_requests import (
    AnimatedRequest,
    Fit,
    ThumbnailRequest,
    parse_animated_request,
    parse_thumbnail_request,
    request_from_dict,
    request_to_dict,
)

GRANT = {"expires": "1796289772", "kid": "k1", "grant": "abc"}
RENDITIONS: list[dict[str, Any]] = [
    {"name": "720p", "width": 1280, "height": 720},
    {"name": "240p", "width": 426, "height": 240},
    {"name": "480p", "width": 854, "height": 480},
]


def test_GIVEN_no_parameters_WHEN_a_thumbnail_is_parsed_THEN_it_is_the_middle_at_the_renditions_size() -> None:
    assert parse_thumbnail_request("jpg", GRANT, 9.0) == ThumbnailRequest(image_format="jpg", time_s=4.5)


def test_GIVEN_every_parameter_WHEN_a_thumbnail_is_parsed_THEN_each_is_kept_and_named_in_its_cache_key() -> None:
    request = parse_thumbnail_request(
        "webp", {"time": "2.5", "width": "320", "height": "240", "fit": "pad", **GRANT}, 9.0
    )

    assert request == ThumbnailRequest(image_format="webp", time_s=2.5, width=320, height=240, fit=Fit.PAD)
    assert request.cache_name() == "thumbnail_t2500_w320_h240_pad.webp"


def test_GIVEN_requests_that_differ_in_one_parameter_WHEN_named_THEN_their_cache_keys_differ() -> None:
    requests = [
        ThumbnailRequest("jpg", 1.0),
        ThumbnailRequest("webp", 1.0),
        ThumbnailRequest("jpg", 1.001),
        ThumbnailRequest("jpg", 1.0, width=320),
        ThumbnailRequest("jpg", 1.0, height=320),
        ThumbnailRequest("jpg", 1.0, 320, 320, Fit.CROP),
        ThumbnailRequest("jpg", 1.0, 320, 320, Fit.PAD),
    ]

    assert len({request.cache_name() for request in requests}) == len(requests)


@pytest.mark.parametrize(
    ("image_format", "query", "reason"),
    [
        ("png", {}, "one of jpg, webp"),
        ("jpg", {"time": "9"}, "past the end"),
        ("jpg", {"time": "nan"}, "from 0"),
        ("jpg", {"time": "abc"}, "number of seconds"),
        ("jpg", {"width": "15"}, "16 to 1920"),
        ("jpg", {"height": "1921"}, "16 to 1920"),
        ("jpg", {"width": "32.5"}, "whole number"),
        ("jpg", {"height": "320", "fit": "crop"}, "needs both"),
        ("jpg", {"fit": "fill"}, "fit is one of"),
        ("jpg", {"times": "3"}, "unknown parameter(s) times"),
    ],
)
def test_GIVEN_a_bad_thumbnail_query_WHEN_parsed_THEN_validation_fails_with_the_reason(
    image_format: str, query: dict[str, str], reason: str
) -> None:
    with pytest.raises(ValidationFailed, match=reason.replace("(", r"\(").replace(")", r"\)")):
        parse_thumbnail_request(image_format, query, 9.0)


def test_GIVEN_an_animated_query_WHEN_parsed_THEN_defaults_fill_in_and_the_end_stops_at_the_video_s() -> None:
    assert parse_animated_request({}, 9.0) == AnimatedRequest(start_s=0.0, end_s=5.0, width=320)
    assert parse_animated_request({"start": "6", "width": "480"}, 9.0) == AnimatedRequest(6.0, 9.0, 480)
    assert parse_animated_request({"start": "1", "end": "3"}, 9.0).cache_name() == "animated_1000-3000_w320.webp"


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ({"start": "30"}, "past the end"),
        ({"start": "2", "end": "2"}, "must come after"),
        ({"start": "0", "end": "10.5"}, "at most 10 s"),
        ({"width": "641"}, "16 to 640"),
        ({"time": "3"}, "unknown parameter"),
    ],
)
def test_GIVEN_a_bad_animated_query_WHEN_parsed_THEN_validation_fails_with_the_reason(
    query: dict[str, str], reason: str
) -> None:
    with pytest.raises(ValidationFailed, match=reason):
        parse_animated_request(query, 30.0)


@pytest.mark.parametrize(
    "request_", [ThumbnailRequest("webp", 2.5, 320, None, Fit.PRESERVE), AnimatedRequest(1.0, 4.0, 240)]
)
def test_GIVEN_a_request_WHEN_sent_to_the_image_function_as_json_THEN_it_comes_back_the_same(
    request_: ThumbnailRequest | AnimatedRequest,
) -> None:
    assert request_from_dict(request_to_dict(request_)) == request_
    with pytest.raises(ValidationFailed):
        request_from_dict({"kind": "poster"})


def test_GIVEN_a_media_playlist_WHEN_parsed_THEN_segments_have_their_start_times_and_the_init_segment() -> None:
    playlist = parse_media_playlist(
        '#EXTM3U\n#EXT-X-MAP:URI="init.mp4"\n#EXTINF:4.0,\nseg_0.m4s\n#EXTINF:4.0,\nseg_1.m4s\n'
        "#EXTINF:1.5,\nseg_2.m4s\n#EXT-X-ENDLIST\n"
    )

    assert playlist.init_uri == "init.mp4"
    assert playlist.segments == (
        SegmentRef("seg_0.m4s", 0.0, 4.0),
        SegmentRef("seg_1.m4s", 4.0, 4.0),
        SegmentRef("seg_2.m4s", 8.0, 1.5),
    )
    with pytest.raises(ValidationFailed):
        parse_media_playlist("#EXTM3U\n#EXT-X-ENDLIST\n")


def test_GIVEN_a_moment_or_a_span_WHEN_segments_are_chosen_THEN_only_those_holding_it_are() -> None:
    playlist = MediaPlaylist(segments=tuple(SegmentRef(f"s{i}.ts", i * 2.0, 2.0) for i in range(5)))

    assert [s.uri for s in segments_covering(playlist, 3.0, 3.0)] == ["s1.ts"]
    assert [s.uri for s in segments_covering(playlist, 4.0, 4.0)] == ["s2.ts"]
    assert [s.uri for s in segments_covering(playlist, 3.0, 7.5)] == ["s1.ts", "s2.ts", "s3.ts"]
    # Past the listed end (the source is a little longer than its rendition): the last segment.
    assert [s.uri for s in segments_covering(playlist, 10.2, 10.2)] == ["s4.ts"]
    assert demuxer_for("s1.ts") == "mpegts" and demuxer_for("s1.m4s") == "mov"


@pytest.mark.parametrize(
    ("width", "height", "chosen"),
    [(None, None, "720p"), (320, None, "240p"), (427, None, "480p"), (None, 480, "480p"), (1920, None, "720p")],
)
def test_GIVEN_a_size_WHEN_a_rendition_is_chosen_THEN_it_is_the_smallest_large_enough(
    width: int | None, height: int | None, chosen: str
) -> None:
    assert choose_rendition(RENDITIONS, width, height)["name"] == chosen


def test_GIVEN_the_image_function_s_refusal_WHEN_read_by_the_api_THEN_it_keeps_its_status_and_code() -> None:
    bad = refusal({"code": "VALIDATION_FAILED", "message": "no segment", "http_status": 400})
    corrupt = refusal({"code": "CORRUPT_MEDIA", "message": "cannot decode", "http_status": 422})
    ours = refusal({"code": "FFMPEG_ERROR", "message": "timed out", "http_status": 500})

    assert (bad.http_status, bad.code, bad.message) == (400, "VALIDATION_FAILED", "no segment")
    assert (corrupt.http_status, corrupt.code) == (422, "CORRUPT_MEDIA")
    assert (ours.http_status, ours.code) == (502, "IMAGE_NOT_MADE")

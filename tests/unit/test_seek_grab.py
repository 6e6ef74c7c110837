"""The per-tile seeks of a long upload's thumbnails: the FFmpeg arguments,
where each tile seeks to, which uploads take this path, and gaps filled."""

from __future__ import annotations

from pathlib import Path

import pytest

from thumbnails.domain_logic.seek_grab import (
    build_seek_args,
    fill_missing,
    seek_target_s,
    seekable_by_index,
    uses_seeks,
)
from thumbnails.domain_logic.storyboard import plan_storyboard
from vidpipe.domain.colour import SDR_BT709

URL = "https://uploads.example/uploads/job/source.mp4?X-Amz-Signature=abc"


def _args(candidate: Path | None) -> list[str]:
    return build_seek_args(
        URL, "mov", at_s=95.0, tile_path=Path("/w/tile.rgb"), tile_size=(160, 90),
        candidate_path=candidate, candidate_size=(1280, 720), colour=SDR_BT709,
    )  # fmt: skip


def test_GIVEN_a_tile_WHEN_its_seek_is_built_THEN_it_seeks_by_the_index_to_one_keyframe_of_the_url() -> None:
    args = _args(None)
    # THEN the seek and the decoder options come before the URL's restricted input
    input_at = args.index("-i")
    assert args[args.index("-ss") + 1] == "95.000" and args.index("-ss") < input_at
    assert "-noaccurate_seek" in args[:input_at]
    assert args[args.index("-skip_frame") + 1] == "nokey"
    assert args[args.index("-protocol_whitelist") + 1] == "https,tls,tcp"
    assert args[input_at + 1] == URL
    # AND one raw frame is written, nothing else
    assert args[-5:] == ["-frames:v", "1", "-f", "rawvideo", "/w/tile.rgb"]
    assert args.count("-frames:v") == 1


def test_GIVEN_a_poster_slot_WHEN_its_seek_is_built_THEN_the_same_keyframe_is_written_at_both_sizes() -> None:
    args = _args(Path("/w/candidate.rgb"))
    assert args.count("-frames:v") == 2
    assert args[-1] == "/w/candidate.rgb" and "/w/tile.rgb" in args
    graph = args[args.index("-filter_complex") + 1]
    assert "split" in graph and "160:90" in graph and "1280:720" in graph


def test_GIVEN_a_negative_time_or_an_unsafe_scheme_WHEN_a_seek_is_built_THEN_ValueError() -> None:
    with pytest.raises(ValueError, match="negative"):
        build_seek_args(URL, "mov", at_s=-1.0, tile_path=Path("t"), tile_size=(16, 9), candidate_path=None,
                        candidate_size=(16, 9), colour=SDR_BT709)  # fmt: skip
    with pytest.raises(ValueError, match="ftp"):
        build_seek_args("ftp://host/x.mp4", "mov", at_s=1.0, tile_path=Path("t"), tile_size=(16, 9),
                        candidate_path=None, candidate_size=(16, 9), colour=SDR_BT709)  # fmt: skip


def test_GIVEN_an_hour_long_plan_WHEN_tiles_seek_THEN_each_aims_at_the_middle_of_its_own_cue() -> None:
    plan = plan_storyboard(3600.5, 1920, 1080)
    assert plan.interval_ms == 60_000 and plan.tile_count == 61
    assert seek_target_s(plan, 0) == 30.0
    assert seek_target_s(plan, 59) == 3570.0
    # THEN the last, partial cue (3600-3600.5 s) aims inside itself, not past the end
    assert seek_target_s(plan, 60) == 3600.25


@pytest.mark.parametrize(
    ("frames", "expected"),
    [
        ([b"a", None, b"c"], [b"a", b"a", b"c"]),  # a gap repeats the tile before it
        ([None, b"b", None], [b"b", b"b", b"b"]),  # a first gap takes the first picture
        ([None, None], []),  # nothing decoded: nothing to show
    ],
)
def test_GIVEN_tiles_whose_seek_gave_nothing_WHEN_filled_THEN_every_tile_has_a_neighbours_picture(
    frames: list[bytes | None], expected: list[bytes]
) -> None:
    assert fill_missing(frames) == expected


def test_GIVEN_uploads_WHEN_the_path_is_chosen_THEN_seeks_only_for_chunked_lengths_of_indexed_files() -> None:
    assert uses_seeks(120.5, chunk_threshold_s=120.0)
    assert not uses_seeks(120.0, chunk_threshold_s=120.0)  # the transcode function encodes it alone
    assert seekable_by_index("mov")
    assert not seekable_by_index("mpegts")  # no index: downloaded, one pass

"""The transcode function's choices, from plain facts: trust a probe by URL or
download the upload; one process, chunks, or refused as too long."""

from __future__ import annotations

import pytest

from transcode.domain_logic.transcode_choices import Encoding, choose_encoding, url_probe_is_enough

CHUNK_THRESHOLD_S = 600.0
MAX_DURATION_S = 3 * 3600.0


def test_GIVEN_an_mp4_or_mov_probed_by_url_WHEN_judged_THEN_the_answer_is_enough() -> None:
    # "mov" is the demuxer FFmpeg reads MP4, MOV, M4A and 3GP with.
    assert url_probe_is_enough("mov")


@pytest.mark.parametrize("demuxer", ["mpegts", "matroska", "avi", "flv", ""])
def test_GIVEN_another_container_probed_by_url_WHEN_judged_THEN_it_is_downloaded_and_probed_in_full(
    demuxer: str,
) -> None:
    assert not url_probe_is_enough(demuxer)


@pytest.mark.parametrize(
    ("duration_s", "expected"),
    [
        (4.0, Encoding.SINGLE_PROCESS),
        (CHUNK_THRESHOLD_S, Encoding.SINGLE_PROCESS),  # at the threshold: still one process
        (CHUNK_THRESHOLD_S + 0.1, Encoding.CHUNKED),
        (MAX_DURATION_S, Encoding.CHUNKED),  # at the limit: still accepted
        (MAX_DURATION_S + 0.1, Encoding.TOO_LONG),
    ],
)
def test_GIVEN_a_probed_duration_WHEN_the_encoding_is_chosen_THEN_one_process_up_to_the_threshold_then_chunks(
    duration_s: float, expected: Encoding
) -> None:
    encoding = choose_encoding(duration_s, chunk_threshold_s=CHUNK_THRESHOLD_S, max_duration_s=MAX_DURATION_S)

    assert encoding is expected


def test_GIVEN_a_limit_below_the_threshold_WHEN_a_video_between_them_is_chosen_for_THEN_too_long() -> None:
    encoding = choose_encoding(500.0, chunk_threshold_s=CHUNK_THRESHOLD_S, max_duration_s=300.0)

    assert encoding is Encoding.TOO_LONG


@pytest.mark.parametrize(
    ("encoding", "charged"),
    [(Encoding.SINGLE_PROCESS, True), (Encoding.CHUNKED, True), (Encoding.TOO_LONG, False)],
)
def test_GIVEN_an_encoding_WHEN_asked_whether_it_costs_minutes_THEN_only_a_refused_video_is_free(
    encoding: Encoding, charged: bool
) -> None:
    assert encoding.costs_minutes is charged

"""The content type `vidpipe submit` declares for a file, from its name."""

from __future__ import annotations

from pathlib import Path

import pytest

from vidpipe_cli.api_client import guess_content_type


@pytest.mark.parametrize("name", ["broadcast.ts", "camera.MTS", "disc.m2ts"])
def test_GIVEN_an_mpeg_ts_file_WHEN_its_type_is_guessed_THEN_video_mp2t_whatever_the_system_table_says(
    name: str,
) -> None:
    assert guess_content_type(Path(name)) == "video/mp2t"


@pytest.mark.parametrize(
    ("name", "expected"),
    [("clip.mp4", "video/mp4"), ("clip.webm", "video/webm"), ("no_extension", "application/octet-stream")],
)
def test_GIVEN_other_files_WHEN_their_type_is_guessed_THEN_the_system_table_or_octet_stream(
    name: str, expected: str
) -> None:
    assert guess_content_type(Path(name)) == expected

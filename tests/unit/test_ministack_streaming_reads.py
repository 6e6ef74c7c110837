"""The file slices that stand for S3 objects' bodies on the local stack
(vidpipe_cli/ministack_streaming_reads.py), without ministack."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from vidpipe_cli.ministack_streaming_reads import ObjectFileSlice, send_object_body

CONTENT = bytes(range(256)) * 10000  # 2.56 MB: three pieces of 1 MiB


@pytest.fixture
def object_file(tmp_path: Path) -> Path:
    path = tmp_path / "object"
    path.write_bytes(CONTENT)
    return path


@pytest.mark.parametrize(("start", "stop"), [(0, None), (5, 105), (2_000_000, None), (100, 100), (10, 5)])
def test_a_slice_holds_the_same_bytes_as_slicing_the_content(object_file: Path, start: int, stop: int | None) -> None:
    body = ObjectFileSlice.open(str(object_file))
    # ministack slices twice at most: a range of the object, then nothing more
    piece = body[start:stop]
    assert len(piece) == len(CONTENT[start:stop])
    assert b"".join(piece.pieces(piece_bytes=4096)) == CONTENT[start:stop]
    body.close()


def test_a_slice_of_a_slice_counts_from_its_own_start(object_file: Path) -> None:
    body = ObjectFileSlice.open(str(object_file))[1000:50_000]
    assert b"".join(body[10:20].pieces()) == CONTENT[1010:1020]
    body.close()


def test_a_slice_refuses_indexing_and_steps(object_file: Path) -> None:
    body = ObjectFileSlice.open(str(object_file))
    with pytest.raises(TypeError):
        body[3]  # type: ignore[index]
    with pytest.raises(ValueError):
        body[::2]
    body.close()


def test_the_response_is_sent_in_pieces_with_its_length(object_file: Path) -> None:
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    def header_list(headers: dict[str, str]) -> list[tuple[bytes, bytes]]:  # ministack's, in short
        return [(name.encode(), value.encode()) for name, value in headers.items()]

    body = ObjectFileSlice.open(str(object_file))[7:]
    asyncio.run(send_object_body(send, 206, {"Content-Range": "x"}, body, head=False, header_list=header_list))
    start, *pieces = sent
    assert start["status"] == 206
    assert (b"Content-Length", str(len(CONTENT) - 7).encode()) in start["headers"]
    assert len(pieces) == 4  # three pieces of at most 1 MiB, then the end of the body
    assert pieces[-1] == {"type": "http.response.body", "body": b"", "more_body": False}
    assert b"".join(piece["body"] for piece in pieces) == CONTENT[7:]

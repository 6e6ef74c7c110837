"""S3 reads of ministack that send only what was asked for, from disk, in pieces.

Why (issue 16): the pinned ministack (1.5.33) answers every GetObject by reading
the whole object into memory on its event loop, then copying out the slice a
``Range`` header asks for. FFmpeg reads a source over HTTP with open-ended
ranges (``bytes=N-``: "from here on"), one per seek, so each thumbnail seek or
chunk of a 300 MB upload cost ministack a 300 MB read and copy, about 0.8 s
during which it answered nothing else. Measured with eight such readers on a
304 MB object: a 1 KB GET waited 3.4 s (median) and up to 15.6 s, and the
10-minute local-stack benchmark lost the API for over a minute. S3 itself
streams, so on AWS none of this exists.

Two more things of the same reads, found on the way: a GetObject of a
version (``?versionId=``, how every stage reads its pinned upload) ignored the
``Range`` header and sent the whole object with a 200, so each FFmpeg seek read
the upload again from its first byte; and every version of an object kept its
bytes in memory for as long as it lived (ministack drops them when it restarts;
an hour of uploads held gigabytes).

What changes, and nothing else:

* while ministack's S3 handler serves a GetObject, an object's body is its
  open file (:class:`ObjectFileSlice`) or, when ministack holds it in memory, a
  view of those bytes, so taking the range copies nothing; the response sends
  the asked-for bytes in 1 MiB pieces, as fast as the client takes them,
  stopping when it hangs up;
* a GetObject of a version with a ``Range`` answers 206 with that range (or
  416), as S3 does and as ministack does for the current object;
* once an object's bytes are on disk, the version record of the same bytes
  lets go of its copy in memory; ministack then reads them from disk, as it
  does after a restart.

Authentication, IAM, preconditions and headers are still ministack's own code.
Copies, CloudFront origin reads and everything else are untouched.

Loaded by vidpipe_cli/ministack_launcher.py on ministack's own interpreter; it
imports only the standard library and is given ministack's modules by
:func:`install`. It replaces names private to ministack 1.5.33 (in
``services.s3``: ``handle_request``, ``_get_object``, ``_read_body``,
``_version_body``, ``_persist_object``; and ``app._send_response``) and uses
``S3_PERSIST``, ``_object_disk_path``, ``_version_disk_path``,
``_version_file_exists``, ``_object_versions``, ``_parse_range``,
``_range_error_xml``, ``_xml_body`` and ``app._asgi_header_list``.
"""

from __future__ import annotations

import asyncio
import contextvars
import os
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

PIECE_BYTES = 1 << 20

# Set while ministack's S3 front door serves a request, and while its
# GetObject runs inside one: only then may a body be a file.
_serving_s3_request: contextvars.ContextVar[bool] = contextvars.ContextVar("serving_s3_request", default=False)
_serving_get_object: contextvars.ContextVar[bool] = contextvars.ContextVar("serving_get_object", default=False)
# The request's ASGI receive channel, to notice a client that hung up.
_receive: contextvars.ContextVar[Callable[[], Awaitable[dict[str, Any]]] | None] = contextvars.ContextVar(
    "asgi_receive", default=None
)


class ObjectFileSlice:
    """Bytes ``[start, stop)`` of an object's file, read only when sent.

    The file is opened when the object is looked up, so a PUT that replaces
    the object meanwhile (ministack writes a new file and renames it over the
    old one) does not change what this response sends."""

    def __init__(self, handle: Any, start: int, stop: int) -> None:
        self._handle = handle
        self.start, self.stop = start, stop

    @classmethod
    def open(cls, path: str) -> ObjectFileSlice:
        handle = open(path, "rb")  # noqa: SIM115 - closed when the response ends (or by the collector)
        return cls(handle, 0, os.fstat(handle.fileno()).st_size)

    def __len__(self) -> int:
        return self.stop - self.start

    def __getitem__(self, index: slice) -> ObjectFileSlice:
        # ministack slices the body as body[start:end + 1] for a range.
        if not isinstance(index, slice):
            raise TypeError("an object's file is sliced, not indexed")
        start, stop, step = index.indices(len(self))
        if step != 1:
            raise ValueError("an object's file is sliced with step 1")
        stop = max(start, stop)
        return ObjectFileSlice(self._handle, self.start + start, self.start + stop)

    def pieces(self, piece_bytes: int = PIECE_BYTES) -> Iterator[bytes]:
        position = self.start
        while position < self.stop:
            piece = os.pread(self._handle.fileno(), min(piece_bytes, self.stop - position), position)
            if not piece:  # the file is shorter than its record says: end the body short
                return
            yield piece
            position += len(piece)

    def close(self) -> None:
        self._handle.close()


def pieces_of(body: ObjectFileSlice | memoryview, piece_bytes: int = PIECE_BYTES) -> Iterator[bytes]:
    if isinstance(body, memoryview):
        for offset in range(0, len(body), piece_bytes):
            yield bytes(body[offset : offset + piece_bytes])
    else:
        yield from body.pieces(piece_bytes)


async def send_object_body(
    send: Any,
    status: int,
    headers: dict,
    body: ObjectFileSlice | memoryview,
    *,
    head: bool,
    header_list: Callable[[dict], list[tuple[bytes, bytes]]],
) -> None:
    """The asked-for bytes in pieces; hypercorn's send waits while the client's
    socket is full, so at most a few pieces are in memory per response.
    ``header_list`` encodes the headers for ASGI (ministack's own function)."""
    if "content-length" not in {name.lower() for name in headers}:
        headers["Content-Length"] = str(len(body))
    receive = _receive.get()
    hung_up = asyncio.ensure_future(_wait_for_hang_up(receive)) if receive is not None else None
    try:
        await send({"type": "http.response.start", "status": status, "headers": header_list(headers)})
        if not head:
            for piece in pieces_of(body):
                if hung_up is not None and hung_up.done():
                    return  # FFmpeg read what it needed and closed: stop reading the file
                await send({"type": "http.response.body", "body": piece, "more_body": True})
                await asyncio.sleep(0)  # let the loop notice a hang-up and serve other requests
        await send({"type": "http.response.body", "body": b"", "more_body": False})
    finally:
        if isinstance(body, ObjectFileSlice):
            body.close()
        if hung_up is not None:
            hung_up.cancel()


async def _wait_for_hang_up(receive: Callable[[], Awaitable[dict[str, Any]]]) -> None:
    # ministack has read the request's body already; what comes next is the hang-up.
    while (await receive())["type"] != "http.disconnect":
        pass


def install(s3: Any, app: Any) -> None:
    """Replace ministack's whole-object reads by slices (see the module's docstring)."""
    handle_request, get_object, read_body, version_body, persist_object, send_response = (
        s3.handle_request,
        s3._get_object,
        s3._read_body,
        s3._version_body,
        s3._persist_object,
        app._send_response,
    )

    async def handle_request_serving(*args: Any, **kwargs: Any) -> Any:
        token = _serving_s3_request.set(True)
        try:
            return await handle_request(*args, **kwargs)
        finally:
            _serving_s3_request.reset(token)

    def get_object_serving(bucket_name: str, key: str, headers: dict, query_params: dict | None = None) -> Any:
        token = _serving_get_object.set(_serving_s3_request.get())
        try:
            response = get_object(bucket_name, key, headers, query_params)
        finally:
            _serving_get_object.reset(token)
        if (query_params or {}).get("versionId") and headers.get("range"):
            return with_range(
                response,
                headers["range"],
                parse_range=s3._parse_range,
                refusal_body=lambda: s3._xml_body(s3._range_error_xml(bucket_name, key)),
            )
        return response

    def read_body_sliceable(bucket_name: str, key: str, obj: dict) -> Any:
        if not _serving_get_object.get():
            return read_body(bucket_name, key, obj)
        if obj.get("body") is not None:
            return memoryview(obj["body"])
        path = s3._object_disk_path(bucket_name, key) if s3.S3_PERSIST else None
        if path is None or not os.path.exists(path):
            return read_body(bucket_name, key, obj)
        return ObjectFileSlice.open(path)

    def version_body_sliceable(bucket: dict, bucket_name: str, key: str, version: dict) -> Any:
        if not _serving_get_object.get():
            return version_body(bucket, bucket_name, key, version)
        if version.get("data") is not None:
            return memoryview(version["data"])
        if s3.S3_PERSIST and s3._version_file_exists(bucket_name, key, version["version_id"]):
            return ObjectFileSlice.open(s3._version_disk_path(bucket_name, key, version["version_id"]))
        return version_body(bucket, bucket_name, key, version)  # the current object's: read_body_sliceable

    def persist_object_then_forget_version_bytes(bucket_name: str, key: str, obj: Any) -> None:
        persist_object(bucket_name, key, obj)
        if not isinstance(obj, dict) or not obj.get("version_id"):
            return
        path = s3._object_disk_path(bucket_name, key)
        if path is None or not os.path.exists(path):
            return  # not on disk after all: the version keeps the only copy
        for version in s3._object_versions.get((bucket_name, key), []):
            if version["version_id"] == obj["version_id"]:
                version["data"] = None

    async def send_response_streaming(send: Any, status: int, headers: dict, body: Any, *, head: bool = False) -> None:
        if isinstance(body, (ObjectFileSlice, memoryview)):
            await send_object_body(send, status, headers, body, head=head, header_list=app._asgi_header_list)
        else:
            await send_response(send, status, headers, body, head=head)

    s3.handle_request = handle_request_serving
    s3._get_object = get_object_serving
    s3._read_body = read_body_sliceable
    s3._version_body = version_body_sliceable
    s3._persist_object = persist_object_then_forget_version_bytes
    app._send_response = send_response_streaming


def with_range(
    response: tuple,
    range_header: str,
    *,
    parse_range: Callable[[str, int], Any],
    refusal_body: Callable[[], bytes],
) -> tuple:
    """A whole-object answer cut to ``range_header``, as S3 answers a ranged GET
    of a version: 206 with the range, or 416 with ``refusal_body`` (ministack's
    InvalidRange document) when none of it exists."""
    status, headers, body = response
    if status != 200 or not isinstance(body, (ObjectFileSlice, memoryview, bytes)):
        return response
    total = len(body)
    bounds = parse_range(range_header, total)
    if bounds is None:
        if isinstance(body, ObjectFileSlice):
            body.close()
        return 416, {"Content-Type": "application/xml", "Content-Range": f"bytes */{total}"}, refusal_body()
    start, end = bounds
    cut = body[start : end + 1]
    headers = {name: value for name, value in headers.items() if name.lower() != "content-length"}
    headers["Content-Length"] = str(len(cut))
    headers["Content-Range"] = f"bytes {start}-{end}/{total}"
    return 206, headers, cut


def remembering_receive(asgi_app: Any) -> Any:
    """The ASGI app, with each request's receive channel at hand for
    :func:`send_object_body` (ministack does not pass it down)."""

    async def wrapped(scope: dict[str, Any], receive: Any, send: Any) -> None:
        token = _receive.set(receive)
        try:
            await asgi_app(scope, receive, send)
        finally:
            _receive.reset(token)

    return wrapped

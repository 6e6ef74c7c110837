"""A client of vidpipe's HTTP API that uploads exactly as the web page does:
``POST /uploads``, then the presigned POST to S3 with ``requests``, then
polling ``GET /jobs/{id}``.

What can go wrong: ``ApiError`` carrying the API's error code and message, or
S3's message when the upload itself is refused."""

from __future__ import annotations

import io
import mimetypes
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import requests

FINAL_STATUSES = frozenset({"READY", "FAILED", "EXPIRED"})
UPLOAD_CHUNK_BYTES = 256 * 1024


class ApiError(RuntimeError):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message = status, code, message


@dataclass
class VidpipeClient:
    api_url: str
    session: requests.Session | None = None
    timeout_s: float = 30.0

    def __post_init__(self) -> None:
        self.api_url = self.api_url.rstrip("/")
        self.session = self.session or requests.Session()

    # ------------------------------------------------------------- API calls

    def create_upload(self, filename: str, content_type: str, size: int) -> dict[str, Any]:
        payload = {"filename": filename, "content_type": content_type, "size": size}
        return self._call("POST", "/uploads", json=payload, expected=201)

    def get_job(self, job_id: str) -> dict[str, Any]:
        return self._call("GET", f"/jobs/{job_id}")

    def list_jobs(self, limit: int = 20, next_token: str | None = None) -> dict[str, Any]:
        params: dict[str, Any] = {"limit": limit}
        if next_token:
            params["next_token"] = next_token
        return self._call("GET", "/jobs", params=params)

    def _call(self, method: str, path: str, *, expected: int = 200, **kwargs: Any) -> dict[str, Any]:
        assert self.session is not None
        response = self.session.request(method, self.api_url + path, timeout=self.timeout_s, **kwargs)
        if response.status_code != expected:
            raise _api_error(response)
        return response.json()

    # ------------------------------------------------------------- uploading

    def submit(
        self,
        path: Path,
        *,
        content_type: str | None = None,
        on_progress: Callable[[int, int], None] | None = None,
    ) -> str:
        """Upload one file; returns its job id once S3 has the bytes."""
        size = path.stat().st_size
        content_type = content_type or guess_content_type(path)
        created = self.create_upload(path.name, content_type, size)
        upload = created["upload"]
        if upload["method"] != "POST":
            raise ApiError(0, "UNSUPPORTED_UPLOAD", f"upload method {upload['method']} is not supported")
        with path.open("rb") as handle:
            body = _MultipartFormBody(upload["fields"], handle, size, path.name, content_type, on_progress)
            assert self.session is not None
            response = self.session.post(
                upload["url"], data=body, headers={"Content-Type": body.content_type}, timeout=None
            )
        if response.status_code not in (200, 201, 204):
            raise ApiError(response.status_code, "UPLOAD_REFUSED", _s3_message(response.text))
        return str(created["job_id"])

    def wait(
        self,
        job_id: str,
        *,
        timeout_s: float = 600,
        poll_s: float = 1.0,
        on_update: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        """Poll the job until READY, FAILED or EXPIRED (or the timeout)."""
        deadline = time.monotonic() + timeout_s
        while True:
            job = self.get_job(job_id)
            if on_update:
                on_update(job)
            if job["status"] in FINAL_STATUSES:
                return job
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} is still {job['status']} after {timeout_s:.0f} s")
            time.sleep(poll_s)


def guess_content_type(path: Path) -> str:
    guessed = mimetypes.guess_type(path.name)[0]
    return guessed or "application/octet-stream"


class _MultipartFormBody:
    """A multipart/form-data body streamed from disk, as a browser's FormData.

    requests would build a ``files=`` body in memory before sending anything,
    so progress could not be reported and a large file would sit in RAM. This
    reader yields the policy fields, then the file (last, as S3 requires), with
    a known length so S3 gets a Content-Length."""

    def __init__(
        self,
        fields: dict[str, str],
        handle: BinaryIO,
        size: int,
        filename: str,
        content_type: str,
        on_progress: Callable[[int, int], None] | None,
    ) -> None:
        boundary = f"vidpipe-{uuid.uuid4().hex}"
        self.content_type = f"multipart/form-data; boundary={boundary}"
        head = b"".join(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
            for name, value in fields.items()
        )
        safe_name = filename.replace('"', "_").replace("\r", "_").replace("\n", "_")
        head += (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{safe_name}"\r\n'
            f"Content-Type: {content_type}\r\n\r\n"
        ).encode()
        tail = f"\r\n--{boundary}--\r\n".encode()
        self._parts: list[BinaryIO] = [io.BytesIO(head), handle, io.BytesIO(tail)]
        self._length = len(head) + size + len(tail)
        self._file, self._file_size, self._on_progress, self._sent = handle, size, on_progress, 0

    def __len__(self) -> int:
        return self._length

    def read(self, amount: int = -1) -> bytes:
        amount = UPLOAD_CHUNK_BYTES if amount is None or amount < 0 else amount
        while self._parts:
            chunk = self._parts[0].read(amount)
            if chunk:
                if self._parts[0] is self._file:
                    self._sent += len(chunk)
                    if self._on_progress:
                        self._on_progress(self._sent, self._file_size)
                return chunk
            self._parts.pop(0)
        return b""


def _api_error(response: requests.Response) -> ApiError:
    try:
        error = response.json().get("error") or {}
    except ValueError:
        error = {}
    code, message = error.get("code", "HTTP_ERROR"), error.get("message", response.text[:300])
    return ApiError(response.status_code, code, message)


def _s3_message(body: str) -> str:
    start, end = body.find("<Message>"), body.find("</Message>")
    return body[start + 9 : end] if start >= 0 and end > start else body[:300]

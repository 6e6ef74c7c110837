"""A client of vidpipe's HTTP API that uploads exactly as the web page does:
``POST /uploads``, then the presigned POST to S3 with ``requests`` (or, for a
large file, its parts in parallel to presigned part URLs, then ``complete``),
then polling ``GET /jobs/{id}``.

A multipart upload is resumable: the job id is written to a journal before the
first part goes up, so running the same upload again (same file, same size and
modification time) asks the API which parts S3 already has and sends only the
others.

What can go wrong: ``ApiError`` carrying the API's error code and message, or
S3's message when the upload itself is refused."""

from __future__ import annotations

import hashlib
import io
import json
import mimetypes
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import requests

FINAL_STATUSES = frozenset({"READY", "FAILED", "EXPIRED"})
# Answers that say "try again in a moment" while polling: no answer at all
# (status 0: a dropped connection, a restarting stack), throttling, a gateway
# or function that is briefly unwell.
TRANSIENT_STATUSES = frozenset({0, 429, 500, 502, 503, 504})
# How long polling rides out such answers in a row before giving up.
POLL_OUTAGE_S = 60.0
UPLOAD_CHUNK_BYTES = 256 * 1024
PART_ATTEMPTS = 5
PART_URL_BATCH = 100


class ApiError(RuntimeError):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message = status, code, message


class UploadJournal:
    """Remembers which job a multipart upload of a given file belongs to, so an
    interrupted upload resumes. One small JSON file per upload in ``folder``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _path(self, api_url: str, file: Path) -> Path:
        stat = file.stat()
        identity = f"{api_url}|{file.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
        return self.folder / f"{hashlib.sha256(identity.encode()).hexdigest()[:32]}.json"

    def find(self, api_url: str, file: Path) -> str | None:
        try:
            return str(json.loads(self._path(api_url, file).read_text())["job_id"])
        except (OSError, ValueError, KeyError):
            return None

    def remember(self, api_url: str, file: Path, job_id: str) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self._path(api_url, file).write_text(json.dumps({"job_id": job_id, "file": str(file.resolve())}))

    def forget(self, api_url: str, file: Path) -> None:
        self._path(api_url, file).unlink(missing_ok=True)


@dataclass
class VidpipeClient:
    api_url: str
    session: requests.Session | None = None
    timeout_s: float = 30.0
    journal: UploadJournal | None = None
    concurrency: int = 4
    token: str = ""  # the API token, sent to the API only (never to S3)

    def __post_init__(self) -> None:
        self.api_url = self.api_url.rstrip("/")
        self.session = self.session or requests.Session()
        self._thread_sessions = threading.local()

    # ------------------------------------------------------------- API calls

    def create_upload(self, filename: str, content_type: str, size: int, *, title: str | None = None) -> dict[str, Any]:
        payload: dict[str, Any] = {"filename": filename, "content_type": content_type, "size": size}
        if title is not None:
            payload["title"] = title
        return self._call("POST", "/uploads", json=payload, expected=201)

    def import_source(self, source_url: str, *, title: str | None = None) -> str:
        """Ask the service to fetch ``source_url`` itself; the new job's id."""
        payload: dict[str, Any] = {"source_url": source_url}
        if title is not None:
            payload["title"] = title
        return str(self._call("POST", "/uploads", json=payload, expected=201)["job_id"])

    def rename_job(self, job_id: str, title: str | None) -> dict[str, Any]:
        return self._call("PATCH", f"/jobs/{job_id}", json={"title": title})

    def delete_job(self, job_id: str) -> None:
        """Delete the job, its upload and its outputs (204; ApiError 404 when it is not there)."""
        self._call("DELETE", f"/jobs/{job_id}", expected=204)

    def get_job(self, job_id: str) -> dict[str, Any]:
        return self._call("GET", f"/jobs/{job_id}")

    def get_events(self, job_id: str) -> dict[str, Any]:
        """The job's timeline: ``{job_id, status, events: [...]}``, oldest first."""
        return self._call("GET", f"/jobs/{job_id}/events")

    def list_jobs(self, limit: int = 20, next_token: str | None = None) -> dict[str, Any]:
        params: dict[str, Any] = {"limit": limit}
        if next_token:
            params["next_token"] = next_token
        return self._call("GET", "/jobs", params=params)

    def uploaded_parts(self, job_id: str) -> dict[str, Any]:
        return self._call("GET", f"/uploads/{job_id}/parts")

    def part_urls(self, job_id: str, part_numbers: list[int]) -> dict[int, str]:
        answer = self._call("POST", f"/uploads/{job_id}/parts", json={"part_numbers": part_numbers})
        return {int(part["part_number"]): str(part["url"]) for part in answer["parts"]}

    def complete_upload(self, job_id: str, parts: dict[int, str]) -> dict[str, Any]:
        body = {"parts": [{"part_number": n, "etag": etag} for n, etag in sorted(parts.items())]}
        return self._call("POST", f"/uploads/{job_id}/complete", json=body)

    def cancel_upload(self, job_id: str) -> dict[str, Any]:
        return self._call("DELETE", f"/uploads/{job_id}")

    def _call(self, method: str, path: str, *, expected: int = 200, **kwargs: Any) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        try:
            response = self._session().request(
                method, self.api_url + path, timeout=self.timeout_s, headers=headers, **kwargs
            )
        except requests.RequestException as exc:
            # Status 0: no HTTP answer at all (a wrong --api-url, a stack that is down).
            raise ApiError(0, "API_UNREACHABLE", f"cannot reach {self.api_url}: {type(exc).__name__}") from exc
        if response.status_code != expected:
            raise _api_error(response)
        return response.json() if response.content else {}

    # ------------------------------------------------------------- uploading

    def submit(
        self,
        path: Path,
        *,
        content_type: str | None = None,
        on_progress: Callable[[int, int], None] | None = None,
    ) -> str:
        """Upload one file; returns its job id once S3 has the bytes.

        A multipart upload of this file that was interrupted earlier resumes."""
        size = path.stat().st_size
        resumable = self.journal.find(self.api_url, path) if self.journal else None
        if resumable is not None:
            try:
                plan = self.uploaded_parts(resumable)
            except ApiError:
                plan = None  # finished, cancelled or expired meanwhile: start afresh
            if plan is not None:
                self._upload_parts(path, resumable, plan, on_progress)
                return resumable
        content_type = content_type or guess_content_type(path)
        created = self.create_upload(path.name, content_type, size)
        upload, job_id = created["upload"], str(created["job_id"])
        if upload["method"] == "MULTIPART":
            if self.journal:
                self.journal.remember(self.api_url, path, job_id)
            known = {int(part["part_number"]): str(part["url"]) for part in upload["parts"]}
            self._upload_parts(path, job_id, {**upload, "parts": []}, on_progress, known_urls=known)
            return job_id
        with path.open("rb") as handle:
            body = _MultipartFormBody(upload["fields"], handle, size, path.name, content_type, on_progress)
            # This thread's session: several files may be submitted at once.
            response = self._session().post(
                upload["url"], data=body, headers={"Content-Type": body.content_type}, timeout=None
            )
        if response.status_code not in (200, 201, 204):
            raise ApiError(response.status_code, "UPLOAD_REFUSED", _s3_message(response.text))
        return job_id

    def _upload_parts(
        self,
        path: Path,
        job_id: str,
        plan: dict[str, Any],
        on_progress: Callable[[int, int], None] | None,
        known_urls: dict[int, str] | None = None,
    ) -> None:
        """Send the parts S3 does not hold yet, ``concurrency`` at a time, each
        retried with backoff; then complete. ``plan["parts"]`` lists the parts
        S3 already has (resuming)."""
        size, part_size, part_count = path.stat().st_size, int(plan["part_size"]), int(plan["part_count"])
        etags = {int(part["part_number"]): str(part["etag"]) for part in plan["parts"]}
        missing = [n for n in range(1, part_count + 1) if n not in etags]
        urls = dict(known_urls or {})
        lock = threading.Lock()
        sent = [sum(min(part_size, size - (n - 1) * part_size) for n in etags)]
        if on_progress:
            on_progress(sent[0], size)

        def url_for(number: int, *, fresh: bool = False) -> str:
            with lock:
                if fresh or number not in urls:
                    # Ask for this part and the next ones still to send, in one call.
                    batch = [n for n in missing if n >= number][:PART_URL_BATCH]
                    urls.update(self.part_urls(job_id, batch or [number]))
                return urls[number]

        def send(number: int) -> None:
            offset = (number - 1) * part_size
            with path.open("rb") as handle:
                handle.seek(offset)
                data = handle.read(min(part_size, size - offset))
            etag = self._put_part(number, data, url_for)
            with lock:
                etags[number] = etag
                sent[0] += len(data)
                if on_progress:
                    on_progress(sent[0], size)

        pool = ThreadPoolExecutor(max_workers=self.concurrency)
        try:
            for future in [pool.submit(send, n) for n in missing]:
                future.result()
        except BaseException:
            # Interrupted (Ctrl-C) or a part gave up: drop the queued parts at
            # once; the journal lets the next run resume.
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown()
        self.complete_upload(job_id, etags)
        if self.journal:
            self.journal.forget(self.api_url, path)

    def _put_part(self, number: int, data: bytes, url_for: Callable[..., str]) -> str:
        """PUT one part; retried with exponential backoff, with a fresh URL after
        a 403 (expired signature). Returns the part's ETag."""
        delay, fresh = 1.0, False
        for attempt in range(1, PART_ATTEMPTS + 1):
            try:
                response = self._session().put(url_for(number, fresh=fresh), data=data, timeout=300)
                if response.status_code == 200 and response.headers.get("ETag"):
                    return str(response.headers["ETag"])
                fresh = response.status_code == 403
                problem = f"S3 answered {response.status_code}: {_s3_message(response.text)}"
            except requests.RequestException as exc:
                problem = f"{type(exc).__name__}: {exc}"
            if attempt < PART_ATTEMPTS:
                time.sleep(delay)
                delay *= 2
        raise ApiError(0, "PART_UPLOAD_FAILED", f"part {number} failed {PART_ATTEMPTS} times: {problem}")

    def _session(self) -> requests.Session:
        """One requests session per thread (a Session is not thread-safe)."""
        session: requests.Session | None = getattr(self._thread_sessions, "session", None)
        if session is None:
            on_main_thread = threading.current_thread() is threading.main_thread()
            session = self.session if on_main_thread and self.session else requests.Session()
            self._thread_sessions.session = session
        return session

    def wait(
        self,
        job_id: str,
        *,
        timeout_s: float = 600,
        poll_s: float = 1.0,
        on_update: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        """Poll the job until READY, FAILED or EXPIRED (or the timeout).

        Rides out answers that say "in a moment" (no connection, 429, 5xx) for
        up to POLL_OUTAGE_S in a row; then, or on any other error, raises ApiError."""
        deadline = time.monotonic() + timeout_s
        last_answer = time.monotonic()
        while True:
            try:
                job = self.get_job(job_id)
            except ApiError as exc:
                if exc.status not in TRANSIENT_STATUSES or time.monotonic() - last_answer > POLL_OUTAGE_S:
                    raise
                time.sleep(poll_s)
                continue
            last_answer = time.monotonic()
            if on_update:
                on_update(job)
            if job["status"] in FINAL_STATUSES:
                return job
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} is still {job['status']} after {timeout_s:.0f} s")
            time.sleep(poll_s)


# Video types by extension where the system's table is wrong: Debian's
# /etc/mime.types reads .ts as Qt Linguist text, and the API rightly refuses a
# type that is not video/... for an MPEG-TS recording.
VIDEO_CONTENT_TYPES = {".ts": "video/mp2t", ".mts": "video/mp2t", ".m2ts": "video/mp2t"}


def guess_content_type(path: Path) -> str:
    known = VIDEO_CONTENT_TYPES.get(path.suffix.lower())
    return known or mimetypes.guess_type(path.name)[0] or "application/octet-stream"


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
    if not error and response.status_code in (401, 403):
        # API Gateway's own refusal ({"message": "Unauthorized"|"Forbidden"}): the
        # authorizer can give no reason, so name the ones it may have had.
        return ApiError(
            response.status_code,
            "UNAUTHENTICATED",
            "the API refused the token (missing, forged, expired, revoked, or of the old vp1 "
            "format): mint a new one with `vidpipe token USER` and pass it as --api-token",
        )
    code, message = error.get("code", "HTTP_ERROR"), error.get("message", response.text[:300])
    return ApiError(response.status_code, code, message)


def _s3_message(body: str) -> str:
    start, end = body.find("<Message>"), body.find("</Message>")
    return body[start + 9 : end] if start >= 0 and end > start else body[:300]

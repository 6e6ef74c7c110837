"""Large uploads from the web page on the local stack: S3 multipart with parallel parts, resumed
after a page reload without re-sending finished parts, and cancelled with the Cancel button.

Part uploads are slowed down in the browser (each PUT waits before it goes out) so that "a few
parts done, the rest still to come" is a state the test reaches every time, not by luck.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from playwright.sync_api import Browser, Error, Page, Request, Response, Route, expect

from tests.e2e.test_web_page import PAGE_LOAD_TIMEOUT_MS, PHONE_VIEWPORT

pytestmark = [pytest.mark.stack, pytest.mark.browser]

MIB = 1024 * 1024
# Above the API's default multipart threshold (100 MiB), so the page gets a multipart plan.
FILE_SIZE = 110 * MIB
PART_PUT_DELAY_S = 0.3
PARTS_BEFORE_RELOAD = 3
UPLOAD_TIMEOUT_MS = 180_000
PART_NUMBER = re.compile(r"[?&]partNumber=(\d+)")


@pytest.fixture(scope="module")
def big_video(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A 110 MiB "video" made on the fly (random bytes: the pipeline will fail it as
    NOT_A_VIDEO later, which these upload tests do not look at) and its sha256."""
    path = tmp_path_factory.mktemp("web-resume") / "phone-video.mp4"
    digest = hashlib.sha256()
    with path.open("wb") as handle:
        for _ in range(FILE_SIZE // MIB):
            chunk = os.urandom(MIB)
            digest.update(chunk)
            handle.write(chunk)
    return path, digest.hexdigest()


@dataclass
class PartTraffic:
    """Part PUTs seen by the browser, split at the reload."""

    reloaded: bool = False
    done_before: set[int] = field(default_factory=set)
    sent_after: list[int] = field(default_factory=list)
    done_after: set[int] = field(default_factory=set)
    upload_creations: int = 0

    def on_request(self, request: Request) -> None:
        if request.method == "POST" and request.url.rstrip("/").endswith("/uploads"):
            self.upload_creations += 1
        number = part_number(request)
        if number is not None and self.reloaded:
            self.sent_after.append(number)

    def on_response(self, response: Response) -> None:
        number = part_number(response.request)
        if number is None or response.status != 200:
            return
        (self.done_after if self.reloaded else self.done_before).add(number)


def part_number(request: Request) -> int | None:
    match = PART_NUMBER.search(request.url)
    return int(match.group(1)) if request.method == "PUT" and match else None


def slow_part_puts(route: Route) -> None:
    # Handlers run one at a time, so this also spaces the PUTs out: a steady trickle of parts.
    if route.request.method == "PUT":
        time.sleep(PART_PUT_DELAY_S)
    # The page may have been reloaded while this PUT waited: the browser has dropped it then.
    with contextlib.suppress(Error):
        route.continue_()


@pytest.fixture
def page(browser: Browser, local_stack) -> Iterator[Page]:
    context = browser.new_context(viewport=PHONE_VIEWPORT)
    page = context.new_page()
    script_errors: list[str] = []
    page.on("pageerror", lambda exc: script_errors.append(str(exc)))
    page.script_errors = script_errors  # type: ignore[attr-defined]
    page.route(PART_NUMBER, slow_part_puts)
    page.goto(local_stack.web_url, timeout=PAGE_LOAD_TIMEOUT_MS)
    yield page
    context.close()


def s3(stack: Any) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=stack.aws_endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(s3={"addressing_style": "path"}),
    )


def stored_sha256(stack: Any, job_id: str) -> str:
    client = s3(stack)
    [bucket] = [b["Name"] for b in client.list_buckets()["Buckets"] if "uploadsbucket" in b["Name"]]
    body = client.get_object(Bucket=bucket, Key=f"uploads/{job_id}/source")["Body"]
    digest = hashlib.sha256()
    for chunk in iter(lambda: body.read(8 * MIB), b""):
        digest.update(chunk)
    return digest.hexdigest()


def get_job(page: Page, stack: Any, job_id: str) -> dict[str, Any]:
    answer = page.request.get(
        f"{stack.api_url.rstrip('/')}/jobs/{job_id}", headers={"Authorization": f"Bearer {stack.api_token}"}
    )
    assert answer.ok, answer.text()
    return answer.json()


def test_reload_during_a_multipart_upload_resumes_without_resending_parts(
    page: Page, local_stack, big_video: tuple[Path, str]
) -> None:
    path, expected_sha256 = big_video
    traffic = PartTraffic()
    page.on("request", traffic.on_request)
    page.on("response", traffic.on_response)

    # GIVEN a multipart upload from the page, a few parts in
    page.set_input_files("#file-input", path)
    page.click("#upload-button")
    row = page.locator(".upload-item").first
    expect(row).to_have_attribute("data-job-id", re.compile(r"\w+"))
    job_id = row.get_attribute("data-job-id")
    deadline = time.monotonic() + 60
    while len(traffic.done_before) < PARTS_BEFORE_RELOAD and time.monotonic() < deadline:
        page.wait_for_timeout(20)
    assert len(traffic.done_before) >= PARTS_BEFORE_RELOAD, "parts never finished before the reload"
    [plan] = page.evaluate(
        "Object.keys(localStorage).filter(k => k.startsWith('vidpipe.upload.'))"
        ".map(k => JSON.parse(localStorage.getItem(k)))"
    )
    assert plan["job_id"] == job_id

    # WHEN the page is reloaded mid-upload
    page.reload(timeout=PAGE_LOAD_TIMEOUT_MS)
    traffic.reloaded = True
    done_before = set(traffic.done_before)

    # THEN it remembers the unfinished upload and asks for the file again
    paused = page.locator(f".upload-item[data-job-id='{job_id}']")
    expect(paused).to_have_attribute("data-state", "paused")
    expect(paused).to_contain_text("Choose the same file")

    # WHEN the user chooses the same file again from the paused row
    with page.expect_file_chooser() as chooser:
        paused.locator(".resume-upload").click()
    chooser.value.set_files(path)

    # THEN the same job's upload finishes, sending only what the server did not have
    resumed = page.locator(f".upload-item[data-job-id='{job_id}']")
    expect(resumed).to_have_attribute("data-state", "done", timeout=UPLOAD_TIMEOUT_MS)
    expect(resumed.locator(".upload-progress")).to_have_js_property("value", 100)
    assert traffic.upload_creations == 1, "the page started a second upload instead of resuming"
    assert traffic.sent_after, "nothing was left to send after the reload: the test did not interrupt anything"
    resent = done_before & set(traffic.sent_after)
    assert not resent, f"parts finished before the reload were sent again: {sorted(resent)}"
    assert len(done_before) < plan["part_count"]
    assert set(traffic.sent_after) <= set(range(1, plan["part_count"] + 1))
    expect(resumed.locator(".upload-note")).to_contain_text("Resumed")

    # AND S3 holds exactly the file's bytes, and the page no longer remembers the upload
    assert stored_sha256(local_stack, job_id) == expected_sha256
    assert page.evaluate("Object.keys(localStorage).filter(k => k.startsWith('vidpipe.upload.'))") == []
    assert page.script_errors == []  # type: ignore[attr-defined]


def test_cancel_button_aborts_the_multipart_upload(page: Page, local_stack, big_video: tuple[Path, str]) -> None:
    path, _ = big_video
    traffic = PartTraffic()
    page.on("response", traffic.on_response)

    # GIVEN a multipart upload under way
    page.set_input_files("#file-input", path)
    page.click("#upload-button")
    row = page.locator(".upload-item").first
    expect(row).to_have_attribute("data-job-id", re.compile(r"\w+"))
    job_id = row.get_attribute("data-job-id")
    deadline = time.monotonic() + 60
    while not traffic.done_before and time.monotonic() < deadline:
        page.wait_for_timeout(20)

    # WHEN the user presses Cancel
    page.click("#cancel-button")

    # THEN the row says so, nothing is remembered for resuming, and the job is FAILED as cancelled
    expect(row).to_have_attribute("data-state", "cancelled")
    deadline = time.monotonic() + 30
    job = get_job(page, local_stack, job_id)
    while job["status"] == "AWAITING_UPLOAD" and time.monotonic() < deadline:
        page.wait_for_timeout(200)
        job = get_job(page, local_stack, job_id)
    assert job["status"] == "FAILED", job
    assert job["error"]["code"] == "UPLOAD_CANCELLED", job
    expect(page.locator("#job-status")).to_have_text("FAILED")
    expect(page.locator("#error")).to_be_hidden()
    assert page.evaluate("Object.keys(localStorage).filter(k => k.startsWith('vidpipe.upload.'))") == []
    assert page.script_errors == []  # type: ignore[attr-defined]

"""The web page served at the API's root, driven in headless Chromium against the local stack.

What these tests prove that the API tests do not: the page's relative URLs resolve under the
API's prefix, the browser's presigned POST passes S3's policy and CORS, the page follows the job
to READY, and the HLS output actually plays in a browser.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

pytestmark = [pytest.mark.stack, pytest.mark.browser]

REPO_ROOT = Path(__file__).resolve().parents[2]
SAMPLE_VIDEO = REPO_ROOT / "sample_media" / "landscape_16x9_stereo.mp4"

# Debian's Chromium, never a downloaded browser build. QUIC, sync, component updates and
# background networking are off so the browser talks to nothing but the local stack.
CHROMIUM_PATH = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# Transcoding and thumbnails run in ministack's Lambda workers on a 2-core machine.
READY_TIMEOUT_MS = 120_000
TERMINAL_STATUSES = ("READY", "FAILED", "EXPIRED")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM_PATH, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def web_page(browser: Browser, local_stack) -> Iterator[Page]:
    """The page, freshly loaded, with uncaught script errors collected on `page.script_errors`."""
    # A phone-ish width keeps the narrow layout under test too.
    context = browser.new_context(viewport={"width": 420, "height": 900})
    page = context.new_page()
    script_errors: list[str] = []
    page.on("pageerror", lambda exc: script_errors.append(str(exc)))
    page.script_errors = script_errors  # type: ignore[attr-defined]
    page.goto(local_stack.web_url)
    yield page
    context.close()


def wait_for_terminal_status(page: Page) -> str:
    page.wait_for_function(
        "statuses => statuses.includes(document.getElementById('job-status').textContent)",
        arg=list(TERMINAL_STATUSES),
        timeout=READY_TIMEOUT_MS,
    )
    return page.locator("#job-status").inner_text()


def test_uploaded_video_becomes_ready_and_plays(web_page: Page) -> None:
    # GIVEN the page and a real stereo 16:9 video
    assert SAMPLE_VIDEO.is_file(), f"missing sample video {SAMPLE_VIDEO}"

    # WHEN it is chosen and uploaded
    web_page.set_input_files("#file-input", SAMPLE_VIDEO)
    web_page.click("#upload-button")

    # THEN the upload bar fills up
    web_page.wait_for_function(
        "() => { const bar = document.getElementById('upload-progress'); return bar.value === bar.max; }",
        timeout=60_000,
    )

    # AND the job reaches READY, not FAILED
    status = wait_for_terminal_status(web_page)
    error_text = web_page.locator("#error").text_content()
    assert status == "READY", f"job ended {status}: {error_text}"
    expect(web_page.locator("#error")).to_be_hidden()

    # AND the player shows the poster and plays the HLS output
    player = web_page.locator("#player")
    expect(player).to_be_visible()
    poster = player.get_attribute("poster")
    assert poster, "the player has no poster"
    web_page.evaluate(
        "async () => { const video = document.getElementById('player');"
        " video.muted = true; await video.play(); }"
    )
    web_page.wait_for_function("() => document.getElementById('player').currentTime > 1.0", timeout=30_000)
    expect(web_page.locator("#renditions li").first).to_be_visible()
    assert web_page.script_errors == []  # type: ignore[attr-defined]


def test_rejected_file_shows_the_api_error(web_page: Page, local_stack) -> None:
    # GIVEN a text file, and the API's own reason for refusing one
    payload = {"filename": "notes.txt", "content_type": "text/plain", "size": 12}
    answer = web_page.request.post(f"{local_stack.api_url.rstrip('/')}/uploads", data=payload)
    assert 400 <= answer.status < 500, answer.text()
    expected_message = answer.json()["error"]["message"]

    # WHEN the user picks it anyway (the chooser's accept filter is only a hint) and uploads
    web_page.set_input_files(
        "#file-input",
        files=[{"name": "notes.txt", "mimeType": "text/plain", "buffer": b"not a video\n"}],
    )
    web_page.click("#upload-button")

    # THEN the page shows that reason, starts no job and uploads nothing
    error = web_page.locator("#error")
    expect(error).to_be_visible()
    expect(error).to_have_text(expected_message)
    expect(web_page.locator("#job")).to_be_hidden()
    assert web_page.locator("#upload-progress").evaluate("bar => bar.value") == 0
    assert web_page.script_errors == []  # type: ignore[attr-defined]

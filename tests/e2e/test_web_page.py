"""The web page served at the API's root, driven in headless Chromium against the local stack.

What these tests prove that the API tests do not: the page's relative URLs and ES modules resolve
under the API's prefix, the browser's presigned POST passes S3's policy and CORS, the page follows
the job to READY, the HLS output plays through hls.js with a quality menu, and the storyboard
previews show sprite tiles over the seek bar.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

pytestmark = [pytest.mark.stack, pytest.mark.browser]

REPO_ROOT = Path(__file__).resolve().parents[2]
SAMPLE_VIDEO = REPO_ROOT / "sample_media" / "landscape_16x9_stereo.mp4"

# A phone-sized screen: the narrow layout is the one under test.
PHONE_VIEWPORT = {"width": 375, "height": 812}
# The README's screenshots: the phone view above and a laptop-sized one.
DESKTOP_VIEWPORT = {"width": 1024, "height": 768}
# `make screenshots` sets this so the test refreshes the README's pictures; otherwise they go
# to a temporary folder (a test run must not leave the work tree changed).
UPDATE_SCREENSHOTS = os.environ.get("VIDPIPE_UPDATE_SCREENSHOTS") == "1"
README_IMAGES = REPO_ROOT / "docs" / "images"

# Transcoding and thumbnails run in ministack's Lambda workers on a 2-core machine.
READY_TIMEOUT_MS = 120_000
# The page and its modules are each a Lambda invocation; cold workers on a busy machine take seconds.
PAGE_LOAD_TIMEOUT_MS = 90_000
TERMINAL_STATUSES = ("READY", "FAILED", "EXPIRED")

# Records every value #upload-progress takes, from the moment the page starts.
RECORD_UPLOAD_PROGRESS = """
window.__uploadProgress = [];
document.addEventListener("DOMContentLoaded", () => {
  const bar = document.getElementById("upload-progress");
  new MutationObserver(() => window.__uploadProgress.push(bar.value))
    .observe(bar, { attributes: true, attributeFilter: ["value"] });
});
"""


@pytest.fixture
def web_page(browser: Browser, local_stack) -> Iterator[Page]:
    """The page, freshly loaded, with uncaught script errors collected on `page.script_errors`."""
    context = browser.new_context(viewport=PHONE_VIEWPORT)
    context.add_init_script(RECORD_UPLOAD_PROGRESS)
    page = context.new_page()
    script_errors: list[str] = []
    page.on("pageerror", lambda exc: script_errors.append(str(exc)))
    page.script_errors = script_errors  # type: ignore[attr-defined]
    page.goto(local_stack.web_url, timeout=PAGE_LOAD_TIMEOUT_MS)
    # The token came in the address's fragment; the page keeps it and takes it out of the address.
    page.wait_for_function("() => !location.hash.includes('token=')")
    yield page
    context.close()


def auth(stack) -> dict[str, str]:
    return {"Authorization": f"Bearer {stack.api_token}"}


def wait_for_terminal_status(page: Page) -> str:
    page.wait_for_function(
        "statuses => statuses.includes(document.getElementById('job-status').textContent)",
        arg=list(TERMINAL_STATUSES),
        timeout=READY_TIMEOUT_MS,
    )
    return page.locator("#job-status").inner_text()


def save_screenshots(page: Page, folder: Path) -> list[Path]:
    """The page as it is now, full length, in the phone view and in a laptop-sized window."""
    folder.mkdir(parents=True, exist_ok=True)
    mobile, desktop = folder / "page-mobile.png", folder / "page.png"
    page.screenshot(path=mobile, full_page=True)
    page.set_viewport_size(DESKTOP_VIEWPORT)
    page.screenshot(path=desktop, full_page=True)
    page.set_viewport_size(PHONE_VIEWPORT)
    return [mobile, desktop]


def hover_until_storyboard_tile(page: Page, timeout_s: float = 20) -> str:
    """Hover the seek bar (at a few places, as a user would) until the preview shows a sprite
    tile; the storyboard loads in the background, so the first hovers may show the time only."""
    seek_bar = page.locator("#seek-bar")
    preview = page.locator("#storyboard-preview")
    for attempt in range(int(timeout_s / 0.5)):
        box = seek_bar.bounding_box()
        assert box is not None
        fraction = (0.25, 0.5, 0.75)[attempt % 3]
        seek_bar.hover(position={"x": box["width"] * fraction, "y": box["height"] / 2})
        background = preview.evaluate("el => el.hidden ? '' : getComputedStyle(el).backgroundImage")
        if background.startswith("url("):
            return background
        page.wait_for_timeout(500)
    raise AssertionError("hovering the seek bar never showed a storyboard tile")


def test_uploaded_video_becomes_ready_plays_and_previews(web_page: Page, local_stack, tmp_path: Path) -> None:
    # GIVEN the page and a real stereo 16:9 video
    assert SAMPLE_VIDEO.is_file(), f"missing sample video {SAMPLE_VIDEO}"

    # WHEN it is chosen and uploaded
    web_page.set_input_files("#file-input", SAMPLE_VIDEO)
    web_page.click("#upload-button")

    # THEN its row and the upload bar fill up, from 0 to full and never backwards
    row = web_page.locator(".upload-item").first
    expect(row).to_have_attribute("data-state", "done", timeout=60_000)
    assert row.locator(".upload-progress").evaluate("bar => bar.value") == 100
    web_page.wait_for_function(
        "() => { const bar = document.getElementById('upload-progress'); return bar.value === bar.max; }"
    )
    seen = web_page.evaluate("window.__uploadProgress")
    assert seen and seen[0] < 100 and seen[-1] == 100, seen
    assert seen == sorted(seen), f"the upload bar went backwards: {seen}"
    job_id = row.get_attribute("data-job-id")
    assert job_id

    # AND the job reaches READY, not FAILED
    status = wait_for_terminal_status(web_page)
    error_text = web_page.locator("#error").text_content()
    assert status == "READY", f"job ended {status}: {error_text}"
    expect(web_page.locator("#error")).to_be_hidden()

    # AND the player shows the poster and plays the HLS output through hls.js (MediaSource)
    player = web_page.locator("#player")
    expect(player).to_be_visible()
    assert player.get_attribute("poster"), "the player has no poster"
    web_page.click("#mute-button")
    web_page.click("#play-button")
    web_page.wait_for_function("() => document.getElementById('player').currentTime > 1.0", timeout=30_000)
    assert player.evaluate("video => video.currentSrc").startswith("blob:"), "not played through hls.js"

    # AND the quality menu offers Auto and every rendition of the job
    job = web_page.request.get(f"{local_stack.api_url.rstrip('/')}/jobs/{job_id}", headers=auth(local_stack)).json()
    heights = sorted((r["height"] for r in job["outputs"]["renditions"]), reverse=True)
    quality = web_page.locator("#quality-select option")
    expect(quality).to_have_count(len(heights) + 1)
    labels = quality.all_text_contents()
    assert labels[0].startswith("Auto"), labels
    assert [int(re.match(r"(\d+)p", label).group(1)) for label in labels[1:]] == heights, labels  # type: ignore[union-attr]

    # AND the READY job, as shown, makes the README's screenshots (PNG images of some size)
    for image in save_screenshots(web_page, README_IMAGES if UPDATE_SCREENSHOTS else tmp_path):
        assert image.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and image.stat().st_size > 10_000, image

    # AND hovering the seek bar shows a storyboard tile cut from the sprite
    background = hover_until_storyboard_tile(web_page)
    preview = web_page.locator("#storyboard-preview")
    expect(preview).to_be_visible()
    sprite_url = re.fullmatch(r'url\("(.+)"\)', background).group(1)  # type: ignore[union-attr]
    sprite = web_page.request.get(sprite_url)
    assert sprite.ok and sprite.headers["content-type"].startswith("image/"), sprite.status
    tile = preview.evaluate("el => [el.offsetWidth, el.offsetHeight]")
    assert tile[0] > 0 and tile[1] > 0

    # AND with a fixed quality picked, the video plays again from the start
    web_page.select_option("#quality-select", index=len(heights))
    player.evaluate("video => { video.currentTime = 0; return video.play(); }")
    web_page.wait_for_function("() => document.getElementById('player').currentTime > 1.0", timeout=30_000)
    expect(web_page.locator("#error")).to_be_hidden()
    assert web_page.script_errors == []  # type: ignore[attr-defined]


def test_rejected_file_shows_the_api_error(web_page: Page, local_stack) -> None:
    # GIVEN a text file, and the API's own reason for refusing one
    payload = {"filename": "notes.txt", "content_type": "text/plain", "size": 12}
    api = local_stack.api_url.rstrip("/")
    answer = web_page.request.post(f"{api}/uploads", data=payload, headers=auth(local_stack))
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
    expect(web_page.locator(".upload-item")).to_have_attribute("data-state", "failed")
    expect(web_page.locator("#job")).to_be_hidden()
    assert web_page.locator("#upload-progress").evaluate("bar => bar.value") == 0
    assert web_page.script_errors == []  # type: ignore[attr-defined]


def test_several_dropped_files_each_get_a_row(web_page: Page) -> None:
    # GIVEN two small videos dropped on the drop zone together
    data = SAMPLE_VIDEO.read_bytes()
    web_page.evaluate(
        """async ([bytes, names]) => {
            const transfer = new DataTransfer();
            for (const name of names) {
                transfer.items.add(new File([new Uint8Array(bytes)], name, { type: "video/mp4" }));
            }
            const zone = document.getElementById("drop-zone");
            zone.dispatchEvent(new DragEvent("dragover", { dataTransfer: transfer, bubbles: true, cancelable: true }));
            zone.dispatchEvent(new DragEvent("drop", { dataTransfer: transfer, bubbles: true, cancelable: true }));
        }""",
        [list(data[: 64 * 1024]), ["first.mp4", "second.mp4"]],
    )
    # THEN both upload, each in its own row with its own job
    rows = web_page.locator(".upload-item")
    expect(rows).to_have_count(2)
    for index in range(2):
        expect(rows.nth(index)).to_have_attribute("data-state", "done", timeout=60_000)
    job_ids = {rows.nth(index).get_attribute("data-job-id") for index in range(2)}
    assert len(job_ids) == 2 and None not in job_ids
    assert web_page.script_errors == []  # type: ignore[attr-defined]


def test_without_a_token_the_page_asks_for_one(browser: Browser, local_stack) -> None:
    # GIVEN the page opened without the token in its address
    context = browser.new_context(viewport=PHONE_VIEWPORT)
    page = context.new_page()
    page.goto(local_stack.web_url.split("#", 1)[0], timeout=PAGE_LOAD_TIMEOUT_MS)

    # THEN it asks for a token (the API refused its first call)
    expect(page.locator("#access")).to_be_visible()
    expect(page.locator("#api-token")).to_be_focused()

    # WHEN the user enters the token
    page.fill("#api-token", local_stack.api_token)
    page.click("#token-save")

    # THEN the page calls the API with it: the request for recent jobs succeeds
    expect(page.locator("#access")).to_be_hidden()
    expect(page.locator("#recent-empty")).not_to_contain_text("Could not load")
    context.close()


def test_the_ladder_takes_over_from_the_early_preview_where_the_viewer_was(web_page: Page, local_stack) -> None:
    # GIVEN a job uploaded from the page and READY (the 3 s clip: quick to make)
    web_page.set_input_files("#file-input", REPO_ROOT / "sample_media" / "tiny_160x90.mp4")
    web_page.click("#upload-button")
    assert wait_for_terminal_status(web_page) == "READY"
    job_id = web_page.locator(".upload-item").first.get_attribute("data-job-id")
    # AND the API made to answer PROCESSING with its playable preview, until READY is let through
    early = {"on": True}

    def answer(route) -> None:
        response = route.fetch()
        job = response.json()
        if early["on"]:
            job["status"] = "PROCESSING"
        route.fulfill(response=response, json=job)

    web_page.route(re.compile(rf".*/jobs/{job_id}$"), answer)
    web_page.reload(timeout=PAGE_LOAD_TIMEOUT_MS)
    web_page.locator(f"#recent-jobs li[data-job-id='{job_id}'] button").click(timeout=PAGE_LOAD_TIMEOUT_MS)
    expect(web_page.locator("#job-status")).to_have_text("PROCESSING")

    # WHEN the viewer watches the preview for a second and a half and pauses, and then READY arrives
    web_page.click("#mute-button")
    web_page.click("#play-button")
    player = web_page.locator("#player")
    web_page.wait_for_function("() => document.getElementById('player').currentTime > 1.5", timeout=30_000)
    paused_at = player.evaluate("video => { video.pause(); return video.currentTime; }")
    early["on"] = False
    expect(web_page.locator("#job-status")).to_have_text("READY", timeout=30_000)

    # THEN the full ladder is loaded at the same place, not from the start
    web_page.wait_for_function("() => document.getElementById('player').currentSrc.startsWith('blob:')")
    web_page.wait_for_function(
        "at => Math.abs(document.getElementById('player').currentTime - at) < 0.5", arg=paused_at, timeout=30_000
    )
    assert player.evaluate("video => video.paused")
    assert web_page.script_errors == []  # type: ignore[attr-defined]


SUBTITLE_PLAYLIST = """#EXTM3U
#EXT-X-VERSION:3
#EXT-X-TARGETDURATION:4
#EXT-X-PLAYLIST-TYPE:VOD
#EXTINF:4.0,
en0.vtt
#EXT-X-ENDLIST
"""
SUBTITLE_SEGMENT = "WEBVTT\n\n00:00:00.000 --> 00:00:03.000\nHello from the captions\n"


def with_subtitles(route) -> None:
    """The master playlist, as the API answers it, plus one WebVTT SUBTITLES rendition."""
    response = route.fetch()
    lines = []
    for line in response.text().splitlines():
        if line.startswith("#EXT-X-STREAM-INF:"):
            line += ',SUBTITLES="subs"'
        lines.append(line)
        if line.startswith("#EXTM3U"):
            lines.append(
                '#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",NAME="English",LANGUAGE="en",'
                'DEFAULT=NO,AUTOSELECT=YES,URI="subs/en.m3u8"'
            )
    route.fulfill(response=response, body="\n".join(lines) + "\n")


def serve_subtitles(route) -> None:
    if route.request.url.split("?", 1)[0].endswith(".m3u8"):
        route.fulfill(status=200, content_type="application/vnd.apple.mpegurl", body=SUBTITLE_PLAYLIST)
    else:
        route.fulfill(status=200, content_type="text/vtt", body=SUBTITLE_SEGMENT)


def test_a_job_in_the_poster_grid_is_renamed_downloaded_and_deleted_by_keyboard(web_page: Page, local_stack) -> None:
    # GIVEN a job uploaded from the page (the 3 s 160x90 clip: quick to make) and READY
    api = local_stack.api_url.rstrip("/")
    web_page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    web_page.set_input_files("#file-input", REPO_ROOT / "sample_media" / "tiny_160x90.mp4")
    web_page.click("#upload-button")
    assert wait_for_terminal_status(web_page) == "READY"
    job_id = web_page.locator(".upload-item").first.get_attribute("data-job-id")
    job = web_page.request.get(f"{api}/jobs/{job_id}", headers=auth(local_stack)).json()

    # THEN the recent jobs grid shows it as a poster with its name, duration, resolution and status
    card = web_page.locator(f"#recent-jobs li[data-job-id='{job_id}'] button")
    expect(card.locator("img.job-poster")).to_have_attribute("src", re.compile(r"^https?://"), timeout=30_000)
    web_page.wait_for_function(
        "id => document.querySelector(`#recent-jobs li[data-job-id='${id}'] img`)?.naturalWidth > 0", arg=job_id
    )
    expect(card.locator(".job-name")).to_have_text("tiny_160x90.mp4")
    expect(card.locator(".job-facts")).to_have_text(re.compile(r"^0:0\d · 160×90$"))
    expect(card.locator(".status")).to_have_text("READY")
    # AND nothing is wider than the 375 px screen
    assert web_page.evaluate("document.documentElement.scrollWidth") <= PHONE_VIEWPORT["width"]

    # AND its master playlist given an English SUBTITLES rendition (routed in, as captions make it)
    web_page.route(re.compile(r".*/hls/master\.m3u8(\?.*)?$"), with_subtitles)
    web_page.route(re.compile(r".*/hls/subs/.*"), serve_subtitles)

    # WHEN the card is opened from the keyboard
    card.focus()
    web_page.keyboard.press("Enter")
    expect(web_page.locator("#job-id")).to_have_text(job_id)  # type: ignore[arg-type]
    # THEN the download link follows the job's mp4_url: hidden without one
    download = web_page.locator("#download-mp4")
    if job["outputs"].get("mp4_url"):
        expect(download).to_have_attribute("href", re.compile(r"^https?://"))
    else:
        expect(download).to_be_hidden()

    # AND Copy puts the playback URL (the master playlist) on the clipboard
    web_page.click("#copy-url")
    expect(web_page.locator("#action-status")).to_have_text("Playback URL copied.")
    copied = web_page.evaluate("navigator.clipboard.readText()")
    assert "/hls/master.m3u8" in copied and copied == web_page.locator("#playback-url").input_value()

    # AND the captions menu offers the subtitle track; choosing it shows it, "c" turns it off again
    captions = web_page.locator("#captions-select")
    expect(captions).to_be_visible(timeout=30_000)
    assert captions.locator("option").all_text_contents() == ["Captions off", "English"]
    captions.select_option(label="English")
    showing = "() => [...document.getElementById('player').textTracks].some(t => t.mode === 'showing')"
    web_page.wait_for_function(showing, timeout=10_000)
    web_page.locator("#player").focus()
    web_page.keyboard.press("c")
    expect(captions).to_have_value("-1")
    web_page.wait_for_function(f"() => !({showing})()")

    # AND the player answers its keyboard shortcuts once focused
    player = web_page.locator("#player")
    expect(player).to_have_attribute("poster", re.compile(r"^https?://"), timeout=30_000)
    player.focus()
    web_page.keyboard.press("m")
    assert player.evaluate("video => video.muted")
    web_page.keyboard.press(">")
    assert player.evaluate("video => video.playbackRate") == 1.25
    expect(web_page.locator("#speed-select")).to_have_value("1.25")
    web_page.keyboard.press("k")
    web_page.wait_for_function("() => document.getElementById('player').currentTime > 0.5", timeout=30_000)
    web_page.keyboard.press("k")
    assert player.evaluate("video => video.paused")

    # WHEN it is renamed through the dialog (typed, then Enter)
    web_page.click("#rename-job")
    expect(web_page.locator("#rename-dialog")).to_be_visible()
    expect(web_page.locator("#rename-input")).to_be_focused()
    web_page.keyboard.type("Holiday clip")
    web_page.keyboard.press("Enter")
    # THEN the card, the grid and the API all carry the new title
    expect(web_page.locator("#rename-dialog")).to_be_hidden()
    expect(web_page.locator("#job-title")).to_have_text("Holiday clip")
    expect(card.locator(".job-name")).to_have_text("Holiday clip")
    assert web_page.request.get(f"{api}/jobs/{job_id}", headers=auth(local_stack)).json()["title"] == "Holiday clip"

    # AND given an mp4_url (routed in where the API has none yet), the download link offers it
    mp4_url = job["outputs"].get("mp4_url") or "http://127.0.0.1:9/download.mp4"

    def with_mp4(route) -> None:
        response = route.fetch()
        answer = response.json()
        answer["outputs"].setdefault("mp4_url", mp4_url)
        route.fulfill(response=response, json=answer)

    web_page.route(re.compile(rf".*/jobs/{job_id}$"), with_mp4)
    card.click()
    expect(download).to_be_visible()
    assert download.get_attribute("href", timeout=5_000).startswith("http")  # type: ignore[union-attr]
    web_page.unroute(re.compile(rf".*/jobs/{job_id}$"))

    # WHEN Delete is pressed and the confirmation dismissed with Escape
    web_page.click("#delete-job")
    dialog = web_page.locator("#delete-dialog")
    expect(dialog).to_be_visible()
    expect(web_page.locator("#delete-name")).to_have_text("Holiday clip")
    expect(web_page.locator("#delete-cancel")).to_be_focused()
    web_page.keyboard.press("Escape")
    # THEN nothing is deleted
    expect(dialog).to_be_hidden()
    assert web_page.request.get(f"{api}/jobs/{job_id}", headers=auth(local_stack)).status == 200

    # WHEN Delete is pressed again and confirmed
    web_page.click("#delete-job")
    web_page.click("#delete-confirm")
    # THEN the job card closes, the poster leaves the grid and the API no longer knows the job
    expect(dialog).to_be_hidden()
    expect(web_page.locator("#job")).to_be_hidden()
    expect(web_page.locator(f"#recent-jobs li[data-job-id='{job_id}']")).to_have_count(0)
    assert web_page.request.get(f"{api}/jobs/{job_id}", headers=auth(local_stack)).status == 404
    expect(web_page.locator("#error")).to_be_hidden()
    assert web_page.script_errors == []  # type: ignore[attr-defined]

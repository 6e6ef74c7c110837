"""A thumbnail of any moment and an animated preview by URL, on the local stack:
through the HTTP API's own routes, the API function's grant and token checks,
its synchronous invoke of the on-demand images function (FFmpeg layer) and the
redirect to the image cached in the outputs bucket."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from PIL import Image

pytestmark = pytest.mark.stack

SAMPLE = Path(__file__).resolve().parents[2] / "sample_media" / "tiny_160x90.mp4"


def grant_of(url: str) -> dict[str, str]:
    return {name: values[0] for name, values in parse_qs(urlsplit(url).query).items()}


def image_redirect(url: str, params: dict[str, str], session: requests.Session | None = None) -> requests.Response:
    """The API's answer to an image URL, asked again as its Retry-After says
    while the image is still being made (the image function's first, cold start)."""
    for _ in range(12):
        answer = (session or requests).get(url, params=params, timeout=60, allow_redirects=False)
        if answer.status_code != 503:
            return answer
        assert answer.json()["error"]["code"] == "IMAGE_IN_PROGRESS", answer.text
        time.sleep(int(answer.headers["Retry-After"]))
    pytest.fail(f"{url} was still in progress after a minute")


def test_a_job_not_ready_yet_answers_409_with_the_reason(local_stack) -> None:
    # GIVEN a job whose upload has not arrived
    created = local_stack.http.post(
        f"{local_stack.api_url}/uploads",
        json={"filename": "later.mp4", "content_type": "video/mp4", "size": 1000},
        timeout=30,
    )
    assert created.status_code == 201, created.text

    # WHEN its owner asks for a thumbnail THEN it is refused until the job is READY
    answer = local_stack.http.get(f"{local_stack.api_url}/jobs/{created.json()['job_id']}/thumbnail.jpg", timeout=30)
    assert answer.status_code == 409
    assert answer.json()["error"]["code"] == "JOB_NOT_READY" and "AWAITING_UPLOAD" in answer.text


def test_a_ready_job_gives_a_thumbnail_of_any_moment_and_an_animated_preview(local_stack) -> None:
    # GIVEN a READY job, and the output grant its view carries
    result = local_stack.vidpipe("submit", str(SAMPLE), "--wait", "--json", timeout=600)
    assert result.returncode == 0, result.stderr
    [job] = json.loads(result.stdout)
    assert job["status"] == "READY", job
    job_url = f"{local_stack.api_url}/jobs/{job['job_id']}"
    grant = grant_of(job["outputs"]["hls_url"])

    # WHEN an <img> asks for a cropped JPEG of second 1 with the grant (no token)
    asked = {**grant, "time": "1", "width": "64", "height": "64", "fit": "crop"}
    first = image_redirect(f"{job_url}/thumbnail.jpg", asked)
    # THEN it is redirected to the image, made and stored in the outputs bucket
    assert first.status_code == 302, first.text
    image = requests.get(first.headers["Location"], timeout=30)
    assert image.status_code == 200
    with Image.open(io.BytesIO(image.content)) as picture:
        assert (picture.format, picture.size) == ("JPEG", (64, 64))
    # AND asked again, the same cached image is the answer
    again = requests.get(f"{job_url}/thumbnail.jpg", params=asked, timeout=60, allow_redirects=False)
    assert urlsplit(again.headers["Location"]).path == urlsplit(first.headers["Location"]).path
    assert "/images/thumbnail_t1000_w64_h64_crop.jpg" in urlsplit(first.headers["Location"]).path

    # AND the owner's API token works too, for a WebP and an animated preview
    webp_redirect = image_redirect(f"{job_url}/thumbnail.webp", {"time": "2.5", "width": "120"}, local_stack.http)
    assert webp_redirect.status_code == 302, webp_redirect.text
    webp = requests.get(webp_redirect.headers["Location"], timeout=30)
    with Image.open(io.BytesIO(webp.content)) as picture:
        assert (picture.format, picture.width) == ("WEBP", 120)
    animated_redirect = image_redirect(f"{job_url}/animated.webp", {**grant, "start": "0", "end": "3"})
    assert animated_redirect.status_code == 302, animated_redirect.text
    animated = requests.get(animated_redirect.headers["Location"], timeout=30)
    with Image.open(io.BytesIO(animated.content)) as picture:
        assert picture.format == "WEBP" and picture.is_animated

    # AND a moment past the end is 400 with the reason, a request without grant or token 401
    late = requests.get(f"{job_url}/thumbnail.jpg", params={**grant, "time": "600"}, timeout=60)
    assert late.status_code == 400 and "past the end" in late.json()["error"]["message"], late.text
    assert requests.get(f"{job_url}/thumbnail.jpg", timeout=60).status_code == 401

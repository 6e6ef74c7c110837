"""Issue 15 item 4 on the local stack: an upload's own subtitle track becomes a
SUBTITLES rendition of its master playlist, and caption files added to the
READY job later are validated by the captions function and join the playlist
(a broken one fails alone, the job stays READY)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import pytest
import requests

from tests.e2e.test_asset_basics_stack import upload, wait_for
from vidpipe.adapters.ffmpeg.process import ffmpeg_environment, find_tool

pytestmark = [pytest.mark.stack, pytest.mark.ffmpeg]

EMBEDDED_SRT = "1\n00:00:00,500 --> 00:00:01,500\nBonjour\n\n2\n00:00:02,000 --> 00:00:02,800\nAu revoir\n"
ADDED_SRT = b"1\n00:00:00,200 --> 00:00:01,800\nHello from a sidecar\n"
BROKEN_SRT = b"1\nthis is not a time line\nHello\n"


def clip_with_french_subtitles(folder: Path) -> Path:
    """A 3 s clip whose MP4 carries a mov_text track tagged French (what phones and editors write)."""
    (folder / "subs.srt").write_text(EMBEDDED_SRT, encoding="utf-8")
    clip = folder / "subtitled.mp4"
    subprocess.run(
        [find_tool("ffmpeg"), "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=160x120:rate=25:duration=3",
         "-i", str(folder / "subs.srt"), "-map", "0", "-map", "1", "-c:v", "libx264", "-preset", "ultrafast",
         "-c:s", "mov_text", "-metadata:s:s:0", "language=fra", str(clip)],
        check=True, env=ffmpeg_environment(),
    )  # fmt: skip
    return clip


def add_caption(stack: Any, job_id: str, body: bytes, language: str, label: str) -> str:
    asked = stack.http.post(
        f"{stack.api_url}/jobs/{job_id}/captions",
        json={"language": language, "label": label, "filename": "c.srt", "content_type": "text/srt", "size": len(body)},
        timeout=30,
    )
    assert asked.status_code == 201, asked.text
    plan = asked.json()["upload"]
    sent = requests.post(plan["url"], data=plan["fields"], files={"file": ("c.srt", body)}, timeout=30)
    assert sent.status_code in (200, 201, 204), sent.text
    return str(asked.json()["caption_id"])


def wait_for_caption(stack: Any, job_id: str, caption_id: str, timeout_s: float = 180) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job = stack.http.get(f"{stack.api_url}/jobs/{job_id}", timeout=30).json()
        [caption] = [c for c in job["captions"] if c["caption_id"] == caption_id]
        if caption["status"] in ("READY", "FAILED"):
            return {"job": job, "caption": caption}
        time.sleep(1)
    pytest.fail(f"caption {caption_id} of job {job_id} never finished")


def test_embedded_subtitles_and_added_captions_are_listed_in_the_master_playlist(local_stack, tmp_path: Path) -> None:
    # GIVEN an upload with a French subtitle track, READY
    job_id = upload(local_stack, clip_with_french_subtitles(tmp_path))
    job = wait_for(local_stack, job_id, {"READY", "FAILED"})
    assert job["status"] == "READY", job

    # THEN its master playlist lists a French SUBTITLES rendition a player may pick by
    # language, whose playlist and segments (signed like the video's) hold the track's cues
    master = requests.get(job["outputs"]["hls_url"], timeout=30).text
    [french] = [line for line in master.splitlines() if line.startswith("#EXT-X-MEDIA:TYPE=SUBTITLES")]
    assert 'LANGUAGE="fr"' in french and "AUTOSELECT=YES" in french
    playlist_url = urljoin(job["outputs"]["hls_url"], french.split('URI="')[1].split('"')[0])
    subtitle_playlist = requests.get(playlist_url, timeout=30)
    assert subtitle_playlist.status_code == 200, subtitle_playlist.text
    segment_url = next(line for line in subtitle_playlist.text.splitlines() if line and not line.startswith("#"))
    segment = requests.get(urljoin(playlist_url, segment_url), timeout=30).text
    assert segment.startswith("WEBVTT") and "Bonjour" in segment and "Au revoir" in segment

    # WHEN an English SubRip file is added, and a broken one
    added = add_caption(local_stack, job_id, ADDED_SRT, "en", "English (added)")
    broken = add_caption(local_stack, job_id, BROKEN_SRT, "de", "Deutsch")

    # THEN the English caption is READY and joins the master playlist without re-encoding the video
    english = wait_for_caption(local_stack, job_id, added)
    assert english["caption"]["status"] == "READY", english
    master_after = requests.get(english["job"]["outputs"]["hls_url"], timeout=30).text
    media = [line for line in master_after.splitlines() if line.startswith("#EXT-X-MEDIA:TYPE=SUBTITLES")]
    assert any('LANGUAGE="en"' in line and 'NAME="English (added)"' in line for line in media), master_after
    assert any('LANGUAGE="fr"' in line for line in media)
    renditions = [line for line in master_after.splitlines() if line.startswith("#EXT-X-STREAM-INF")]
    assert renditions == [line for line in master.splitlines() if line.startswith("#EXT-X-STREAM-INF")]
    english_playlist = requests.get(english["caption"]["url"], timeout=30)
    assert english_playlist.status_code == 200 and "#EXTM3U" in english_playlist.text

    # AND the broken file fails that caption with its reason, the job stays READY
    german = wait_for_caption(local_stack, job_id, broken)
    assert german["caption"]["status"] == "FAILED" and german["caption"]["error"]["code"], german
    assert german["job"]["status"] == "READY"
    assert not any(
        'LANGUAGE="de"' in line for line in requests.get(job["outputs"]["hls_url"], timeout=30).text.splitlines()
    )

"""Real ffprobe over real HTTP: the transcode stage plans a long MP4 from its URL
without downloading it, and downloads anything else."""

from __future__ import annotations

import functools
import http.server
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from transcode.handlers.transcode import probe_upload
from vidpipe.adapters.ffmpeg.probe import probe_media_url
from vidpipe.adapters.ffmpeg.process import ffmpeg_environment, find_tool
from vidpipe.domain.errors import CorruptMedia
from vidpipe.runtime.stage_inputs import StageContext

pytestmark = pytest.mark.ffmpeg

SAMPLE = Path(__file__).resolve().parents[2] / "sample_media" / "long_20s_640x360.mp4"


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A folder served over HTTP on localhost: (base URL, folder)."""
    folder = tmp_path_factory.mktemp("served")
    (folder / "long.mp4").write_bytes(SAMPLE.read_bytes())
    subprocess.run([find_tool("ffmpeg"), "-v", "error", "-i", str(SAMPLE), "-c", "copy", "-f", "mpegts",
                    str(folder / "long.ts")], env=ffmpeg_environment(), check=True, timeout=60)  # fmt: skip
    (folder / "junk.mp4").write_bytes(b"not a video " * 1000)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", folder
    server.shutdown()


def context_for(url: str, served_file: Path, scratch: Path, downloads: list[str]) -> StageContext:
    """A transcode stage's context whose upload is at ``url`` and not downloaded yet."""

    def fetch() -> None:
        downloads.append(url)
        (scratch / "source").write_bytes(served_file.read_bytes())

    return StageContext(job_id="j", source_path=scratch / "source", output_dir=scratch / "out",
                        report_progress=lambda _: None, fetch_inputs=fetch,
                        input_url=lambda name: url)  # fmt: skip


def test_GIVEN_an_mp4_upload_WHEN_probed_THEN_by_its_url_and_not_downloaded(served, tmp_path: Path) -> None:
    base, folder = served
    downloads: list[str] = []

    source = probe_upload(context_for(f"{base}/long.mp4?X-Amz-Signature=s", folder / "long.mp4", tmp_path, downloads))

    assert source.demuxer == "mov" and source.duration_s == pytest.approx(20.0, abs=0.1)
    assert source.audio_sample_rate == 48000
    assert downloads == []


def test_GIVEN_an_mpegts_upload_WHEN_probed_THEN_downloaded_and_probed_in_full(served, tmp_path: Path) -> None:
    base, folder = served
    downloads: list[str] = []

    source = probe_upload(context_for(f"{base}/long.ts", folder / "long.ts", tmp_path, downloads))

    assert source.demuxer == "mpegts"
    assert downloads == [f"{base}/long.ts"]


def test_GIVEN_junk_WHEN_probed_by_url_THEN_corrupt_media_without_the_signature_in_the_message(served) -> None:
    base, _ = served

    with pytest.raises(CorruptMedia) as raised:
        probe_media_url(f"{base}/junk.mp4?X-Amz-Signature=secret")

    assert "secret" not in raised.value.message

"""Every hostile or broken upload of the corpus, straight into the stages'
domain code (no AWS): each ends with its own error code and a readable message,
or succeeds when it is legitimate, and FFmpeg never opens the canary file or
connects to the trap listener the playlists point at.

The baseline tests at the end run plain ffprobe on the same playlists to prove
the traps would have caught an open: a silent trap proves nothing."""

from __future__ import annotations

import shutil
import subprocess
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.hostile.corpus import API_4XX, CASES, READY, STACK_MAX_DURATION_S, HostileCase, Targets, case
from tests.hostile.traps import CANARY_CONTENT, CanaryPipe, TrapListener
from thumbnails.domain_logic.thumbnail_set import make_thumbnails
from transcode.domain_logic.transcoding import transcode_to_hls
from upload_api.domain_logic.uploads import UploadLimits, UploadRequest, check_upload_request, create_upload
from vidpipe.adapters.ffmpeg.process import ffmpeg_environment, find_tool
from vidpipe.domain.errors import MediaError, RequestError
from vidpipe.domain.jobs import Job, JobStatus

pytestmark = pytest.mark.ffmpeg

TIMEOUT_S = 60.0
LIMITS = UploadLimits(max_bytes=50 * 1024**3, url_ttl_s=3600)
API_CASES = [c for c in CASES if c.expected == API_4XX]
MEDIA_CASES = [c for c in CASES if c.expected != API_4XX]
REFERENCE_CASES = [c for c in CASES if c.expected == "FORBIDDEN_REFERENCE"]


class RecordedJobs:
    def __init__(self) -> None:
        self.created: list[Job] = []

    def create(self, job: Job) -> None:
        self.created.append(job)


class AnySigner:
    def presigned_post(self, key: str, *, content_type: str, size: int, expires_s: int) -> dict[str, object]:
        return {"url": "https://uploads.example.com/", "fields": {"key": key}}


@dataclass
class Traps:
    canary: CanaryPipe
    listener: TrapListener

    @property
    def targets(self) -> Targets:
        return Targets(local_file=str(self.canary.path), http_url=self.listener.url)

    def assert_untouched(self) -> None:
        assert self.canary.opened == 0, "FFmpeg opened the canary file a playlist points at"
        assert self.listener.connections == [], "FFmpeg connected to the URL a playlist points at"


@pytest.fixture(scope="module")
def traps(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Traps]:
    folder = tmp_path_factory.mktemp("traps")
    # .ts: FFmpeg's HLS demuxer only opens segments with a media extension, so a
    # canary named like a segment is the one it would really open.
    with CanaryPipe(folder / "canary.ts") as canary, TrapListener() as listener:
        yield Traps(canary, listener)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory, traps: Traps) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("corpus")
    return {hostile.name: hostile.make(folder, traps.targets) for hostile in CASES}


def as_upload(corpus: dict[str, Path], hostile: HostileCase, folder: Path) -> Path:
    """The case where a stage would have it: a file called ``source`` in a fresh folder."""
    source = folder / "source"
    shutil.copyfile(corpus[hostile.name], source)
    return source


def assert_readable(message: str) -> None:
    assert len(message) >= 15, message
    assert all(unicodedata.category(char) != "Cc" for char in message), repr(message)
    assert "/tmp/" not in message, f"the message leaks a scratch path: {message}"


def test_the_corpus_has_at_least_20_cases_with_unique_names() -> None:
    assert len(CASES) >= 20
    assert len({c.name for c in CASES}) == len(CASES)


# ------------------------------------------------------------------ refused by the API


@pytest.mark.parametrize("hostile", API_CASES, ids=lambda c: c.name)
def test_GIVEN_a_request_the_api_refuses_WHEN_checked_THEN_its_4xx_with_a_reason(
    hostile: HostileCase, corpus: dict[str, Path]
) -> None:
    request = UploadRequest(hostile.filename, hostile.content_type, corpus[hostile.name].stat().st_size)

    with pytest.raises(RequestError) as caught:
        check_upload_request(request, LIMITS)

    assert caught.value.http_status == hostile.expected_http_status
    assert_readable(caught.value.message)


@pytest.mark.parametrize("hostile", MEDIA_CASES, ids=lambda c: c.name)
def test_GIVEN_an_upload_the_api_accepts_WHEN_created_THEN_a_job_awaits_it(
    hostile: HostileCase, corpus: dict[str, Path]
) -> None:
    size = corpus[hostile.name].stat().st_size
    jobs = RecordedJobs()

    create_upload(
        UploadRequest(hostile.filename, hostile.content_type, size), limits=LIMITS, jobs=jobs, signer=AnySigner()
    )

    [job] = jobs.created
    assert job.status is JobStatus.AWAITING_UPLOAD
    assert job.source["size"] == size


# ------------------------------------------------------------------ the stages


@pytest.mark.parametrize("hostile", MEDIA_CASES, ids=lambda c: c.name)
def test_GIVEN_a_hostile_upload_WHEN_transcoded_THEN_its_own_code_or_success(
    hostile: HostileCase, corpus: dict[str, Path], traps: Traps, tmp_path: Path
) -> None:
    source = as_upload(corpus, hostile, tmp_path)
    out = tmp_path / "hls"

    if hostile.expected == READY:
        result = transcode_to_hls(source, out, timeout_s=TIMEOUT_S, max_duration_s=STACK_MAX_DURATION_S)
        assert result.master_playlist.is_file()
    else:
        with pytest.raises(MediaError) as caught:
            transcode_to_hls(source, out, timeout_s=TIMEOUT_S, max_duration_s=STACK_MAX_DURATION_S)
        assert caught.value.code == hostile.expected, caught.value.message
        assert_readable(caught.value.message)
    traps.assert_untouched()


@pytest.mark.parametrize("hostile", MEDIA_CASES, ids=lambda c: c.name)
def test_GIVEN_a_hostile_upload_WHEN_thumbnailed_THEN_the_same_code_or_success(
    hostile: HostileCase, corpus: dict[str, Path], traps: Traps, tmp_path: Path
) -> None:
    # The job takes the first failure either stage reports: both must agree.
    source = as_upload(corpus, hostile, tmp_path)

    if hostile.expected == READY or hostile.thumbnails_completes:
        result = make_thumbnails(source, tmp_path / "thumbnails", timeout_s=TIMEOUT_S)
        assert (tmp_path / "thumbnails" / result.poster).is_file()
    else:
        with pytest.raises(MediaError) as caught:
            make_thumbnails(source, tmp_path / "thumbnails", timeout_s=TIMEOUT_S)
        assert caught.value.code == hostile.expected, caught.value.message
    traps.assert_untouched()


@pytest.mark.parametrize("hostile", REFERENCE_CASES, ids=lambda c: c.name)
def test_GIVEN_a_reference_case_WHEN_refused_THEN_nothing_was_written_and_no_canary_bytes_anywhere(
    hostile: HostileCase, corpus: dict[str, Path], traps: Traps, tmp_path: Path
) -> None:
    source = as_upload(corpus, hostile, tmp_path)

    for run in (
        lambda: transcode_to_hls(source, tmp_path / "hls", timeout_s=TIMEOUT_S),
        lambda: make_thumbnails(source, tmp_path / "thumbnails", timeout_s=TIMEOUT_S),
    ):
        with pytest.raises(MediaError):
            run()

    # Refused before FFmpeg decoded anything: no output folder has a file.
    written = [path for path in tmp_path.rglob("*") if path.is_file() and path != source]
    assert written == []
    assert all(CANARY_CONTENT not in path.read_bytes() for path in tmp_path.rglob("*") if path.is_file())
    traps.assert_untouched()


# ------------------------------------------------------------------ the traps work


def _plain_ffprobe(*args: str) -> None:
    """ffprobe as vidpipe ran it before this hardening: local files allowed,
    every demuxer allowed."""
    subprocess.run(
        [find_tool("ffprobe"), "-v", "error", *args],
        capture_output=True, timeout=30, env=ffmpeg_environment(), check=False,
    )  # fmt: skip


def test_GIVEN_the_hls_playlist_WHEN_plain_ffprobe_reads_it_THEN_the_canary_trap_fires(tmp_path: Path) -> None:
    # -protocol_whitelist file alone stops URLs, not a playlist naming a local file.
    with CanaryPipe(tmp_path / "secret.ts") as canary, TrapListener() as listener:
        playlist = case("hls_local_file").make(tmp_path, Targets(str(canary.path), listener.url))

        _plain_ffprobe("-protocol_whitelist", "file", "-show_format", f"file:{playlist}")

        assert canary.opened >= 1


def test_GIVEN_the_concat_script_WHEN_read_unsafely_THEN_the_canary_trap_fires(tmp_path: Path) -> None:
    # Applications often pass -safe 0 so that absolute paths work; FFmpeg then opens whatever the script names.
    with CanaryPipe(tmp_path / "secret.ts") as canary, TrapListener() as listener:
        script = case("ffconcat_local_file").make(tmp_path, Targets(str(canary.path), listener.url))

        _plain_ffprobe("-safe", "0", "-show_format", f"file:{script}")

        assert canary.opened >= 1


def test_GIVEN_the_http_playlist_WHEN_ffprobe_may_use_http_THEN_the_listener_sees_a_connection(
    tmp_path: Path,
) -> None:
    # FFmpeg 5.1 keeps a playlist read from a local file to local segments unless the
    # caller allows more, as an application that also reads URLs does.
    with CanaryPipe(tmp_path / "secret.ts") as canary, TrapListener() as listener:
        playlist = case("hls_http").make(tmp_path, Targets(str(canary.path), listener.url))

        _plain_ffprobe("-protocol_whitelist", "file,http,tcp", "-show_format", f"file:{playlist}")

        assert listener.connections


def test_GIVEN_the_gab2_avi_WHEN_its_playlist_is_fed_to_plain_ffprobe_THEN_it_names_the_canary(
    tmp_path: Path,
) -> None:
    # FFmpeg 5.1 only hands GAB2 payloads to the SRT and ASS demuxers, so the AVI
    # itself no longer fires the trap; the payload it carries would, where that
    # restriction is missing.
    with CanaryPipe(tmp_path / "secret.ts") as canary, TrapListener() as listener:
        avi = case("avi_gab2_playlist").make(tmp_path, Targets(str(canary.path), listener.url)).read_bytes()
        payload = avi[avi.index(b"#EXTM3U") :].split(b"#EXT-X-ENDLIST\n")[0] + b"#EXT-X-ENDLIST\n"
        (tmp_path / "payload.m3u8").write_bytes(payload)

        _plain_ffprobe("-protocol_whitelist", "file", "-show_format", f"file:{tmp_path / 'payload.m3u8'}")

        assert canary.opened >= 1

"""Real FFmpeg, fake stores: the chunked transcode as the functions run it
(planner → one encode per chunk order → the job counts the chunks → stitch),
with the failure policy of the chunk-encode function."""

from __future__ import annotations

import functools
import http.server
import shutil
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from job_lifecycle.domain_logic.status import JobUpdate, stitch_request
from tests import media_checks
from transcode.domain_logic.fanout import fan_out, run_work_order
from vidpipe.adapters.ffmpeg.probe import probe_media
from vidpipe.adapters.ffmpeg.process import ffmpeg_environment, find_tool
from vidpipe.domain.errors import StorageError
from vidpipe.domain.events import ChunkRequested, Stage, StageEvent, StageEventKind, StitchRequested
from vidpipe.domain.job_transitions import apply_event
from vidpipe.domain.jobs import Job, StageStatus
from vidpipe.domain.storage_keys import hls_prefix, mp4_download_key

pytestmark = pytest.mark.ffmpeg

SAMPLE = Path(__file__).resolve().parents[2] / "sample_media" / "long_20s_640x360.mp4"
JOB_ID = "0f8fad5b-d9cb-469f-a165-70867728950e"


SOURCE_KEY = f"uploads/{JOB_ID}/source"


@dataclass
class FolderStore:
    """An S3 bucket as a local folder (keys are relative paths)."""

    root: Path

    def upload_file(self, path: Path, key: str, *, content_type: str | None = None) -> None:
        target = self.root / key
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)

    def locate(self, key: str, version: str = "") -> Path:
        """Where FFmpeg reads an object: the file itself (a presigned URL in Lambda)."""
        return self.root / key

    def read_text(self, key: str) -> str:
        return (self.root / key).read_text(encoding="utf-8")

    def download(self, key: str, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self.root / key, path)

    def upload_tree(self, local_dir: Path, prefix: str) -> list[str]:
        keys = []
        for path in sorted(p for p in local_dir.rglob("*") if p.is_file()):
            key = prefix + path.relative_to(local_dir).as_posix()
            self.upload_file(path, key)
            keys.append(key)
        return keys


@dataclass
class Bus:
    events: list[Any] = field(default_factory=list)

    def publish(self, event: Any) -> None:
        self.events.append(event)

    def of(self, kind: type) -> list[Any]:
        return [event for event in self.events if isinstance(event, kind)]


# Cues of the subtitle track muxed into the sample: one in the first chunk, one in the last.
SUBTITLES_SRT = "1\n00:00:01,000 --> 00:00:02,500\nAt the start\n\n2\n00:00:17,500 --> 00:00:19,000\nNear the end\n"


def with_english_subtitles(folder: Path) -> Path:
    """The sample with a mov_text track tagged English (audio and video copied)."""
    (folder / "subs.srt").write_text(SUBTITLES_SRT, encoding="utf-8")
    subtitled = folder / "long_with_subtitles.mp4"
    subprocess.run(
        [find_tool("ffmpeg"), "-v", "error", "-y", "-i", str(SAMPLE), "-i", str(folder / "subs.srt"),
         "-map", "0", "-map", "1", "-c", "copy", "-c:s", "mov_text", "-metadata:s:s:0", "language=eng",
         "-movflags", "+faststart",  # read front to back: the test server answers no ranges
         str(subtitled)],
        env=ffmpeg_environment(), check=True,
    )  # fmt: skip
    return subtitled


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def fanned_out(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FolderStore, FolderStore, Bus]]:
    """GIVEN the 20 s sample with a subtitle track WHEN the planner fans it out in 8 s chunks."""
    root = tmp_path_factory.mktemp("fanout")
    work, outputs, bus = FolderStore(root / "uploads"), FolderStore(root / "outputs"), Bus()
    source = with_english_subtitles(root)
    work.upload_file(source, SOURCE_KEY)
    scratch = root / "planner"
    scratch.mkdir()
    # The upload's presigned URL, as the planner gets it: the uploads folder over HTTP on loopback.
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=work.root))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    # an MP4 probed by its URL: nothing downloaded (local_source None); the planner
    # reads the subtitle track over that URL
    fan_out(JOB_ID, probe_media(source), scratch, source_key=SOURCE_KEY, local_source=None, chunk_s=8,
            timeout_s=120, work_store=work, publish=bus.publish,
            source_url=f"http://127.0.0.1:{server.server_address[1]}/{SOURCE_KEY}")  # fmt: skip
    yield work, outputs, bus
    server.shutdown()
    server.server_close()


def test_GIVEN_a_fanned_out_source_WHEN_every_order_is_run_and_counted_THEN_one_stitch_and_a_playable_ladder(
    fanned_out, tmp_path: Path
) -> None:
    work, outputs, bus = fanned_out
    orders = bus.of(ChunkRequested)
    assert [order.index for order in orders] == [0, 1, 2]
    # THEN the job learns the total before any chunk can be reported
    first_stage_event = bus.of(StageEvent)[0]
    assert first_stage_event.chunks == {"total": 3}

    job = Job.new(JOB_ID, filename="long.mp4", content_type="video/mp4", size=1, now="2025-01-01T10:00:00.000000Z")
    job = apply_event(job, first_stage_event) or job
    stitches = []
    # WHEN the orders run (the middle one twice: SQS delivers at least once) and the status function counts
    for attempt, order in enumerate([orders[2], orders[0], orders[1], orders[1]]):
        chunk_bus = Bus()
        scratch = tmp_path / f"chunk{attempt}"
        scratch.mkdir()
        run_work_order(order, scratch, receive_count=1, max_receive_count=3, timeout_s=120, locate=work.locate,
                       work_store=work, output_store=outputs, publish=chunk_bus.publish)  # fmt: skip
        (report,) = chunk_bus.events
        updated = apply_event(job, report)
        update = JobUpdate(updated or job, changed=updated is not None, became_terminal=False)
        job = update.job
        if update.changed and (request := stitch_request(report, update)) is not None:
            stitches.append(request)

    # THEN the count is exact and exactly one stitch was asked for
    assert job.stages[Stage.TRANSCODE].chunks["done"] == 3
    assert stitches == [StitchRequested(job_id=JOB_ID, total=3, occurred_at=stitches[0].occurred_at)]

    stitch_bus = Bus()
    run_work_order(stitches[0], tmp_path / "stitch", receive_count=1, max_receive_count=3, timeout_s=60,
                   locate=work.locate, work_store=work, output_store=outputs, publish=stitch_bus.publish)  # fmt: skip
    (completed,) = stitch_bus.events
    assert completed.kind is StageEventKind.COMPLETED
    assert completed.outputs["prefix"] == hls_prefix(JOB_ID)
    assert [r["name"] for r in completed.outputs["renditions"]] == ["360p", "240p"]
    job = apply_event(job, completed)
    assert job is not None and job.stages[Stage.TRANSCODE].status is StageStatus.COMPLETED

    # AND the uploaded ladder has every frame, and no chunk playlist is left among the outputs
    hls = outputs.root / hls_prefix(JOB_ID)
    for rendition in completed.outputs["renditions"]:
        playlist = hls / rendition["name"] / "index.m3u8"
        data = media_checks.ffprobe_json(
            playlist, "-select_streams", "v:0", "-count_packets", "-show_entries", "stream=nb_read_packets"
        )
        assert int(data["streams"][0]["nb_read_packets"]) == 600
        assert not list((hls / rendition["name"]).glob("chunk_*.m3u8"))

    # AND the subtitle track is a SUBTITLES rendition whose cues keep the source's times:
    # the cue at 17.5 s is in the 16-20 s WebVTT segment, and that window's video segment
    # starts at 16 s on the same MPEG-TS clock the segments' X-TIMESTAMP-MAP names
    [subtitles] = completed.outputs["subtitles"]
    assert subtitles["language"] == "en"
    master = (hls / "master.m3u8").read_text(encoding="utf-8")
    assert "TYPE=SUBTITLES" in master and f'URI="{subtitles["name"]}/index.m3u8"' in master
    folder = hls / subtitles["name"]
    segments = {path.name: path.read_text(encoding="utf-8") for path in sorted(folder.glob("seg_*.vtt"))}
    assert [name for name, text in segments.items() if "Near the end" in text] == ["seg_00004.vtt"]
    assert "00:00:17.500 --> 00:00:19.000" in segments["seg_00004.vtt"]
    time_zero = completed.outputs["mpegts_time_zero"]
    assert f"X-TIMESTAMP-MAP=MPEGTS:{time_zero},LOCAL:00:00:00.000" in segments["seg_00004.vtt"]
    video_segments = [line for line in (hls / "360p" / "index.m3u8").read_text().splitlines() if line.endswith(".ts")]
    window = media_checks.ffprobe_json(hls / "360p" / video_segments[4], "-show_entries", "format=start_time")
    assert float(window["format"]["start_time"]) == pytest.approx(16 + time_zero / 90000, abs=0.05)
    assert media_checks.master_variants(hls / "master.m3u8")

    # AND the stitch made the MP4 download from the 360p rung's segments: every frame, fast start
    assert completed.outputs["mp4"] == "download.mp4"
    mp4 = outputs.root / mp4_download_key(JOB_ID)
    data = media_checks.ffprobe_json(mp4, "-show_streams", "-show_format")
    assert [(s["codec_name"], s.get("height")) for s in data["streams"]] == [("h264", 360), ("aac", None)]
    assert int(data["streams"][0]["nb_frames"]) == 600
    assert abs(float(data["format"]["duration"]) - 20.0) <= 2 / 30
    boxes = media_checks.mp4_top_level_boxes(mp4.read_bytes())
    assert boxes.index("moov") < boxes.index("mdat"), boxes


def test_GIVEN_orders_THEN_every_chunk_reads_the_upload_itself_and_nothing_was_split(fanned_out) -> None:
    work, _, bus = fanned_out

    assert {order.source_key for order in bus.of(ChunkRequested)} == {SOURCE_KEY}
    # only the plan and the chunks' segment lists: no media was copied into the work area
    assert {path.suffix for path in (work.root / "chunks" / JOB_ID).iterdir()} == {".json"}


def test_GIVEN_an_upload_ffmpeg_cannot_seek_in_WHEN_fanned_out_THEN_chunks_read_its_remux(tmp_path: Path) -> None:
    work, bus = FolderStore(tmp_path / "uploads"), Bus()
    upload = tmp_path / "upload.ts"
    subprocess.run([find_tool("ffmpeg"), "-v", "error", "-i", str(SAMPLE), "-c", "copy", "-f", "mpegts", str(upload)],
                   env=ffmpeg_environment(), check=True, timeout=60)  # fmt: skip
    source = probe_media(upload)

    with pytest.raises(ValueError, match="downloaded"):
        fan_out(JOB_ID, source, tmp_path, source_key=SOURCE_KEY, local_source=None, chunk_s=8, timeout_s=120,
                work_store=work, publish=bus.publish)  # fmt: skip
    total = fan_out(JOB_ID, source, tmp_path, source_key=SOURCE_KEY, local_source=upload, chunk_s=8,
                    timeout_s=120, work_store=work, publish=bus.publish)  # fmt: skip

    remux_key = f"chunks/{JOB_ID}/seekable.mkv"
    assert total == 3 and {order.source_key for order in bus.of(ChunkRequested)} == {remux_key}
    assert probe_media(work.locate(remux_key)).demuxer == "matroska"
    assert {order.task["demuxer"] for order in bus.of(ChunkRequested)} == {"matroska"}


def test_GIVEN_a_chunk_that_keeps_failing_WHEN_the_last_attempt_fails_THEN_the_transcode_fails_with_a_reason(
    fanned_out, tmp_path: Path
) -> None:
    work, outputs, bus = fanned_out
    order = bus.of(ChunkRequested)[1]
    published = Bus()

    def cannot_sign(key: str, version: str) -> Path:
        raise StorageError(f"cannot presign a GET for {key}: SlowDown")

    # attempts 1 and 2: raised for SQS to retry, nothing published
    for attempt in (1, 2):
        with pytest.raises(StorageError):
            run_work_order(order, tmp_path, receive_count=attempt, max_receive_count=3, timeout_s=60,
                           locate=cannot_sign, work_store=work, output_store=outputs,
                           publish=published.publish)  # fmt: skip
    assert published.events == []
    # attempt 3: the transcode fails, with which chunk and why
    with pytest.raises(StorageError):
        run_work_order(order, tmp_path, receive_count=3, max_receive_count=3, timeout_s=60,
                       locate=cannot_sign, work_store=work, output_store=outputs,
                       publish=published.publish)  # fmt: skip
    (failed,) = published.events
    assert failed.kind is StageEventKind.FAILED and failed.stage is Stage.TRANSCODE
    assert failed.error["code"] == "STORAGE_ERROR"
    assert failed.error["message"].startswith("chunk 2 of 3 gave up after 3 attempts: ")


def test_GIVEN_a_chunk_whose_source_cannot_be_decoded_THEN_the_transcode_fails_at_once(
    fanned_out, tmp_path: Path
) -> None:
    work, outputs, bus = fanned_out
    damaged = tmp_path / "damaged.mp4"
    damaged.write_bytes(b"not a video any more " * 10_000)  # the object changed after the planner probed it
    published = Bus()

    run_work_order(bus.of(ChunkRequested)[0], tmp_path, receive_count=1, max_receive_count=3, timeout_s=60,
                   locate=lambda key, version: damaged, work_store=work, output_store=outputs,
                   publish=published.publish)  # fmt: skip

    (failed,) = published.events
    assert failed.kind is StageEventKind.FAILED and failed.error["code"] == "CORRUPT_MEDIA"
    assert failed.error["message"].startswith("chunk 1 of 3: ")

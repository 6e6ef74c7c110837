"""The chunked transcode across functions: plan (transcode function), encode
one chunk (chunk-encode function), stitch (chunk-encode function, once the job
record counts every chunk).

Nothing is split: each chunk function reads its own part of the source, by
ranged requests on a presigned URL (``locate``). The steps pass work through the
uploads bucket, under ``chunks/{job_id}/`` (deleted by a lifecycle rule):
``plan.json`` (what the stitch needs), ``done_NNNN.json`` (the segments a chunk
wrote) and, for a source FFmpeg cannot seek in quickly, its remux
``seekable.mkv``. Segments go straight to their final place in the outputs
bucket, ``jobs/{job_id}/hls/{rendition}/cNNNN_NNN.ts``; the stitch writes the
playlists and the MP4 download (remuxed from one rung's segments, which it
downloads: transcode.domain_logic.mp4_download).

Ports, not boto3: ``work_store`` and ``output_store`` are S3ObjectStores in
Lambda, fakes in tests; ``publish`` puts an event on the bus; ``locate`` says
where FFmpeg reads an object of the uploads bucket (a presigned URL in Lambda,
a local path in tests).

What can go wrong: what :mod:`transcode.domain_logic.chunking` raises,
EncodeTooCostly from the planner when one chunk is more than a chunk function
can encode in its time,
StorageError from the stores, EventPublishError from ``publish``, and
CorruptMedia from the stitch when the renditions come out shorter than the source.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction
from pathlib import Path
from typing import Any, Protocol

from transcode.domain_logic.chunk_encoding import (
    CHUNKED_MPEGTS_TIME_ZERO,
    SEEK_MARGIN_S,
    ChunkOutput,
    chunk_playlist_name,
    encode_chunk,
)
from transcode.domain_logic.chunk_planning import (
    REMUXED_NAME,
    SEEKABLE_DEMUXERS,
    ChunkPlan,
    ChunkTask,
    check_chunk_length,
    plan_chunks,
    seekable_source,
)
from transcode.domain_logic.chunk_stitching import stitch_playlists
from transcode.domain_logic.encode_cost import StageBudget, check_encode_cost, describe_source, encode_cost
from transcode.domain_logic.hls import DEFAULT_SEGMENT_S, MASTER_PLAYLIST_NAME
from transcode.domain_logic.ladder import DEFAULT_LADDER, LadderConfig, Rendition, output_frame_rate, plan_ladder
from transcode.domain_logic.mp4_download import download_rung, remux_stored_segments_to_mp4
from transcode.domain_logic.subtitle_extraction import (
    ExtractedSubtitles,
    extract_subtitle_texts,
    subtitle_outputs,
    write_subtitle_renditions,
)
from transcode.domain_logic.transcoding import check_complete, plan_title_ladder, rendition_summary
from vidpipe.domain.delivery_attempts import gave_up_error, is_last_attempt
from vidpipe.domain.errors import JobDeleted, MediaError, SourceTooLarge
from vidpipe.domain.events import ChunkRequested, Stage, StageEvent, StageEventKind, StitchRequested
from vidpipe.domain.source_info import SourceInfo
from vidpipe.domain.storage_keys import MP4_DOWNLOAD_NAME, hls_prefix, mp4_download_key, work_key, work_prefix
from vidpipe.runtime.scratch import check_scratch_room

PLAN_NAME = "plan.json"
# Event publications and S3 reads the planner and the stitch make at once.
PARALLEL_REQUESTS = 16


class WorkStore(Protocol):
    def upload_file(self, path: Path, key: str, *, content_type: str | None = None) -> None: ...
    def read_text(self, key: str) -> str: ...


class OutputStore(Protocol):
    def upload_tree(self, local_dir: Path, prefix: str) -> list[str]: ...
    def upload_file(self, path: Path, key: str, *, content_type: str | None = None) -> None: ...
    def download(self, key: str, path: Path) -> None: ...


Publish = Callable[[Any], None]
# Where FFmpeg reads (key, version) of the uploads bucket; version "" for our own work files.
Locate = Callable[[str, str], Path | str]


def fan_out(
    job_id: str,
    source: SourceInfo,
    scratch: Path,
    *,
    source_key: str,
    local_source: Path | None,
    chunk_s: int,
    timeout_s: float,
    work_store: WorkStore,
    publish: Publish,
    segment_s: int = DEFAULT_SEGMENT_S,
    ladder_config: LadderConfig = DEFAULT_LADDER,
    source_url: str | None = None,
    on_analysis_fallback: Callable[[str], None] | None = None,
    chunk_budget: StageBudget | None = None,
    source_version: str = "",
) -> int:
    """Plan the chunks of the upload at ``source_key`` and order one encode per
    chunk; return the number of chunks.

    ``local_source`` is the upload downloaded (None when it was probed by URL
    only): needed, and remuxed into the work area, when FFmpeg cannot seek in
    the upload's container. ``source_url`` (a presigned URL of the upload) is
    where the per-title analysis reads an upload that was not downloaded.
    ``source_version`` is the upload's version the job accepted: every chunk
    order names it, so no chunk reads a later write to the key.
    Before the orders, a "Transcode Progress" event tells the job how many
    chunks to expect; the orders come last, so a chunk is never encoded before
    its plan is stored.

    With ``chunk_budget`` (what one chunk function can do in its time), the
    longest chunk's cost is checked first, before any analysis, remux or order:
    an upload no chunk function could encode fails here with EncodeTooCostly
    instead of timing out on every attempt of every chunk. Raises ValueError
    for a chunk length that is not a multiple of ``segment_s``, or a source
    that needs a remux but was not downloaded."""
    check_chunk_length(chunk_s, segment_s)
    ladder = plan_ladder(source, ladder_config)  # the deployment's ladder, as the single-process path
    if chunk_budget is not None:
        longest_s = longest_chunk_s(plan_chunks(source, chunk_s=chunk_s), source)
        # A chunk decodes from FFmpeg's seek target, SEEK_MARGIN_S before its start
        # (and from the keyframe before that, which the probe cannot tell).
        cost = encode_cost(source, ladder, duration_s=longest_s, decoded_s=longest_s + SEEK_MARGIN_S)
        what = f"one {longest_s:.0f} s chunk of {describe_source(source, source.duration_s)}"
        check_encode_cost(cost, chunk_budget, what=what)
    # Decided once for the whole title, as on the single-process path: every
    # chunk order carries the same rungs and CRF. The analysis reads the upload
    # where it is (downloaded, or by its URL).
    analysis_source = local_source if local_source is not None else source_url
    if analysis_source is not None:
        ladder, _ = plan_title_ladder(analysis_source, source, ladder_config, scratch / "analysis",
                                      timeout_s=timeout_s, segment_s=segment_s,
                                      on_fallback=on_analysis_fallback)  # fmt: skip
    prefix = work_prefix(job_id)
    readable = source
    if source.demuxer not in SEEKABLE_DEMUXERS:
        if local_source is None:
            raise ValueError(f"a {source.demuxer} upload must be downloaded to be remuxed for chunking")
        # The remux is as large as the upload, beside it in the same scratch space.
        check_scratch_room(scratch, local_source.stat().st_size, what="the upload's remux for chunking")
        remuxed, readable = seekable_source(local_source, source, scratch / "seekable", timeout_s=timeout_s)
        source_key, source_version = prefix + REMUXED_NAME, ""  # ours, written once per plan
        work_store.upload_file(remuxed, source_key, content_type="video/x-matroska")
    plan = plan_chunks(readable, chunk_s=chunk_s)
    # Subtitles are tiny: extracted here, once, from the source, and kept in the
    # plan for the stitch to segment (no chunk deals with them).
    subtitle_source = local_source if local_source is not None else source_url
    subtitles = (
        extract_subtitle_texts(subtitle_source, source, scratch / "subtitles", timeout_s=timeout_s)
        if subtitle_source is not None
        else ExtractedSubtitles()
    )
    plan_file = scratch / PLAN_NAME
    plan_file.write_text(json.dumps({
        "total": plan.total,
        "ladder": [rendition.__dict__ for rendition in ladder],
        "frame_rate": str(output_frame_rate(source.frame_rate)),  # the renditions', for the master playlist
        "has_audio": source.has_audio,
        "duration_s": source.duration_s,
        "segment_s": segment_s,
        "subtitles": subtitles.to_dict(),
    }), encoding="utf-8")  # fmt: skip
    work_store.upload_file(plan_file, prefix + PLAN_NAME, content_type="application/json")
    publish(StageEvent(job_id=job_id, stage=Stage.TRANSCODE, kind=StageEventKind.PROGRESS,
                       progress=0.05, chunks={"total": plan.total}))  # fmt: skip
    orders = [
        ChunkRequested(
            job_id,
            index,
            plan.total,
            ChunkTask.of(plan, index, ladder, readable, segment_s).to_dict(),
            source_key,
            source_version=source_version,
        )
        for index in range(plan.total)
    ]
    # In parallel: an hour in 32 s chunks is 113 PutEvents calls, a few seconds one after another.
    with ThreadPoolExecutor(max_workers=PARALLEL_REQUESTS) as pool:
        list(pool.map(publish, orders))
    return plan.total


def longest_chunk_s(plan: ChunkPlan, source: SourceInfo) -> float:
    """The longest chunk of ``plan`` in seconds (the last one may be up to
    1 + MIN_TAIL_RATIO chunks long: a short tail is merged into it)."""
    start, end = source.video_start_s, source.video_start_s + source.duration_s
    return max(
        (bounds.end_s if bounds.end_s is not None else end) - (bounds.start_s if bounds.start_s is not None else start)
        for bounds in plan.chunks
    )


def encode_one_chunk(
    request: ChunkRequested,
    scratch: Path,
    *,
    timeout_s: float,
    locate: Locate,
    work_store: WorkStore,
    output_store: OutputStore,
    publish: Publish,
) -> ChunkOutput:
    """Encode one chunk's rungs, put its segments in place and its segment list in
    the work area, then report the chunk finished (which the job record counts).

    Idempotent: a repeated order rewrites the same segments and reports the same
    chunk, which the count takes once."""
    task = ChunkTask.from_dict(request.task)
    out = scratch / "out"
    output = encode_chunk(task, locate(request.source_key, request.source_version), out, timeout_s=timeout_s)
    for rendition in task.ladder:  # the stitched playlists replace the chunk's own
        (out / rendition.name / chunk_playlist_name(task.index)).unlink(missing_ok=True)
    output_store.upload_tree(out, hls_prefix(request.job_id))
    manifest = scratch / "done.json"
    manifest.write_text(json.dumps(output.to_dict()), encoding="utf-8")
    work_store.upload_file(manifest, work_key(request.job_id, done_name(task.index)), content_type="application/json")
    publish(StageEvent(job_id=request.job_id, stage=Stage.TRANSCODE, kind=StageEventKind.PROGRESS,
                       chunks={"total": task.total, "finished": [task.index]}))  # fmt: skip
    return output


def done_name(index: int) -> str:
    return f"done_{index:04d}.json"


def stitch(
    request: StitchRequested,
    scratch: Path,
    *,
    work_store: WorkStore,
    output_store: OutputStore,
    publish: Publish,
    timeout_s: float = 300.0,
) -> dict[str, Any]:
    """Write every rendition's media playlist and the master playlist from the
    chunks' segment lists, upload them, make the MP4 download and publish
    "Transcode Completed" with the same outputs as the single-process path;
    return those outputs.

    Raises CorruptMedia when the stitched renditions are clearly shorter than the
    source, StorageError when a chunk's segment list is missing."""
    prefix = work_prefix(request.job_id)
    plan = json.loads(work_store.read_text(prefix + PLAN_NAME))
    ladder = [Rendition(**rendition) for rendition in plan["ladder"]]
    # In parallel: one small GET per chunk, over a hundred for an hour of video.
    with ThreadPoolExecutor(max_workers=PARALLEL_REQUESTS) as pool:
        manifests = list(pool.map(work_store.read_text, [prefix + done_name(i) for i in range(int(plan["total"]))]))
    outputs = [ChunkOutput.from_dict(json.loads(manifest)) for manifest in manifests]
    out = scratch / "out"
    out.mkdir(parents=True, exist_ok=True)
    extracted = ExtractedSubtitles.from_dict(plan.get("subtitles"))
    subtitles = write_subtitle_renditions(extracted, out, duration_s=float(plan["duration_s"]),
                                          segment_s=float(plan.get("segment_s", DEFAULT_SEGMENT_S)),
                                          mpegts_time_zero=CHUNKED_MPEGTS_TIME_ZERO)  # fmt: skip
    measured = stitch_playlists(outputs, ladder, has_audio=bool(plan["has_audio"]),
                                frame_rate=Fraction(plan["frame_rate"]), output_dir=out,
                                subtitles=subtitles)  # fmt: skip
    check_complete(float(plan["duration_s"]), measured)
    output_store.upload_tree(out, hls_prefix(request.job_id))
    result = {
        "prefix": hls_prefix(request.job_id),
        "master_playlist": MASTER_PLAYLIST_NAME,
        "renditions": [rendition_summary(rendition, measured.get(rendition.name)) for rendition in ladder],
        "chunks": int(plan["total"]),
        # Where captions added later put media time 0 (transcode.domain_logic.sidecar_captions).
        "mpegts_time_zero": CHUNKED_MPEGTS_TIME_ZERO,
        **subtitle_outputs(subtitles, extracted.skipped),
    }
    has_audio = bool(plan["has_audio"])
    if make_mp4_download(request.job_id, outputs, ladder, has_audio, scratch / "mp4",
                         output_store=output_store, timeout_s=timeout_s):  # fmt: skip
        result["mp4"] = MP4_DOWNLOAD_NAME
    publish(StageEvent(job_id=request.job_id, stage=Stage.TRANSCODE, kind=StageEventKind.COMPLETED, outputs=result))
    return result


def make_mp4_download(
    job_id: str,
    outputs: list[ChunkOutput],
    ladder: list[Rendition],
    has_audio: bool,
    scratch: Path,
    *,
    output_store: OutputStore,
    timeout_s: float,
) -> bool:
    """Remux the download rung's segments (every chunk's, in order) into the
    job's MP4 and upload it; True when it was made. The rung is downloaded
    into the scratch space, which must hold it twice (joined, then remuxed):
    when it cannot, the job goes without an MP4 (False) rather than failing a
    video whose playback is ready."""
    rung = download_rung(ladder)
    segments = [segment for output in outputs for segment in output.segments[rung.name]]
    try:
        check_scratch_room(scratch.parent, 2 * sum(segment.size_bytes for segment in segments),
                           what="the MP4 download's rung")  # fmt: skip
    except SourceTooLarge:
        return False
    folder = f"{hls_prefix(job_id)}{rung.name}/"
    mp4 = scratch / MP4_DOWNLOAD_NAME
    remux_stored_segments_to_mp4([folder + segment.uri for segment in segments], output_store.download, mp4,
                                 has_audio=has_audio, scratch=scratch / "work", timeout_s=timeout_s)  # fmt: skip
    output_store.upload_file(mp4, mp4_download_key(job_id))
    return True


def run_work_order(
    order: ChunkRequested | StitchRequested,
    scratch: Path,
    *,
    receive_count: int,
    max_receive_count: int,
    timeout_s: float,
    locate: Locate,
    work_store: WorkStore,
    output_store: OutputStore,
    publish: Publish,
) -> None:
    """Encode a chunk or stitch, with the stage runner's failure policy: a
    MediaError (these bytes will fail again) fails the transcode at once; any
    other error is raised for SQS to retry, and on the last allowed attempt the
    transcode is failed with the reason too, so the job does not wait forever."""
    what = f"chunk {order.index + 1} of {order.total}" if isinstance(order, ChunkRequested) else "stitch"

    def fail(error: dict[str, str]) -> None:
        publish(StageEvent(job_id=order.job_id, stage=Stage.TRANSCODE, kind=StageEventKind.FAILED, error=error))

    try:
        if isinstance(order, ChunkRequested):
            encode_one_chunk(order, scratch, timeout_s=timeout_s, locate=locate, work_store=work_store,
                             output_store=output_store, publish=publish)  # fmt: skip
        else:
            stitch(order, scratch, work_store=work_store, output_store=output_store, publish=publish,
                   timeout_s=timeout_s)  # fmt: skip
    except JobDeleted:
        raise  # the caller drops the order: nothing to fail, the job is gone
    except MediaError as exc:
        error = exc.to_dict()
        fail({**error, "message": f"{what}: {error['message']}"})
    except Exception as exc:
        if not is_last_attempt(receive_count, max_receive_count):
            raise
        fail(gave_up_error(exc, receive_count, what=what))
        raise

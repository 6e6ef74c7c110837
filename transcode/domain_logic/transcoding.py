"""Turn one local video file into an HLS ladder in a local folder.

Plain functions with no AWS in them: the Lambda handler downloads the upload,
calls :func:`transcode_to_hls` and uploads the folder; tests and the command
line call it directly.

Layout written under ``output_dir``::

    master.m3u8
    {name}/index.m3u8          e.g. 720p/index.m3u8
    {name}/seg_00000.ts ...

What can go wrong: a MediaError (final) when the file cannot become a video:
the ones :func:`vidpipe.adapters.ffmpeg.probe.probe_media` raises before anything is decoded
(NotAVideo, NoVideoStream, CorruptMedia, UnsupportedDimensions,
UnsupportedFrameRate, ForbiddenReference), MediaTooLong (over
``max_duration_s``, read from the header), EncodeTooCostly (over the
stage's budget, from the probe, before anything is encoded), CorruptMedia
(truncated), MemoryLimitExceeded; FfmpegError (FFmpeg missing, failing on
our side, or out of time; retryable), OSError when ``output_dir`` cannot be
written.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transcode.domain_logic.encode_cost import StageBudget, check_encode_cost, describe_source, encode_cost
from transcode.domain_logic.hls import (
    DEFAULT_SEGMENT_S,
    MASTER_PLAYLIST_NAME,
    MEDIA_PLAYLIST_NAME,
    PlaylistMeasurement,
    build_hls_args,
    measure_media_playlist,
    write_master_playlist,
)
from transcode.domain_logic.ladder import (
    DEFAULT_LADDER,
    LadderConfig,
    RateControl,
    Rendition,
    output_frame_rate,
    plan_ladder,
)
from transcode.domain_logic.subtitle_extraction import (
    ExtractedSubtitles,
    extract_subtitle_texts,
    write_subtitle_renditions,
)
from transcode.domain_logic.title_analysis import TitleAnalysis, analyse_title, worth_analysing
from vidpipe.adapters.ffmpeg.probe import probe_media
from vidpipe.adapters.ffmpeg.process import run_ffmpeg
from vidpipe.domain.errors import CorruptMedia, FfmpegError, MediaError, MediaTooLong
from vidpipe.domain.source_info import SourceInfo

# ffprobe reads only the head of the file (and the index); a minute is generous, and
# it must not eat the whole budget of a short Lambda.
PROBE_TIMEOUT_S = 60.0
# How much shorter than the source the renditions may come out before we call the
# file truncated: audio and video often end a few frames apart.
MISSING_TAIL_TOLERANCE_S = 1.0
MISSING_TAIL_TOLERANCE_RATIO = 0.05
# Early playback's first pass (the lowest rung) runs this much less nice than
# the configured FFmpeg niceness, so the second pass (the other rungs, started
# at the same moment) uses only the cores the first leaves idle. On the 60 s
# 1080p bench source, with the passes 10 apart: the lowest rung after 11.1 s
# instead of 8.9 s alone, the ladder in 60.3 s instead of 68.0 s one pass after
# the other (one plain command: 60.8 s); at equal niceness the lowest rung
# took 18.5 s. docs/PERFORMANCE.md.
LOWEST_PASS_AHEAD_BY = 10


@dataclass(frozen=True)
class TranscodeResult:
    """What was written: the probed source, the renditions (highest first) and the
    path of the master playlist (``output_dir / "master.m3u8"``)."""

    source: SourceInfo
    renditions: list[Rendition]
    master_playlist: Path
    # What the segments written measure, by rendition name.
    measured: Mapping[str, PlaylistMeasurement] = field(default_factory=dict)
    # The per-title decision (None for a fixed or constant-CRF ladder, or when
    # the analysis failed on our side and the ladder's default CRF was used).
    analysis: TitleAnalysis | None = None
    # The text subtitle tracks written as SUBTITLES renditions, and those left out.
    subtitles: ExtractedSubtitles = field(default_factory=ExtractedSubtitles)


def probe_source(path: Path, *, timeout_s: float, max_duration_s: float | None) -> SourceInfo:
    """:func:`vidpipe.adapters.ffmpeg.probe.probe_media` within the stage's time, and the
    deployment's duration limit read from the header, before anything decodes.

    Raises what probe_media raises, and MediaTooLong."""
    source = probe_media(path, timeout_s=min(PROBE_TIMEOUT_S, timeout_s))
    if max_duration_s is not None and source.duration_s > max_duration_s:
        raise MediaTooLong(
            f"the video lasts {source.duration_s:.0f} s, longer than the {max_duration_s:.0f} s we accept"
        )
    return source


def plan_title_ladder(
    source_ref: Path | str,
    source: SourceInfo,
    config: LadderConfig,
    scratch: Path,
    *,
    timeout_s: float,
    segment_s: int = DEFAULT_SEGMENT_S,
    on_fallback: Callable[[str], None] | None = None,
) -> tuple[list[Rendition], TitleAnalysis | None]:
    """The ladder for this title: :func:`plan_ladder`, with the CRF the title
    analysis chooses when the ladder's rate control is per-title.

    ``source_ref`` is the upload as FFmpeg reads it (a path, or a presigned
    URL on the chunked path). The analysis only tunes the rates, so it never
    fails an upload: when it fails (FFmpeg missing a filter, out of time, or a
    file its sampling cannot read, such as a picture too small for VMAF or a
    damaged stretch), the ladder uses its default CRF and ``on_fallback`` hears
    why; the encode then decides, with its own error if the file is bad. A
    title too short or small for the analysis to pay for itself
    (:func:`~transcode.domain_logic.title_analysis.worth_analysing`) gets the
    default CRF without one."""
    planned = plan_ladder(source, config)
    if config.rate_control is not RateControl.PER_TITLE:
        return planned, None
    if not worth_analysing(source, planned, config.analysis_cost_share):
        return planned, None
    try:
        analysis = analyse_title(source_ref, source, planned[0], scratch, timeout_s=timeout_s, segment_s=segment_s)
    except (FfmpegError, MediaError) as exc:
        if on_fallback is not None:
            on_fallback(str(exc))
        return planned, None
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return plan_ladder(source, config, title_crf=analysis.crf), analysis


def transcode_to_hls(
    input_path: Path,
    output_dir: Path,
    *,
    timeout_s: float,
    on_progress: Callable[[float], None] | None = None,
    on_probed: Callable[[SourceInfo], None] | None = None,
    max_duration_s: float | None = None,
    segment_s: int = DEFAULT_SEGMENT_S,
    ladder_config: LadderConfig = DEFAULT_LADDER,
    on_lowest_rung: Callable[[Rendition], None] | None = None,
    on_analysis_fallback: Callable[[str], None] | None = None,
    budget: StageBudget | None = None,
) -> TranscodeResult:
    """Probe ``input_path``, plan the ladder and encode it as HLS into ``output_dir``
    (created if missing; files of an earlier attempt are overwritten) with one
    FFmpeg process.

    With ``on_lowest_rung`` (early playback), the lowest rung is encoded by an
    FFmpeg process of its own, and the callback is called with it once
    ``output_dir`` holds that rendition and a master playlist listing it alone;
    the other rungs are encoded at the same time by a second, nicer process
    (one more decode of the source: the price of playing early), see
    :func:`_encode_lowest_rung_first`.

    A per-title ladder is planned by :func:`plan_title_ladder` first (its
    scratch files go beside ``output_dir``, and ``on_analysis_fallback`` hears
    when it fell back to the default CRF).

    With ``budget`` (the stage's vCPUs and time), the encode's cost is
    estimated from the probe and an encode the stage cannot finish is refused
    before FFmpeg starts (see :mod:`transcode.domain_logic.encode_cost`).

    ``timeout_s`` bounds probe, analysis and encode together. ``on_probed`` is called once
    with the source description before encoding starts; ``on_progress`` receives
    the encoded fraction, 0..1, never going backwards, and 1.0 at the end.

    Raises the MediaError of :func:`vidpipe.adapters.ffmpeg.probe.probe_media` for unusable
    input, CorruptMedia also when the outputs come out clearly shorter than the
    source (a truncated upload), MediaTooLong when the source is longer than
    ``max_duration_s`` (checked before encoding), EncodeTooCostly when the
    encode is over ``budget`` (checked before encoding), MemoryLimitExceeded, and
    FfmpegError when FFmpeg fails or runs out of time."""
    deadline = time.monotonic() + timeout_s
    source = probe_source(input_path, timeout_s=timeout_s, max_duration_s=max_duration_s)
    if on_probed is not None:
        on_probed(source)
    if budget is not None:
        # Checked before the analysis: the per-title decision changes the rungs'
        # rates, not their pixels, so the plan's shape is already known.
        shape = plan_ladder(source, ladder_config)
        decodes = 2 if on_lowest_rung is not None and len(shape) > 1 else 1
        cost = encode_cost(source, shape, duration_s=source.duration_s, decodes=decodes)
        check_encode_cost(cost, budget, what=describe_source(source, source.duration_s))
    # Absolute, so FFmpeg cannot mistake a relative "name:..." path for a protocol.
    output_dir = output_dir.absolute()
    output_dir.mkdir(parents=True, exist_ok=True)
    # The analysis's scratch files sit beside the outputs, never among them.
    ladder, analysis = plan_title_ladder(
        input_path, source, ladder_config, output_dir.parent / f".{output_dir.name}-analysis",
        timeout_s=max(1.0, deadline - time.monotonic()), segment_s=segment_s, on_fallback=on_analysis_fallback,
    )  # fmt: skip
    timeout_left_s = max(1.0, deadline - time.monotonic())
    if on_lowest_rung is None or len(ladder) == 1:
        progress = _PassesProgress(source.duration_s, on_progress, [ladder]).of_pass(0) if on_progress else None
        run_ffmpeg(build_hls_args(input_path, source, ladder, output_dir, segment_s), timeout_s=timeout_left_s,
                   on_progress=progress)  # fmt: skip
    else:
        _encode_lowest_rung_first(
            input_path, source, ladder, output_dir, segment_s,
            timeout_s=timeout_left_s, on_progress=on_progress, on_lowest_rung=on_lowest_rung,
        )  # fmt: skip

    measured = {
        rendition.name: measure_media_playlist(output_dir / rendition.name / MEDIA_PLAYLIST_NAME)
        for rendition in ladder
    }
    check_complete(source.duration_s, measured)
    # After the video: a track that cannot be extracted is reported, never fails the encode.
    subtitles = extract_subtitle_texts(
        input_path, source, output_dir.parent / f".{output_dir.name}-subtitles",
        timeout_s=max(1.0, deadline - time.monotonic()),
    )  # fmt: skip
    written = write_subtitle_renditions(subtitles, output_dir, duration_s=source.duration_s, segment_s=segment_s)
    master = output_dir / MASTER_PLAYLIST_NAME
    write_master_playlist(ladder, source.has_audio, master, frame_rate=output_frame_rate(source.frame_rate),
                          measured=measured, subtitles=written)  # fmt: skip
    if on_progress is not None:
        on_progress(1.0)
    return TranscodeResult(
        source=source,
        renditions=ladder,
        master_playlist=master,
        measured=measured,
        analysis=analysis,
        subtitles=subtitles,
    )


def _encode_lowest_rung_first(
    input_path: Path,
    source: SourceInfo,
    ladder: list[Rendition],
    output_dir: Path,
    segment_s: int,
    *,
    timeout_s: float,
    on_progress: Callable[[float], None] | None,
    on_lowest_rung: Callable[[Rendition], None],
) -> None:
    """Early playback: the lowest rung in one FFmpeg process, the other rungs in
    a second one started at the same moment, ``LOWEST_PASS_AHEAD_BY`` nicer.
    The lowest rung's pass (one decode, one small encode) leaves cores idle; the
    second pass takes what it leaves, so the lowest rung is playable almost as
    early as on its own and the whole ladder is done about when one process
    would have done it (the price is one more decode of the source).

    ``on_lowest_rung`` is called once the lowest rendition and a master playlist
    listing it alone are written. When either pass fails, the other is stopped
    at its next progress line (within about half a second: the attempt has
    failed, its cores are better spent on the retry) and the first failure is
    raised."""
    lowest, rest = ladder[-1:], ladder[:-1]
    progress = _PassesProgress(source.duration_s, on_progress or (lambda _fraction: None), [lowest, rest])
    failed = threading.Event()

    def run_pass(rungs: list[Rendition], index: int, niceness_change: int = 0) -> None:
        report = progress.of_pass(index)

        def report_unless_failed(encoded_s: float) -> None:
            if failed.is_set():
                raise _PassAbandoned
            report(encoded_s)

        try:
            run_ffmpeg(build_hls_args(input_path, source, rungs, output_dir, segment_s), timeout_s=timeout_s,
                       on_progress=report_unless_failed, niceness_change=niceness_change)  # fmt: skip
        except _PassAbandoned:
            raise
        except BaseException:
            failed.set()
            raise

    with ThreadPoolExecutor(max_workers=1) as second_process:
        rest_done = second_process.submit(run_pass, rest, 1)
        try:
            run_pass(lowest, 0, niceness_change=-LOWEST_PASS_AHEAD_BY)
            measured = {lowest[0].name: measure_media_playlist(output_dir / lowest[0].name / MEDIA_PLAYLIST_NAME)}
            write_master_playlist(lowest, source.has_audio, output_dir / MASTER_PLAYLIST_NAME,
                                  frame_rate=output_frame_rate(source.frame_rate), measured=measured)  # fmt: skip
            on_lowest_rung(lowest[0])
        except _PassAbandoned:
            rest_done.result()  # raises the other pass's own failure
            raise
        except BaseException:
            failed.set()
            raise
        rest_done.result()


class _PassAbandoned(Exception):
    """Raised inside one early-playback pass when the other has failed, to stop
    its FFmpeg; never leaves :func:`_encode_lowest_rung_first`, which raises the
    failure that caused it instead."""


def check_complete(source_duration_s: float, measured: Mapping[str, PlaylistMeasurement]) -> None:
    """Raise CorruptMedia when the renditions are clearly shorter than the source.

    A truncated upload whose header survived (moov first) probes fine, and FFmpeg
    encodes what is there, logs "partial file" and exits 0: only the length of
    what came out tells. The margin allows for streams of slightly unequal length."""
    shortest_s = min(measurement.duration_s for measurement in measured.values())
    margin_s = max(MISSING_TAIL_TOLERANCE_S, MISSING_TAIL_TOLERANCE_RATIO * source_duration_s)
    if shortest_s < source_duration_s - margin_s:
        raise CorruptMedia(
            f"the file ends after {shortest_s:.1f} s of the {source_duration_s:.1f} s its header announces "
            "(a truncated or damaged upload?)"
        )


class _PassesProgress:
    """FFmpeg's output time (seconds) of one or more passes that run at once,
    as a fraction of the work: each pass's share of the source, weighted by the
    pixels it encodes, summed. Clamped to 0..0.99 and never decreasing: the
    last percent is announced only once the master playlist is written, so
    "1.0" means the outputs are complete."""

    def __init__(self, duration_s: float, on_progress: Callable[[float], None], passes: list[list[Rendition]]) -> None:
        total = sum(r.width * r.height for rungs in passes for r in rungs)
        self._shares = [sum(r.width * r.height for r in rungs) / total for rungs in passes]
        self._encoded_s = [0.0] * len(passes)
        self._duration_s = duration_s
        self._on_progress = on_progress
        self._last = 0.0
        self._lock = threading.Lock()

    def of_pass(self, index: int) -> Callable[[float], None]:
        def report(encoded_s: float) -> None:
            with self._lock:
                self._encoded_s[index] = max(self._encoded_s[index], encoded_s)
                fraction = sum(
                    share * min(encoded, self._duration_s) / self._duration_s
                    for share, encoded in zip(self._shares, self._encoded_s, strict=True)
                )
                fraction = min(max(fraction, 0.0), 0.99)
                if fraction <= self._last:
                    return
                self._last = fraction
            self._on_progress(fraction)

        return report


def source_summary(source: SourceInfo) -> dict[str, Any]:
    """The job's ``source`` fields, JSON-ready: displayed width and height
    (rotation applied), duration in seconds, codecs, audio channels (0 without
    audio) and the frame rate as a float."""
    return {
        "duration_s": round(source.duration_s, 3),
        "width": source.display_width,
        "height": source.display_height,
        "video_codec": source.video_codec,
        "audio_codec": source.audio_codec,
        "audio_channels": source.audio_channels,
        "frame_rate": round(float(source.frame_rate), 3),
    }


def rendition_summary(rendition: Rendition, measured: PlaylistMeasurement | None = None) -> dict[str, Any]:
    """One entry of the job's ``outputs.renditions``, JSON-ready; ``bitrate`` is the
    average (video + audio) in bit/s measured on the segments written, else the
    nominal one (a capped-CRF rung's nominal figure is only its ceiling)."""
    return {
        "name": rendition.name,
        "width": rendition.width,
        "height": rendition.height,
        "bitrate": measured.average_bps if measured else rendition.average_bandwidth_bps,
    }

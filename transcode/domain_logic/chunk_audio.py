"""A chunk's audio: which AAC frames its encode reads, and which of them it keeps.

The chunk's AAC frames (on the plan's grid, see
transcode.domain_logic.chunk_planning) are encoded with two frames of the audio
before the chunk and two after (pre-roll and post-roll), and only the chunk's
own frames are kept (:func:`keep_adts_frames`). Each kept frame was encoded from
the same samples around it as a single encode of the whole track would use, so
the joins neither drift (the grid is counted in samples) nor click (no encoder
priming inside the track); the test
tests/integration/test_chunk_audio_joins_ffmpeg.py measures it.

Numbers and bytes only: the FFmpeg arguments of the audio encode are in
transcode.domain_logic.chunk_encoding.

What can go wrong: FfmpegError when the encoded audio is not ADTS as FFmpeg
writes it, or holds fewer frames than the chunk needs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from transcode.domain_logic.chunk_planning import AAC_FRAME_SAMPLES, ChunkTask
from vidpipe.domain.errors import FfmpegError

# AAC frames encoded before and after a chunk's own and then dropped: one frame's
# transform overlaps its neighbours', and the encoder's first frame is priming.
AUDIO_PREROLL_FRAMES = 2
AUDIO_POSTROLL_FRAMES = 2


@dataclass(frozen=True)
class AudioWindow:
    """What the chunk's audio encode reads (samples ``first..last`` of the source's
    audio; ``last`` None: to its end) and which of its AAC frames the chunk keeps:
    ``count`` frames (None: all) from frame number ``keep_from``, the first kept
    one starting at sample ``kept_start``."""

    first: int
    last: int | None
    keep_from: int
    count: int | None
    kept_start: int


def audio_window(task: ChunkTask) -> AudioWindow:
    """The AAC encoder's first frame is priming: it starts one frame before its
    first sample. A chunk in the middle encodes from AUDIO_PREROLL_FRAMES before
    its own first sample and keeps frames from number 1 + AUDIO_PREROLL_FRAMES;
    the first chunk keeps the priming frame, as a single encode of the whole
    track does."""
    bounds, frame = task.bounds, AAC_FRAME_SAMPLES
    start = task.audio_origin if bounds.audio_start is None else bounds.audio_start
    preroll = 0 if bounds.audio_start is None else AUDIO_PREROLL_FRAMES
    keep_from = 1 + preroll if bounds.audio_start is not None else 0
    if bounds.audio_end is None:
        count, last = None, None
    else:
        count = (bounds.audio_end - start) // frame + (1 if keep_from == 0 else 0)
        last = bounds.audio_end + AUDIO_POSTROLL_FRAMES * frame
    kept_start = start - frame if keep_from == 0 else start
    return AudioWindow(
        first=start - preroll * frame, last=last, keep_from=keep_from, count=count, kept_start=kept_start
    )


def audio_pad_samples(task: ChunkTask, window: AudioWindow) -> int | None:
    """How many samples the audio window must hold (silence-padded) so the chunk
    has audio to its end even where the source's audio stopped early."""
    if window.last is not None:
        return window.last - window.first
    if task.source_end_s is None:
        return None
    return max(0, round(task.source_end_s * task.sample_rate) - window.first)


def adts_frames(data: bytes) -> list[bytes]:
    """Split raw AAC (ADTS) into its frames. FfmpegError if it is not ADTS as
    FFmpeg writes it (one raw data block per frame)."""
    frames, position = [], 0
    while position < len(data):
        header = data[position : position + 7]
        if len(header) < 7 or header[0] != 0xFF or header[1] & 0xF6 != 0xF0 or header[6] & 0x03:
            raise FfmpegError(f"the chunk's audio is not ADTS as expected at byte {position}")
        length = ((header[3] & 0x03) << 11) | (header[4] << 3) | (header[5] >> 5)
        if length < 7 or position + length > len(data):
            raise FfmpegError(f"the chunk's audio has a truncated ADTS frame at byte {position}")
        frames.append(data[position : position + length])
        position += length
    return frames


def keep_adts_frames(encoded: Path, kept: Path, window: AudioWindow) -> int:
    """Write to ``kept`` the frames of ``encoded`` that ``window`` keeps; return
    how many. FfmpegError when the encode made fewer than the window needs."""
    frames = adts_frames(encoded.read_bytes())
    end = None if window.count is None else window.keep_from + window.count
    wanted = frames[window.keep_from : end]
    if not wanted or (window.count is not None and len(wanted) < window.count):
        raise FfmpegError(f"the chunk's audio encode made {len(frames)} AAC frames; {window.count} were needed")
    kept.write_bytes(b"".join(wanted))
    return len(wanted)

"""Starting FFmpeg and ffprobe: the binary (:func:`find_tool`), its bare
environment (:func:`ffmpeg_environment`), the time and memory limits set in the
child, and :func:`run_ffmpeg`. The safety rules as a whole: the docstring of
:mod:`vidpipe.adapters.ffmpeg`.

What can go wrong: :func:`run_ffmpeg` raises ValueError for an unrestricted
input, the final MediaErrors when the bytes are at fault, FfmpegError
(retryable) when the binary is missing, fails on our side or runs out of time.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import IO

from vidpipe.adapters.ffmpeg.inputs import check_inputs
from vidpipe.adapters.ffmpeg.limits import PeakMemorySampler, process_limits
from vidpipe.domain.errors import CorruptMedia, FfmpegError, ForbiddenReference
from vidpipe.domain.source_info import raise_if_codec_refused

# Where the FFmpeg layer puts its binaries on AWS. The local stack, where
# layers are not mounted there, names the same build by FFMPEG_PATH/FFPROBE_PATH.
LAYER_BIN_DIR = Path("/opt/bin")
# The layer's FFmpeg is a static build whose glibc is inside the binary. When the
# MPEG-TS demuxer converts a service name from its DVB charset (iconv, ISO 6937
# by default; most TS files carry one), that glibc looks the converter up in the
# host's gconv module cache and loads the host's module, a shared object built
# for another glibc, and crashes with SIGSEGV: every MPEG-TS upload failed. With
# GCONV_PATH set, glibc skips that cache; pointing it at /dev/null, which is no
# folder and so holds no module, leaves no host module to load (checked on
# Debian 12 with strace). The conversion then fails softly and FFmpeg keeps the
# name's bytes as they are; glibc's built-in UTF-8 and Latin-1 still work.
# Lambda's Amazon Linux has gconv modules too, so this holds on AWS as well.
NO_GCONV_MODULES = os.devnull
# The only variables of ours FFmpeg and ffprobe see. Never AWS_* (the function's
# credentials: a decoder bug turned into code execution would hold them) nor
# anything else of the function's settings; no LD_PRELOAD, no proxy settings
# (FFmpeg's http protocol would follow http_proxy). PATH and LD_LIBRARY_PATH let a
# dynamically linked build start, the locale and time zone keep its messages and
# timestamps as the host's, TMPDIR is where it may write, and the CA settings
# are where an https build looks for certificates.
FFMPEG_ENVIRONMENT_VARIABLES = (
    "PATH",
    "LD_LIBRARY_PATH",
    "LANG",
    "LC_ALL",
    "TZ",
    "TMPDIR",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
)
STDERR_TAIL_CHARS = 2000

# Signals of a process that crashed on its own (a decoder bug hit by the input);
# SIGKILL is not among them: that is our timer, the OS or Lambda.
CRASH_SIGNALS = frozenset({signal.SIGSEGV, signal.SIGBUS, signal.SIGFPE, signal.SIGILL, signal.SIGABRT})
# FFmpeg's log prefix, "[mov,mp4,m4a,3gp,3g2,mj2 @ 0x5581e7d2f280] ": noise to a user.
_LOG_CONTEXT = re.compile(r"\[[^\]\n]* @ 0x[0-9a-f]+\] ")


def find_tool(name: str) -> str:
    """Path of ``ffmpeg`` or ``ffprobe``, the first found of:

    1. the ``FFMPEG_PATH``/``FFPROBE_PATH`` setting (the local stack gives its
       functions the layer's build so, see vidpipe_cli.local_stack);
    2. the FFmpeg layer's ``bin/``, ``/opt/bin`` on AWS;
    3. beside the running interpreter: ``make dev`` installs the layer's build in
       the project's ``.venv/bin``, so the tests, the benchmarks and any tool run
       with ``.venv/bin/python`` get it without touching ``PATH``;
    4. ``PATH``.

    Raises FfmpegError when none has it."""
    configured = os.environ.get(f"{name.upper()}_PATH")
    candidates = [configured] if configured else []
    candidates.append(str(LAYER_BIN_DIR / name))
    candidates.append(os.path.join(os.path.dirname(sys.executable), name))
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which(name)
    if found:
        return found
    raise FfmpegError(f"{name} not found (set {name.upper()}_PATH, or run `make dev` to install the pinned FFmpeg)")


def ffmpeg_environment() -> dict[str, str]:
    """The environment of every ffmpeg and ffprobe process we start: only the
    variables of :data:`FFMPEG_ENVIRONMENT_VARIABLES` we have, and
    ``GCONV_PATH`` pointing where no gconv module can be (see
    :data:`NO_GCONV_MODULES`). Start FFmpeg with nothing else."""
    kept = {name: os.environ[name] for name in FFMPEG_ENVIRONMENT_VARIABLES if name in os.environ}
    return {**kept, "GCONV_PATH": NO_GCONV_MODULES}


ProgressCallback = Callable[[float], None]


def run_ffmpeg(
    args: Sequence[str],
    *,
    timeout_s: float,
    on_progress: ProgressCallback | None = None,
    niceness_change: int = 0,
) -> None:
    """Run ``ffmpeg`` with ``args`` (everything after the binary's name), whose
    every input must come from :func:`input_args`. ``niceness_change`` moves its
    niceness from the configured one (negative: ahead of other FFmpeg runs of
    the function), held within 0..19: never ahead of the function itself.

    Global options are added in front, and the process runs under the time and
    memory limits. When ``on_progress`` is given, FFmpeg's ``-progress`` output
    is read and the callback receives the output time in seconds as it advances.

    Raises ValueError for an unrestricted input; ForbiddenReference when FFmpeg
    refused to open something the file pointed at (even if it went on without
    it); MemoryLimitExceeded; CorruptMedia when FFmpeg reports invalid data or
    crashes on the input; FfmpegError for any other failure or the timeout
    (stderr tail included)."""
    inputs = check_inputs(args)
    limits = process_limits(timeout_s)
    if niceness_change:
        limits = replace(limits, niceness=min(19, max(0, limits.niceness + niceness_change)))
    command = [
        find_tool("ffmpeg"),
        "-hide_banner",
        "-nostdin",
        "-y",
        "-loglevel", "error",
        *(["-progress", "pipe:1", "-nostats"] if on_progress else []),
        *args,
    ]  # fmt: skip
    # stderr goes to a temporary file, not a pipe: while we read progress from stdout
    # nobody drains a stderr pipe, and a damaged input can log more than a pipe holds
    # (64 KiB); FFmpeg would then block on its next write, and we with it.
    with tempfile.TemporaryFile() as stderr_file:
        try:
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE if on_progress else subprocess.DEVNULL,
                stderr=stderr_file,
                env=ffmpeg_environment(),
                preexec_fn=limits.apply,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            raise FfmpegError(f"ffmpeg could not start: {exc}") from exc
        # A timer, not a check between progress lines: an FFmpeg that hangs prints
        # nothing, and reading its stdout would wait forever.
        timed_out = threading.Event()

        def stop_at_deadline() -> None:
            timed_out.set()
            process.kill()

        timer = threading.Timer(timeout_s, stop_at_deadline)
        timer.start()
        with PeakMemorySampler(process.pid) as sampler:
            try:
                if on_progress and process.stdout is not None:
                    _follow_progress(process.stdout, on_progress)
                process.wait()
            finally:
                timer.cancel()
                if process.poll() is None:  # the progress callback raised: do not leave FFmpeg running
                    process.kill()
                    process.wait()
                if process.stdout is not None:
                    process.stdout.close()
        stderr = readable_stderr(_tail(stderr_file), inputs)
    if timed_out.is_set() and process.returncode != 0:
        raise FfmpegError(f"ffmpeg did not finish within {timeout_s:.0f} s: {stderr}")
    raise_if_codec_refused(stderr)
    if "not on whitelist" in stderr:
        raise ForbiddenReference(f"the file tries to make FFmpeg open something besides itself: {stderr}")
    if process.returncode != 0:
        limits.raise_if_exceeded(process.returncode, stderr, sampler.peak_bytes, tool="ffmpeg")
        if -process.returncode in CRASH_SIGNALS:
            # Deterministic for these bytes: retrying would only run the crash again.
            raise CorruptMedia(f"FFmpeg crashed ({signal.Signals(-process.returncode).name}) decoding the file")
        if "Invalid data found" in stderr or "corrupt" in stderr.lower():
            raise CorruptMedia(f"FFmpeg could not decode the file: {stderr}")
        raise FfmpegError(f"ffmpeg exited with {process.returncode}{limits.describe(sampler.peak_bytes)}: {stderr}")


def readable_stderr(stderr: str, inputs: Sequence[Path | str]) -> str:
    """FFmpeg's stderr fit for an error message a user reads: the tail, without
    log prefixes, and our scratch paths (or presigned URLs: they carry a
    signature) replaced by what they are."""
    text = _LOG_CONTEXT.sub("", stderr)
    for path in inputs:
        text = text.replace(f"file:{path}", "the upload").replace(str(path), "the upload")
        if isinstance(path, str) and "://" in path:
            text = text.replace(path.partition("?")[0], "the upload")
    lines = [line.strip() for line in text[-STDERR_TAIL_CHARS:].splitlines()]
    return "; ".join(line for line in lines if line)


def _tail(stderr_file: IO[bytes]) -> str:
    """The last STDERR_TAIL_CHARS characters FFmpeg wrote to ``stderr_file``."""
    size = stderr_file.seek(0, os.SEEK_END)
    stderr_file.seek(max(0, size - 4 * STDERR_TAIL_CHARS))
    return stderr_file.read().decode("utf-8", "replace")[-STDERR_TAIL_CHARS:].strip()


def _follow_progress(stdout: IO[bytes], on_progress: ProgressCallback) -> None:
    for raw in stdout:
        key, _, value = raw.decode("ascii", "replace").strip().partition("=")
        if key == "out_time_us" and value.isdigit():
            on_progress(int(value) / 1_000_000)

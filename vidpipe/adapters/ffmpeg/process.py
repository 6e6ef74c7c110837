"""Starting FFmpeg and ffprobe: the binary (:func:`find_tool`), its bare
environment (:func:`ffmpeg_environment`), the time and memory limits set in the
child, and :func:`run_ffmpeg`. The safety rules as a whole: the docstring of
:mod:`vidpipe.adapters.ffmpeg`.

What can go wrong: :func:`run_ffmpeg` raises ValueError for an unrestricted
input, the final MediaErrors when the bytes are at fault, FfmpegError
(retryable) when the binary is missing, fails on our side or runs out of time.
"""

from __future__ import annotations

import math
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from vidpipe.adapters.ffmpeg.inputs import check_inputs
from vidpipe.domain.errors import CorruptMedia, FfmpegError, ForbiddenReference, MemoryLimitExceeded
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

# The memory limit (address space, RLIMIT_AS) of every FFmpeg and ffprobe process,
# unless FFMPEG_MEMORY_LIMIT_MB sets it (0 turns it off). Address space, not
# resident memory: thread stacks and malloc arenas reserve far more than they
# use, and they grow with the threads FFmpeg starts, one set per core. Base plus a
# share per core keeps a margin of about 1.7 over the peaks we measured (the
# figures: docs/PERFORMANCE.md, "Measurements behind the shared package").
MEMORY_LIMIT_BASE_MB = 1536
MEMORY_LIMIT_PER_CPU_MB = 512
MEMORY_LIMIT_SETTING = "FFMPEG_MEMORY_LIMIT_MB"
# A failed run whose sampled peak address space came this close to the limit ran
# into it (measured: failures peak at 0.95-1.0 of the limit, successes stayed below 0.89).
MEMORY_LIMIT_HIT_RATIO = 0.93
PEAK_SAMPLE_INTERVAL_S = 0.01
PEAK_SAMPLE_START_INTERVAL_S = 0.001
PEAK_SAMPLE_START_S = 2.0
# FFmpeg and ffprobe run this much nicer than the function that starts them
# (FFMPEG_NICENESS sets it, 0 keeps the function's own priority). On the local
# stack every function shares the machine's cores: encoders at the same priority
# as the API made every answer wait for a core (issue 18). At 19 the kernel gives
# a waiting API worker the core at once, and an encoder still takes every cycle
# nobody else wants, so throughput is kept. On AWS each function has its own
# cores; there the only other work is our own Python beside FFmpeg.
NICENESS_DEFAULT = 19
NICENESS_SETTING = "FFMPEG_NICENESS"
# RLIMIT_CPU is only the backstop for an FFmpeg that outlives us (our timer kills
# it first): every core busy for the whole timeout, plus a margin. ffprobe dies of
# SIGXCPU; ffmpeg catches it and exits with 255. Either way an FfmpegError.
CPU_LIMIT_MARGIN_S = 30

# What FFmpeg and the libraries it loads print when an allocation fails.
_OUT_OF_MEMORY_MARKERS = (
    "Cannot allocate memory",
    "malloc of size",
    "failed to allocate",
    "out of memory",
    "std::bad_alloc",
    "failed to map segment",
    "get_buffer() failed",
    "Resource temporarily unavailable",
)
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


@dataclass(frozen=True)
class ProcessLimits:
    """Resource limits for one FFmpeg/ffprobe child, applied between fork and exec."""

    memory_bytes: int | None
    cpu_seconds: int
    niceness: int = 0

    def apply(self) -> None:
        # Runs in the child before exec: only setrlimit and nice, system calls that
        # take no lock, so it is safe even though the parent has other threads.
        if self.niceness:
            os.nice(self.niceness)
        if self.memory_bytes is not None:
            resource.setrlimit(resource.RLIMIT_AS, (self.memory_bytes, self.memory_bytes))
        resource.setrlimit(resource.RLIMIT_CPU, (self.cpu_seconds, self.cpu_seconds + 5))

    def describe(self, peak_memory_bytes: int) -> str:
        """`` (memory limit N MiB, peak seen M MiB)`` for an error message, so an
        operator can tell a limit set too low from a real FFmpeg failure."""
        if self.memory_bytes is None:
            return ""
        return (
            f" (memory limit {self.memory_bytes // 2**20} MiB, {MEMORY_LIMIT_SETTING}; "
            f"peak seen {peak_memory_bytes // 2**20} MiB)"
        )

    def raise_if_exceeded(self, returncode: int, stderr: str, peak_memory_bytes: int, *, tool: str) -> None:
        """MemoryLimitExceeded or FfmpegError when a failed process hit one of our limits.

        Hitting the memory limit shows in two ways, and neither alone is enough:
        FFmpeg reports a failed allocation in its own words only sometimes ("get_buffer()
        failed", "Resource temporarily unavailable" from a thread that got no stack, or
        just "Error while opening encoder"), and the sampled peak address space can
        miss one huge failed request that stopped well short of the limit. So: an
        allocation message, or a peak within MEMORY_LIMIT_HIT_RATIO of the limit."""
        near_limit = self.memory_bytes is not None and peak_memory_bytes >= MEMORY_LIMIT_HIT_RATIO * self.memory_bytes
        said_so = self.memory_bytes is not None and any(marker in stderr for marker in _OUT_OF_MEMORY_MARKERS)
        if near_limit or said_so:
            raise MemoryLimitExceeded(
                f"{tool} needed more than the {(self.memory_bytes or 0) // 2**20} MiB of memory it may use "
                f"({MEMORY_LIMIT_SETTING}) to read this file: {stderr}"
            )
        if -returncode == signal.SIGXCPU:
            raise FfmpegError(f"{tool} used up its CPU time limit of {self.cpu_seconds} s")


def memory_limit_mb() -> int | None:
    """FFMPEG_MEMORY_LIMIT_MB, or the default: base plus a share per core, and in
    Lambda never more than the function's memory (address space bounds resident
    memory, so FFmpeg alone cannot get the function killed for running out of
    it). None when set to 0 (no limit). Raises FfmpegError for a value that is
    not a whole number."""
    raw = os.environ.get(MEMORY_LIMIT_SETTING, "").strip()
    if not raw:
        default = MEMORY_LIMIT_BASE_MB + MEMORY_LIMIT_PER_CPU_MB * _cpu_count()
        function_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "").strip()
        return min(default, int(function_mb)) if function_mb.isdigit() else default
    try:
        value = int(raw)
    except ValueError as exc:
        raise FfmpegError(f"setting {MEMORY_LIMIT_SETTING}={raw!r} is not a whole number of MiB") from exc
    return value if value > 0 else None


def niceness() -> int:
    """FFMPEG_NICENESS, or NICENESS_DEFAULT: how much lower FFmpeg's CPU priority
    is than its function's (0 to 19; only raising it needs no privilege).
    Raises FfmpegError for a value that is not a whole number in that range."""
    raw = os.environ.get(NICENESS_SETTING, "").strip()
    if not raw:
        return NICENESS_DEFAULT
    try:
        value = int(raw)
    except ValueError as exc:
        raise FfmpegError(f"setting {NICENESS_SETTING}={raw!r} is not a whole number") from exc
    if not 0 <= value <= 19:
        raise FfmpegError(f"setting {NICENESS_SETTING}={value} is outside 0..19")
    return value


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def process_limits(timeout_s: float) -> ProcessLimits:
    limit_mb = memory_limit_mb()
    memory_bytes = None
    if limit_mb is not None:
        # Never above the hard limit we run under: setrlimit in the child would fail.
        hard = resource.getrlimit(resource.RLIMIT_AS)[1]
        memory_bytes = limit_mb * 2**20 if hard == resource.RLIM_INFINITY else min(limit_mb * 2**20, hard)
    cpu_seconds = math.ceil(timeout_s * _cpu_count()) + CPU_LIMIT_MARGIN_S
    cpu_hard = resource.getrlimit(resource.RLIMIT_CPU)[1]
    if cpu_hard != resource.RLIM_INFINITY:
        cpu_seconds = min(cpu_seconds, cpu_hard - 5)
    return ProcessLimits(memory_bytes=memory_bytes, cpu_seconds=cpu_seconds, niceness=niceness())


class PeakMemorySampler:
    """Reads a child's VmPeak (its address-space high-water mark, which the kernel
    keeps) every PEAK_SAMPLE_INTERVAL_S while it runs. Being a high-water mark, a
    late sample still sees an early peak; only growth in the last few
    milliseconds before exit can be missed. Zero where /proc is missing."""

    def __init__(self, pid: int) -> None:
        self._status = Path(f"/proc/{pid}/status")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name=f"vmpeak:{pid}", daemon=True)
        self.peak_bytes = 0

    def _sample(self) -> None:
        started = time.monotonic()
        while True:
            try:
                for line in self._status.read_text().splitlines():
                    if line.startswith("VmPeak:"):
                        self.peak_bytes = max(self.peak_bytes, int(line.split()[1]) * 1024)
                        break
            except (OSError, ValueError, IndexError):
                pass  # not started yet, or gone: the last good sample stands
            # Fast while FFmpeg starts (demuxer, decoder, encoders and their threads all
            # allocate in its first moments, and a process that fails there exits at once).
            starting = time.monotonic() - started < PEAK_SAMPLE_START_S
            if self._stop.wait(PEAK_SAMPLE_START_INTERVAL_S if starting else PEAK_SAMPLE_INTERVAL_S):
                return

    def __enter__(self) -> PeakMemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()


ProgressCallback = Callable[[float], None]


def run_ffmpeg(
    args: Sequence[str],
    *,
    timeout_s: float,
    on_progress: ProgressCallback | None = None,
) -> None:
    """Run ``ffmpeg`` with ``args`` (everything after the binary's name), whose
    every input must come from :func:`input_args`.

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

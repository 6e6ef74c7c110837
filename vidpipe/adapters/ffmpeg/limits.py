"""The limits every FFmpeg and ffprobe process runs under, set in the child
between fork and exec (:class:`ProcessLimits`): address space, CPU time, a
lower CPU priority than the function's, and death with the process that
started it; and :class:`PeakMemorySampler`, which tells afterwards whether a
failed run hit the memory limit. The settings that change them:
``FFMPEG_MEMORY_LIMIT_MB`` and ``FFMPEG_NICENESS``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import math
import os
import resource
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from vidpipe.domain.errors import FfmpegError, MemoryLimitExceeded

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
# Linux's prctl option that has the kernel send the child a signal when its
# parent ends (<linux/prctl.h>). On AWS, Lambda ends the whole sandbox, FFmpeg
# included; on the local stack a killed function worker would leave its FFmpeg
# running as an orphan, holding cores and writing into a folder the retry owns.
# So every FFmpeg and ffprobe is told to die with the process that started it.
PR_SET_PDEATHSIG = 1

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


def _load_prctl() -> Callable[..., int] | None:
    """libc's prctl, or None off Linux (where FFmpeg outliving a killed parent
    is left to the operating system)."""
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    prctl: Callable[..., int] = libc.prctl
    return prctl


_prctl = _load_prctl()


@dataclass(frozen=True)
class ProcessLimits:
    """Resource limits for one FFmpeg/ffprobe child, applied between fork and exec."""

    memory_bytes: int | None
    cpu_seconds: int
    niceness: int = 0
    # The process starting the child: it ends if that one has already gone.
    parent_pid: int | None = None

    def apply(self) -> None:
        # Runs in the child before exec: only prctl, setrlimit and nice, system
        # calls that take no lock, so it is safe even though the parent has other
        # threads (prctl's ctypes function is looked up in the parent, at import).
        if self.parent_pid is not None and _prctl is not None:
            _prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
            # The parent may have died between fork and prctl: no signal comes then.
            if os.getppid() != self.parent_pid:
                os._exit(1)
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
    return ProcessLimits(
        memory_bytes=memory_bytes, cpu_seconds=cpu_seconds, niceness=niceness(), parent_pid=os.getpid()
    )


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

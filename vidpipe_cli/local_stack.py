"""The local stack: ministack on 127.0.0.1 with the project's template deployed in it.

``start`` runs ministack (from its own environment, ``.venv-ministack``) in the
background with ``AUTH=true`` and its state under the data folder, packages the
functions, deploys ``infra/template.yaml`` through CloudFormation and writes the
endpoints to ``<data>/stack.json``. ``stop`` sends SIGTERM, on which ministack
saves its state; the next ``start`` finds the earlier jobs and outputs, after a
hard kill too (see the snapshots below).

Settings (environment): ``VIDPIPE_DATA_DIR`` (default ``<project>/.vidpipe``),
``VIDPIPE_PORT`` (default 4566), ``VIDPIPE_MINISTACK_PYTHON`` (default
``<project>/.venv-ministack/bin/python``), ``VIDPIPE_PARAMETERS`` (template
parameter overrides, ``Key=Value,Key=Value``; the tests use it for faster retries).

ministack gaps worked around here, each in one visible place:
* the bucket properties ``NotificationConfiguration.EventBridgeConfiguration``
  and ``LifecycleConfiguration`` are not applied by its CloudFormation:
  :func:`_apply_bucket_settings_ministack_ignores` sets them, from the
  template, after each deploy;
* messages in flight when it stopped stay invisible for their visibility
  timeout after a restart: vidpipe_cli.crash_recovery.release_messages_in_flight;
* it saves its non-S3 state only on a clean shutdown: it runs under
  vidpipe_cli.ministack_snapshots, which snapshots the services jobs change
  shortly after they change, and saves everything after a deploy
  (:func:`_save_everything`); after a hard kill, :func:`start` says what it
  recovered (vidpipe_cli.crash_recovery);
* its S3 reads whole objects on its only event loop, a warm invocation waits
  50 ms for log lines, every new Lambda worker unzips its layers, a burst
  starts a worker per call, and every function shares the same cores at the
  same priority: vidpipe_cli/ministack_launcher.py runs it with a module for
  each (streamed reads, quick invocations, a layer cache, worker reuse,
  background priority), and :func:`start` has the API's and the stages'
  workers start before it returns (vidpipe_cli.local_warm_up);
* Lambda layers are not mounted at /opt, their ``bin/`` is not on PATH, and
  their files lose the executable bit when ministack unzips them: the
  functions are told where the FFmpeg layer's build is (``FFMPEG_PATH``,
  ``FFPROBE_PATH``, see vidpipe.adapters.ffmpeg.process.find_tool), the folder the layer is zipped
  from, so they run the same pinned static build as on AWS;
* there is no X-Ray daemon: the functions' tracing is switched off
  (``POWERTOOLS_TRACE_DISABLED``, see vidpipe.runtime.observability).

What can go wrong: ``LocalStackError`` with the reason (port taken, ministack
not installed, deploy failed with the failing resource's status reason).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import requests

from vidpipe.domain.jobs import JobStatus
from vidpipe_cli.crash_recovery import (
    UncleanStop,
    describe_recovery,
    end_leftover_workers,
    jobs_by_status,
    last_snapshot_at,
    release_messages_in_flight,
)
from vidpipe_cli.local_deploy import deploy, expires_soon, mint_token, stack_exists, with_token
from vidpipe_cli.local_stack_settings import (
    FFMPEG_LAYER_BIN,
    LOCAL_USER,
    START_TIMEOUT_S,
    STOP_TIMEOUT_S,
    Endpoints,
    LocalStackError,
    LocalStackSettings,
    aws_client,
)
from vidpipe_cli.local_warm_up import warm_up
from vidpipe_cli.packaging import FFMPEG_WHEEL, FUNCTION_SLICES, PROJECT_ROOT, build_all

# ministack's entry point, with our workarounds around it (listed in that file).
MINISTACK_LAUNCHER = Path(__file__).resolve().parent / "ministack_launcher.py"
# What a job can be doing when the stack dies (it resumes on the next start).
UNFINISHED = {JobStatus.UPLOADED.value, JobStatus.PROCESSING.value}

# ------------------------------------------------------------------ start / stop


def start(settings: LocalStackSettings, *, log=print) -> Endpoints:
    """Start ministack if it is not running, deploy the template if it changed,
    and return the endpoints."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    unclean_stop = None
    launched = not _is_healthy(settings)
    if launched:
        unclean_stop = _launch_ministack(settings, log=log)
    # What was deployed is known by a hash of its sources, so an unchanged stack
    # answers at once, without building anything.
    fingerprint = f"{_source_fingerprint(settings)}:{settings.port}:{settings.parameters}"
    previous = _read_endpoints_file(settings)
    if previous and previous.get("fingerprint") == fingerprint and stack_exists(settings):
        endpoints = Endpoints(**previous["endpoints"])
        if expires_soon(endpoints.api_token):
            endpoints = with_token(endpoints, mint_token(settings, endpoints.outputs, LOCAL_USER))
            settings.endpoints_file.write_text(
                json.dumps({"fingerprint": fingerprint, "endpoints": asdict(endpoints)}, indent=2)
            )
    else:
        log("deploying infra/template.yaml into the local stack ...")
        build_dir = PROJECT_ROOT / "build"
        build_dir.mkdir(exist_ok=True)
        # Two stacks of one checkout (the user's and the tests', say) share the
        # build folder: one builds and uploads its zips while the other waits.
        with open(build_dir / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            endpoints = deploy(settings, build_all(settings.ministack_python, build_dir))
        _save_everything(settings, log=log)
        settings.endpoints_file.write_text(
            json.dumps({"fingerprint": fingerprint, "endpoints": asdict(endpoints)}, indent=2)
        )
        launched = True
    if launched:
        warm_up(settings, endpoints, log=log)
    if unclean_stop is not None:
        jobs = jobs_by_status(aws_client("dynamodb", settings.endpoint_url), endpoints.outputs["JobsTableName"])
        for line in describe_recovery(unclean_stop, jobs, UNFINISHED):
            log(line)
    return endpoints


def _save_everything(settings: LocalStackSettings, *, log) -> None:
    """Have ministack save every service now, as it does on a clean shutdown:
    a deploy changes services the runtime snapshots leave alone
    (vidpipe_cli.ministack_snapshots). Lambda's file holds the layers (over
    100 MB), so on a busy machine this can take a while; if it does not answer,
    the stack still works and the next clean stop saves it."""
    try:
        requests.post(f"{settings.endpoint_url}/_vidpipe/save", timeout=600).raise_for_status()
    except requests.RequestException as exc:
        log(f"warning: ministack did not confirm saving the deployed stack ({exc}); `vidpipe down` saves it")


def stop(settings: LocalStackSettings) -> bool:
    """SIGTERM ministack and wait for it to save its state. False when it was not running.

    Stages running at that moment are cut off; their messages are released
    again at the next start (vidpipe_cli.crash_recovery.release_messages_in_flight)."""
    pid = _read_pid(settings)
    if pid is None or not _pid_alive(pid):
        settings.pid_file.unlink(missing_ok=True)
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while time.monotonic() < deadline and _pid_alive(pid):
        time.sleep(0.2)
    if _pid_alive(pid):
        raise LocalStackError(f"ministack (pid {pid}) did not stop within {STOP_TIMEOUT_S} s")
    # ministack does not wait for its Lambda workers: a worker started while it
    # shut down went on encoding a chunk, with no stack to report to, on the
    # cores of whatever ran next. They are in its process group (started with
    # start_new_session below): end what is left of it.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
    settings.pid_file.unlink(missing_ok=True)
    return True


def current_endpoints(settings: LocalStackSettings) -> Endpoints | None:
    previous = _read_endpoints_file(settings)
    if previous is None or not _is_healthy(settings):
        return None
    return Endpoints(**previous["endpoints"])


def _launch_ministack(settings: LocalStackSettings, *, log) -> UncleanStop | None:
    """Start ministack; an UncleanStop when the previous one ended without
    saving (its PID file is left: a clean stop removes it)."""
    if not Path(settings.ministack_python).exists():
        raise LocalStackError(
            f"ministack's environment is missing ({settings.ministack_python}); run `make up` to create it"
        )
    if _port_in_use(settings.port):
        raise LocalStackError(f"port {settings.port} is taken by another program; set VIDPIPE_PORT to a free port")
    # A PID file whose process is gone: the last stop was not `vidpipe down`.
    previous_pid = _read_pid(settings)
    if previous_pid is not None and _pid_alive(previous_pid):
        previous_pid = None  # still running but not answering: the port check below says so
    state_dir = settings.data_dir / "state"
    # A fresh folder per run for ministack's Lambda workers: a previous run's
    # leftovers (or its cleanup) must not meet this run's workers.
    tmp_root = settings.data_dir / "tmp"
    workers_ended = end_leftover_workers(previous_pid, tmp_root) if previous_pid is not None else 0
    _discard_in_background(tmp_root)
    tmp_dir = tmp_root / f"run-{int(time.time())}"
    tmp_dir.mkdir(parents=True, exist_ok=True)
    environment = {
        # Only what ministack needs: nothing of our environment leaks into
        # the Lambda workers it spawns.
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        # The functions' FFmpeg: the layer's build, never one found on PATH.
        "FFMPEG_PATH": str(FFMPEG_LAYER_BIN / "ffmpeg"),
        "FFPROBE_PATH": str(FFMPEG_LAYER_BIN / "ffprobe"),
        # No X-Ray daemon here: a tracer would patch botocore and send every
        # segment to nowhere, and importing the X-Ray SDK slows each cold start.
        "POWERTOOLS_TRACE_DISABLED": "true",
        "HOME": os.environ.get("HOME", str(settings.data_dir)),
        "LANG": "C.UTF-8",
        "BIND_HOST": "127.0.0.1",
        "GATEWAY_PORT": str(settings.port),
        "AUTH": "true",
        "PERSIST_STATE": "1",
        "STATE_DIR": str(settings.data_dir / "state"),
        "S3_PERSIST": "1",
        "S3_DATA_DIR": str(settings.data_dir / "s3"),
        "TMPDIR": str(tmp_dir),
        "LOG_LEVEL": "INFO",
    }
    released = release_messages_in_flight(state_dir)
    if released and previous_pid is None:
        log(f"released {sum(released.values())} message(s) that were being processed when the stack stopped")
    log(f"starting ministack on {settings.endpoint_url} (data in {settings.data_dir}) ...")
    with settings.log_file.open("ab") as log_handle:
        process = subprocess.Popen(
            # -P: the launcher's own folder (vidpipe_cli) is not put on
            # sys.path, where its modules would shadow installed packages.
            [settings.ministack_python, "-P", str(MINISTACK_LAUNCHER)],
            env=environment,
            cwd=settings.data_dir,
            stdin=subprocess.DEVNULL,
            stdout=log_handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # keeps running after `vidpipe up` returns
        )
    settings.pid_file.write_text(str(process.pid))
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise LocalStackError(f"ministack exited with {process.returncode}; see {settings.log_file}")
        if _is_healthy(settings):
            if previous_pid is None:
                return None
            return UncleanStop(
                pid=previous_pid,
                last_snapshot_at=last_snapshot_at(state_dir),
                released=released,
                workers_ended=workers_ended,
            )
        time.sleep(0.2)
    raise LocalStackError(f"ministack did not answer within {START_TIMEOUT_S} s; see {settings.log_file}")


def _discard_in_background(folder: Path) -> None:
    """Move ``folder`` aside at once and delete it (and what an earlier deletion
    left) in a process of its own. After a kill it holds every Lambda worker's
    unpacked layers (FFmpeg, botocore's data): deleting them took minutes on a
    busy machine while `vidpipe up` waited."""
    if folder.exists():
        folder.rename(folder.with_name(f"{folder.name}-discarded-{time.time_ns()}"))
    discarded = [str(path) for path in folder.parent.glob(f"{folder.name}-discarded-*")]
    if discarded:
        subprocess.Popen(
            [sys.executable, "-c", "import shutil, sys\nfor p in sys.argv[1:]: shutil.rmtree(p, True)", *discarded],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # finishes after `vidpipe up` returns
        )


def _is_healthy(settings: LocalStackSettings) -> bool:
    try:
        return requests.get(f"{settings.endpoint_url}/_ministack/health", timeout=2).ok
    except requests.RequestException:
        return False


def _port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _read_pid(settings: LocalStackSettings) -> int | None:
    try:
        return int(settings.pid_file.read_text().strip())
    except (OSError, ValueError):
        return None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited, not yet reaped) counts as stopped: a ministack killed
    # after the `vidpipe up` that started it returned waits for whoever adopted it.
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        pass  # no /proc: ask waitpid, which knows our own children only
    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)
        return waited == 0
    except ChildProcessError:
        return True


def _read_endpoints_file(settings: LocalStackSettings) -> dict[str, Any] | None:
    try:
        return json.loads(settings.endpoints_file.read_text())
    except (OSError, ValueError):
        return None


def _source_fingerprint(settings: LocalStackSettings) -> str:
    """A hash of everything a deploy is made from: the template, the packages
    that go into the functions, the pinned Lambda requirements and FFmpeg, and the
    interpreter the dependencies are built for."""
    digest = hashlib.sha256(settings.ministack_python.encode())
    digest.update(FFMPEG_WHEEL.sha256.encode())
    sources = [PROJECT_ROOT / "infra" / "template.yaml", PROJECT_ROOT / "requirements" / "lambda.txt"]
    for package in ("vidpipe", *FUNCTION_SLICES):
        sources += sorted(
            path
            for path in (PROJECT_ROOT / package).rglob("*")
            if path.is_file()
            and not {"__pycache__", "cli"} & set(path.relative_to(PROJECT_ROOT).parts)
            and path.suffix != ".pyc"
        )
    for path in sources:
        digest.update(path.relative_to(PROJECT_ROOT).as_posix().encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


if __name__ == "__main__":  # pragma: no cover - handy while developing
    print(start(LocalStackSettings.from_environment()), file=sys.stderr)

"""The local stack: ministack on 127.0.0.1 with the project's template deployed in it.

``start`` runs ministack (from its own environment, ``.venv-ministack``) in the
background with ``AUTH=true`` and its state under the data folder, packages the
functions, deploys ``infra/template.yaml`` through CloudFormation and writes the
endpoints to ``<data>/stack.json``. ``stop`` sends SIGTERM, on which ministack
saves its state; the next ``start`` finds the earlier jobs and outputs.

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
  timeout after a restart: :func:`_release_messages_in_flight`;
* Lambda layers are not mounted at /opt, their ``bin/`` is not on PATH, and
  their files lose the executable bit when ministack unzips them: the
  functions are told where the FFmpeg layer's build is (``FFMPEG_PATH``,
  ``FFPROBE_PATH``, see vidpipe.adapters.ffmpeg.process.find_tool), the folder the layer is zipped
  from, so they run the same pinned static build as on AWS.

What can go wrong: ``LocalStackError`` with the reason (port taken, ministack
not installed, deploy failed with the failing resource's status reason).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import boto3
import requests
from botocore.config import Config

from vidpipe.domain.access import TokenRefused, unverified_claims
from vidpipe_cli.packaging import FFMPEG_WHEEL, PROJECT_ROOT, BuildOutput, build_all
from vidpipe_cli.template import load_template, translate_sam, with_artifact_locations
from vidpipe_cli.tokens import mint_token as mint_stack_token

REGION = "us-east-1"
ACCESS_KEY = "test"  # ministack's root credentials with AUTH=true
SECRET_KEY = "test"
STACK_NAME = "vidpipe"
LOCAL_USER = "local"  # whose token `vidpipe up` prints
LOCAL_TOKEN_TTL_S = 30 * 86400
# `vidpipe up` on a running stack mints the local user a new token when the one
# it printed before has less than this left.
LOCAL_TOKEN_RENEW_S = 86400
ARTIFACT_BUCKET = "vidpipe-deploy-artifacts"
START_TIMEOUT_S = 60
# The FFmpeg layer as built (packaging.build_ffmpeg_layer): the very bits the
# deployed layer carries, with their executable bits, which ministack's copy lacks.
FFMPEG_LAYER_BIN = PROJECT_ROOT / "build" / "layers" / "ffmpeg" / "bin"
STOP_TIMEOUT_S = 60
# Where a developer's webhook receiver may listen (docs/WEBHOOKS.md); the
# stack's own port is refused even if listed (vidpipe.adapters.outbound_guard).
LOCAL_WEBHOOK_RECEIVERS = "127.0.0.1:8123,localhost:8123"


class LocalStackError(RuntimeError):
    """The local stack could not be started, deployed or stopped."""


@dataclass(frozen=True)
class Endpoints:
    api_url: str
    web_url: str
    aws_endpoint_url: str
    api_token: str
    stack_name: str
    outputs: dict[str, str]


@dataclass(frozen=True)
class LocalStackSettings:
    data_dir: Path
    port: int
    ministack_python: str
    parameters: tuple[tuple[str, str], ...] = ()

    @classmethod
    def from_environment(cls) -> LocalStackSettings:
        return cls(
            data_dir=Path(os.environ.get("VIDPIPE_DATA_DIR", PROJECT_ROOT / ".vidpipe")).resolve(),
            port=int(os.environ.get("VIDPIPE_PORT", "4566")),
            ministack_python=os.environ.get(
                "VIDPIPE_MINISTACK_PYTHON", str(PROJECT_ROOT / ".venv-ministack" / "bin" / "python")
            ),
            parameters=_parse_parameters(os.environ.get("VIDPIPE_PARAMETERS", "")),
        )

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid_file(self) -> Path:
        return self.data_dir / "ministack.pid"

    @property
    def endpoints_file(self) -> Path:
        return self.data_dir / "stack.json"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "ministack.log"


def _parse_parameters(text: str) -> tuple[tuple[str, str], ...]:
    pairs = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sign, value = item.partition("=")
        if not sign or not key:
            raise LocalStackError(f"VIDPIPE_PARAMETERS wants Key=Value pairs, not {item!r}")
        pairs.append((key.strip(), value.strip()))
    return tuple(pairs)


def aws_client(service: str, endpoint_url: str) -> Any:
    """A boto3 client for the local stack, signed with ministack's root keys."""
    return boto3.client(
        service,
        endpoint_url=endpoint_url,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        config=Config(retries={"max_attempts": 3, "mode": "standard"}, s3={"addressing_style": "path"}),
    )


# ------------------------------------------------------------------ start / stop


def start(settings: LocalStackSettings, *, log=print) -> Endpoints:
    """Start ministack if it is not running, deploy the template if it changed,
    and return the endpoints."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    if not _is_healthy(settings):
        _launch_ministack(settings, log=log)
    # What was deployed is known by a hash of its sources, so an unchanged stack
    # answers at once, without building anything.
    fingerprint = f"{_source_fingerprint(settings)}:{settings.port}:{settings.parameters}"
    previous = _read_endpoints_file(settings)
    if previous and previous.get("fingerprint") == fingerprint and _stack_exists(settings):
        endpoints = Endpoints(**previous["endpoints"])
        if _expires_soon(endpoints.api_token):
            endpoints = _with_token(endpoints, mint_token(settings, endpoints.outputs, LOCAL_USER))
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
        settings.endpoints_file.write_text(
            json.dumps({"fingerprint": fingerprint, "endpoints": asdict(endpoints)}, indent=2)
        )
    return endpoints


def stop(settings: LocalStackSettings) -> bool:
    """SIGTERM ministack and wait for it to save its state. False when it was not running.

    Stages running at that moment are cut off; their messages are released
    again at the next start (see :func:`_release_messages_in_flight`)."""
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
    settings.pid_file.unlink(missing_ok=True)
    return True


def _release_messages_in_flight(state_dir: Path) -> int:
    """ministack gap, worked around here: it saves a message that was being
    processed when it stopped as still in flight, so after a restart the message
    would wait out its queue's visibility timeout (90 minutes for transcode)
    although its consumer died with the old process. Before starting, we make
    such messages visible again, as if that timeout had passed; consumers are
    idempotent, so running them again is safe. Returns how many were released.

    This edits ministack's own state file (format 2 of the pinned version) and
    does nothing for a format it does not know."""
    state_file = state_dir / "sqs.json"
    try:
        state = json.loads(state_file.read_text())
    except (OSError, ValueError):
        return 0
    if state.get("__ministack_format__") != 2:
        return 0
    released, now = 0, time.time()
    for queue in state.get("payload", {}).get("queues", {}).get("data", {}).values():
        for message in queue.get("messages", []) if isinstance(queue, dict) else []:
            if message.get("receipt_handle") is not None:
                message["receipt_handle"] = None
                message["visible_at"] = min(float(message.get("visible_at") or now), now)
                released += 1
    if released:
        state_file.write_text(json.dumps(state))
    return released


def current_endpoints(settings: LocalStackSettings) -> Endpoints | None:
    previous = _read_endpoints_file(settings)
    if previous is None or not _is_healthy(settings):
        return None
    return Endpoints(**previous["endpoints"])


def _launch_ministack(settings: LocalStackSettings, *, log) -> None:
    if not Path(settings.ministack_python).exists():
        raise LocalStackError(
            f"ministack's environment is missing ({settings.ministack_python}); run `make up` to create it"
        )
    if _port_in_use(settings.port):
        raise LocalStackError(f"port {settings.port} is taken by another program; set VIDPIPE_PORT to a free port")
    # A fresh folder per run for ministack's Lambda workers: a previous run's
    # leftovers (or its cleanup) must not meet this run's workers.
    tmp_root = settings.data_dir / "tmp"
    shutil.rmtree(tmp_root, ignore_errors=True)
    tmp_dir = tmp_root / f"run-{int(time.time())}"
    tmp_dir.mkdir(parents=True, exist_ok=True)
    environment = {
        # Only what ministack needs: nothing of our environment leaks into
        # the Lambda workers it spawns.
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        # The functions' FFmpeg: the layer's build, never one found on PATH.
        "FFMPEG_PATH": str(FFMPEG_LAYER_BIN / "ffmpeg"),
        "FFPROBE_PATH": str(FFMPEG_LAYER_BIN / "ffprobe"),
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
    released = _release_messages_in_flight(settings.data_dir / "state")
    if released:
        log(f"released {released} message(s) that were being processed when the stack stopped")
    log(f"starting ministack on {settings.endpoint_url} (data in {settings.data_dir}) ...")
    with settings.log_file.open("ab") as log_handle:
        process = subprocess.Popen(
            [settings.ministack_python, "-m", "ministack"],
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
            return
        time.sleep(0.2)
    raise LocalStackError(f"ministack did not answer within {START_TIMEOUT_S} s; see {settings.log_file}")


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
    # A zombie (exited, not yet reaped by us as its parent) counts as stopped.
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
    for package in ("vidpipe", "upload_api", "transcode", "thumbnails"):
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


# ------------------------------------------------------------------ deploy


def local_parameters(api_url: str, overrides: dict[str, str]) -> dict[str, str]:
    """The template parameters the local stack deploys with (``overrides`` from
    VIDPIPE_PARAMETERS win).

    Receivers on this machine listen on plain http:// (the template's default
    is https only), on loopback, which webhooks reach only on the ports allowed
    here (LOCAL_WEBHOOK_RECEIVERS, or WebhookAllowedHosts in the overrides)."""
    return {
        "PublicApiUrl": api_url,
        "OutputsDelivery": "s3-presigned",
        "WebhookAllowHttp": "true",
        "WebhookAllowedHosts": LOCAL_WEBHOOK_RECEIVERS,
        # The local stack speaks plain http: a bucket policy denying it would deny everything.
        "BucketsRequireTls": "false",
        # A revoked token is refused within seconds here (30 s on AWS by default),
        # so the stack test of revocation does not wait out a long cache.
        "AuthorizerCacheSeconds": "5",
        **overrides,
    }


def deploy(settings: LocalStackSettings, build: BuildOutput) -> Endpoints:
    """Upload the zips, translate the template and create or update the stack."""
    endpoint = settings.endpoint_url
    s3 = aws_client("s3", endpoint)
    if ARTIFACT_BUCKET not in {b["Name"] for b in s3.list_buckets().get("Buckets", [])}:
        s3.create_bucket(Bucket=ARTIFACT_BUCKET)
    locations: dict[str, tuple[str, str]] = {}
    for name, path in [*build.functions.items(), *build.layers.items()]:
        key = f"{name}/{hashlib.sha256(path.read_bytes()).hexdigest()}.zip"
        s3.upload_file(str(path), ARTIFACT_BUCKET, key)
        locations[name] = (ARTIFACT_BUCKET, key)
    declared = load_template()
    template = translate_sam(with_artifact_locations(declared, locations), REGION)
    cloudformation = aws_client("cloudformation", endpoint)
    # Through S3, as `sam deploy` does: CloudFormation takes at most 51,200
    # bytes inline, 1 MB behind a TemplateURL, and the translated template
    # (SAM's Globals copied into every function) is past the inline limit.
    body = json.dumps(template, separators=(",", ":")).encode()
    template_key = f"templates/{hashlib.sha256(body).hexdigest()}.json"
    s3.put_object(Bucket=ARTIFACT_BUCKET, Key=template_key, Body=body)
    template_url = f"{endpoint}/{ARTIFACT_BUCKET}/{template_key}"
    # The HttpApi's ms-custom-id tag pins its id to the stack name, so the
    # API's public URL is known before the stack exists.
    api_url = f"{endpoint}/_aws/execute-api/{STACK_NAME}"
    # ministack's CloudFront answers 502 for an S3 origin, so locally players
    # get presigned S3 GETs; the distribution is still deployed, unused.
    chosen = local_parameters(api_url, dict(settings.parameters))
    parameters = [{"ParameterKey": key, "ParameterValue": value} for key, value in chosen.items()]
    capabilities = ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"]
    if _stack_exists(settings):
        try:
            cloudformation.update_stack(
                StackName=STACK_NAME, TemplateURL=template_url, Capabilities=capabilities, Parameters=parameters
            )
        except cloudformation.exceptions.ClientError as exc:
            if "No updates are to be performed" not in str(exc):
                raise
        _wait_for_stack(cloudformation, ("UPDATE_COMPLETE", "UPDATE_ROLLBACK_COMPLETE"))
    else:
        cloudformation.create_stack(
            StackName=STACK_NAME, TemplateURL=template_url, Capabilities=capabilities, Parameters=parameters
        )
        _wait_for_stack(cloudformation, ("CREATE_COMPLETE",))
    outputs = _stack_outputs(cloudformation)
    _apply_bucket_settings_ministack_ignores(s3, outputs["UploadsBucketName"], declared)
    if outputs["ApiId"] != STACK_NAME:
        raise LocalStackError(f"the HTTP API got id {outputs['ApiId']!r}, not {STACK_NAME!r}")
    endpoints = Endpoints(
        api_url=api_url, web_url="", aws_endpoint_url=endpoint, api_token="", stack_name=STACK_NAME, outputs=outputs
    )
    return _with_token(endpoints, mint_token(settings, outputs, LOCAL_USER))


def _with_token(endpoints: Endpoints, token: str) -> Endpoints:
    # The page keeps the token from the fragment (never sent to a server).
    return replace(endpoints, api_token=token, web_url=f"{endpoints.api_url}/#token={token}")


def _expires_soon(token: str) -> bool:
    try:
        return unverified_claims(token).expires_at - time.time() < LOCAL_TOKEN_RENEW_S
    except TokenRefused:
        return True  # a token of the old format: never accepted any more


def mint_token(settings: LocalStackSettings, outputs: dict[str, str], user: str, ttl_s: int = LOCAL_TOKEN_TTL_S) -> str:
    """An API token for ``user``, signed with the stack's key (read with the admin keys)."""
    return mint_stack_token(aws_client("secretsmanager", settings.endpoint_url), outputs, user, ttl_s=ttl_s).token


def _stack_exists(settings: LocalStackSettings) -> bool:
    cloudformation = aws_client("cloudformation", settings.endpoint_url)
    try:
        stacks = cloudformation.describe_stacks(StackName=STACK_NAME)["Stacks"]
    except cloudformation.exceptions.ClientError:
        return False
    return bool(stacks) and stacks[0]["StackStatus"] in {
        "CREATE_COMPLETE",
        "UPDATE_COMPLETE",
        "UPDATE_ROLLBACK_COMPLETE",
    }


def _wait_for_stack(cloudformation: Any, success: tuple[str, ...], timeout_s: float = 300) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        stack = cloudformation.describe_stacks(StackName=STACK_NAME)["Stacks"][0]
        status = stack["StackStatus"]
        if status in success:
            if status == "UPDATE_ROLLBACK_COMPLETE":
                raise LocalStackError(f"stack update rolled back: {_failure_reasons(cloudformation)}")
            return
        if status.endswith("_FAILED") or status.endswith("ROLLBACK_COMPLETE"):
            raise LocalStackError(f"stack {status}: {_failure_reasons(cloudformation)}")
        time.sleep(0.5)
    raise LocalStackError(f"stack not ready within {timeout_s:.0f} s")


def _failure_reasons(cloudformation: Any) -> str:
    events = cloudformation.describe_stack_events(StackName=STACK_NAME).get("StackEvents", [])
    reasons = [
        f"{e['LogicalResourceId']}: {e.get('ResourceStatusReason', '')}"
        for e in events
        if e.get("ResourceStatus", "").endswith("FAILED")
    ]
    return "; ".join(reasons[:5]) or "no reason given"


def _stack_outputs(cloudformation: Any) -> dict[str, str]:
    stack = cloudformation.describe_stacks(StackName=STACK_NAME)["Stacks"][0]
    return {output["OutputKey"]: output["OutputValue"] for output in stack.get("Outputs", [])}


def _apply_bucket_settings_ministack_ignores(s3: Any, bucket: str, template: dict[str, Any]) -> None:
    """ministack gap: its CloudFormation ignores two properties of the uploads
    bucket that the template declares (and AWS applies): the EventBridge
    notifications and the lifecycle rules. Here we set them from the template
    itself, so the template stays the one source of truth."""
    properties = template["Resources"]["UploadsBucket"]["Properties"]
    if "EventBridgeConfiguration" in properties.get("NotificationConfiguration", {}):
        s3.put_bucket_notification_configuration(
            Bucket=bucket, NotificationConfiguration={"EventBridgeConfiguration": {}}
        )
    # A rule that depends on a parameter (Fn::If, e.g. ExpireSources) is left to
    # AWS: reading it here would mean evaluating the template ourselves.
    rules = [rule for rule in properties.get("LifecycleConfiguration", {}).get("Rules", []) if "Id" in rule]
    if rules:
        s3.put_bucket_lifecycle_configuration(
            Bucket=bucket, LifecycleConfiguration={"Rules": [_lifecycle_rule(rule) for rule in rules]}
        )


def _lifecycle_rule(rule: dict[str, Any]) -> dict[str, Any]:
    """A CloudFormation lifecycle rule in the shape of the S3 API."""
    converted: dict[str, Any] = {
        "ID": rule["Id"],
        "Status": rule["Status"],
        "Filter": {"Prefix": rule.get("Prefix", "")},
    }
    if "AbortIncompleteMultipartUpload" in rule:
        converted["AbortIncompleteMultipartUpload"] = rule["AbortIncompleteMultipartUpload"]
    if "ExpirationInDays" in rule:
        converted["Expiration"] = {"Days": rule["ExpirationInDays"]}
    return converted


if __name__ == "__main__":  # pragma: no cover - handy while developing
    print(start(LocalStackSettings.from_environment()), file=sys.stderr)

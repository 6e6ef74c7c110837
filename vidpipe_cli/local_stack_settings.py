"""Where the local stack lives and how to reach it: its settings (from the
environment, see :mod:`vidpipe_cli.local_stack`), its endpoints, and a boto3
client signed for it."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from vidpipe_cli.packaging import PROJECT_ROOT

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
    # The service is chosen at run time, which boto3-stubs' per-service overloads cannot type.
    return boto3.client(  # type: ignore[call-overload]
        service,
        endpoint_url=endpoint_url,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        config=Config(retries={"max_attempts": 3, "mode": "standard"}, s3={"addressing_style": "path"}),
    )

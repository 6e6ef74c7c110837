"""Settings of the Lambda functions, read once from the environment the template sets.

What can go wrong: ``ValidationFailed`` naming the missing or malformed variable,
raised at the first request (a deploy mistake, not a user's)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache

from vidpipe.domain.errors import ValidationFailed
from vidpipe.domain.quotas import OwnerLimits


@dataclass(frozen=True)
class Settings:
    jobs_table: str
    uploads_bucket: str
    outputs_bucket: str
    event_bus_name: str
    max_upload_bytes: int
    multipart_threshold_bytes: int
    upload_expiry_s: int
    stall_limit_s: int
    max_duration_s: float
    upload_url_ttl_s: int
    output_url_ttl_s: int
    # Matches maxReceiveCount of the stage queues: on the last attempt a stage
    # reports the job FAILED instead of leaving it to the dead-letter queue.
    max_receive_count: int
    # The queue a stage function reads (empty for other functions), and the
    # first retry delay after a failed attempt (see stage_runner.retry_delay_s).
    queue_url: str = ""
    retry_base_s: int = 30
    # How long a stage holds its message at a time (renewed while it works);
    # 0 turns the lease off. See vidpipe.runtime.sqs_message_policy.
    lease_s: int = 120
    # Where clients reach the HTTP API (empty on AWS: taken from the request).
    public_api_url: str = ""
    # The CDN in front of the outputs bucket (empty: presigned S3 GETs instead),
    # the id of the public key its key group trusts, and the secret holding the
    # private half (vidpipe.adapters.cloudfront_signing): its URLs are signed, never plain.
    outputs_cdn_url: str = ""
    outputs_cdn_key_pair_id: str = ""
    outputs_cdn_signing_key_secret_id: str = ""
    # The sweep's view of the stages' dead-letter queues: ((stage, queue URL), ...).
    stage_dead_letter_queues: tuple[tuple[str, str], ...] = ()
    # Which backend encodes the ladder: "ffmpeg" (the transcode function itself)
    # or "mediaconvert" (a MediaConvert job, run with mediaconvert_role_arn).
    transcode_backend: str = "ffmpeg"
    mediaconvert_role_arn: str = ""
    mediaconvert_rate_control: str = "QVBR"
    # The stack's name, which the MediaConvert rules match jobs on.
    stack_name: str = ""
    # The ladder's rungs as "short_side:kbit/s,..." (empty: the default ladder).
    ladder_rungs: str = ""
    # How the rungs spend bits: "per-title" (capped CRF chosen per video),
    # "capped-crf" (one constant CRF) or "fixed" (the rungs' average bitrates).
    ladder_rate_control: str = "per-title"
    # Sources longer than this are transcoded in chunks of chunk_s seconds by
    # many functions at once (a multiple of the 4 s HLS segment).
    chunk_threshold_s: float = 120.0
    chunk_s: int = 32
    # The chunk-encode function's timeout and memory, which the planner (in the
    # transcode function) needs to refuse a chunk no chunk function could encode
    # in time (transcode.domain_logic.encode_cost).
    chunk_encode_timeout_s: float = 300.0
    chunk_encode_memory_mb: int = 10240
    # The job events table (vidpipe.domain.timeline); empty where a function keeps no timeline.
    job_events_table: str = ""
    # Registered webhooks (vidpipe.adapters.webhook_store), and whether plain http:// URLs
    # are accepted (the local stack's receivers; https only on AWS by default).
    webhooks_table: str = ""
    webhook_allow_http: bool = False
    # host:port pairs a webhook may reach although they are loopback or private
    # (receivers on the developer's machine; empty on AWS), and the endpoints
    # our functions call themselves (the local stack's gateway, the API), which
    # no webhook may reach. See vidpipe.adapters.outbound_guard.
    webhook_allowed_hosts: tuple[str, ...] = ()
    own_endpoint_urls: tuple[str, ...] = ()
    # Revoked API token ids (vidpipe.adapters.token_revocations); the authorizer's only table.
    revoked_tokens_table: str = ""
    # Per-owner limits (vidpipe.domain.quotas): jobs not yet finished at once, bytes
    # declared at POST /uploads per UTC day, minutes of video (as probed by the
    # transcode stage) per UTC day.
    max_active_jobs_per_owner: int = 10
    max_upload_bytes_per_owner_per_day: int = 100 * 1024**3
    max_video_minutes_per_owner_per_day: float = 300.0
    # The chunk-encode queue, to which the planner sends "Chunk Requested"
    # orders itself, one message group per job (vidpipe.adapters.chunk_queue); empty:
    # the orders go through the bus.
    chunk_queue_url: str = ""
    # Import from a URL: the queue POST /uploads {source_url} sends the job to
    # (the API; empty elsewhere), and how long one import may download in all
    # (the import function's timeout, less room to fail the job cleanly).
    import_queue_url: str = ""
    import_deadline_s: float = 600.0
    # The function that makes thumbnails and animated previews on demand, which
    # the API invokes on a cache miss (thumbnails/handlers/on_demand.py).
    on_demand_images_function: str = ""

    def owner_limits(self) -> OwnerLimits:
        return OwnerLimits(
            active_jobs=self.max_active_jobs_per_owner,
            upload_bytes_per_day=self.max_upload_bytes_per_owner_per_day,
            video_minutes_per_day=self.max_video_minutes_per_owner_per_day,
        )

    @classmethod
    def from_environment(cls) -> Settings:
        return cls(
            jobs_table=_text("JOBS_TABLE"),
            uploads_bucket=_text("UPLOADS_BUCKET"),
            outputs_bucket=_text("OUTPUTS_BUCKET"),
            event_bus_name=_text("EVENT_BUS_NAME"),
            max_upload_bytes=int(_number("MAX_UPLOAD_BYTES", 8 * 1024**3)),  # what a stage's /tmp holds
            multipart_threshold_bytes=int(_number("MULTIPART_THRESHOLD_BYTES", 100 * 1024**2)),
            upload_expiry_s=int(_number("UPLOAD_EXPIRY_SECONDS", 86400)),
            stall_limit_s=int(_number("STALL_LIMIT_SECONDS", 6 * 3600)),
            max_duration_s=_number("MAX_DURATION_SECONDS", 1800),
            upload_url_ttl_s=int(_number("UPLOAD_URL_TTL_SECONDS", 3600)),
            output_url_ttl_s=int(_number("OUTPUT_URL_TTL_SECONDS", 3600)),
            max_receive_count=int(_number("MAX_RECEIVE_COUNT", 3)),
            queue_url=os.environ.get("QUEUE_URL", ""),
            retry_base_s=int(_number("RETRY_BASE_SECONDS", 30)),
            lease_s=int(_number("STAGE_LEASE_SECONDS", 120)),
            public_api_url=os.environ.get("PUBLIC_API_URL", "").strip(),
            outputs_cdn_url=os.environ.get("OUTPUTS_CDN_URL", "").strip(),
            outputs_cdn_key_pair_id=os.environ.get("OUTPUTS_CDN_KEY_PAIR_ID", "").strip(),
            outputs_cdn_signing_key_secret_id=os.environ.get("OUTPUTS_CDN_SIGNING_KEY_SECRET_ID", "").strip(),
            stage_dead_letter_queues=_pairs("STAGE_DEAD_LETTER_QUEUES"),
            transcode_backend=_choice("TRANSCODE_BACKEND", ("ffmpeg", "mediaconvert"), "ffmpeg"),
            mediaconvert_role_arn=os.environ.get("MEDIACONVERT_ROLE_ARN", "").strip(),
            mediaconvert_rate_control=_choice("MEDIACONVERT_RATE_CONTROL", ("QVBR", "CBR"), "QVBR"),
            stack_name=os.environ.get("STACK_NAME", "").strip(),
            ladder_rungs=os.environ.get("LADDER_RUNGS", "").strip(),
            ladder_rate_control=_choice("LADDER_RATE_CONTROL", ("per-title", "capped-crf", "fixed"), "per-title"),
            chunk_threshold_s=_number("CHUNK_THRESHOLD_SECONDS", 120.0),
            chunk_s=int(_number("CHUNK_SECONDS", 32)),
            chunk_encode_timeout_s=_number("CHUNK_ENCODE_TIMEOUT_SECONDS", 300.0),
            chunk_encode_memory_mb=int(_number("CHUNK_ENCODE_MEMORY_MB", 10240)),
            job_events_table=os.environ.get("JOB_EVENTS_TABLE", "").strip(),
            webhooks_table=os.environ.get("WEBHOOKS_TABLE", "").strip(),
            revoked_tokens_table=os.environ.get("REVOKED_TOKENS_TABLE", "").strip(),
            webhook_allow_http=os.environ.get("WEBHOOK_ALLOW_HTTP", "").strip().lower() == "true",
            webhook_allowed_hosts=tuple(os.environ.get("WEBHOOK_ALLOWED_HOSTS", "").replace(",", " ").split()),
            # ministack sets AWS_ENDPOINT_URL for its functions; on AWS it is unset.
            own_endpoint_urls=tuple(
                filter(
                    None, (os.environ.get("AWS_ENDPOINT_URL", "").strip(), os.environ.get("PUBLIC_API_URL", "").strip())
                )
            ),
            max_active_jobs_per_owner=_positive_int("MAX_ACTIVE_JOBS_PER_OWNER", 10),
            max_upload_bytes_per_owner_per_day=_positive_int("MAX_UPLOAD_BYTES_PER_OWNER_PER_DAY", 100 * 1024**3),
            max_video_minutes_per_owner_per_day=float(_positive_int("MAX_VIDEO_MINUTES_PER_OWNER_PER_DAY", 300)),
            chunk_queue_url=os.environ.get("CHUNK_QUEUE_URL", "").strip(),
            import_queue_url=os.environ.get("IMPORT_QUEUE_URL", "").strip(),
            import_deadline_s=_number("IMPORT_DEADLINE_SECONDS", 600.0),
            on_demand_images_function=os.environ.get("ON_DEMAND_IMAGES_FUNCTION", "").strip(),
        )


def _text(name: str) -> str:
    value = os.environ.get(name, "").strip()
    if not value:
        raise ValidationFailed(f"setting {name} is not set", code="MISCONFIGURED")
    return value


def _pairs(name: str) -> tuple[tuple[str, str], ...]:
    """``key=value,key=value`` (empty: none)."""
    pairs = []
    for item in filter(None, (part.strip() for part in os.environ.get(name, "").split(","))):
        key, equals, value = item.partition("=")
        if not (equals and key.strip() and value.strip()):
            raise ValidationFailed(f"setting {name} wants key=value pairs, not {item!r}", code="MISCONFIGURED")
        pairs.append((key.strip(), value.strip()))
    return tuple(pairs)


def _number(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise ValidationFailed(f"setting {name}={raw!r} is not a number", code="MISCONFIGURED") from exc


def _positive_int(name: str, default: int) -> int:
    """A whole number of at least 1: a limit of 0 would refuse every request,
    which is a deploy mistake rather than a policy."""
    value = _number(name, default)
    if value < 1 or value != int(value):
        raise ValidationFailed(f"setting {name}={value!r} must be a whole number of at least 1", code="MISCONFIGURED")
    return int(value)


def _choice(name: str, allowed: tuple[str, ...], default: str) -> str:
    value = os.environ.get(name, "").strip() or default
    if value not in allowed:
        raise ValidationFailed(f"setting {name}={value!r} is not one of {allowed}", code="MISCONFIGURED")
    return value


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings.from_environment()

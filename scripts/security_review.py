"""The outside security review's findings (issue 13), each with its fix, the
tests that prove it (each fails without the fix) and what could only be
reasoned about without an AWS account. scripts/reliability_report.py puts
this table into docs/RELIABILITY.md."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Finding:
    number: int
    hole: str
    fix: str
    proven_by: str
    reasoned_only: str


FINDINGS = [
    Finding(
        1,
        "an upload was accepted more than once: a re-sent presigned POST re-ran the stages after READY or after "
        "cancel, and long sources were re-read by key later (bytes swapped in between passed the checks)",
        "the first Object Created of a job's key is pinned on the job (ETag, version, sequencer); every read "
        "(download, presigned probe URL, each chunk, thumbnails, MediaConvert's copy) asks for exactly that "
        "version; a later write, a cancelled, expired or finished job runs no stage; the bucket keeps versions "
        "and multipart completion is If-None-Match",
        "tests/unit/test_stage_runner.py, tests/unit/test_job_transitions.py, tests/adapters/test_storage_moto.py, "
        "tests/adapters/test_transcode_mediaconvert_moto.py, tests/e2e/test_upload_pinning_stack.py",
        "S3 refusing a second presigned POST cannot be enforced (POST policies have no If-None-Match): a re-sent "
        "POST only adds a version nobody reads; MediaConvert reads a copy of the pinned version",
    ),
    Finding(
        2,
        "no limits per user: one token could submit any number of long videos and fan out past the account's "
        "Lambda concurrency",
        "per-owner active jobs, bytes and minutes per UTC day (template parameters) with conditional DynamoDB "
        "counters, answered 429 + Retry-After + reason (minutes: FAILED QUOTA_EXCEEDED at the probe); HTTP API "
        "throttling; chunk concurrency bounded by MaximumConcurrency 20; chunk orders carry the job as "
        "MessageGroupId (an SQS fair queue)",
        "tests/e2e/test_limits_stack.py, tests/adapters/test_usage_store_moto.py, tests/unit/test_quotas.py, "
        "tests/adapters/test_chunk_queue_moto.py, tests/infra/test_template_limits.py",
        "API Gateway throttling and fair-queue ordering (ministack stores both, enforces neither); "
        "MaximumConcurrency is a fixed number because ministack 1.5.33 keeps a parameter there as text",
    ),
    Finding(
        3,
        "webhooks reached inside: metadata, private, loopback, [::1] and the local stack's own /_ministack/reset",
        "one outbound guard (vidpipe/adapters/outbound_guard.py): every spelling read as getaddrinfo reads it, "
        "a table of refused ranges, every resolved address checked at registration and again at delivery, "
        "the connection made to the checked address (TLS by name), no redirects, the stack's own endpoint refused; 400 "
        "DESTINATION_REFUSED; local receivers only through WebhookAllowedHosts",
        "tests/unit/test_outbound.py, tests/adapters/test_webhook_sender.py, "
        "tests/adapters/api/test_api_webhooks_moto.py, tests/e2e/test_webhooks_stack.py",
        "what Lambda's DNS answers in practice (NAT64 in IPv6-only VPCs); webhooks stored before the fix that point "
        "inside are refused at delivery, not deleted",
    ),
    Finding(
        4,
        "tokens never expired and could not be revoked one at a time; one secret signed tokens, grants and "
        "webhook secrets",
        "vp2 tokens with an id and an expiry (30 days, at most 366); `vidpipe token --revoke` into a table whose "
        "items expire with the token; authorizer cache AuthorizerCacheSeconds (30 s; 5 s locally); one key set "
        "per purpose with key ids; `vidpipe token --stack` on AWS; the HTTP API's JWT authorizer as an option "
        "(OidcIssuer)",
        "tests/unit/test_access.py, tests/adapters/test_token_revocations_moto.py, "
        "tests/adapters/api/test_api_access_moto.py, tests/e2e/test_api_access_stack.py",
        "API Gateway honouring the cache TTL; Secrets Manager generating the key sets; a real OIDC issuer",
    ),
    Finding(
        5,
        "on AWS, segment, poster and sprite URLs were plain CloudFront URLs valid forever",
        "the distribution trusts a key group; the API signs one CloudFront custom policy per job and response "
        "(jobs/<id>/*, expiring); every playlist reference is rewritten; key pair from `vidpipe cdn-key`; locally "
        "outputs are SigV4 presigned GETs",
        "tests/unit/test_cloudfront_signing.py, tests/unit/test_playlists.py, "
        "tests/adapters/api/test_api_output_expiry_moto.py, tests/e2e/test_output_expiry_stack.py",
        "CloudFront refusing unsigned or expired requests; key rotation is not automated",
    ),
    Finding(
        6,
        'a terminal event could be lost: READY/FAILED was saved before "Job Ready"/"Job Failed" was published',
        "an outbox on the job, written by the same conditional save, with a stable event id; every delivery and the "
        "sweep publish what is pending; webhooks drop copies by that id (at-least-once publish, once per receiver)",
        "tests/unit/test_finished_event_outbox.py, tests/adapters/test_status_handler_moto.py",
        "-",
    ),
    Finding(
        7,
        "uploads up to 50 GiB were accepted but the stages have 10 GiB of /tmp",
        "MaxUploadBytes defaults to 8 GiB with a 9 GiB ceiling (a test keeps it in step with the stages' scratch "
        "space); a stage that cannot hold an upload fails at once with SOURCE_TOO_LARGE",
        "tests/infra/test_template.py, tests/unit/test_stage_runner.py",
        "-",
    ),
    Finding(
        8,
        "FFmpeg inherited the function's environment (AWS credentials) and could open any decoder",
        "a clean environment for every FFmpeg/ffprobe process; -codec_whitelist of the accepted decoders on the "
        "probe and every input (else UNSUPPORTED_CODEC)",
        "tests/integration/test_ffmpeg_isolation_ffmpeg.py, tests/hostile/test_hostile_unit.py",
        "-",
    ),
    Finding(
        9,
        "smaller ones: status DLQ not swept, no jitter on conflicts, internal names in error bodies, loose content "
        "types, PutEvents without events:source, no TLS deny, no DLQ alarms, one failed lease renewal stopped "
        "renewing, sources kept forever",
        "each fixed: the sweep reads the status DLQ; jittered retries; 5xx bodies carry a code and request id only; "
        "strict video/<subtype>; PutEvents per own source; TLS deny (BucketsRequireTls); one alarm per DLQ; lease "
        "gives up after three failures in a row; SourceRetentionDays (30)",
        "tests/unit/test_sweep.py, tests/unit/test_message_lease.py, tests/adapters/api/test_api_jobs_moto.py, "
        "tests/unit/test_uploads.py, tests/infra/test_template_security.py",
        "the events:source condition (ministack does not resolve it), the TLS deny, alarms and lifecycle expiry "
        "are checked as template structure only",
    ),
]


def findings_table() -> str:
    lines = ["| # | the hole | the fix | proven by | only reasoned about (no AWS account) |", "|---|---|---|---|---|"]
    lines += [f"| {f.number} | {f.hole} | {f.fix} | `{f.proven_by}` | {f.reasoned_only} |" for f in FINDINGS]
    return "\n".join(lines)

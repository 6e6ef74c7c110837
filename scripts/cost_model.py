"""What one source minute costs on AWS (issue 16): printed by `make bench`
(scripts/transcode_bench.py) from the measured CPU seconds, beside the
published prices of MediaConvert and Mux. Asserts nothing.

Prices are us-east-1 list prices as published on the dates given; egress
(CloudFront or S3 delivery to viewers) is excluded: every option pays it."""

from __future__ import annotations

import math
from dataclasses import dataclass

# AWS list prices, us-east-1 (aws.amazon.com/<service>/pricing, as of 2024-2025).
LAMBDA_GB_S_USD = 0.0000166667  # x86, first 6 billion GB-s a month
LAMBDA_REQUEST_USD = 0.20 / 1e6
S3_PUT_USD = 0.005 / 1000  # PUT, COPY, POST, LIST
S3_GET_USD = 0.0004 / 1000
S3_GB_MONTH_USD = 0.023  # S3 Standard, first 50 TB
SQS_REQUEST_USD = 0.40 / 1e6  # standard queue, per 64 KB chunk
EVENTBRIDGE_EVENT_USD = 1.00 / 1e6  # custom events put
DYNAMODB_WRITE_USD = 0.625 / 1e6  # on-demand write request unit (2024-11 price cut)
DYNAMODB_READ_USD = 0.125 / 1e6
LAMBDA_MB_PER_VCPU = 1769
X264_SCALING = 0.8  # as in the latency model: x264 gains 80 % of each added core

# MediaConvert on-demand, per output minute, AVC up to 30 fps, single pass with QVBR: the
# per-tier list prices (aws.amazon.com/mediaconvert/pricing) in force until AWS moved on-demand
# billing to "normalized minutes" with monthly volume discounts on 2024-09-17 (up to 75 % off
# at large volume; AWS Media blog "Optimize costs with tiered pricing in AWS Elemental
# MediaConvert"). The current per-normalized-minute rates could not be read here, so these
# carry their date. SD < 720 lines, HD 720-1080.
MEDIACONVERT_DATE = "list prices before 2024-09-17 (since then: normalized minutes, volume discounts up to 75 %)"
MEDIACONVERT_BASIC = {"SD": 0.0075, "HD": 0.015}
MEDIACONVERT_PROFESSIONAL = {"SD": 0.012, "HD": 0.024}
# Mux Video "plus" quality input (encoding), per source minute at 1080p, all renditions
# included; "basic" quality encodes free (mux.com/blog, 2023-10-18). Third-party summary of
# mux.com/pricing (mpegflow.com/alternatives/mux/pricing, undated, read 2026): ~$0.040.
MUX_ENCODE_PER_MIN = 0.040
MUX_DATE = "undated third-party summary of mux.com/pricing (read 2026-12); basic quality: free since 2023-10"


@dataclass(frozen=True)
class MinuteUsage:
    """What one source minute uses, per function: measured CPU seconds and counted requests."""

    transcode_cpu_s: float  # chunk functions' FFmpeg CPU (plan, chunks, stitch)
    thumbnails_cpu_s: float
    chunks: int
    output_objects: int  # segments, playlists, thumbnails written
    output_mb: float
    source_mb: float
    lambda_invocations: int
    sqs_requests: int
    events: int
    dynamodb_writes: int
    dynamodb_reads: int
    s3_gets: int


@dataclass(frozen=True)
class MinuteCost:
    memory_mb: int
    lambda_gb_s: float
    lambda_usd: float
    requests_usd: float
    storage_usd: float

    @property
    def processing_usd(self) -> float:
        return self.lambda_usd + self.requests_usd


def billed_seconds(cpu_s: float, memory_mb: int) -> float:
    """Wall seconds of ``cpu_s`` of x264 work on a function of ``memory_mb``."""
    vcpus = memory_mb / LAMBDA_MB_PER_VCPU
    usable = vcpus if vcpus <= 1 else 1 + (vcpus - 1) * X264_SCALING
    return cpu_s / usable


def minute_cost(usage: MinuteUsage, *, memory_mb: int, thumbnails_memory_mb: int = 1024) -> MinuteCost:
    gb_s = (
        billed_seconds(usage.transcode_cpu_s, memory_mb) * memory_mb / 1024
        + billed_seconds(usage.thumbnails_cpu_s, thumbnails_memory_mb) * thumbnails_memory_mb / 1024
    )
    requests = (
        usage.lambda_invocations * LAMBDA_REQUEST_USD
        + usage.output_objects * S3_PUT_USD
        + usage.s3_gets * S3_GET_USD
        + usage.sqs_requests * SQS_REQUEST_USD
        + usage.events * EVENTBRIDGE_EVENT_USD
        + usage.dynamodb_writes * DYNAMODB_WRITE_USD
        + usage.dynamodb_reads * DYNAMODB_READ_USD
    )
    storage = (usage.output_mb + usage.source_mb) / 1024 * S3_GB_MONTH_USD
    return MinuteCost(memory_mb, gb_s, gb_s * LAMBDA_GB_S_USD, requests, storage)


def usage_per_minute(*, transcode_cpu_s: float, thumbnails_cpu_s: float, chunk_s: int, rungs: int,
                     segment_s: float, output_mb: float, source_mb: float) -> MinuteUsage:  # fmt: skip
    """One source minute's requests from the chunked path's structure: every
    chunk is a message, an invocation, a ranged GET or two of the source and a
    GET of its report at the stitch; every segment and playlist a PUT; every
    stage event one PutEvents entry, one SQS send/receive/delete and one job write."""
    chunks = math.ceil(60 / chunk_s)
    segments = rungs * math.ceil(60 / segment_s)
    events = 4 + 2 * chunks  # upload, thumbnails, transcode started/completed; chunk order and report
    return MinuteUsage(
        transcode_cpu_s=transcode_cpu_s,
        thumbnails_cpu_s=thumbnails_cpu_s,
        chunks=chunks,
        output_objects=segments + 2 * rungs + 1 + 8 + chunks,  # playlists, master, thumbnails, reports
        output_mb=output_mb,
        source_mb=source_mb,
        lambda_invocations=3 + chunks + 1 + events,  # transcode, thumbnails, status per event, chunks, stitch
        sqs_requests=3 * events,
        events=events,
        dynamodb_writes=events,
        dynamodb_reads=2 + chunks,
        s3_gets=2 * chunks + chunks + 3,
    )


def mediaconvert_per_minute(rung_heights: list[int], prices: dict[str, float]) -> float:
    return sum(prices["HD" if height >= 720 else "SD"] for height in rung_heights)


def render_cost(usage: MinuteUsage, costs: list[MinuteCost], chosen_mb: int, rung_heights: list[int]) -> list[str]:
    basic = mediaconvert_per_minute(rung_heights, MEDIACONVERT_BASIC)
    professional = mediaconvert_per_minute(rung_heights, MEDIACONVERT_PROFESSIONAL)
    chosen = next(cost for cost in costs if cost.memory_mb == chosen_mb)
    ratio = chosen.processing_usd / basic
    lines = [
        "## Cost of one source minute (1080p, default ladder)",
        "",
        f"Measured: {usage.transcode_cpu_s:.1f} CPU-s of FFmpeg per source minute on the chunked path and "
        f"{usage.thumbnails_cpu_s:.2f} for the thumbnails. Counted from the chunked path's structure: {usage.chunks} "
        f"chunk(s), {usage.output_objects} objects written ({usage.output_mb:.0f} MB), {usage.events} events, "
        f"{usage.sqs_requests} SQS requests, {usage.dynamodb_writes} DynamoDB writes, {usage.s3_gets} S3 GETs. "
        f"Assumed: one vCPU per {LAMBDA_MB_PER_VCPU} MB, x264 gains {X264_SCALING:.0%} of each added core; "
        "us-east-1 list prices. **Egress (delivery to viewers) is excluded**: every option below pays it alike.",
        "",
        "| Chunk function memory MB | Lambda GB-s | Lambda $ | requests $ | processing $ | storage, a month $ |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for cost in costs:
        lines.append(
            f"| {cost.memory_mb} | {cost.lambda_gb_s:.1f} | {cost.lambda_usd:.5f} | {cost.requests_usd:.5f} | "
            f"{cost.processing_usd:.5f} | {cost.storage_usd:.5f} |"
        )
    lines += [
        "",
        "| Option, same renditions | $ per source minute | Source of the price |",
        "| --- | --- | --- |",
        f"| vidpipe on Lambda ({chosen_mb} MB), processing | {chosen.processing_usd:.5f} | measured here |",
        f"| MediaConvert basic tier, QVBR | {basic:.4f} | AWS, {MEDIACONVERT_DATE} |",
        f"| MediaConvert professional tier, QVBR | {professional:.4f} | AWS, {MEDIACONVERT_DATE} |",
        f"| Mux, plus quality, encoding | {MUX_ENCODE_PER_MIN:.3f} | {MUX_DATE} |",
        "",
        f"vidpipe's processing ÷ MediaConvert basic: {ratio:.3f} (goal ≤ 0.1: {'met' if ratio <= 0.1 else 'NOT met'}). "
        f"A month's storage of the source and outputs (${chosen.storage_usd:.4f}) is paid with MediaConvert too.",
        "",
    ]
    return lines

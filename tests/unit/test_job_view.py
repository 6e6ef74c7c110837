"""The job as GET /jobs/{id} shows it: stored record plus URLs a plain GET fetches."""

from __future__ import annotations

import json

import pytest

from upload_api.domain_logic.job_view import job_view
from vidpipe.domain.events import Stage
from vidpipe.domain.jobs import Job, JobStatus, StageState, StageStatus

API = "https://abc123.execute-api.eu-west-1.amazonaws.com"
JOB_ID = "3f2b8c1e7d4a4e2b9c612a5d8e0f4b17"
TTL = 600

RENDITIONS = [
    {"name": "720p", "width": 1280, "height": 720, "bitrate": 3_128_000},
    {"name": "360p", "width": 640, "height": 360, "bitrate": 896_000},
]
THUMBNAIL_OUTPUTS = {
    "prefix": f"jobs/{JOB_ID}/thumbnails/",
    "poster": "poster.jpg",
    "thumbnails": ["thumb_000.jpg", "thumb_001.jpg", "thumb_002.jpg"],
    "sprite": "sprite.jpg",
    "storyboard": "storyboard.vtt",
    "tile_width": 160,
    "tile_height": 90,
    "columns": 10,
    "rows": 2,
}


class FakeSigner:
    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []

    def presigned_get(self, key: str, *, expires_s: int) -> str:
        self.calls.append((key, expires_s))
        return f"https://outputs.example.com/{key}?X-Amz-Expires={expires_s}&X-Amz-Signature=sig"


def make_job(status: JobStatus, **stages: StageState) -> Job:
    job = Job(
        job_id=JOB_ID,
        status=status,
        created_at="2025-03-14T09:26:41.123456Z",
        updated_at="2025-03-14T09:27:30.654321Z",
        source={"filename": "holiday.mp4", "content_type": "video/mp4", "size": 7_340_032, "duration_s": 7.48},
    )
    for name, state in stages.items():
        job.stages[Stage(name)] = state
    return job


def ready_job() -> Job:
    return make_job(
        JobStatus.READY,
        transcode=StageState(
            StageStatus.COMPLETED,
            1.0,
            {
                "prefix": f"jobs/{JOB_ID}/hls/",
                "master_playlist": "master.m3u8",
                "renditions": RENDITIONS,
                "mp4": "download.mp4",
            },  # fmt: skip
        ),
        thumbnails=StageState(StageStatus.COMPLETED, 1.0, dict(THUMBNAIL_OUTPUTS)),
    )


def test_GIVEN_a_ready_job_WHEN_viewed_THEN_playlists_are_served_through_the_api() -> None:
    view = job_view(ready_job(), api_url=API, signer=FakeSigner(), url_ttl_s=TTL)

    outputs = view["outputs"]
    assert outputs["hls_url"] == f"{API}/jobs/{JOB_ID}/hls/master.m3u8"
    assert outputs["renditions"] == [
        {**RENDITIONS[0], "url": f"{API}/jobs/{JOB_ID}/hls/720p/index.m3u8"},
        {**RENDITIONS[1], "url": f"{API}/jobs/{JOB_ID}/hls/360p/index.m3u8"},
    ]
    assert outputs["storyboard_vtt_url"] == f"{API}/jobs/{JOB_ID}/thumbnails/storyboard.vtt"


def test_GIVEN_a_ready_job_WHEN_viewed_THEN_images_are_presigned_under_the_thumbnails_prefix_with_the_ttl() -> None:
    signer = FakeSigner()

    outputs = job_view(ready_job(), api_url=API, signer=signer, url_ttl_s=TTL)["outputs"]

    prefix = THUMBNAIL_OUTPUTS["prefix"]
    assert (
        outputs["poster_url"] == f"https://outputs.example.com/{prefix}poster.jpg?X-Amz-Expires=600&X-Amz-Signature=sig"
    )
    assert outputs["sprite_url"].startswith(f"https://outputs.example.com/{prefix}sprite.jpg?")
    assert outputs["thumbnail_urls"] == [
        f"https://outputs.example.com/{prefix}thumb_00{n}.jpg?X-Amz-Expires=600&X-Amz-Signature=sig" for n in range(3)
    ]
    images = ["poster.jpg", "sprite.jpg", "thumb_000.jpg", "thumb_001.jpg", "thumb_002.jpg"]
    assert sorted(call for call in signer.calls if call[0].startswith(prefix)) == sorted(
        (prefix + name, TTL) for name in images
    )


def test_GIVEN_a_ready_job_WHEN_viewed_THEN_the_record_fields_follow_the_contract_and_serialise_to_json() -> None:
    view = job_view(ready_job(), api_url=API, signer=FakeSigner(), url_ttl_s=TTL)

    assert view["job_id"] == JOB_ID
    assert view["status"] == "READY"
    assert view["created_at"] == "2025-03-14T09:26:41.123456Z"
    assert view["updated_at"] == "2025-03-14T09:27:30.654321Z"
    assert view["source"]["filename"] == "holiday.mp4"
    assert view["stages"] == {
        "transcode": {"status": "COMPLETED", "progress": 1.0},
        "thumbnails": {"status": "COMPLETED", "progress": 1.0},
    }
    assert view["error"] is None
    # The internal version and the stages' raw outputs are not part of the view.
    assert "version" not in view
    assert json.loads(json.dumps(view)) == view


def test_GIVEN_a_processing_job_WHEN_viewed_THEN_no_outputs_and_progress_rounded() -> None:
    signer = FakeSigner()
    job = make_job(
        JobStatus.PROCESSING,
        transcode=StageState(StageStatus.RUNNING, 0.4567891),
        thumbnails=StageState(StageStatus.RUNNING, 0.1),
    )

    view = job_view(job, api_url=API, signer=signer, url_ttl_s=TTL)

    assert view["status"] == "PROCESSING"
    assert view["outputs"] == {}
    assert view["stages"]["transcode"] == {"status": "RUNNING", "progress": 0.457}
    assert signer.calls == []


def test_GIVEN_only_the_transcode_is_done_WHEN_viewed_THEN_the_hls_and_mp4_urls_are_there_and_no_images() -> None:
    job = ready_job()
    job.status = JobStatus.PROCESSING
    job.stages[Stage.THUMBNAILS] = StageState(StageStatus.RUNNING, 0.5)
    signer = FakeSigner()

    outputs = job_view(job, api_url=API, signer=signer, url_ttl_s=TTL)["outputs"]

    assert set(outputs) == {"hls_url", "renditions", "subtitles", "mp4_url"}
    assert signer.calls == [(f"jobs/{JOB_ID}/hls/download.mp4", TTL)]


def test_GIVEN_a_ready_job_WHEN_viewed_THEN_the_mp4_download_is_signed_with_the_ttl() -> None:
    outputs = job_view(ready_job(), api_url=API, signer=FakeSigner(), url_ttl_s=TTL)["outputs"]

    assert outputs["mp4_url"] == (
        f"https://outputs.example.com/jobs/{JOB_ID}/hls/download.mp4?X-Amz-Expires=600&X-Amz-Signature=sig"
    )


def test_GIVEN_a_job_playable_early_WHEN_viewed_THEN_no_mp4_url_until_the_whole_ladder_is_in() -> None:
    job = ready_job()
    job.status = JobStatus.PROCESSING
    outputs_so_far = {**job.stages[Stage.TRANSCODE].outputs, "playable": True}
    job.stages[Stage.TRANSCODE] = StageState(StageStatus.RUNNING, 0.4, outputs_so_far)

    outputs = job_view(job, api_url=API, signer=FakeSigner(), url_ttl_s=TTL)["outputs"]

    assert "hls_url" in outputs and "mp4_url" not in outputs


def test_GIVEN_a_job_transcoded_before_mp4_downloads_WHEN_viewed_THEN_it_simply_has_no_mp4_url() -> None:
    job = ready_job()
    del job.stages[Stage.TRANSCODE].outputs["mp4"]

    outputs = job_view(job, api_url=API, signer=FakeSigner(), url_ttl_s=TTL)["outputs"]

    assert "mp4_url" not in outputs and "hls_url" in outputs


def test_GIVEN_a_failed_job_WHEN_viewed_THEN_its_error_is_shown_and_the_failed_stage_gives_no_outputs() -> None:
    job = make_job(
        JobStatus.FAILED,
        transcode=StageState(StageStatus.FAILED, 0.2),
        thumbnails=StageState(StageStatus.RUNNING, 0.3),
    )
    job.error = {"code": "CORRUPT_MEDIA", "message": "ffmpeg could not decode a frame at 00:00:04.000"}

    view = job_view(job, api_url=API, signer=FakeSigner(), url_ttl_s=TTL)

    assert view["status"] == "FAILED"
    assert view["error"] == {"code": "CORRUPT_MEDIA", "message": "ffmpeg could not decode a frame at 00:00:04.000"}
    assert view["stages"]["transcode"]["status"] == "FAILED"
    assert "hls_url" not in view["outputs"]


def test_GIVEN_a_job_awaiting_upload_WHEN_viewed_THEN_stages_are_pending_and_no_outputs() -> None:
    job = Job.new(JOB_ID, filename="a.mp4", content_type="video/mp4", size=10, now="2025-03-14T09:26:41.000000Z")

    view = job_view(job, api_url=API, signer=FakeSigner(), url_ttl_s=TTL)

    assert view["status"] == "AWAITING_UPLOAD"
    assert view["stages"] == {
        "transcode": {"status": "PENDING", "progress": 0.0},
        "thumbnails": {"status": "PENDING", "progress": 0.0},
    }
    assert view["outputs"] == {}


@pytest.mark.parametrize("api_url", [API + "/", API + "//", API])
def test_GIVEN_an_api_url_with_or_without_trailing_slash_WHEN_viewed_THEN_urls_have_one_slash(api_url: str) -> None:
    outputs = job_view(ready_job(), api_url=api_url, signer=FakeSigner(), url_ttl_s=TTL)["outputs"]

    assert outputs["hls_url"] == f"{API}/jobs/{JOB_ID}/hls/master.m3u8"
    assert outputs["storyboard_vtt_url"] == f"{API}/jobs/{JOB_ID}/thumbnails/storyboard.vtt"
    for url in [outputs["hls_url"], outputs["storyboard_vtt_url"], *(r["url"] for r in outputs["renditions"])]:
        assert "//" not in url.removeprefix("https://")


def test_GIVEN_outputs_through_cloudfront_WHEN_a_ready_job_is_viewed_THEN_every_url_carries_an_expiry() -> None:
    import base64
    from urllib.parse import parse_qs, urlsplit

    from vidpipe.adapters.cloudfront_signing import CloudFrontOutputUrls, generate_signing_key_pair, load_private_key
    from vidpipe.domain.access import OUTPUT_GRANTS, SigningKeys, output_grant

    # GIVEN the CloudFront signer as the API wires it, and the output grant of the playlists
    cdn = "https://d111111abcdef8.cloudfront.net"
    now = 1_800_000_000
    key = load_private_key(generate_signing_key_pair().private_key_pem)
    signer = CloudFrontOutputUrls(base_url=cdn, key_pair_id="K2JCJMDEHXQW5F", key=key, issued_at=now)
    keys = SigningKeys(OUTPUT_GRANTS, "k1", {"k1": "output-grant-key-for-the-job-view-tests"})
    grant = output_grant(keys, JOB_ID, ttl_s=TTL, now=now)

    # WHEN the job is viewed
    outputs = job_view(ready_job(), api_url=API, signer=signer, url_ttl_s=TTL, grant=grant)["outputs"]

    # THEN no URL in it lasts longer than the TTL: images by CloudFront policy, playlists by grant
    urls = [outputs["hls_url"], outputs["storyboard_vtt_url"], outputs["poster_url"], outputs["sprite_url"],
            outputs["mp4_url"],
            *outputs["thumbnail_urls"], *(rendition["url"] for rendition in outputs["renditions"])]  # fmt: skip
    for url in urls:
        query = {name: values[0] for name, values in parse_qs(urlsplit(url).query).items()}
        if url.startswith(cdn):
            policy = base64.b64decode(query["Policy"].translate(str.maketrans("-_~", "+=/")))
            [statement] = json.loads(policy)["Statement"]
            assert statement["Condition"]["DateLessThan"]["AWS:EpochTime"] == now + TTL, url
            assert statement["Resource"] == f"{cdn}/jobs/{JOB_ID}/*", url
            assert query["Signature"] and query["Key-Pair-Id"] == "K2JCJMDEHXQW5F", url
        else:
            assert url.startswith(API) and int(query["expires"]) == now + TTL and query["grant"], url

"""A job's playlists and storyboard: served with the job's output grant, their references presigned."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.adapters.api.api_requests import (
    API_KEYS,
    API_URL,
    GRANT_KEYS,
    JOB_ID,
    MASTER_PLAYLIST,
    MEDIA_PLAYLIST,
    OTHER_JOB_ID,
    OUTPUTS_BUCKET,
    STORYBOARD,
    Aws,
    call,
    call_json,
    grant_query,
    granted,
    http_event,
    new_job,
    post_upload,
    query_of,
    thumbnailed_job,
    transcoded_job,
)
from vidpipe.domain.access import OUTPUT_GRANTS, SigningKeys, grant_is_valid, output_grant
from vidpipe.domain.events import Stage
from vidpipe.domain.jobs import JobStatus, StageState, StageStatus

# ------------------------------------------------------------------ outputs


def test_GIVEN_a_transcoded_job_WHEN_read_THEN_its_hls_urls_point_at_the_api_with_the_jobs_grant(aws: Aws) -> None:
    transcoded_job(aws)
    before = time.time()

    _, job = call_json(http_event("GET", f"/jobs/{JOB_ID}"))

    hls_url, rendition_url = job["outputs"]["hls_url"], job["outputs"]["renditions"][0]["url"]
    # PUBLIC_API_URL ends with a slash: the URLs still have a single one.
    assert hls_url.partition("?")[0] == f"{API_URL}/jobs/{JOB_ID}/hls/master.m3u8"
    assert rendition_url.partition("?")[0] == f"{API_URL}/jobs/{JOB_ID}/hls/360p/index.m3u8"
    grant = query_of(hls_url)
    assert set(grant) == {"expires", "kid", "grant"}
    assert query_of(rendition_url) == grant
    assert grant_is_valid(GRANT_KEYS, JOB_ID, grant)
    assert not grant_is_valid(GRANT_KEYS, OTHER_JOB_ID, grant)
    # It lasts OUTPUT_URL_TTL_SECONDS, like the presigned URLs it leads to.
    assert before + 600 - 1 <= int(grant["expires"]) <= time.time() + 600


def test_GIVEN_a_thumbnailed_job_WHEN_listed_THEN_its_storyboard_url_carries_the_jobs_grant(aws: Aws) -> None:
    thumbnailed_job(aws)

    _, listed = call_json(http_event("GET", "/jobs"))

    [job] = listed["jobs"]
    url = job["outputs"]["storyboard_vtt_url"]
    assert url.partition("?")[0] == f"{API_URL}/jobs/{JOB_ID}/thumbnails/storyboard.vtt"
    assert grant_is_valid(GRANT_KEYS, JOB_ID, query_of(url))


def test_GIVEN_a_transcoded_job_WHEN_the_master_playlist_is_requested_with_its_grant_THEN_renditions_carry_it(
    aws: Aws,
) -> None:
    transcoded_job(aws)
    grant = granted()

    # A player fetches it with a plain GET: no token, so no authorizer context.
    status, headers, body = call(http_event("GET", f"/jobs/{JOB_ID}/hls/master.m3u8", query=grant, user=None))

    assert status == 200
    assert headers["content-type"] == "application/vnd.apple.mpegurl"
    assert "max-age=60" in headers["cache-control"]
    # The playlist as written, but for the relative rendition reference, which
    # would otherwise drop the grant.
    assert body == MASTER_PLAYLIST.replace(
        "360p/index.m3u8", f"360p/index.m3u8?expires={grant['expires']}&kid={grant['kid']}&grant={grant['grant']}"
    )


def test_GIVEN_a_transcoded_job_WHEN_a_media_playlist_is_requested_THEN_segments_are_presigned_urls(aws: Aws) -> None:
    transcoded_job(aws)

    status, headers, body = call(http_event("GET", f"/jobs/{JOB_ID}/hls/360p/index.m3u8", query=granted(), user=None))

    assert status == 200
    assert headers["content-type"] == "application/vnd.apple.mpegurl"
    lines = body.splitlines()
    assert [line for line in lines if line.startswith("#")] == [
        line for line in MEDIA_PLAYLIST.splitlines() if line.startswith("#")
    ]
    segments = [line for line in lines if line and not line.startswith("#")]
    assert len(segments) == 2
    for number, url in enumerate(segments):
        parts = urlsplit(url)
        assert parts.scheme == "https"
        assert OUTPUTS_BUCKET in parts.netloc + parts.path
        assert parts.path.endswith(f"/jobs/{JOB_ID}/hls/360p/seg_0000{number}.ts")
        query = parse_qs(parts.query)
        assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
        assert query["X-Amz-Expires"] == ["600"]
        assert "X-Amz-Signature" in query


def test_GIVEN_a_thumbnailed_job_WHEN_the_storyboard_is_requested_THEN_the_sprite_is_presigned(aws: Aws) -> None:
    thumbnailed_job(aws)
    prefix = f"jobs/{JOB_ID}/thumbnails/"

    status, headers, body = call(
        http_event("GET", f"/jobs/{JOB_ID}/thumbnails/storyboard.vtt", query=granted(), user=None)
    )

    assert status == 200
    assert headers["content-type"] == "text/vtt"
    lines = body.splitlines()
    assert lines[:3] == ["WEBVTT", "", "00:00:00.000 --> 00:00:05.000"]
    url, _, fragment = lines[3].partition("#")
    assert fragment == "xywh=0,0,160,90"
    assert urlsplit(url).path.endswith(f"/{prefix}sprite.jpg")
    assert "X-Amz-Signature" in parse_qs(urlsplit(url).query)


OUTPUT_PATHS = ["hls/master.m3u8", "hls/360p/index.m3u8", "thumbnails/storyboard.vtt"]


def _tampered(grant: dict[str, str]) -> dict[str, str]:
    mac = grant["grant"]
    return {**grant, "grant": ("A" if mac[0] != "A" else "B") + mac[1:]}


BAD_GRANTS: dict[str, Any] = {
    "none": lambda grant: {},
    "tampered-grant": _tampered,
    "extended-expiry": lambda grant: {**grant, "expires": str(int(grant["expires"]) + 86_400)},
    "expired": lambda grant: grant_query(output_grant(GRANT_KEYS, JOB_ID, ttl_s=600, now=time.time() - 3600)),
    "other-jobs-grant": lambda grant: grant_query(output_grant(GRANT_KEYS, OTHER_JOB_ID, ttl_s=600)),
    "other-secret": lambda grant: grant_query(
        output_grant(SigningKeys(OUTPUT_GRANTS, "k1", {"k1": "not-" + GRANT_KEYS.keys["k1"]}), JOB_ID, ttl_s=600)
    ),
    "expires-only": lambda grant: {"expires": grant["expires"]},
    "grant-only": lambda grant: {"grant": grant["grant"]},
    "no-kid": lambda grant: {"expires": grant["expires"], "grant": grant["grant"]},
    "unknown-kid": lambda grant: {**grant, "kid": "k2"},
    # A grant MAC'd with the api-tokens key (one key for two purposes is what we no longer do).
    "api-tokens-key": lambda grant: grant_query(
        output_grant(SigningKeys(OUTPUT_GRANTS, "k1", API_KEYS.keys), JOB_ID, ttl_s=600)
    ),
    "expires-not-a-number": lambda grant: {**grant, "expires": "tomorrow"},
    # API Gateway hands over the query decoded: %C3%A9 arrives as "é".
    "non-ascii-grant": lambda grant: {**grant, "grant": "é" + grant["grant"][1:]},
}


@pytest.mark.parametrize("bad", list(BAD_GRANTS))
@pytest.mark.parametrize("path", OUTPUT_PATHS)
def test_GIVEN_a_finished_job_WHEN_an_output_is_requested_without_a_valid_grant_THEN_401(
    aws: Aws, path: str, bad: str
) -> None:
    # GIVEN alice's finished job, and another job of hers with outputs of its own
    job = transcoded_job(aws)
    job.stages[Stage.THUMBNAILS] = StageState(
        StageStatus.COMPLETED,
        1.0,
        {
            "prefix": f"jobs/{JOB_ID}/thumbnails/",
            "poster": "p.jpg",
            "sprite": "sprite.jpg",
            "storyboard": "storyboard.vtt",
        },
    )
    aws.jobs.save(job, expected_version=job.version)
    aws.s3.put_object(Bucket=OUTPUTS_BUCKET, Key=f"jobs/{JOB_ID}/thumbnails/storyboard.vtt", Body=STORYBOARD.encode())
    transcoded_job(aws, OTHER_JOB_ID)
    query = BAD_GRANTS[bad](granted())

    # WHEN (as a player would, and as the owner would: neither helps)
    for user in (None, "alice"):
        status, body = call_json(http_event("GET", f"/jobs/{JOB_ID}/{path}", query=query or None, user=user))

        # THEN
        assert status == 401, user
        assert body["error"]["code"] == "UNAUTHENTICATED"
        assert "GET /jobs/{id}" in body["error"]["message"]
    # while the genuine grant works
    assert call(http_event("GET", f"/jobs/{JOB_ID}/{path}", query=granted(), user=None))[0] == 200


@pytest.mark.parametrize("rendition", ["..", "360p%2F..%2F..", "..%2F..%2Fthumbnails", "360P"])
def test_GIVEN_a_rendition_name_that_is_not_ours_WHEN_requested_THEN_404(aws: Aws, rendition: str) -> None:
    transcoded_job(aws)

    status, body = call_json(
        http_event("GET", f"/jobs/{JOB_ID}/hls/{rendition}/index.m3u8", query=granted(), user=None)
    )

    assert status == 404
    assert body["error"]["code"] == "JOB_NOT_FOUND"
    assert "no rendition" in body["error"]["message"]


@pytest.mark.parametrize("path", OUTPUT_PATHS)
def test_GIVEN_a_job_not_yet_processed_WHEN_its_outputs_are_requested_THEN_404_job_not_found(
    aws: Aws, path: str
) -> None:
    _, created = post_upload()
    # Its view has no output URLs yet; a grant for it is still well formed.
    grant = grant_query(output_grant(GRANT_KEYS, created["job_id"], ttl_s=600))

    status, body = call_json(http_event("GET", f"/jobs/{created['job_id']}/{path}", query=grant, user=None))

    assert status == 404
    assert body["error"]["code"] == "JOB_NOT_FOUND"
    assert "outputs yet" in body["error"]["message"]


@pytest.mark.parametrize("path", ["hls/master.m3u8", "hls/360p/index.m3u8"])
def test_GIVEN_an_unknown_job_WHEN_its_playlists_are_requested_THEN_404_with_a_grant_401_without(
    aws: Aws, path: str
) -> None:
    grant = grant_query(output_grant(GRANT_KEYS, "unknown", ttl_s=600))

    granted_status, granted_body = call_json(http_event("GET", f"/jobs/unknown/{path}", query=grant, user=None))
    bare_status, bare_body = call_json(http_event("GET", f"/jobs/unknown/{path}", user=None))

    assert granted_status == 404
    assert granted_body["error"]["code"] == "JOB_NOT_FOUND"
    # Without a grant, nothing tells whether the job exists.
    assert bare_status == 401
    assert bare_body["error"]["code"] == "UNAUTHENTICATED"


# ------------------------------------------------------------------ MediaConvert outputs
# MediaConvert writes every media playlist next to the master (hls/master_360p.m3u8,
# its segments beside it); GET /jobs/{id} points each rendition at it.

FLAT_MEDIA_PLAYLIST = """\
#EXTM3U
#EXT-X-VERSION:3
#EXT-X-TARGETDURATION:4
#EXT-X-MEDIA-SEQUENCE:1
#EXT-X-PLAYLIST-TYPE:VOD
#EXTINF:4,
master_360p_00001.ts
#EXTINF:2,
master_360p_00002.ts
#EXT-X-ENDLIST
"""


def mediaconvert_job(aws: Aws) -> None:
    prefix = f"jobs/{JOB_ID}/hls/"
    job = new_job(JOB_ID)
    job.status = JobStatus.PROCESSING
    job.stages[Stage.TRANSCODE] = StageState(
        StageStatus.COMPLETED,
        1.0,
        {
            "prefix": prefix,
            "master_playlist": "master.m3u8",
            "renditions": [
                {"name": "360p", "width": 640, "height": 360, "bitrate": 928_000, "playlist": "master_360p.m3u8"}
            ],
        },
    )
    aws.jobs.create(job)
    aws.s3.put_object(Bucket=OUTPUTS_BUCKET, Key=prefix + "master_360p.m3u8", Body=FLAT_MEDIA_PLAYLIST.encode())


def test_GIVEN_a_mediaconvert_job_WHEN_read_THEN_the_rendition_url_names_its_flat_playlist_and_nothing_internal(
    aws: Aws,
) -> None:
    mediaconvert_job(aws)

    status, body = call_json(http_event("GET", f"/jobs/{JOB_ID}"))

    assert status == 200
    [rendition] = body["outputs"]["renditions"]
    assert set(rendition) == {"name", "width", "height", "bitrate", "url"}
    assert urlsplit(rendition["url"]).path.endswith(f"/jobs/{JOB_ID}/hls/master_360p.m3u8")


def test_GIVEN_a_mediaconvert_job_WHEN_its_flat_playlist_is_requested_THEN_segments_are_presigned(aws: Aws) -> None:
    mediaconvert_job(aws)

    status, headers, body = call(http_event("GET", f"/jobs/{JOB_ID}/hls/master_360p.m3u8", query=granted(), user=None))

    assert status == 200
    assert headers["content-type"] == "application/vnd.apple.mpegurl"
    segments = [line for line in body.splitlines() if line and not line.startswith("#")]
    assert [urlsplit(url).path.rsplit("/", 4)[-4:] for url in segments] == [
        ["jobs", JOB_ID, "hls", "master_360p_00001.ts"],
        ["jobs", JOB_ID, "hls", "master_360p_00002.ts"],
    ]
    assert all("X-Amz-Signature" in url for url in segments)


@pytest.mark.parametrize("playlist", ["master_360p.ts", "..%2Fthumbnails.m3u8", ".m3u8", "MASTER.m3u8"])
def test_GIVEN_a_name_that_is_not_a_playlist_of_ours_WHEN_requested_THEN_404(aws: Aws, playlist: str) -> None:
    mediaconvert_job(aws)

    status, body = call_json(http_event("GET", f"/jobs/{JOB_ID}/hls/{playlist}", query=granted(), user=None))

    assert status == 404
    assert body["error"]["code"] == "JOB_NOT_FOUND"


def test_GIVEN_no_grant_WHEN_the_flat_playlist_is_requested_THEN_401(aws: Aws) -> None:
    mediaconvert_job(aws)

    status, body = call_json(http_event("GET", f"/jobs/{JOB_ID}/hls/master_360p.m3u8", user=None))

    assert status == 401

"""Signing the references inside private HLS media playlists and the WebVTT storyboard."""

from __future__ import annotations

import re
from collections import Counter

from upload_api.domain_logic.playlists import sign_master_playlist, sign_media_playlist, sign_storyboard

HLS_PREFIX = "jobs/3f2b8c1e/hls/360p/"
THUMBS_PREFIX = "jobs/3f2b8c1e/thumbnails/"

# As FFmpeg 5.1 writes it for our ladder (-hls_playlist_type vod, mpegts,
# independent_segments, -hls_segment_filename .../%v/seg_%05d.ts).
MEDIA_PLAYLIST_TS = """\
#EXTM3U
#EXT-X-VERSION:6
#EXT-X-TARGETDURATION:4
#EXT-X-MEDIA-SEQUENCE:0
#EXT-X-PLAYLIST-TYPE:VOD
#EXT-X-INDEPENDENT-SEGMENTS
#EXTINF:4.000000,
seg_00000.ts
#EXTINF:4.000000,
seg_00001.ts
#EXTINF:4.000000,
seg_00002.ts
#EXTINF:1.533333,
seg_00003.ts
#EXT-X-ENDLIST
"""

# The fMP4 flavour (-hls_segment_type fmp4): an init segment named by EXT-X-MAP.
MEDIA_PLAYLIST_FMP4 = """\
#EXTM3U
#EXT-X-VERSION:7
#EXT-X-TARGETDURATION:4
#EXT-X-MEDIA-SEQUENCE:0
#EXT-X-PLAYLIST-TYPE:VOD
#EXT-X-MAP:URI="init.mp4"
#EXTINF:4.000000,
seg_00000.m4s
#EXTINF:2.000000,
seg_00001.m4s
#EXT-X-ENDLIST
"""

# As thumbnails.domain_logic.storyboard.render_vtt writes it.
STORYBOARD_VTT = """\
WEBVTT

00:00:00.000 --> 00:00:02.000
sprite.jpg#xywh=0,0,160,90

00:00:02.000 --> 00:00:04.000
sprite.jpg#xywh=160,0,160,90

00:00:04.000 --> 00:00:06.000
sprite.jpg#xywh=320,0,160,90

00:00:06.000 --> 00:00:07.480
sprite.jpg#xywh=0,90,160,90
"""


class FakeSigner:
    """Signs a key into a recognisable URL and remembers every key it was given."""

    def __init__(self) -> None:
        self.keys: list[str] = []

    def __call__(self, key: str) -> str:
        self.keys.append(key)
        return f"https://outputs.example.com/{key}?X-Amz-Signature=sig{len(self.keys)}"


def lines(text: str) -> list[str]:
    return text.splitlines()


# ------------------------------------------------------------------ media playlists


def test_GIVEN_an_ffmpeg_media_playlist_WHEN_signed_THEN_every_segment_line_is_a_signed_url_of_its_key() -> None:
    sign = FakeSigner()

    signed = sign_media_playlist(MEDIA_PLAYLIST_TS, key_prefix=HLS_PREFIX, sign=sign)

    assert sign.keys == [f"{HLS_PREFIX}seg_0000{n}.ts" for n in range(4)]
    segment_lines = [line for line in lines(signed) if line and not line.startswith("#")]
    assert segment_lines == [
        f"https://outputs.example.com/{HLS_PREFIX}seg_0000{n}.ts?X-Amz-Signature=sig{n + 1}" for n in range(4)
    ]


def test_GIVEN_an_ffmpeg_media_playlist_WHEN_signed_THEN_every_tag_is_kept_in_place() -> None:
    signed = sign_media_playlist(MEDIA_PLAYLIST_TS, key_prefix=HLS_PREFIX, sign=FakeSigner())

    before, after = lines(MEDIA_PLAYLIST_TS), lines(signed)
    assert len(after) == len(before)
    for original, rewritten in zip(before, after, strict=True):
        if original.startswith("#"):
            assert rewritten == original
        else:
            assert rewritten.startswith("https://") and rewritten != original
    assert signed.endswith("#EXT-X-ENDLIST\n")


def test_GIVEN_an_fmp4_playlist_WHEN_signed_THEN_the_ext_x_map_uri_is_signed_as_well() -> None:
    sign = FakeSigner()

    signed = sign_media_playlist(MEDIA_PLAYLIST_FMP4, key_prefix=HLS_PREFIX, sign=sign)

    assert sign.keys == [f"{HLS_PREFIX}init.mp4", f"{HLS_PREFIX}seg_00000.m4s", f"{HLS_PREFIX}seg_00001.m4s"]
    assert f'#EXT-X-MAP:URI="https://outputs.example.com/{HLS_PREFIX}init.mp4?X-Amz-Signature=sig1"' in lines(signed)


def test_GIVEN_an_ext_x_map_with_a_byterange_WHEN_signed_THEN_the_other_attributes_are_kept() -> None:
    playlist = '#EXTM3U\n#EXT-X-MAP:URI="main.mp4",BYTERANGE="720@0"\n#EXTINF:4.0,\nmain.mp4\n'

    signed = sign_media_playlist(playlist, key_prefix=HLS_PREFIX, sign=FakeSigner())

    assert lines(signed)[1] == (
        f'#EXT-X-MAP:URI="https://outputs.example.com/{HLS_PREFIX}main.mp4?X-Amz-Signature=sig1",BYTERANGE="720@0"'
    )


def test_GIVEN_segments_that_are_already_absolute_urls_WHEN_signed_THEN_they_are_left_alone() -> None:
    playlist = (
        "#EXTM3U\n#EXTINF:4.0,\nhttps://cdn.example.com/seg_00000.ts\n"
        '#EXT-X-MAP:URI="https://cdn.example.com/init.mp4"\n#EXTINF:4.0,\nseg_00001.ts\n'
    )
    sign = FakeSigner()

    signed = sign_media_playlist(playlist, key_prefix=HLS_PREFIX, sign=sign)

    assert sign.keys == [f"{HLS_PREFIX}seg_00001.ts"]
    assert "https://cdn.example.com/seg_00000.ts" in lines(signed)
    assert '#EXT-X-MAP:URI="https://cdn.example.com/init.mp4"' in lines(signed)


def test_GIVEN_crlf_line_ends_and_blank_lines_WHEN_signed_THEN_blank_lines_stay_and_no_cr_reaches_the_key() -> None:
    playlist = "#EXTM3U\r\n\r\n#EXTINF:4.0,\r\nseg_00000.ts\r\n#EXT-X-ENDLIST\r\n"
    sign = FakeSigner()

    signed = sign_media_playlist(playlist, key_prefix=HLS_PREFIX, sign=sign)

    assert sign.keys == [f"{HLS_PREFIX}seg_00000.ts"]
    assert lines(signed)[1] == ""
    assert "\r" not in signed


# ------------------------------------------------------------------ storyboard


def test_GIVEN_a_storyboard_WHEN_signed_THEN_each_cue_points_at_the_signed_sprite_with_its_fragment() -> None:
    signed = sign_storyboard(STORYBOARD_VTT, key_prefix=THUMBS_PREFIX, sign=FakeSigner())

    sprite_url = f"https://outputs.example.com/{THUMBS_PREFIX}sprite.jpg?X-Amz-Signature=sig1"
    cue_payloads = [line for line in lines(signed) if "#xywh=" in line]
    assert cue_payloads == [
        f"{sprite_url}#xywh=0,0,160,90",
        f"{sprite_url}#xywh=160,0,160,90",
        f"{sprite_url}#xywh=320,0,160,90",
        f"{sprite_url}#xywh=0,90,160,90",
    ]


def test_GIVEN_a_storyboard_WHEN_signed_THEN_header_timings_and_blank_lines_are_untouched() -> None:
    signed = sign_storyboard(STORYBOARD_VTT, key_prefix=THUMBS_PREFIX, sign=FakeSigner())

    before, after = lines(STORYBOARD_VTT), lines(signed)
    assert after[0] == "WEBVTT"
    assert len(after) == len(before)
    for original, rewritten in zip(before, after, strict=True):
        if "#xywh=" not in original:
            assert rewritten == original
    assert [line for line in after if "-->" in line] == [line for line in before if "-->" in line]


def test_GIVEN_a_storyboard_over_two_sprites_WHEN_signed_THEN_the_signer_is_called_once_per_distinct_file() -> None:
    vtt = STORYBOARD_VTT + "\n00:00:07.480 --> 00:00:09.000\nsprite_1.jpg#xywh=0,0,160,90\n"
    sign = FakeSigner()

    signed = sign_storyboard(vtt, key_prefix=THUMBS_PREFIX, sign=sign)

    assert Counter(sign.keys) == {f"{THUMBS_PREFIX}sprite.jpg": 1, f"{THUMBS_PREFIX}sprite_1.jpg": 1}
    assert lines(signed)[-1] == (
        f"https://outputs.example.com/{THUMBS_PREFIX}sprite_1.jpg?X-Amz-Signature=sig2#xywh=0,0,160,90"
    )


def test_GIVEN_a_cue_that_is_already_absolute_WHEN_signed_THEN_it_is_kept_and_not_signed() -> None:
    vtt = "WEBVTT\n\n00:00:00.000 --> 00:00:02.000\nhttps://cdn.example.com/sprite.jpg#xywh=0,0,160,90\n"
    sign = FakeSigner()

    signed = sign_storyboard(vtt, key_prefix=THUMBS_PREFIX, sign=sign)

    assert sign.keys == []
    assert signed == vtt


# ------------------------------------------------------------------ every kind of reference

# One playlist with every tag that can carry a URI attribute in a media playlist
# (RFC 8216 and its low-latency additions), beside plain segment lines.
MEDIA_PLAYLIST_EVERY_URI = """\
#EXTM3U
#EXT-X-VERSION:9
#EXT-X-TARGETDURATION:4
#EXT-X-KEY:METHOD=AES-128,URI="keys/k1.key",IV=0x00000000000000000000000000000001
#EXT-X-MAP:URI="init.mp4",BYTERANGE="720@0"
#EXTINF:4.000000,
seg_00000.m4s
#EXT-X-PART:DURATION=1.0,URI="part_00001.0.m4s",INDEPENDENT=YES
#EXT-X-PRELOAD-HINT:TYPE=PART,URI="part_00001.1.m4s"
#EXT-X-RENDITION-REPORT:URI="../720p/index.m3u8",LAST-MSN=1
#EXT-X-KEY:METHOD=SAMPLE-AES,URI="skd://key-server/k2",KEYFORMAT="com.apple.streamingkeydelivery"
#EXTINF:4.000000,
seg_00001.m4s
#EXT-X-ENDLIST
"""


def references(text: str) -> list[str]:
    """Every reference in an HLS text: lines of their own and URI attributes."""
    found = []
    for line in lines(text):
        if line.startswith("#"):
            found.extend(re.findall(r'(?<=[:,])URI="([^"]*)"', line))
        elif line:
            found.append(line)
    return found


def test_GIVEN_every_tag_naming_a_file_WHEN_a_media_playlist_is_signed_THEN_each_of_our_references_is_signed() -> None:
    sign = FakeSigner()

    signed = sign_media_playlist(MEDIA_PLAYLIST_EVERY_URI, key_prefix=HLS_PREFIX, sign=sign)

    # THEN each relative reference went through the signer, in order...
    assert sign.keys == [
        f"{HLS_PREFIX}{name}"
        for name in ("keys/k1.key", "init.mp4", "seg_00000.m4s", "part_00001.0.m4s", "part_00001.1.m4s",
                     "../720p/index.m3u8", "seg_00001.m4s")
    ]  # fmt: skip
    # ...and nothing relative is left: only signed URLs and the key server's own scheme.
    for reference in references(signed):
        assert reference.startswith("https://outputs.example.com/") or reference == "skd://key-server/k2", reference
    # The tags' other attributes are kept.
    assert lines(signed)[3].endswith(",IV=0x00000000000000000000000000000001")
    assert lines(signed)[4].endswith(',BYTERANGE="720@0"')


def test_GIVEN_a_data_uri_WHEN_a_media_playlist_is_signed_THEN_it_is_not_taken_for_a_file() -> None:
    playlist = '#EXTM3U\n#EXT-X-KEY:METHOD=AES-128,URI="data:text/plain;base64,AAAA"\n#EXTINF:4,\nseg.ts\n'
    sign = FakeSigner()

    sign_media_playlist(playlist, key_prefix=HLS_PREFIX, sign=sign)

    assert sign.keys == [f"{HLS_PREFIX}seg.ts"]


# A master playlist with alternative audio and subtitles, an I-frame playlist
# and a session key: the playlists are the API's to serve, the key is a file.
MASTER_PLAYLIST_EVERY_URI = """\
#EXTM3U
#EXT-X-VERSION:6
#EXT-X-SESSION-KEY:METHOD=AES-128,URI="keys/k1.key"
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aac",NAME="English",DEFAULT=YES,URI="audio_en/index.m3u8"
#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",NAME="English",URI="subs_en/index.m3u8"
#EXT-X-STREAM-INF:BANDWIDTH=1400000,RESOLUTION=854x480,AUDIO="aac",SUBTITLES="subs"
480p/index.m3u8
#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=90000,URI="480p/iframes.m3u8"
"""


def test_GIVEN_a_master_playlist_WHEN_signed_THEN_every_playlist_gets_the_grant_and_other_files_are_signed() -> None:
    sign = FakeSigner()
    grant = "expires=1800000000&grant=abc"

    signed = sign_master_playlist(MASTER_PLAYLIST_EVERY_URI, query=grant, key_prefix="jobs/j/hls/", sign=sign)

    assert references(signed) == [
        "https://outputs.example.com/jobs/j/hls/keys/k1.key?X-Amz-Signature=sig1",
        f"audio_en/index.m3u8?{grant}",
        f"subs_en/index.m3u8?{grant}",
        f"480p/index.m3u8?{grant}",
        f"480p/iframes.m3u8?{grant}",
    ]
    assert sign.keys == ["jobs/j/hls/keys/k1.key"]

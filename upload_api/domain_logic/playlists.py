"""Serving private HLS playlists and the storyboard through the API.

Every output is private and every URL we hand out expires. A media playlist
names its segments (and its init segment, keys, partial segments...) by
relative path, and the storyboard names the sprite; the API reads the text from
S3 and rewrites each reference into a signed URL (a presigned S3 GET, or a
CloudFront signed URL), so nothing in a served playlist is fetchable forever.
The master playlist names media playlists, which the API serves itself: those
references get the request's output grant, anything else is signed.

References live in two places in HLS (RFC 8216): on a line of their own (a
segment, or a variant's playlist in a master), and in the ``URI="..."``
attribute of tags such as ``EXT-X-MAP``, ``EXT-X-KEY``, ``EXT-X-MEDIA``,
``EXT-X-I-FRAME-STREAM-INF``, ``EXT-X-PART`` or ``EXT-X-PRELOAD-HINT``. Both
are rewritten, whatever the tag.
"""

from __future__ import annotations

import re
from collections.abc import Callable

SignUrl = Callable[[str], str]

# A URI attribute of a tag (not, say, a hypothetical FOO-URI attribute).
_URI_ATTRIBUTE = re.compile(r'(?<=[:,])URI="([^"]*)"')
# Anything with a scheme (https:, skd:, data:) is not a file of ours.
_HAS_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


def sign_media_playlist(text: str, *, key_prefix: str, sign: SignUrl) -> str:
    """Replace every reference of an HLS media playlist with a signed URL.

    Tags, their other attributes and blank lines are kept. A reference that is
    already absolute (has a scheme) is left alone: it is not one of our files."""
    return _rewrite_references(text, lambda reference: _signed(reference, key_prefix, sign))


def sign_master_playlist(text: str, *, query: str, key_prefix: str, sign: SignUrl) -> str:
    """Append ``query`` (the output grant) to every media playlist reference of
    a master playlist (variant lines, ``EXT-X-MEDIA`` and
    ``EXT-X-I-FRAME-STREAM-INF`` URIs): a relative reference would otherwise drop
    it. Any other relative reference (an ``EXT-X-SESSION-KEY`` key file) is a
    plain output file: it is signed with ``sign`` like a segment."""

    def rewritten(reference: str) -> str:
        if _HAS_SCHEME.match(reference):
            return reference
        if reference.split("?", 1)[0].endswith(".m3u8"):
            separator = "&" if "?" in reference else "?"
            return f"{reference}{separator}{query}"
        return sign(key_prefix + reference)

    return _rewrite_references(text, rewritten)


def sign_storyboard(text: str, *, key_prefix: str, sign: SignUrl) -> str:
    """Replace ``sprite.jpg#xywh=...`` cue payloads with ``<signed url>#xywh=...``."""
    cache: dict[str, str] = {}
    lines = []
    for line in text.splitlines():
        name, hash_sign, fragment = line.partition("#xywh=")
        if hash_sign and name and not _HAS_SCHEME.match(name) and "-->" not in name:
            if name not in cache:
                cache[name] = sign(key_prefix + name)
            lines.append(f"{cache[name]}#xywh={fragment}")
        else:
            lines.append(line)
    return "\n".join(lines) + "\n"


def _rewrite_references(text: str, rewrite: Callable[[str], str]) -> str:
    lines = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            lines.append(_URI_ATTRIBUTE.sub(lambda match: f'URI="{rewrite(match.group(1))}"', stripped))
        elif stripped:
            lines.append(rewrite(stripped))
        else:
            lines.append(line)
    return "\n".join(lines) + "\n"


def _signed(reference: str, key_prefix: str, sign: SignUrl) -> str:
    if _HAS_SCHEME.match(reference):
        return reference
    return sign(key_prefix + reference)

"""Serving private HLS playlists and the storyboard through the API.

A media playlist names its segments by relative path, and the storyboard names
the sprite; with a private bucket each of those needs a presigned URL, so the
API reads the text from S3 and rewrites each reference. The master playlist
only names media playlists, which resolve to the API's own routes unchanged.
"""

from __future__ import annotations

from collections.abc import Callable

SignUrl = Callable[[str], str]


def sign_media_playlist(text: str, *, key_prefix: str, sign: SignUrl) -> str:
    """Replace every segment line of an HLS media playlist with a signed URL.

    Tags (``#...``) and blank lines are kept; ``#EXT-X-MAP:URI="init.mp4"`` is
    signed too. A reference that is already absolute is left alone."""
    lines = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("#EXT-X-MAP:") and 'URI="' in stripped:
            head, _, rest = stripped.partition('URI="')
            uri, _, tail = rest.partition('"')
            lines.append(f'{head}URI="{_signed(uri, key_prefix, sign)}"{tail}')
        elif stripped and not stripped.startswith("#"):
            lines.append(_signed(stripped, key_prefix, sign))
        else:
            lines.append(line)
    return "\n".join(lines) + "\n"


def sign_storyboard(text: str, *, key_prefix: str, sign: SignUrl) -> str:
    """Replace ``sprite.jpg#xywh=...`` cue payloads with ``<signed url>#xywh=...``."""
    cache: dict[str, str] = {}
    lines = []
    for line in text.splitlines():
        name, hash_sign, fragment = line.partition("#xywh=")
        if hash_sign and name and "://" not in name and "-->" not in name:
            if name not in cache:
                cache[name] = sign(key_prefix + name)
            lines.append(f"{cache[name]}#xywh={fragment}")
        else:
            lines.append(line)
    return "\n".join(lines) + "\n"


def _signed(reference: str, key_prefix: str, sign: SignUrl) -> str:
    if "://" in reference:
        return reference
    return sign(key_prefix + reference)


def sign_master_playlist(text: str, *, query: str) -> str:
    """Append ``query`` (the output grant) to every media playlist reference of
    a master playlist: a relative reference would otherwise drop it."""
    lines = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#") and "://" not in stripped:
            separator = "&" if "?" in stripped else "?"
            lines.append(f"{stripped}{separator}{query}")
        else:
            lines.append(line)
    return "\n".join(lines) + "\n"

"""Images of a job's video made on demand, and what a caller may ask for.

``GET /jobs/{id}/thumbnail.{jpg,webp}?time=&width=&height=&fit=`` is one frame
of that moment; ``GET /jobs/{id}/animated.webp?start=&end=&width=`` is an
animated WebP of at most :data:`MAX_ANIMATED_S` seconds. The API parses and
bounds the query here (before anything is made), names the cached image by its
parameters (:meth:`ThumbnailRequest.cache_name`), and hands the request to the
image function as a dict (:func:`request_to_dict` / :func:`request_from_dict`).

Fit modes, as Mux names them (``fit``, default ``preserve``):

* ``preserve``: the whole picture, scaled to fit inside width x height; the
  image may be smaller than the box on one side.
* ``crop``: fills width x height exactly, the centre kept, the overflow cut.
* ``pad``: the whole picture inside width x height exactly, black bars around.
* ``stretch``: width x height exactly, the picture distorted to fill it.

``crop``, ``pad`` and ``stretch`` need both width and height. With only one of
them the other follows the picture's shape; with neither the image has the size
of the largest rendition (within :data:`MAX_SIDE`).

What can go wrong: every parser raises ValidationFailed (400) with the reason.
Pure: no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from vidpipe.domain.errors import ValidationFailed

THUMBNAIL_FORMATS = ("jpg", "webp")
MIN_SIDE = 16
MAX_SIDE = 1920
MAX_ANIMATED_S = 10.0
DEFAULT_ANIMATED_S = 5.0
MAX_ANIMATED_WIDTH = 640
DEFAULT_ANIMATED_WIDTH = 320
ANIMATED_FPS = 10
# The output grant travels in the same query; it is checked elsewhere, not an image parameter.
GRANT_PARAMETERS = frozenset({"expires", "kid", "grant"})


class Fit(StrEnum):
    PRESERVE = "preserve"
    CROP = "crop"
    PAD = "pad"
    STRETCH = "stretch"


@dataclass(frozen=True)
class ThumbnailRequest:
    image_format: str
    time_s: float
    width: int | None = None
    height: int | None = None
    fit: Fit = Fit.PRESERVE

    def cache_name(self) -> str:
        """The cached image's file name: every parameter that changes a pixel, and nothing else."""
        return (
            f"thumbnail_t{_ms(self.time_s)}_w{self.width or 'auto'}_h{self.height or 'auto'}"
            f"_{self.fit.value}.{self.image_format}"
        )


@dataclass(frozen=True)
class AnimatedRequest:
    start_s: float
    end_s: float
    width: int = DEFAULT_ANIMATED_WIDTH

    def cache_name(self) -> str:
        return f"animated_{_ms(self.start_s)}-{_ms(self.end_s)}_w{self.width}.webp"

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


ImageRequest = ThumbnailRequest | AnimatedRequest


def parse_thumbnail_request(image_format: str, query: Mapping[str, str], duration_s: float) -> ThumbnailRequest:
    """The thumbnail asked for by ``query`` of a video ``duration_s`` long.
    ``time`` defaults to the middle of the video (as Mux does)."""
    if image_format not in THUMBNAIL_FORMATS:
        raise ValidationFailed(f"a thumbnail is one of {', '.join(THUMBNAIL_FORMATS)}, not {image_format!r}")
    _refuse_unknown(query, {"time", "width", "height", "fit"})
    time_s = _seconds(query, "time", default=duration_s / 2)
    if time_s >= duration_s:
        raise ValidationFailed(f"time={time_s:g} is past the end of the video ({duration_s:g} s long)")
    width, height = _side(query, "width", MAX_SIDE), _side(query, "height", MAX_SIDE)
    raw_fit = query.get("fit", Fit.PRESERVE.value)
    try:
        fit = Fit(raw_fit)
    except ValueError:
        raise ValidationFailed(f"fit is one of {', '.join(f.value for f in Fit)}, not {raw_fit!r}") from None
    if fit is not Fit.PRESERVE and (width is None or height is None):
        raise ValidationFailed(f"fit={fit.value} needs both width and height")
    return ThumbnailRequest(image_format=image_format, time_s=time_s, width=width, height=height, fit=fit)


def parse_animated_request(query: Mapping[str, str], duration_s: float) -> AnimatedRequest:
    """The animated preview asked for by ``query``: ``start`` (default 0) to
    ``end`` (default ``start`` + 5 s), at most 10 s; an ``end`` past the video's
    end is cut to it, a ``start`` past it is refused."""
    _refuse_unknown(query, {"start", "end", "width"})
    start_s = _seconds(query, "start", default=0.0)
    if start_s >= duration_s:
        raise ValidationFailed(f"start={start_s:g} is past the end of the video ({duration_s:g} s long)")
    end_s = _seconds(query, "end", default=start_s + DEFAULT_ANIMATED_S)
    if end_s <= start_s:
        raise ValidationFailed(f"end={end_s:g} must come after start={start_s:g}")
    if end_s - start_s > MAX_ANIMATED_S:
        raise ValidationFailed(f"an animated preview is at most {MAX_ANIMATED_S:g} s long (end - start)")
    width = _side(query, "width", MAX_ANIMATED_WIDTH) or DEFAULT_ANIMATED_WIDTH
    return AnimatedRequest(start_s=start_s, end_s=min(end_s, duration_s), width=width)


def request_to_dict(request: ImageRequest) -> dict[str, Any]:
    """The request as JSON for the image function's payload."""
    if isinstance(request, ThumbnailRequest):
        return {
            "kind": "thumbnail",
            "format": request.image_format,
            "time_s": request.time_s,
            "width": request.width,
            "height": request.height,
            "fit": request.fit.value,
        }
    return {"kind": "animated", "start_s": request.start_s, "end_s": request.end_s, "width": request.width}


def request_from_dict(data: Mapping[str, Any]) -> ImageRequest:
    """The inverse of :func:`request_to_dict`; ValidationFailed for anything else."""
    try:
        if data["kind"] == "thumbnail":
            return ThumbnailRequest(
                image_format=str(data["format"]),
                time_s=float(data["time_s"]),
                width=_optional_int(data.get("width")),
                height=_optional_int(data.get("height")),
                fit=Fit(data["fit"]),
            )
        if data["kind"] == "animated":
            return AnimatedRequest(start_s=float(data["start_s"]), end_s=float(data["end_s"]), width=int(data["width"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise ValidationFailed(f"not an image request: {exc}") from exc
    raise ValidationFailed(f"not an image request kind: {data.get('kind')!r}")


def _refuse_unknown(query: Mapping[str, str], allowed: set[str]) -> None:
    # A typo (tme=3) would otherwise give a different image without a word.
    unknown = sorted(set(query) - allowed - GRANT_PARAMETERS)
    if unknown:
        raise ValidationFailed(
            f"unknown parameter(s) {', '.join(unknown)}; this image takes {', '.join(sorted(allowed))}"
        )


def _seconds(query: Mapping[str, str], name: str, *, default: float) -> float:
    raw = query.get(name)
    if raw is None:
        return round(default, 3)
    try:
        value = float(raw)
    except ValueError:
        raise ValidationFailed(f"{name} is a number of seconds, not {raw!r}") from None
    if not math.isfinite(value) or value < 0:
        raise ValidationFailed(f"{name} is a number of seconds from 0, not {raw!r}")
    # Milliseconds: finer would only make more cache entries of the same frame.
    return round(value, 3)


def _side(query: Mapping[str, str], name: str, largest: int) -> int | None:
    raw = query.get(name)
    if raw is None:
        return None
    if not raw.isdigit() or not MIN_SIDE <= int(raw) <= largest:
        raise ValidationFailed(f"{name} is a whole number of pixels from {MIN_SIDE} to {largest}, not {raw!r}")
    return int(raw)


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)


def _ms(seconds: float) -> int:
    return round(seconds * 1000)

"""The restricted ``-i`` options of every FFmpeg input: only the upload's own
protocol, only the demuxer the probe found (and what it may nest), only the
accepted decoders. :func:`check_inputs` is how :func:`~vidpipe.adapters.ffmpeg.process.run_ffmpeg`
refuses an input built any other way (ValueError: a programming error).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from vidpipe.domain.source_info import CODEC_WHITELIST, NESTED_DEMUXERS, OWN_FILE_DEMUXERS, SAFE_DEMUXERS


def input_args(path: Path, demuxer: str) -> list[str]:
    """The options and ``-i`` for reading the upload at ``path`` with the demuxer
    the probe found (:attr:`SourceInfo.demuxer`): only the file protocol, only
    that demuxer (and the text demuxers it may nest), for this input and
    anything nested in it, and only the decoders of :data:`ACCEPTED_CODECS`.
    Put decoder options (``-skip_frame``...) before them.

    Raises ValueError for a demuxer outside :data:`SAFE_DEMUXERS`."""
    return [
        "-protocol_whitelist", "file",
        "-f", demuxer,
        "-format_whitelist", _format_whitelist(demuxer),
        "-codec_whitelist", CODEC_WHITELIST,
        "-i", f"file:{path}",
    ]  # fmt: skip


# The protocols FFmpeg may use for a presigned URL of an upload, by its scheme:
# https on AWS, plain http only where the local stack serves S3.
URL_PROTOCOLS = {"https": "https,tls,tcp", "http": "http,tcp"}


def url_protocols(url: str) -> str:
    """The ``-protocol_whitelist`` for reading ``url`` (:data:`URL_PROTOCOLS`).
    ValueError for any other scheme."""
    scheme = url.partition("://")[0]
    if scheme not in URL_PROTOCOLS:
        raise ValueError(f"FFmpeg may read an upload only over {sorted(URL_PROTOCOLS)}, not {scheme!r}")
    return URL_PROTOCOLS[scheme]


def url_input_args(url: str, demuxer: str) -> list[str]:
    """:func:`input_args` for an upload FFmpeg reads over HTTP(S), by a presigned
    URL (a chunk encoder reads only its own part of the source, by ranged
    requests): the URL's own protocol and nothing else, the same demuxer rules.

    Raises ValueError for another scheme or a demuxer outside :data:`SAFE_DEMUXERS`."""
    return [
        # S3 may drop a long-lived connection; FFmpeg then asks again from where it was.
        # Waiting 0, 1, 3 then 7 s between tries, then failing (the stage retries):
        # FFmpeg's default goes on to 15, 31 and 63 s, and a thumbnail seek sat two
        # minutes in that backoff against a stalled local S3 until its stage timed out.
        "-reconnect", "1", "-reconnect_on_network_error", "1", "-reconnect_delay_max", "7",
        "-protocol_whitelist", url_protocols(url),
        "-f", demuxer,
        "-format_whitelist", _format_whitelist(demuxer),
        "-codec_whitelist", CODEC_WHITELIST,
        "-i", url,
    ]  # fmt: skip


def source_input_args(source: Path | str, demuxer: str) -> list[str]:
    """:func:`input_args` for a local path, :func:`url_input_args` for a URL."""
    return url_input_args(source, demuxer) if isinstance(source, str) else input_args(source, demuxer)


def _format_whitelist(demuxer: str) -> str:
    """The demuxer and the ones it may nest (:data:`NESTED_DEMUXERS`). ValueError
    for a demuxer outside :data:`SAFE_DEMUXERS` and :data:`OWN_FILE_DEMUXERS`."""
    if demuxer not in SAFE_DEMUXERS | OWN_FILE_DEMUXERS:
        raise ValueError(f"demuxer {demuxer!r} is not one FFmpeg may use on an upload")
    return ",".join((demuxer, *NESTED_DEMUXERS.get(demuxer, ())))


def check_inputs(args: Sequence[str]) -> list[str]:
    """The paths of the inputs (``file:`` taken off); ValueError unless every
    ``-i`` was built by :func:`input_args`."""
    start, paths = 0, []
    for index, arg in enumerate(args):
        if arg != "-i":
            continue
        options = list(args[start:index])
        source = args[index + 1] if index + 1 < len(args) else ""
        demuxer = _option_value(options, "-f") or ""
        scheme = "file" if source.startswith("file:") else source.partition("://")[0]
        protocols = "file" if scheme == "file" else URL_PROTOCOLS.get(scheme)
        if not (
            protocols
            and _option_value(options, "-protocol_whitelist") == protocols
            and demuxer in SAFE_DEMUXERS | OWN_FILE_DEMUXERS
            and _option_value(options, "-format_whitelist") == _format_whitelist(demuxer)
            and _option_value(options, "-codec_whitelist") == CODEC_WHITELIST
        ):
            raise ValueError(
                f"FFmpeg input {source!r} is not restricted: build it with vidpipe.adapters.ffmpeg.inputs.input_args"
            )
        paths.append(source.removeprefix("file:"))
        start = index + 2
    return paths


def _option_value(options: list[str], name: str) -> str | None:
    positions = [index for index, option in enumerate(options[:-1]) if option == name]
    return options[positions[-1] + 1] if positions else None

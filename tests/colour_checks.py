"""HDR and colour test material, shared by the FFmpeg integration tests and the
end-to-end tests: small HDR clips made at test time (nothing large committed),
a reference tone-map, and the picture statistics we compare.

The clips are a colourful test pattern converted with zscale to BT.2020 and
HLG or PQ, encoded 10-bit HEVC and tagged the way phones and HDR10 encoders
tag them. Statistics come from FFmpeg's ``signalstats``: SATAVG (mean chroma
distance from grey) and YAVG (mean luma), averaged over the frames.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.media_checks import TEST_PROBE_PROTOCOLS, Target
from vidpipe.adapters.ffmpeg.process import ffmpeg_environment, find_tool
from vidpipe.domain.colour import HLG, PQ

# The goal: saturation and mean luma within 10 % of the reference tone-map.
TOLERANCE = 0.10
# What every output stream must say of itself.
BT709_LIMITED = {
    "pix_fmt": "yuv420p",
    "color_primaries": "bt709",
    "color_transfer": "bt709",
    "color_space": "bt709",
    "color_range": "tv",
}
# A JPEG (poster, thumbnail) as a BT.709 limited-range picture, so its statistics
# compare with the renditions': Pillow writes JFIF, BT.601 full range.
JPEG_AS_BT709 = "scale=in_color_matrix=bt601:out_color_matrix=bt709:in_range=pc:out_range=tv,format=yuv420p"

# The tone-map of ARCHITECTURE.md ("FFmpeg facts"), written out independently of
# vidpipe.domain.colour: the yardstick our outputs are held to.
REFERENCE_TONE_MAP = (
    "zscale=t=linear:npl=100,format=gbrpf32le,zscale=p=bt709,tonemap=tonemap=hable:desat=0,"
    "zscale=t=bt709:m=bt709:r=tv,format=yuv420p"
)
# What the pipeline did before: 8 bits, no tone-map (the washed-out result).
BARE_8_BIT = "format=yuv420p"
# A tagged BT.709 test pattern made linear, moved to BT.2020 primaries and
# encoded with the HDR transfer: SDR white lands at 100 nits, as in a phone's
# HLG recording of an ordinary scene.
_TO_HDR = (
    "zscale=t=linear:npl=100,format=gbrpf32le,zscale=p=bt2020:t={transfer}:m=bt2020nc:r=tv:npl=100,format=yuv420p10le"
)


@dataclass(frozen=True)
class SignalMeans:
    saturation: float  # signalstats SATAVG, averaged over the frames
    luma: float  # signalstats YAVG, averaged over the frames

    def within(self, other: SignalMeans, tolerance: float) -> bool:
        """Both means within ``tolerance`` (0.10 = 10 %) of ``other``'s."""
        return (
            abs(self.saturation - other.saturation) <= tolerance * other.saturation
            and abs(self.luma - other.luma) <= tolerance * other.luma
        )


def _ffmpeg(*args: str, timeout_s: float = 120.0) -> str:
    completed = subprocess.run(
        [find_tool("ffmpeg"), "-hide_banner", "-nostdin", "-y", "-loglevel", "error", *args],
        capture_output=True, text=True, timeout=timeout_s, check=False, env=ffmpeg_environment(),
    )  # fmt: skip
    assert completed.returncode == 0, f"ffmpeg {' '.join(args)} failed: {completed.stderr.strip()}"
    return completed.stdout


def make_hdr_clip(
    path: Path, transfer: str, *, size: tuple[int, int] = (640, 360), duration_s: float = 3.0, audio: bool = True
) -> Path:
    """A 10-bit HEVC, BT.2020 clip with ``transfer`` (HLG or PQ), tagged in the
    stream (x265's VUI) and in the container. A ``.mov`` is iPhone-style (the
    ``hvc1`` tag Apple players want, AAC audio); a ``.mkv`` is HDR10 with
    mastering-display and light-level metadata."""
    assert transfer in (HLG, PQ), transfer
    width, height = size
    x265 = [f"colorprim=bt2020:transfer={transfer}:colormatrix=bt2020nc:range=limited", "log-level=error"]
    if transfer == PQ:
        # BT.2020 primaries on a 1000-nit mastering display, MaxCLL 1000, MaxFALL 400.
        x265.append("hdr10=1:master-display=G(8500,39850)B(6550,2300)R(35400,14600)WP(15635,16450)L(10000000,1)"
                    ":max-cll=1000,400")  # fmt: skip
    args = [
        "-f", "lavfi",
        "-i", f"testsrc2=s={width}x{height}:r=30:d={duration_s},format=yuv420p,"
              "setparams=color_primaries=bt709:color_trc=bt709:colorspace=bt709:range=tv",
    ]  # fmt: skip
    if audio:
        args += ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={duration_s}"]
    args += [
        "-vf", _TO_HDR.format(transfer=transfer),
        "-c:v", "libx265", "-preset", "ultrafast", "-crf", "28", "-x265-params", ":".join(x265),
        "-color_primaries", "bt2020", "-color_trc", transfer, "-colorspace", "bt2020nc", "-color_range", "tv",
    ]  # fmt: skip
    if path.suffix == ".mov":
        args += ["-tag:v", "hvc1"]
    if audio:
        args += ["-c:a", "aac", "-b:a", "64k"]
    _ffmpeg(*args, str(path))
    return path


def _input(target: Target) -> str:
    text = str(target)
    return text if text.startswith(("http://", "https://")) else f"file:{text}"


def frame_means(target: Target, keys: tuple[str, ...], filters: str = "") -> dict[str, float]:
    """The mean over every frame of ``target`` (a file, an HLS playlist or its
    URL) of each signalstats value in ``keys`` (``YAVG``, ``SATAVG``, ``YLOW``...),
    measured after ``filters`` (e.g. :data:`REFERENCE_TONE_MAP`)."""
    chain = ",".join(part for part in (filters, "signalstats", "metadata=print:file=-") if part)
    output = _ffmpeg(
        "-protocol_whitelist", TEST_PROBE_PROTOCOLS, "-i", _input(target), "-map", "0:v:0",
        "-vf", chain, "-f", "null", "-",
    )  # fmt: skip
    values: dict[str, list[float]] = {key: [] for key in keys}
    for line in output.splitlines():
        name, _, value = line.partition("=")  # lavfi.signalstats.YAVG=84.0
        key = name.rpartition(".")[2]
        if key in values:
            values[key].append(float(value))
    assert all(values.values()), f"signalstats printed no {keys} for {target}"
    return {key: sum(found) / len(found) for key, found in values.items()}


def signal_means(target: Target, filters: str = "") -> SignalMeans:
    """Mean saturation (SATAVG) and luma (YAVG) of ``target`` after ``filters``."""
    means = frame_means(target, ("SATAVG", "YAVG"), filters)
    return SignalMeans(saturation=means["SATAVG"], luma=means["YAVG"])

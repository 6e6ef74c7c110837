"""FFmpeg and ffprobe behind one small adapter.

Everything that starts an FFmpeg process goes through :func:`~vidpipe.adapters.ffmpeg.process.run_ffmpeg` or
:func:`~vidpipe.adapters.ffmpeg.probe.probe_media`, so the safety rules live in one place:

* an argument list, never a shell string;
* FFmpeg opens the one uploaded file and nothing else. ``-protocol_whitelist
  file`` alone is not enough: it stops URLs, but an HLS playlist or a concat
  script is *itself* a local file that makes FFmpeg's demuxer open other local
  files (any with a media extension, say another job's upload in ``/tmp``:
  FFmpeg's own checks, in 5.1 and 6.0 alike, stop ``/etc/passwd``, not those).
  So the format is decided before anything is decoded: :func:`refuse_references`
  turns away playlists and scripts by their first bytes (and AVI files that
  carry one in a GAB2 subtitle chunk, the known local-file/SSRF pattern), ffprobe may only
  pick a demuxer from :data:`SAFE_DEMUXERS` (plain containers that never open
  another file), and every later FFmpeg run names that demuxer with ``-f`` and
  allows only it with ``-format_whitelist``, which FFmpeg also hands to any
  nested demuxer (an AVI's GAB2 subtitles), so none can be reached;
* a time limit (our timer kills FFmpeg; ``RLIMIT_CPU`` stops it too should we
  die first), a memory limit (``RLIMIT_AS``, ``FFMPEG_MEMORY_LIMIT_MB``) and
  death with the process that started it (``PR_SET_PDEATHSIG``) on every
  process, set in the child before FFmpeg starts;
* only the decoders of :data:`ACCEPTED_CODECS` (``-codec_whitelist`` on the
  probe and on every input), so hostile bytes reach no rarely used decoder;
* the environment of :func:`ffmpeg_environment`: a few variables it needs and
  nothing of the function's (no AWS credentials), with the GCONV_PATH the static
  build of the Lambda layer needs not to crash on MPEG-TS input;
* stderr kept, and its tail put into the error message.

What can go wrong: :class:`~vidpipe.domain.errors.MediaError` subclasses when the input
cannot become a video (final: NotAVideo, NoVideoStream, CorruptMedia,
UnsupportedDimensions, UnsupportedFrameRate, ForbiddenReference,
MemoryLimitExceeded, UnsupportedCodec), :class:`~vidpipe.domain.errors.FfmpegError` when the binary is
missing, fails on our side or runs out of time (retryable), ValueError when a
caller builds an FFmpeg input without the restrictions (a programming error).
"""

# Four modules: ``probe`` decides what an upload is (before anything decodes
# it), ``inputs`` builds the restricted ``-i`` options, ``process`` starts FFmpeg
# under the limits that ``limits`` sets in the child. The accepted containers and codecs are domain rules:
# vidpipe.domain.source_info.

#!/usr/bin/env bash
# Regenerate the sample clips in this folder from FFmpeg's built-in test sources.
#
# Usage: sample_media/generate.sh            (FFMPEG / FFPROBE override the pinned binaries)
#
# Every clip is synthetic (lavfi testsrc2, smptehdbars, mandelbrot, aevalsrc), so the
# script needs no input files and gives the same bytes on the same FFmpeg build:
# bitexact flags keep version strings out, -map_metadata -1 keeps dates out, and one
# encoder thread keeps x264 deterministic (its rate control with VBV is not across threads).
# Clips are small on purpose (low bitrates): they are committed to the repository.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# The pinned FFmpeg that `make dev` puts in the project's .venv/bin, as everywhere else.
FFMPEG="${FFMPEG:-$HERE/../.venv/bin/ffmpeg}"
FFPROBE="${FFPROBE:-$HERE/../.venv/bin/ffprobe}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

# Options shared by every encode: quiet, no stdin, deterministic output, no dates,
# moov atom first so probing a presigned URL reads only the head of the file.
COMMON_IN=(-hide_banner -nostdin -y -loglevel error)
COMMON_OUT=(-threads 1 -map_metadata -1 -fflags +bitexact -flags:v +bitexact -flags:a +bitexact
  -movflags +faststart)

# A stereo test tone: a different pitch on each side, so a swapped or dropped channel shows.
stereo_tone() { # duration_s
  echo "aevalsrc=0.2*sin(2*PI*440*t)|0.2*sin(2*PI*660*t):s=48000:c=stereo:d=$1"
}

echo "generating sample clips in $HERE"

# 1280x720 16:9, stereo, 6 s (the longest sample). The first second is black and the
# picture fades in, so the thumbnail stage must skip the black opening for its poster.
"$FFMPEG" "${COMMON_IN[@]}" \
  -f lavfi -i "testsrc2=s=1280x720:r=30:d=6" \
  -f lavfi -i "$(stereo_tone 6)" \
  -vf "fade=t=in:st=1:d=0.5,format=yuv420p" -af "afade=t=in:st=1:d=0.5" \
  -c:v libx264 -preset medium -b:v 330k -maxrate 450k -bufsize 900k \
  -c:a aac -b:a 64k "${COMMON_OUT[@]}" \
  "$HERE/landscape_16x9_stereo.mp4"

# A phone held upright: the picture is stored 1280x720 (landscape) with a display matrix
# that turns it 90 degrees clockwise, so it displays 720x1280. FFmpeg 5.1 cannot set a
# display rotation while encoding (it drops the "rotate" tag), so we encode the picture
# turned counter-clockwise, then remux with -c copy and the tag, which the mp4 muxer
# writes as a display matrix (ffprobe: rotation=-90, as phones write it).
"$FFMPEG" "${COMMON_IN[@]}" \
  -f lavfi -i "testsrc2=s=720x1280:r=30:d=4" \
  -f lavfi -i "$(stereo_tone 4)" \
  -vf "fade=t=in:st=1:d=0.5,transpose=cclock,format=yuv420p" \
  -c:v libx264 -preset medium -b:v 400k -maxrate 550k -bufsize 1100k \
  -c:a aac -b:a 64k "${COMMON_OUT[@]}" \
  "$WORK/portrait_unrotated.mp4"
"$FFMPEG" "${COMMON_IN[@]}" -i "$WORK/portrait_unrotated.mp4" \
  -map 0 -c copy -metadata:s:v:0 rotate=270 "${COMMON_OUT[@]}" \
  "$HERE/portrait_rotated.mp4"

# 640x360 with no audio track at all: the ladder must give video-only renditions.
"$FFMPEG" "${COMMON_IN[@]}" \
  -f lavfi -i "mandelbrot=s=640x360:r=30,trim=duration=4" \
  -vf "format=yuv420p" \
  -c:v libx264 -preset medium -b:v 500k -maxrate 700k -bufsize 1400k \
  -an "${COMMON_OUT[@]}" \
  "$HERE/no_audio.mp4"

# 854x480 at 25 fps with 5.1 audio (six tones): the transcode must downmix to stereo.
"$FFMPEG" "${COMMON_IN[@]}" \
  -f lavfi -i "smptehdbars=s=854x480:r=25:d=4" \
  -f lavfi -i "aevalsrc=0.1*sin(2*PI*330*t)|0.1*sin(2*PI*440*t)|0.1*sin(2*PI*550*t)|0.1*sin(2*PI*60*t)|0.1*sin(2*PI*660*t)|0.1*sin(2*PI*770*t):s=48000:c=5.1:d=4" \
  -vf "format=yuv420p" \
  -c:v libx264 -preset medium -b:v 200k \
  -c:a aac -b:a 192k "${COMMON_OUT[@]}" \
  "$HERE/surround_5_1.mp4"

# 160x90, below the lowest rung (240), with mono audio: one rendition at its own size,
# audio upmixed to stereo.
"$FFMPEG" "${COMMON_IN[@]}" \
  -f lavfi -i "testsrc2=s=160x90:r=30:d=3" \
  -f lavfi -i "aevalsrc=0.2*sin(2*PI*440*t):s=44100:c=mono:d=3" \
  -vf "format=yuv420p" \
  -c:v libx264 -preset medium -b:v 100k \
  -c:a aac -b:a 48k "${COMMON_OUT[@]}" \
  "$HERE/tiny_160x90.mp4"

# 847x361 (about 2.35:1, cinema scope) at 23.976 fps: odd width and height, which
# 4:2:0 cannot hold, so the clip is 4:4:4 (High 4:4:4 profile). The ladder must round
# to even sizes, keep the aspect and convert to 4:2:0 8-bit for players.
"$FFMPEG" "${COMMON_IN[@]}" \
  -f lavfi -i "testsrc2=s=848x362:r=24000/1001:d=4" \
  -f lavfi -i "$(stereo_tone 4)" \
  -vf "format=yuv444p,crop=847:361:0:0" \
  -c:v libx264 -preset medium -b:v 450k -maxrate 600k -bufsize 1200k \
  -c:a aac -b:a 64k -shortest "${COMMON_OUT[@]}" \
  "$HERE/unusual_aspect_21x9.mp4"

# 640x360, stereo, 20 s with a keyframe every 2 s: long enough to be cut into several
# chunks (the chunked transcode path; tests use 8 s chunks) and give two rungs (360p,
# 240p). The split copies the video on these keyframes.
"$FFMPEG" "${COMMON_IN[@]}" \
  -f lavfi -i "testsrc2=s=640x360:r=30:d=20" \
  -f lavfi -i "$(stereo_tone 20)" \
  -vf "format=yuv420p" \
  -c:v libx264 -preset medium -b:v 100k -maxrate 150k -bufsize 300k -g 60 -keyint_min 60 -sc_threshold 0 \
  -c:a aac -b:a 48k "${COMMON_OUT[@]}" \
  "$HERE/long_20s_640x360.mp4"

# The portrait clip is only useful if the display matrix is really there.
rotation="$("$FFPROBE" -v error -select_streams v:0 -show_entries stream_side_data=rotation \
  -of default=noprint_wrappers=1:nokey=1 "$HERE/portrait_rotated.mp4")"
if [[ "$rotation" != "-90" ]]; then
  echo "portrait_rotated.mp4: expected display rotation -90, ffprobe says '$rotation'" >&2
  exit 1
fi

for clip in "$HERE"/*.mp4; do
  "$FFPROBE" -v error -show_entries format=duration:stream=codec_type,codec_name,width,height,channels \
    -of compact=p=0:nk=0 "$clip" | tr '\n' ' ' | sed "s|^|$(basename "$clip") ($(du -k "$clip" | cut -f1) KB): |"
  echo
done

#!/usr/bin/env bash
# Vendor the pinned hls.js browser build into the web page's static folder.
#
# The page is served by the API Lambda with no build step and must not load
# anything from a CDN at run time, so the minified build and its licence are
# committed. Run this only to change the pinned version; the output is what
# gets committed.
#
# Usage: scripts/vendor_hls.sh            (uses HLS_VERSION below)
#        HLS_VERSION=1.7.5 HLS_INTEGRITY=sha512-... scripts/vendor_hls.sh
set -euo pipefail

HLS_VERSION="${HLS_VERSION:-1.7.4}"
# The registry's dist.integrity for that version (`npm view hls.js@VERSION dist.integrity`);
# checked again here so a changed tarball never lands silently.
HLS_INTEGRITY="${HLS_INTEGRITY:-sha512-3GlxGdPvT2YHvQYOt+yOzT/DEior/qJVNIylHA77kgeoBTdQQqi70GwefNEUmHQeNGyjC8U62+bruqW/Tpm+tg==}"

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="$repo_root/upload_api/web/static/vendor"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

(cd "$work" && npm pack --silent "hls.js@${HLS_VERSION}" >/dev/null)
tarball="$(ls "$work"/hls.js-*.tgz)"

actual="sha512-$(openssl dgst -sha512 -binary "$tarball" | base64 -w0)"
if [[ "$actual" != "$HLS_INTEGRITY" ]]; then
    echo "vendor_hls: integrity mismatch for hls.js@${HLS_VERSION}" >&2
    echo "  expected $HLS_INTEGRITY" >&2
    echo "  got      $actual" >&2
    exit 1
fi

tar -xzf "$tarball" -C "$work"
mkdir -p "$dest"
cp "$work/package/dist/hls.min.js" "$dest/hls.min.js"
cp "$work/package/LICENSE" "$dest/hls.js-LICENSE"

echo "vendored hls.js@${HLS_VERSION} into ${dest#"$repo_root"/}"

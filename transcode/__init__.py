"""The transcode stage: an uploaded video becomes an HLS ladder (H.264 + AAC-LC stereo)."""

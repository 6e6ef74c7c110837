"""Choose the poster among a few candidate frames.

A video's first frame is often black (a fade-in), a flat title colour or a
blurred camera start. We score each candidate by the entropy of its luminance
histogram: 0 bits for a flat frame, 1 bit for two colours, 6-7.5 bits for a
natural picture with detail and a spread of brightness. Entropy rather than the
standard deviation because a half-black, half-white card has a huge deviation
but nothing to look at.

What can go wrong: :class:`ValueError` when there is no candidate.
"""

from __future__ import annotations

from collections.abc import Sequence

from PIL import Image

# Scoring a small copy is as telling as scoring the full frame, quicker, and
# less swayed by sensor noise, which only adds fine-grained levels.
SCORE_BOX_PX = 256


def detail_score(image: Image.Image) -> float:
    """Entropy, in bits, of the luminance histogram of a small copy of ``image``."""
    gray = image.convert("L")
    gray.thumbnail((SCORE_BOX_PX, SCORE_BOX_PX))
    return gray.entropy()


def choose_poster(images: Sequence[Image.Image]) -> int:
    """Index of the candidate with the most detail; the earliest one on a tie,
    so the choice is the same on every run.

    Raises ValueError for an empty sequence."""
    if not images:
        raise ValueError("choose_poster needs at least one candidate frame")
    scores = [detail_score(image) for image in images]
    best = max(scores)
    return scores.index(best)

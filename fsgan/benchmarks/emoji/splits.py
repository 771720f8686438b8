"""Seeded, content-disjoint splits of emoji images.

A content group is a base emoji with all its skin-tone variants; no group is ever split across the
held-out sets and the images a network sees. Every random choice draws from its own stream, named
by (seed, purpose), so changing one split never reshuffles another.
"""
import hashlib
import json

import numpy as np

from .npm import EmojiDataError


def stream_rng(seed, *names):
    """numpy Generator for the stream named by (seed, *names): a stable 63-bit seed from sha256."""
    digest = hashlib.sha256(json.dumps([seed] + list(names)).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], 'little') >> 1)


def _groups(images):
    """Sorted group names and dict group -> its images' codes (sorted), from EmojiImage-like records."""
    members = {}
    for im in images:
        members.setdefault(im.group, []).append(im.unified)
    return sorted(members), {g: sorted(m) for g, m in members.items()}


def holdout_split(images, fraction, seed):
    """Split whole groups: round(fraction * groups) (at least 1) held out for testing, the rest for training.

    images: EmojiImage records. Returns (train codes, test codes), each sorted.
    """
    names, members = _groups(images)
    if len(names) < 2:
        raise EmojiDataError(f'need at least 2 emoji groups to hold some out, got {len(names)}')
    n_test = min(len(names) - 1, max(1, int(round(fraction * len(names)))))
    order = stream_rng(seed, 'noto', 'holdout').permutation(len(names))
    test_groups = {names[i] for i in order[:n_test]}
    train = sorted(c for g in names if g not in test_groups for c in members[g])
    test = sorted(c for g in test_groups for c in members[g])
    return train, test


def _draw_shots(images, count, rng):
    """`count` image codes in a seeded image order, at most one per group; returns (codes, their groups)."""
    order = rng.permutation(len(images))
    shots, used = [], set()
    for i in order:
        if len(shots) == count:
            break
        if images[i].group not in used:
            used.add(images[i].group)
            shots.append(images[i].unified)
    if len(shots) < count:
        raise EmojiDataError(f'only {len(shots)} emoji groups to draw {count} shots from; lower the shot counts')
    return shots, used


def _take_groups(names, members, minimum, what):
    """Pop whole groups off the front of `names` until they hold >= `minimum` images; returns sorted codes."""
    codes = []
    while len(codes) < minimum:
        if not names:
            raise EmojiDataError(f'only {len(codes)} images left for the {what} split, need {minimum}; '
                                 f'lower its size')
        codes += members[names.pop(0)]
    return sorted(codes)


def target_splits(images, shots, val_images, test_images, seed):
    """Nested shots, a validation and a test split of whole, disjoint content groups.

    images: EmojiImage records (sorted by code). Shots: images drawn in a seeded order, skipping any
    whose group already has a shot, so shot sets nest (shots5 is the first 5 of shots10, ...) and
    follow the image distribution. The other groups, in a seeded order, fill `val` and then `test`
    (whole groups until each holds at least val_images / test_images); groups left over are unused.
    Returns dict split name -> list of codes ('shots<k>' in draw order, 'val' and 'test' sorted) and
    'unused' -> sorted codes of every image in no split (including the other variants of shot groups).
    """
    images = sorted(images, key=lambda im: im.unified)
    names, members = _groups(images)
    pool, shot_groups = _draw_shots(images, max(shots), stream_rng(seed, 'targets', 'shots'))
    rest = [names[i] for i in stream_rng(seed, 'targets', 'groups').permutation(len(names))
            if names[i] not in shot_groups]
    out = {f'shots{k}': pool[:k] for k in sorted(shots)}
    out['val'] = _take_groups(rest, members, val_images, 'validation')
    out['test'] = _take_groups(rest, members, test_images, 'test')
    used = {c for k, v in out.items() for c in v}
    out['unused'] = sorted(im.unified for im in images if im.unified not in used)
    return out

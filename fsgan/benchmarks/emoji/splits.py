"""Seeded, content-disjoint splits of emoji images.

A content group is a base emoji with all its skin-tone variants; no group is ever split across the
held-out sets and the images a network sees. Groups can also share content with each other: the man,
woman and person forms of one emoji (content_key), or two emoji a vendor draws alike (a flag pair);
the target splits keep such related groups apart too (target_splits' `same_content`). Every random
choice draws from its own stream, named by (seed, purpose), so changing one split never reshuffles another.
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


# Code points that only choose between the man, woman and person forms of an emoji (or its rendering)
GENDER_SIGNS = {'2640', '2642', 'FE0F', '200D'}                   # female/male sign, variation selector, ZWJ
PERSONS = {'1F468': 'P', '1F469': 'P', '1F9D1': 'P'}             # man, woman, person
SKIN_TONES = {'1F3FB', '1F3FC', '1F3FD', '1F3FE', '1F3FF'}


def content_key(group):
    """The group's code points (upper-case hex joined by '-') with gender signs, joiners, variation selectors
    and skin tones dropped and man/woman/person as one: 'man wearing turban' (1F473-200D-2642-FE0F) and
    'person wearing turban' (1F473) share '1F473'; 'mechanic' and 'man mechanic' share 'P-1F527'."""
    parts = [PERSONS.get(c, c) for c in group.upper().split('-') if c not in GENDER_SIGNS | SKIN_TONES]
    return '-'.join(parts) or group


def same_content_components(groups, alike=()):
    """dict group -> a label shared by every group of the same content: groups with one content_key, and each
    set of groups in `alike` (e.g. groups a vendor draws pixel for pixel alike), joined transitively."""
    parent = {g: g for g in groups}

    def find(g):
        while parent[g] != g:
            parent[g] = parent[parent[g]]
            g = parent[g]
        return g

    def join(a, b):
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    by_key = {}
    for g in sorted(groups):
        by_key.setdefault(content_key(g), []).append(g)
    for members in list(by_key.values()) + [sorted(a) for a in alike]:
        for other in members[1:]:
            if other in parent and members[0] in parent:
                join(members[0], other)
    return {g: find(g) for g in groups}


def _take_groups(names, members, minimum, what):
    """Pop whole groups off the front of `names` until they hold >= `minimum` images; returns sorted codes."""
    codes = []
    while len(codes) < minimum:
        if not names:
            raise EmojiDataError(f'only {len(codes)} images left for the {what} split, need {minimum}; '
                                 f'lower its size')
        codes += members[names.pop(0)]
    return sorted(codes)


def target_splits(images, shots, val_images, test_images, seed, same_content=None):
    """Nested shots, a validation and a test split of whole, disjoint content groups.

    images: EmojiImage records (sorted by code). Shots: images drawn in a seeded order, skipping any
    whose group already has a shot, so shot sets nest (shots5 is the first 5 of shots10, ...) and
    follow the image distribution. The other groups, in a seeded order, fill `val` and then `test`
    (whole groups until each holds at least val_images / test_images); groups left over are unused.
    same_content: dict group -> label of its content (same_content_components; default: by content_key alone):
    no group of a shot's content goes to val or test, and none of a val group's content to test, so no held-out
    image is another drawing (another gender, a look-alike) of an image the adaptation saw or was tuned on.
    Returns dict split name -> list of codes ('shots<k>' in draw order, 'val' and 'test' sorted) and
    'unused' -> sorted codes of every image in no split (including the other variants of shot groups).
    """
    images = sorted(images, key=lambda im: im.unified)
    names, members = _groups(images)
    same = same_content if same_content is not None else same_content_components(names)
    pool, shot_groups = _draw_shots(images, max(shots), stream_rng(seed, 'targets', 'shots'))
    seen = {same[g] for g in shot_groups}
    rest = [names[i] for i in stream_rng(seed, 'targets', 'groups').permutation(len(names))
            if names[i] not in shot_groups and same[names[i]] not in seen]
    out = {f'shots{k}': pool[:k] for k in sorted(shots)}
    out['val'] = _take_groups(rest, members, val_images, 'validation')
    val_codes = set(out['val'])
    val_groups = {im.group for im in images if im.unified in val_codes}
    seen |= {same[g] for g in val_groups}
    rest = [g for g in rest if same[g] not in seen]
    out['test'] = _take_groups(rest, members, test_images, 'test')
    used = {c for k, v in out.items() for c in v}
    out['unused'] = sorted(im.unified for im in images if im.unified not in used)
    return out

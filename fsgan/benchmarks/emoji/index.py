"""Emoji indexes: which images each vendor draws, their content groups and categories.

emoji-datasource's emoji.json lists one entry per base emoji with its `unified` code points (upper-case
hex joined by '-'), `image` file name, `category`, `short_name`, per-vendor `has_img_<vendor>` flags and
`skin_variations` (skin-tone key -> the same fields). A base emoji and its skin-tone variants form one
content *group*, named by the base's `unified`. OpenMoji's openmoji.json keys its images by `hexcode`,
written in the same notation but with or without the U+FE0F variation selector.
"""
import collections
import json

from .npm import EmojiDataError
from .paths import CATEGORIES, VARIATION_SELECTOR

EmojiImage = collections.namedtuple('EmojiImage', 'unified group category short_name image')
EmojiImage.__doc__ = """One emoji image: its code points, group (the base emoji's code points), category name,
short name (skin-tone variants get '::skin-tone-N' appended, N = 2..6) and file name in the vendor's folder."""

COMPONENT_CATEGORY = 'Component'               # bare skin-tone swatches: not emoji images of their own
_SKIN_TONES = {'1F3FB': 2, '1F3FC': 3, '1F3FD': 4, '1F3FE': 5, '1F3FF': 6}


def parse_json(data, what):
    """Decode JSON bytes `data`; `what` names the file in the one-line error."""
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError) as e:
        raise EmojiDataError(f'{what}: not valid JSON ({e})') from None


def _skin_name(short_name, key):
    """'santa' + '1F3FB' -> 'santa::skin-tone-2'; keys with two tones get two suffixes."""
    tones = [f'skin-tone-{_SKIN_TONES[p]}' for p in key.upper().split('-') if p in _SKIN_TONES]
    return '::'.join([short_name] + tones)


def index_images(entries, vendor, what):
    """Every image (bases and skin-tone variants) that emoji.json `entries` marks `has_img_<vendor>`.

    Component entries are left out; any other category outside paths.CATEGORIES is an error.
    Returns a list of EmojiImage sorted by `unified`.
    """
    flag = f'has_img_{vendor}'
    out = []
    try:
        for e in entries:
            if e['category'] == COMPONENT_CATEGORY:
                continue
            if e['category'] not in CATEGORIES:
                raise EmojiDataError(f'{what}: unknown category {e["category"]!r} for {e["unified"]}')
            group = e['unified'].upper()
            variants = [('', e)] + sorted((e.get('skin_variations') or {}).items())
            for key, v in variants:
                if v.get(flag):
                    name = _skin_name(e['short_name'], key) if key else e['short_name']
                    out.append(EmojiImage(v['unified'].upper(), group, e['category'], name, v['image']))
    except (KeyError, TypeError, AttributeError) as e:
        raise EmojiDataError(f'{what}: unexpected layout ({type(e).__name__}: {e})') from None
    return sorted(out, key=lambda im: im.unified)


def strip_variation_selector(code):
    """'2764-FE0F-200D-1F525' -> '2764-200D-1F525': the key on which vendors' spellings agree."""
    return '-'.join(p for p in code.upper().split('-') if p != VARIATION_SELECTOR)


def match_hexcodes(unified_codes, hexcodes):
    """Map each emoji-datasource code to an OpenMoji hexcode.

    An exact match wins; otherwise the hexcode that equals it once every U+FE0F is dropped from both.
    A code with no such hexcode, or with several, is left out.
    Returns dict unified -> hexcode.
    """
    exact = set(hexcodes)
    by_key = collections.defaultdict(list)
    for h in hexcodes:
        by_key[strip_variation_selector(h)].append(h)
    out = {}
    for code in unified_codes:
        if code in exact:
            out[code] = code
        else:
            found = by_key.get(strip_variation_selector(code), [])
            if len(found) == 1:
                out[code] = found[0]
    return out

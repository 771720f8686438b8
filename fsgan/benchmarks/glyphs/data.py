"""The glyph benchmark datasets (scripts/make_glyph_data.py) (stylegan2-ada-pytorch zip format).

Every output is a zip of PNGs named ``00000/img00000000.png`` (1000 per folder)
plus ``dataset.json`` (``{"labels": [[fname, int], ...]}``) and ``meta.json``
(fonts with sha256 and Debian package versions, Pillow/raqm versions, seed,
character set, global label map and per-image render parameters).

Images are white glyphs (ink = 255) on a black background (0), grayscale
(mode ``L``) by default, ``resolution`` x ``resolution`` pixels.  Labels are
global class indices over all scripts (see ``all_classes()``): 0-61 are the
Latin ``A-Z a-z 0-9``, then Kannada, then Devanagari.

Datasets (``--datasets``):

* ``source``: Latin classes over every installed Latin font except the
  held-out family, written as ``source.zip`` (pretraining) and
  ``source_test.zip`` (held-out images for the classifier / metrics).
* ``near``: the held-out Latin family (``--heldout-regex``, default the URW
  Z003 chancery face); ``kannada`` and ``devanagari``: the far targets.
  Each target gets nested seeded shots ``<t>_shots{5,10,25,100}.zip``,
  ``<t>_val.zip``, ``<t>_test.zip`` and ``<t>_train.zip`` (classifier training
  only).  All splits of a target are pixel-disjoint.

A preview grid ``previews/<name>.png`` is saved for every dataset.
"""
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import zipfile
from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np
import PIL
from PIL import Image, ImageDraw, ImageFont, features

from dnnlib.fileio import atomic_path
from dnnlib.util import file_sha256
from fsgan.benchmarks.glyphs import paths
from fsgan.tools.errors import ToolError

class GlyphDataError(ToolError):
    """The glyph datasets cannot be made as asked (no raqm, no fonts, degenerate renders)."""

# ----------------------------------------------------------------------------
# Character sets.

LATIN = [chr(c) for c in range(ord('A'), ord('Z') + 1)] + \
        [chr(c) for c in range(ord('a'), ord('z') + 1)] + \
        [chr(c) for c in range(ord('0'), ord('9') + 1)]

# Kannada: 13 vowels, 34 consonants, 16 syllables (consonant + vowel sign,
# anusvara, and common conjuncts that need raqm/HarfBuzz shaping).
KANNADA = list('ಅಆಇಈಉಊಋಎಏಐಒಓಔ') + \
    list('ಕಖಗಘಙಚಛಜಝಞಟಠಡಢಣತಥದಧನಪಫಬಭಮಯರಲವಶಷಸಹಳ') + \
    ['ಕಾ', 'ಕಿ', 'ಕು', 'ಕೆ', 'ಕೊ', 'ಗೀ', 'ಮೂ', 'ನೈ', 'ತೌ', 'ರಂ',
     'ಕ್ಷ', 'ತ್ರ', 'ಜ್ಞ', 'ಸ್ತ', 'ಕ್ಕ', 'ಲ್ಲ']

# Devanagari: 11 vowels, 33 consonants, 12 syllables / conjuncts.
DEVANAGARI = list('अआइईउऊऋएऐओऔ') + \
    list('कखगघङचछजझञटठडढणतथदधनपफबभमयरलवशषसह') + \
    ['का', 'कि', 'कु', 'के', 'को', 'गी', 'मू', 'रं',
     'क्ष', 'त्र', 'ज्ञ', 'श्र']

SCRIPTS = {'latin': LATIN, 'kannada': KANNADA, 'devanagari': DEVANAGARI}

# Fonts never used for the Latin source set even though they map A-Z/a-z/0-9:
# symbol, math, dingbat and non-Latin-primary faces.
NON_TEXT_REGEX = r'Symbol|Math|Dingbat|D050000L|Nushu|Music|Emoji'

TARGETS = paths.TARGET_SCRIPTS
ALL_DATASETS = ('source',) + tuple(TARGETS)
FORMAT = 'fsgan-glyphs-v1'
SUPERSAMPLE = 4        # render at 4x then box-filter down
FILL = 0.78            # fraction of the canvas the per-font union box may use
ZIP_DATE = (1980, 1, 1, 0, 0, 0)


def all_classes():
    """Global label map: list of dicts {label, text, script}, Latin first."""
    out = []
    for script, chars in SCRIPTS.items():
        for text in chars:
            out.append({'label': len(out), 'text': text, 'script': script})
    return out


def class_labels(script):
    """Global labels of one script's classes, in class order."""
    return [c['label'] for c in all_classes() if c['script'] == script]

# ----------------------------------------------------------------------------
# Font discovery.


def _load_font(path, size):
    return ImageFont.truetype(path, size, layout_engine=ImageFont.Layout.RAQM)


def _covers(font, texts):
    """True if every codepoint of every text renders as a real, non-blank glyph."""
    missing = bytes(font.getmask('\U0010FFFD'))
    for text in texts:
        for ch in set(text):
            mask = bytes(font.getmask(ch))
            if mask == missing or not any(mask):
                return False
    return True


def discover_fonts(fonts_root, heldout_regex):
    """Scan fonts_root for .ttf/.otf files and sort them into domains.

    Returns dict domain -> list of font dicts {file, family, style}, where
    domain is 'source' (Latin, not held out), 'near' (Latin, held out),
    'kannada' or 'devanagari'.  Files are sorted by path for determinism.
    """
    paths = []
    for root, _dirs, files in os.walk(fonts_root, followlinks=True):
        for name in files:
            if name.lower().endswith(('.ttf', '.otf')):
                paths.append(os.path.join(root, name))
    held = re.compile(heldout_regex)
    non_text = re.compile(NON_TEXT_REGEX)
    probe = {s: [c for c in chars if len(c) == 1] for s, chars in SCRIPTS.items()}
    domains = {d: [] for d in ALL_DATASETS}
    for path in sorted(paths):
        try:
            font = _load_font(path, 24)
        except OSError:
            continue
        family, style = font.getname()
        entry = {'file': path, 'family': family, 'style': style}
        indic = False
        for script in ('kannada', 'devanagari'):
            if _covers(font, probe[script]):
                domains[script].append(entry)
                indic = True
        if indic or non_text.search(family) or not _covers(font, probe['latin']):
            continue
        domains['near' if held.search(family) else 'source'].append(entry)
    return domains


def _dpkg_info(paths):
    """Map font path -> {package, version} via dpkg-query (None if unavailable)."""
    info = {p: None for p in paths}
    if not paths or shutil.which('dpkg-query') is None:
        return info
    real = {os.path.realpath(p): p for p in paths}
    res = subprocess.run(['dpkg-query', '-S'] + sorted(real), capture_output=True, text=True)
    owners = {}
    for line in res.stdout.splitlines():
        pkgs, _, fpath = line.partition(': ')
        if fpath in real:
            owners[real[fpath]] = pkgs.split(',')[0].split(':')[0].strip()
    versions = {}
    for pkg in sorted(set(owners.values())):
        res = subprocess.run(['dpkg-query', '-W', '-f=${Version}', pkg], capture_output=True, text=True)
        versions[pkg] = res.stdout.strip() or None
    for p, pkg in owners.items():
        info[p] = {'package': pkg, 'version': versions[pkg]}
    return info

# ----------------------------------------------------------------------------
# Rendering.


class GlyphRenderer:
    """Renders one script's classes in one font with random size/shift/rotation.

    The font size and baseline are calibrated once per font so that the union
    of all class ink boxes spans ``FILL`` of the canvas height; glyphs keep
    their relative size and baseline position (so 'o' stays smaller and lower
    than 'O'), are centred horizontally by their own ink box, and are shrunk
    about the centre only if wider than ``FILL`` of the canvas.
    """

    def __init__(self, path, texts, resolution, size_jitter, shift, rotation):
        self.canvas = resolution * SUPERSAMPLE
        self.resolution = resolution
        self.size_jitter, self.shift, self.rotation = size_jitter, shift, rotation
        ref = _load_font(path, 200)
        boxes = [ref.getbbox(t, anchor='ls') for t in texts]
        top = min(b[1] for b in boxes)
        bottom = max(b[3] for b in boxes)
        scale = FILL * self.canvas / (bottom - top)
        self.font = _load_font(path, 200 * scale)
        self.baseline = self.canvas / 2 - (top + bottom) / 2 * scale
        # Glyphs wider than the fill box (e.g. Kannada vowel signs) are shrunk alone.
        self.fit = {t: min(1.0, FILL * self.canvas / ((b[2] - b[0]) * scale)) for t, b in zip(texts, boxes)}
        self.cache = {}

    def _glyph(self, text):
        """Unaugmented glyph at the supersampled canvas, uint8 [canvas, canvas]."""
        if text not in self.cache:
            img = Image.new('L', (self.canvas, self.canvas), 0)
            box = self.font.getbbox(text, anchor='ls')
            x = self.canvas / 2 - (box[0] + box[2]) / 2
            ImageDraw.Draw(img).text((x, self.baseline), text, fill=255, font=self.font, anchor='ls')
            self.cache[text] = img
        return self.cache[text]

    def render(self, text, rng):
        """Random render -> (uint8 array [R, R], params dict scale/dx/dy/angle)."""
        scale = float(rng.uniform(1 - self.size_jitter, 1 + self.size_jitter)) * self.fit[text]
        dx, dy = (float(v) for v in rng.uniform(-self.shift, self.shift, size=2))
        angle = float(rng.uniform(-self.rotation, self.rotation))
        c = self.canvas / 2
        th = np.deg2rad(angle)
        cos, sin = np.cos(th) / scale, np.sin(th) / scale
        ox, oy = c + dx * SUPERSAMPLE, c + dy * SUPERSAMPLE
        # Inverse map output (u, v) -> input (x, y): rotate by angle, scale by 1/scale.
        coeffs = (cos, -sin, c - cos * ox + sin * oy, sin, cos, c - sin * ox - cos * oy)
        img = self._glyph(text).transform(self._glyph(text).size, Image.Transform.AFFINE, coeffs,
                                          resample=Image.Resampling.BICUBIC, fillcolor=0)
        img = img.reduce(SUPERSAMPLE)
        params = {'scale': round(scale, 4), 'dx': round(dx, 3), 'dy': round(dy, 3), 'angle': round(angle, 3)}
        return np.asarray(img, dtype=np.uint8), params

# ----------------------------------------------------------------------------
# Dataset assembly.


def _stream_seed(seed, *names):
    """Stable 63-bit seed for an RNG stream named by (seed, names)."""
    digest = hashlib.sha256(json.dumps([seed] + list(names)).encode()).digest()
    return int.from_bytes(digest[:8], 'little') >> 1


def _font_weights(fonts, balance_families):
    """Sampling probability per font: uniform, or uniform over families then faces."""
    if not balance_families:
        return np.full(len(fonts), 1 / len(fonts))
    counts = {}
    for f in fonts:
        counts[f['family']] = counts.get(f['family'], 0) + 1
    w = np.array([1 / (len(counts) * counts[f['family']]) for f in fonts])
    return w / w.sum()


def render_split(renderers, weights, texts, labels, count, rng, seen):
    """Render ``count`` images not pixel-equal to any hash in ``seen`` (updated).

    Returns (images uint8 [N, R, R], items list of [label, font_id, scale, dx, dy, angle]).
    """
    images, items = [], []
    tries = 0
    while len(images) < count:
        tries += 1
        if tries > 20 * count + 100:
            raise GlyphDataError('too many duplicate renders; widen the augmentation or shrink the split')
        fid = int(rng.choice(len(renderers), p=weights))
        k = int(rng.integers(len(texts)))
        arr, p = renderers[fid].render(texts[k], rng)
        key = hashlib.sha1(arr.tobytes()).digest()
        if key in seen:
            continue
        if arr.max() < 128:
            raise GlyphDataError(f'blank render of {texts[k]!r} in font {fid}')
        seen.add(key)
        images.append(arr)
        items.append([labels[k], fid, p['scale'], p['dx'], p['dy'], p['angle']])
    return np.stack(images), items


def _png_bytes(arr, channels):
    img = Image.fromarray(arr, 'L')
    if channels == 3:
        img = img.convert('RGB')
    buf = io.BytesIO()
    img.save(buf, format='PNG', optimize=False, compress_level=9)
    return buf.getvalue()


def write_zip(path, images, items, channels, meta):
    """Write images [N, R, R] + dataset.json + meta.json atomically as a dataset zip."""
    labels, records = [], []
    with atomic_path(path, suffix='.tmp.zip') as tmp:
        with zipfile.ZipFile(tmp, 'w', compression=zipfile.ZIP_STORED) as zf:
            def put(name, data):
                zf.writestr(zipfile.ZipInfo(name, date_time=ZIP_DATE), data)
            for i, (arr, item) in enumerate(zip(images, items)):
                idx = f'{i:08d}'
                fname = f'{idx[:5]}/img{idx}.png'
                put(fname, _png_bytes(arr, channels))
                labels.append([fname, item[0]])
                records.append([fname] + item)
            zf.writestr(zipfile.ZipInfo('dataset.json', date_time=ZIP_DATE), json.dumps({'labels': labels}),
                        compress_type=zipfile.ZIP_DEFLATED)
            meta = dict(meta, num_images=len(labels),
                        items_columns=['fname', 'label', 'font_id', 'scale', 'dx', 'dy', 'angle'], items=records)
            zf.writestr(zipfile.ZipInfo('meta.json', date_time=ZIP_DATE),
                        json.dumps(meta, ensure_ascii=False, separators=(',', ':')), compress_type=zipfile.ZIP_DEFLATED)


def save_grid(path, images, cols=16, rows=8, zoom=2):
    """Save up to rows*cols images [N, R, R] as one PNG (1 px grey separators), atomically."""
    n = min(len(images), cols * rows)
    if n == 0:
        return
    rows = (n + cols - 1) // cols
    r = images.shape[1]
    grid = np.full((rows * (r + 1) + 1, cols * (r + 1) + 1), 96, np.uint8)
    for i in range(n):
        y, x = divmod(i, cols)
        grid[1 + y * (r + 1):1 + y * (r + 1) + r, 1 + x * (r + 1):1 + x * (r + 1) + r] = images[i]
    img = Image.fromarray(grid).resize((grid.shape[1] * zoom, grid.shape[0] * zoom), Image.Resampling.NEAREST)
    with atomic_path(path, suffix='.tmp.png') as tmp:
        img.save(tmp, format='PNG')


# ----------------------------------------------------------------------------
# The whole build.


@dataclass(frozen=True)
class GlyphDataOptions:
    """What make_glyph_data renders (the options of scripts/make_glyph_data.py, same defaults)."""
    seed: int = 0                              # master seed; every split has its own stream
    resolution: int = 32                       # image size in pixels (a power of two >= 8)
    channels: int = 1                          # 1 = grayscale L, 3 = RGB (gray replicated)
    fonts_root: str = '/usr/share/fonts'       # folder scanned for .ttf/.otf fonts
    datasets: Tuple[str, ...] = ALL_DATASETS   # subset of ALL_DATASETS to write
    heldout_regex: str = 'Z003|Chancery|Chorus'
    source_size: int = 60000
    source_test_size: int = 2000
    shots: Tuple[int, ...] = (5, 10, 25, 100)  # nested few-shot split sizes per target
    val_size: int = 250
    test_size: int = 1500
    train_size: int = 8000                     # <target>_train.zip (classifier training); 0 = none
    size_jitter: float = 0.08                  # relative font-size jitter (uniform +-)
    shift: float = 1.5                         # max shift in output pixels (uniform +-)
    rotation: float = 5.0                      # max rotation in degrees (uniform +-)
    max_chars: Optional[int] = None            # only the first N classes of each script (tests)
    max_fonts: Optional[int] = None            # only the first N fonts of each domain (tests)


def plan_outputs(opts):
    """[(dataset, split, zip name, image count)] of every non-empty zip to write, in writing order."""
    plan = []
    for name in opts.datasets:
        if name == 'source':
            plan += [('source', 'train', 'source.zip', opts.source_size),
                     ('source', 'test', 'source_test.zip', opts.source_test_size)]
        else:
            plan += [(name, f'shots{k}', paths.target_name(name, f'shots{k}'), k) for k in opts.shots]
            plan += [(name, s, paths.target_name(name, s), n)
                     for s, n in (('val', opts.val_size), ('test', opts.test_size), ('train', opts.train_size))]
    return [p for p in plan if p[3] > 0]


def _common_meta(opts, classes):
    """meta.json entries every zip shares."""
    return {
        'format': FORMAT, 'generator': 'scripts/make_glyph_data.py', 'seed': opts.seed,
        'resolution': opts.resolution, 'channels': opts.channels, 'polarity': 'white glyph (255) on black (0)',
        'pillow': PIL.__version__, 'raqm': features.check('raqm'),
        'libs': {k: features.version(k) for k in ('raqm', 'fribidi', 'harfbuzz', 'freetype2')},
        'augment': {'size_jitter': opts.size_jitter, 'shift_px': opts.shift, 'rotation_deg': opts.rotation,
                    'supersample': SUPERSAMPLE, 'fill': FILL},
        'heldout_regex': opts.heldout_regex, 'label_map': classes,
    }


def _font_records(fonts, weights, dpkg, fonts_root):
    """meta.json 'fonts': id, file (relative to fonts_root), family, style, sha256, Debian package, weight."""
    records = []
    for i, f in enumerate(fonts):
        pkg = dpkg.get(f['file']) or {}
        records.append({'id': i, 'file': os.path.relpath(f['file'], fonts_root), 'family': f['family'],
                        'style': f['style'], 'sha256': file_sha256(f['file']),
                        'package': pkg.get('package'), 'package_version': pkg.get('version'),
                        'weight': round(float(weights[i]), 6)})
    return records


def write_dataset(name, fonts, plan, opts, common, dpkg, outdir, log=print):
    """Render and write every zip (and preview) of dataset `name` in `plan`; splits are pixel-disjoint.

    fonts: the domain's font dicts; common: the meta.json entries all zips share; dpkg: _dpkg_info of the fonts.
    """
    classes = common['label_map']
    script = 'latin' if name in ('source', 'near') else TARGETS[name]
    labels = class_labels(script)[:opts.max_chars]
    texts = [classes[i]['text'] for i in labels]
    renderers = [GlyphRenderer(f['file'], texts, opts.resolution, opts.size_jitter, opts.shift, opts.rotation)
                 for f in fonts]
    weights = _font_weights(fonts, balance_families=(name == 'source'))
    font_meta = _font_records(fonts, weights, dpkg, opts.fonts_root)
    seen = set()
    shot_images, shot_items = None, None
    for dname, split, fname, count in plan:
        if dname != name:
            continue
        if split.startswith('shots'):
            if shot_images is None:   # one pool of max(shots); smaller splits are its prefixes
                rng = np.random.default_rng(_stream_seed(opts.seed, name, 'shots'))
                shot_images, shot_items = render_split(renderers, weights, texts, labels, max(opts.shots), rng, seen)
            images, items = shot_images[:count], shot_items[:count]
        else:
            rng = np.random.default_rng(_stream_seed(opts.seed, name, split))
            images, items = render_split(renderers, weights, texts, labels, count, rng, seen)
        zip_meta = dict(common, dataset=name, split=split, script=script, class_labels=labels, fonts=font_meta)
        write_zip(os.path.join(outdir, fname), images, items, opts.channels, zip_meta)
        save_grid(os.path.join(outdir, 'previews', fname[:-4] + '.png'), images)
        log(f'wrote {fname}: {len(images)} images, {os.path.getsize(os.path.join(outdir, fname))} bytes')


def _describe(domains, plan, opts, outdir, log):
    """Log the fonts of each dataset and the planned zips."""
    for name in opts.datasets:
        fams = sorted({f['family'] for f in domains[name]})
        log(f'{name}: {len(domains[name])} font files, families: {", ".join(fams) or "-"}')
    for _name, _split, fname, count in plan:
        log(f'  {os.path.join(outdir, fname)}: {count} images')


def make_glyph_data(outdir, opts=GlyphDataOptions(), ship_dir=None, dry_run=False, log=print):
    """Render the source / near / far glyph datasets as stylegan2-ada dataset zips into outdir.

    Logs the fonts and planned zips first (dry_run: only that). With ship_dir, also copies the shipped files
    (all but source.zip and *_train.zip) and their previews there and rewrites its MANIFEST.json.
    Returns the plan (see plan_outputs). Raises GlyphDataError without raqm or without fonts for a dataset.
    """
    if not features.check('raqm'):
        raise GlyphDataError('Pillow has no raqm layout (needed for Kannada/Devanagari shaping); '
                             'install libfribidi0 (Pillow wheels) or libraqm0 (source builds)')
    domains = discover_fonts(opts.fonts_root, opts.heldout_regex)
    domains = {name: fonts[:opts.max_fonts] for name, fonts in domains.items()}
    plan = plan_outputs(opts)
    _describe(domains, plan, opts, outdir, log)
    missing = [n for n in opts.datasets if not domains[n]]
    if missing:
        raise GlyphDataError(f'no fonts found for {",".join(missing)} under {opts.fonts_root}')
    if dry_run:
        return plan
    os.makedirs(os.path.join(outdir, 'previews'), exist_ok=True)
    common = _common_meta(opts, all_classes())
    dpkg = _dpkg_info([f['file'] for n in opts.datasets for f in domains[n]])
    for name in opts.datasets:
        write_dataset(name, domains[name], plan, opts, common, dpkg, outdir, log)
    if ship_dir:
        ship_files(outdir, ship_dir, [p[2] for p in plan if p[2] != 'source.zip' and p[1] != 'train'], log)
    return plan


def ship_files(outdir, ship_dir, names, log=print):
    """Copy zips ``names`` and their previews from outdir to ship_dir; rewrite ship_dir/MANIFEST.json."""
    from fsgan.benchmarks.glyphs.classifier import write_manifest  # pylint: disable=import-outside-toplevel
    os.makedirs(os.path.join(ship_dir, 'previews'), exist_ok=True)
    for name in names:
        for rel in (name, os.path.join('previews', name[:-4] + '.png')):
            with atomic_path(os.path.join(ship_dir, rel)) as tmp:
                shutil.copyfile(os.path.join(outdir, rel), tmp)
    write_manifest(ship_dir)
    log(f'shipped {len(names)} zips to {ship_dir}')

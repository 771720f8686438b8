#!/usr/bin/env python3
"""Render the glyph benchmark datasets (stylegan2-ada-pytorch zip format).

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

import click
import numpy as np
import PIL
from PIL import Image, ImageDraw, ImageFont, features


from dnnlib.fileio import atomic_path
from dnnlib.util import file_sha256
from fsgan.tools.cli import command

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

TARGETS = {'near': 'latin', 'kannada': 'kannada', 'devanagari': 'devanagari'}
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
            raise click.ClickException('too many duplicate renders; widen the augmentation or shrink the split')
        fid = int(rng.choice(len(renderers), p=weights))
        k = int(rng.integers(len(texts)))
        arr, p = renderers[fid].render(texts[k], rng)
        key = hashlib.sha1(arr.tobytes()).digest()
        if key in seen:
            continue
        if arr.max() < 128:
            raise click.ClickException(f'blank render of {texts[k]!r} in font {fid}')
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


def _parse_int_list(ctx, param, value):
    try:
        out = sorted({int(v) for v in value.split(',') if v.strip()})
    except ValueError:
        raise click.BadParameter(f'expected comma-separated integers, got {value!r}')
    if not out or out[0] < 1:
        raise click.BadParameter('shot counts must be positive integers')
    return out


def _parse_datasets(ctx, param, value):
    out = [v.strip() for v in value.split(',') if v.strip()]
    bad = [v for v in out if v not in ALL_DATASETS]
    if bad or not out:
        raise click.BadParameter(f'unknown dataset(s) {bad}; choose from {",".join(ALL_DATASETS)}')
    return out


def _check_regex(ctx, param, value):
    try:
        re.compile(value)
    except re.error as e:
        raise click.BadParameter(f'invalid regex: {e}')
    return value


def _check_resolution(ctx, param, value):
    if value < 8 or value & (value - 1):
        raise click.BadParameter(f'resolution must be a power of two >= 8, got {value}')
    return value


@command()
@click.option('--outdir', required=True, type=click.Path(file_okay=False), help='Output folder for zips and previews.')
@click.option('--seed', type=int, default=0, show_default=True, help='Master seed; every split has its own stream.')
@click.option('--resolution', type=int, default=32, show_default=True, callback=_check_resolution, help='Image size in pixels.')
@click.option('--channels', type=click.Choice(['1', '3']), default='1', show_default=True, help='1 = grayscale L, 3 = RGB (gray replicated).')
@click.option('--fonts-root', type=click.Path(exists=True, file_okay=False), default='/usr/share/fonts', show_default=True, help='Folder scanned for .ttf/.otf fonts.')
@click.option('--datasets', default=','.join(ALL_DATASETS), show_default=True, callback=_parse_datasets, help='Comma-separated subset of datasets to write.')
@click.option('--heldout-regex', default='Z003|Chancery|Chorus', show_default=True, callback=_check_regex, help='Font family regex of the held-out near-target Latin family.')
@click.option('--source-size', type=click.IntRange(min=1), default=60000, show_default=True, help='Images in source.zip.')
@click.option('--source-test-size', type=click.IntRange(min=0), default=2000, show_default=True, help='Images in source_test.zip.')
@click.option('--shots', default='5,10,25,100', show_default=True, callback=_parse_int_list, help='Nested few-shot split sizes per target.')
@click.option('--val-size', type=click.IntRange(min=0), default=250, show_default=True, help='Images in <target>_val.zip.')
@click.option('--test-size', type=click.IntRange(min=0), default=1500, show_default=True, help='Images in <target>_test.zip.')
@click.option('--train-size', type=click.IntRange(min=0), default=8000, show_default=True, help='Images in <target>_train.zip (classifier training); 0 = none.')
@click.option('--size-jitter', type=click.FloatRange(0, 0.5), default=0.08, show_default=True, help='Relative font-size jitter (uniform +-).')
@click.option('--shift', type=click.FloatRange(0, 8), default=1.5, show_default=True, help='Max shift in output pixels (uniform +-).')
@click.option('--rotation', type=click.FloatRange(0, 45), default=5.0, show_default=True, help='Max rotation in degrees (uniform +-).')
@click.option('--max-chars', type=click.IntRange(min=1), default=None, help='Use only the first N classes of each script (tests).')
@click.option('--max-fonts', type=click.IntRange(min=1), default=None, help='Use only the first N fonts of each domain (tests).')
@click.option('--ship-dir', type=click.Path(file_okay=False), default=None, help='Also copy the shipped files (all but source.zip and *_train.zip) and their previews here and rewrite its MANIFEST.json.')
@click.option('--dry-run', is_flag=True, help='Print fonts and planned outputs; write nothing.')
def main(outdir, seed, resolution, channels, fonts_root, datasets, heldout_regex, source_size, source_test_size,
         shots, val_size, test_size, train_size, size_jitter, shift, rotation, max_chars, max_fonts, ship_dir, dry_run):
    """Render the source / near / far glyph datasets as stylegan2-ada dataset zips."""
    channels = int(channels)
    if not features.check('raqm'):
        raise click.ClickException('Pillow has no raqm layout (needed for Kannada/Devanagari shaping); '
                                   'install libfribidi0 (Pillow wheels) or libraqm0 (source builds)')
    domains = discover_fonts(fonts_root, heldout_regex)
    for name in domains:
        domains[name] = domains[name][:max_fonts]

    plan = []   # (dataset, split, zip name, count)
    for name in datasets:
        if name == 'source':
            plan += [('source', 'train', 'source.zip', source_size), ('source', 'test', 'source_test.zip', source_test_size)]
        else:
            plan += [(name, f'shots{k}', f'{name}_shots{k}.zip', k) for k in shots]
            plan += [(name, s, f'{name}_{s}.zip', n) for s, n in (('val', val_size), ('test', test_size), ('train', train_size))]
    plan = [p for p in plan if p[3] > 0]

    for name in datasets:
        fams = sorted({f['family'] for f in domains[name]})
        click.echo(f'{name}: {len(domains[name])} font files, families: {", ".join(fams) or "-"}')
    for name, split, fname, count in plan:
        click.echo(f'  {os.path.join(outdir, fname)}: {count} images')
    missing = [n for n in datasets if not domains[n]]
    if missing:
        raise click.ClickException(f'no fonts found for {",".join(missing)} under {fonts_root}')
    if dry_run:
        return

    os.makedirs(os.path.join(outdir, 'previews'), exist_ok=True)
    classes = all_classes()
    dpkg = _dpkg_info([f['file'] for n in datasets for f in domains[n]])
    common = {
        'format': FORMAT, 'generator': 'scripts/make_glyph_data.py', 'seed': seed,
        'resolution': resolution, 'channels': channels, 'polarity': 'white glyph (255) on black (0)',
        'pillow': PIL.__version__, 'raqm': features.check('raqm'),
        'libs': {k: features.version(k) for k in ('raqm', 'fribidi', 'harfbuzz', 'freetype2')},
        'augment': {'size_jitter': size_jitter, 'shift_px': shift, 'rotation_deg': rotation,
                    'supersample': SUPERSAMPLE, 'fill': FILL},
        'heldout_regex': heldout_regex, 'label_map': classes,
    }
    for name in datasets:
        script = 'latin' if name in ('source', 'near') else TARGETS[name]
        labels = class_labels(script)[:max_chars]
        texts = [classes[i]['text'] for i in labels]
        fonts = domains[name]
        renderers = [GlyphRenderer(f['file'], texts, resolution, size_jitter, shift, rotation) for f in fonts]
        weights = _font_weights(fonts, balance_families=(name == 'source'))
        font_meta = []
        for i, f in enumerate(fonts):
            pkg = dpkg.get(f['file']) or {}
            font_meta.append({'id': i, 'file': os.path.relpath(f['file'], fonts_root), 'family': f['family'],
                              'style': f['style'], 'sha256': file_sha256(f['file']),
                              'package': pkg.get('package'), 'package_version': pkg.get('version'),
                              'weight': round(float(weights[i]), 6)})
        seen = set()
        shot_images, shot_items = None, None
        for dname, split, fname, count in plan:
            if dname != name:
                continue
            if split.startswith('shots'):
                if shot_images is None:   # one pool of max(shots); smaller splits are its prefixes
                    rng = np.random.default_rng(_stream_seed(seed, name, 'shots'))
                    shot_images, shot_items = render_split(renderers, weights, texts, labels, max(shots), rng, seen)
                images, items = shot_images[:count], shot_items[:count]
            else:
                rng = np.random.default_rng(_stream_seed(seed, name, split))
                images, items = render_split(renderers, weights, texts, labels, count, rng, seen)
            meta = dict(common, dataset=name, split=split, script=script, class_labels=labels, fonts=font_meta)
            write_zip(os.path.join(outdir, fname), images, items, channels, meta)
            save_grid(os.path.join(outdir, 'previews', fname[:-4] + '.png'), images)
            click.echo(f'wrote {fname}: {len(images)} images, {os.path.getsize(os.path.join(outdir, fname))} bytes')
    if ship_dir:
        ship(outdir, ship_dir, [p[2] for p in plan if p[2] != 'source.zip' and p[1] != 'train'])


def ship(outdir, ship_dir, names):
    """Copy zips ``names`` and their previews from outdir to ship_dir; rewrite ship_dir/MANIFEST.json."""
    from fsgan.benchmarks.glyphs.classifier import write_manifest  # pylint: disable=import-outside-toplevel
    os.makedirs(os.path.join(ship_dir, 'previews'), exist_ok=True)
    for name in names:
        for rel in (name, os.path.join('previews', name[:-4] + '.png')):
            with atomic_path(os.path.join(ship_dir, rel)) as tmp:
                shutil.copyfile(os.path.join(outdir, rel), tmp)
    write_manifest(ship_dir)
    click.echo(f'shipped {len(names)} zips to {ship_dir}')


if __name__ == '__main__':
    main()  # pylint: disable=no-value-for-parameter

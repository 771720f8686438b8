"""Build the emoji benchmark: Noto source set, Twemoji (near) and OpenMoji (far) few-shot targets.

Pipeline (`make_emoji_data`): fetch the three pinned npm tarballs and check their npm integrity;
read emoji-datasource's index and 64-px PNGs (Noto, Twemoji) and OpenMoji's colour SVGs straight from
the tarballs; convert every image to 64x64 RGB on the white background (paths.BACKGROUND); split by
content group (splits.py); write stylegan2-ada-pytorch dataset zips, previews and MANIFEST.json.

Every zip holds `<unified>.png` files (code points as upper-case hex joined by '-'), `dataset.json`
({"labels": [[file, category index into paths.CATEGORIES], ...]}) and `meta.json`
({file: {unified, category, short_name, vendor, group}}; group = the base emoji's code points).
"""
import collections
import hashlib
import json
import os
import zipfile

import numpy as np

from dnnlib.fileio import atomic_path, atomic_write_bytes, atomic_write_json
from dnnlib.util import file_sha256

from . import paths
from .images import encode_png, grid_image, png_to_rgb, svg_to_rgb
from .index import index_images, match_hexcodes, parse_json
from .npm import EmojiDataError, fetch_tarball, read_members
from .splits import holdout_split, same_content_components, target_splits

FORMAT = 'fsgan-emoji-v1'
ZIP_DATE = (1980, 1, 1, 0, 0, 0)        # fixed member timestamps: a zip's bytes depend on its content only

# One vendor's images: EmojiImage records by code, raw file bytes by code, and bytes -> uint8 [R, R, 3].
VendorImages = collections.namedtuple('VendorImages', 'vendor records raw convert')


def read_datasource(vendor, path):
    """VendorImages of an emoji-datasource-<vendor> tarball (index + img/<vendor>/64/ PNGs)."""
    prefix = paths.PNG_DIR[vendor]
    files = read_members(path, lambda n: n == paths.INDEX_MEMBER or n.startswith(prefix))
    what = f'{path}:{paths.INDEX_MEMBER}'
    if paths.INDEX_MEMBER not in files:
        raise EmojiDataError(f'{path}: has no {paths.INDEX_MEMBER}; is it the {vendor} emoji-datasource tarball?')
    records = index_images(parse_json(files[paths.INDEX_MEMBER], what), vendor, what)
    missing = [r.image for r in records if prefix + r.image not in files]
    if missing:
        raise EmojiDataError(f'{path}: {len(missing)} indexed image(s) missing under {prefix}, e.g. {missing[0]}')
    return VendorImages(vendor, {r.unified: r for r in records}, {r.unified: files[prefix + r.image] for r in records},
                        png_to_rgb)


def read_openmoji(path, index_records):
    """VendorImages of the OpenMoji tarball for the emoji of `index_records` (dict code -> EmojiImage) it draws.

    Codes are matched to OpenMoji hexcodes by index.match_hexcodes; records keep the datasource's
    category and short name, with `image` set to the SVG's file name.
    """
    svg_dir = paths.OPENMOJI_SVG_DIR
    files = read_members(path, lambda n: n == paths.OPENMOJI_INDEX_MEMBER or
                         (n.startswith(svg_dir) and n.endswith('.svg')))
    what = f'{path}:{paths.OPENMOJI_INDEX_MEMBER}'
    if paths.OPENMOJI_INDEX_MEMBER not in files:
        raise EmojiDataError(f'{path}: has no {paths.OPENMOJI_INDEX_MEMBER}; is it the openmoji tarball?')
    try:
        hexcodes = [e['hexcode'].upper() for e in parse_json(files[paths.OPENMOJI_INDEX_MEMBER], what)]
    except (KeyError, TypeError, AttributeError) as e:
        raise EmojiDataError(f'{what}: unexpected layout ({type(e).__name__}: {e})') from None
    drawn = [h for h in hexcodes if f'{svg_dir}{h}.svg' in files]
    matched = match_hexcodes(sorted(index_records), drawn)
    records = {u: index_records[u]._replace(image=f'{h}.svg') for u, h in matched.items()}
    raw = {u: files[f'{svg_dir}{h}.svg'] for u, h in matched.items()}
    return VendorImages('openmoji', records, raw, svg_to_rgb)


def load_vendors(tarballs=None, download_dir=None, packages=None, log=print):
    """Fetch (or take from `tarballs`, vendor -> local .tgz), verify and read all three vendors.

    Returns dict vendor -> VendorImages for 'google', 'twitter' and 'openmoji'.
    """
    packages = packages or paths.PACKAGES
    tarballs = tarballs or {}
    local = {v: fetch_tarball(packages[v], tarballs.get(v), download_dir) for v in ('google', 'twitter', 'openmoji')}
    vendors = {v: read_datasource(v, local[v]) for v in ('google', 'twitter')}
    vendors['openmoji'] = read_openmoji(local['openmoji'], vendors['google'].records)
    for v, images in vendors.items():
        log(f'{v}: {len(images.records)} images from {packages[v].name}@{packages[v].version}')
    return vendors


def matched_records(vendors):
    """EmojiImage records (Noto's) of every image drawn by all three vendors, sorted by code."""
    common = set(vendors['google'].records) & set(vendors['twitter'].records) & set(vendors['openmoji'].records)
    return [vendors['google'].records[u] for u in sorted(common)]


def plan_splits(vendors, seed, shots, val_images, test_images, noto_test_fraction):
    """Every split to write: dict zip name -> (domain, sorted codes), plus the matched records.

    noto_train.zip / noto_test.zip split all Noto images by group; near_* and far_* hold the same
    emoji (drawn by Twemoji and OpenMoji) from target_splits over the images all vendors draw.
    """
    noto_train, noto_test = holdout_split(list(vendors['google'].records.values()), noto_test_fraction, seed)
    plan = {paths.NOTO_TRAIN: ('noto', noto_train), paths.NOTO_TEST: ('noto', noto_test)}
    matched = matched_records(vendors)
    same = same_content_components(sorted({r.group for r in matched}), drawn_alike(vendors, matched))
    target = target_splits(matched, shots, val_images, test_images, seed, same_content=same)
    for domain in ('near', 'far'):
        for split in paths.target_split_names(shots):
            plan[f'{domain}_{split}.zip'] = (domain, sorted(target[split]))
    return plan, matched, target


def drawn_alike(vendors, records):
    """Sets of groups (of `records`) that a target vendor draws pixel for pixel alike (e.g. two flags of the same
    colours), after conversion: different emoji, but one image, so the target splits keep them apart."""
    alike = []
    for domain in ('near', 'far'):
        images = vendors[paths.DOMAINS[domain]['vendor']]
        rgb = convert_images(images, [r.unified for r in records], paths.RESOLUTION, paths.BACKGROUND)
        by_pixels = {}
        for r, img in zip(records, rgb):
            by_pixels.setdefault(hashlib.sha256(img.tobytes()).hexdigest(), set()).add(r.group)
        alike += [groups for groups in by_pixels.values() if len(groups) > 1]
    return alike


def convert_images(images, codes, resolution, background):
    """uint8 [N, R, R, 3] of `codes` (in order) from one vendor's VendorImages."""
    out = np.empty((len(codes), resolution, resolution, 3), np.uint8)
    for i, code in enumerate(codes):
        name = f'{images.vendor}:{images.records[code].image}'
        out[i] = images.convert(images.raw[code], name, resolution, background)
    return out


def write_dataset_zip(path, records, rgb, vendor):
    """Write `<unified>.png` per record + dataset.json + meta.json atomically; returns the zip's sha256.

    records: EmojiImage list; rgb: uint8 [N, R, R, 3] in the same order. Members are in file-name order.
    """
    labels, meta = [], {}
    order = sorted(range(len(records)), key=lambda i: f'{records[i].unified}.png')
    with atomic_path(path, suffix='.tmp.zip') as tmp:
        with zipfile.ZipFile(tmp, 'w', compression=zipfile.ZIP_STORED) as zf:
            for rec, img in ((records[i], rgb[i]) for i in order):
                fname = f'{rec.unified}.png'
                zf.writestr(zipfile.ZipInfo(fname, date_time=ZIP_DATE), encode_png(img))
                labels.append([fname, paths.CATEGORIES.index(rec.category)])
                meta[fname] = {'unified': rec.unified, 'category': rec.category, 'short_name': rec.short_name,
                               'vendor': vendor, 'group': rec.group}
            for name, obj in (('dataset.json', {'labels': labels}), ('meta.json', meta)):
                data = json.dumps(obj, ensure_ascii=False, separators=(',', ':')).encode()
                zf.writestr(zipfile.ZipInfo(name, date_time=ZIP_DATE), data, compress_type=zipfile.ZIP_DEFLATED)
    return file_sha256(path)


def save_preview(path, rgb):
    """Grid of the first 128 images uint8 [N, R, R, 3], saved as PNG atomically (nothing for N = 0)."""
    grid = grid_image(rgb)
    if grid is not None:
        with atomic_path(path, suffix='.tmp.png') as tmp:
            grid.save(tmp, format='PNG')


def write_splits(plan, vendors, data_dir, cache_dir, staging, log=print):
    """Convert and write every planned zip with a preview into `staging` (data/ and cache/ inside it).

    Returns (dict zip name -> {'path' (its final place: noto_train in cache_dir, the rest in data_dir),
    'sha256', 'bytes', 'images', 'preview' (final path or None), 'preview_sha256', 'preview_bytes'},
    dict staged path -> final path).
    """
    out, moves = {}, {}
    for name, (domain, codes) in plan.items():
        vendor = paths.DOMAINS[domain]['vendor']
        images = vendors[vendor]
        folder, part = (cache_dir, 'cache') if name == paths.NOTO_TRAIN else (data_dir, 'data')
        rgb = convert_images(images, codes, paths.RESOLUTION, paths.BACKGROUND)
        staged = os.path.join(staging, part, name)
        os.makedirs(os.path.join(staging, part, paths.PREVIEW_DIR), exist_ok=True)
        sha256 = write_dataset_zip(staged, [images.records[c] for c in codes], rgb, vendor)
        path = os.path.join(folder, name)
        moves[staged] = path
        out[name] = {'path': path, 'sha256': sha256, 'bytes': os.path.getsize(staged), 'images': len(codes),
                     'preview': None}
        staged_preview = os.path.join(staging, part, paths.PREVIEW_DIR, name[:-4] + '.png')
        save_preview(staged_preview, rgb)
        if os.path.isfile(staged_preview):
            moves[staged_preview] = out[name]['preview'] = os.path.join(folder, paths.PREVIEW_DIR, name[:-4] + '.png')
            out[name].update(preview_sha256=file_sha256(staged_preview), preview_bytes=os.path.getsize(staged_preview))
        log(f'made {name}: {len(codes)} images, {out[name]["bytes"]} bytes')
    return out, moves


def publish(moves, overwrite=False, log=print):
    """Copy each staged file to its final path (atomically). An existing file with other bytes is replaced only
    with `overwrite`; otherwise EmojiDataError lists them before anything is written. Identical files stay."""
    def same(src, dst):
        return os.path.isfile(dst) and os.path.getsize(src) == os.path.getsize(dst) and \
            file_sha256(src) == file_sha256(dst)
    changed = [dst for src, dst in moves.items() if os.path.exists(dst) and not same(src, dst)]
    if changed and not overwrite:
        raise EmojiDataError(f'{len(changed)} existing file(s) would change, e.g. {changed[0]}; pass --overwrite to '
                             f'replace them, or give another --data-dir/--cache-dir')
    for src, dst in moves.items():
        if same(src, dst):
            continue
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        with open(src, 'rb') as f:
            atomic_write_bytes(dst, f.read())
        log(f'wrote {dst}')


def _group_count(records):
    return len({r.group for r in records})


def manifest_counts(vendors, matched, target):
    """Images and content groups per vendor, matched across all three, and left out of the target splits.

    openmoji_matched_without_fe0f: OpenMoji images whose hexcode equals the code only once U+FE0F is dropped.
    """
    counts = {v: {'images': len(im.records), 'groups': _group_count(im.records.values())} for v, im in vendors.items()}
    counts['matched'] = {'images': len(matched), 'groups': _group_count(matched)}
    counts['openmoji_matched_without_fe0f'] = sum(r.image != f'{r.unified}.svg'
                                                  for r in vendors['openmoji'].records.values())
    counts['target_unused_images'] = len(target['unused'])
    return counts


def manifest_of(written, counts, settings, packages):
    """MANIFEST.json's content: sha256/bytes/images of every shipped file, pins, settings, counts."""
    files, cache = {}, {}
    for name, info in written.items():
        entry = {k: info[k] for k in ('sha256', 'bytes', 'images')}
        if name == paths.NOTO_TRAIN:
            cache[name] = entry
            continue
        files[name] = entry
        if info['preview'] is not None:
            files[os.path.join(paths.PREVIEW_DIR, name[:-4] + '.png')] = {'sha256': info['preview_sha256'],
                                                                          'bytes': info['preview_bytes']}
    manifest = {
        'format': FORMAT, 'generator': 'scripts/make_emoji_data.py',
        'packages': {v: p._asdict() for v, p in packages.items()},
        'domains': paths.DOMAINS, 'index_licence': paths.INDEX_LICENCE,
        'resolution': paths.RESOLUTION, 'background_rgb': list(paths.BACKGROUND),
        'categories': list(paths.CATEGORIES), 'settings': settings, 'counts': counts,
        'split_images': {name: info['images'] for name, info in written.items()},
        'files': files, 'cache_files': cache,
    }
    return manifest


def make_emoji_data(data_dir,                                # shipped zips, previews/ and MANIFEST.json
                    cache_dir,                               # noto_train.zip (re-made here, not shipped)
                    seed=paths.SEED,                         # master seed; each split has its own stream
                    tarballs=None,                           # vendor -> local .tgz; None = download
                    download_dir=None,                       # None = the project's download cache
                    packages=None,                           # vendor -> NpmPackage; None = paths.PACKAGES
                    shots=paths.SHOTS,                       # nested shot counts per target
                    val_images=paths.VAL_IMAGES,             # minimum images in <target>_val.zip
                    test_images=paths.TEST_IMAGES,           # minimum images in <target>_test.zip
                    noto_test_fraction=paths.NOTO_TEST_FRACTION,   # share of Noto groups held out
                    overwrite=False,                         # replace existing files whose bytes would change
                    log=print):
    """Build every emoji benchmark file; returns the manifest dict (also written to data_dir/MANIFEST.json).

    Everything is made in a temporary folder first; existing outputs that would change are refused (EmojiDataError,
    nothing written) unless `overwrite`, and identical ones are left as they are (re-making the shipped files on a
    new machine, for the cache's noto_train.zip, needs no --overwrite)."""
    import tempfile
    packages = packages or paths.PACKAGES
    vendors = load_vendors(tarballs, download_dir, packages, log)
    shots = tuple(sorted(shots))
    plan, matched, target = plan_splits(vendors, seed, shots, val_images, test_images, noto_test_fraction)
    log(f'matched across all three vendors: {len(matched)} images in {_group_count(matched)} groups')
    settings = {'seed': seed, 'shots': list(shots), 'val_images_min': val_images, 'test_images_min': test_images,
                'noto_test_fraction': noto_test_fraction}
    with tempfile.TemporaryDirectory(prefix='fsgan-emoji-') as staging:
        written, moves = write_splits(plan, vendors, data_dir, cache_dir, staging, log)
        manifest = manifest_of(written, manifest_counts(vendors, matched, target), settings, packages)
        staged_manifest = os.path.join(staging, paths.MANIFEST)
        atomic_write_json(staged_manifest, manifest)
        moves[staged_manifest] = os.path.join(data_dir, paths.MANIFEST)
        publish(moves, overwrite, log)
    return manifest

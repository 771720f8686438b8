"""Emoji benchmark data: a build from tiny fake npm tarballs (no network), and the shipped files."""
import hashlib
import io
import json
import os
import tarfile
import zipfile

import numpy as np
import PIL.Image
import pytest
from click.testing import CliRunner

from fsgan.benchmarks.emoji import paths
from fsgan.benchmarks.emoji.data import make_emoji_data
from fsgan.benchmarks.emoji.images import composite, png_to_rgb, svg_to_rgb
from fsgan.benchmarks.emoji.index import match_hexcodes
from fsgan.benchmarks.emoji.npm import EmojiDataError, check_integrity, read_members, sri_digest
from scripts.make_emoji_data import main as make_emoji_cli
from tests.conftest import ROOT
from training.dataset import load_target

DATA = os.path.join(ROOT, paths.DATA_DIR)
SKINS = ('1F3FB', '1F3FC', '1F3FD', '1F3FE', '1F3FF')
TINY = dict(shots=(1, 2, 3), val_images=2, test_images=4, noto_test_fraction=0.1)

# ----------------------------------------------------------------------------
# Fake npm tarballs.


def _fake_index():
    """emoji.json entries: 13 base emoji (3 with 5 skin tones, one spelt with FE0F) and one Component."""
    entries = []
    for i in range(13):
        code = f'1F6{i:02X}'
        if i == 12:
            code = '2764-FE0F'                         # OpenMoji writes it without the selector
        entry = {'unified': code, 'image': code.lower() + '.png', 'short_name': f'emoji{i}',
                 'category': paths.CATEGORIES[i % len(paths.CATEGORIES)], 'has_img_google': True,
                 'has_img_twitter': True}
        if i < 3:
            entry['skin_variations'] = {s: {'unified': f'{code}-{s}', 'image': f'{code}-{s}'.lower() + '.png',
                                            'has_img_google': True, 'has_img_twitter': True} for s in SKINS}
        entries.append(entry)
    entries.append({'unified': '1F3FB', 'image': '1f3fb.png', 'short_name': 'skin-tone-2', 'category': 'Component',
                    'has_img_google': True, 'has_img_twitter': True})
    return entries


def fake_rgba(k):
    """64x64 RGBA of colour k: alpha 0 in the top-left 8x8 block, 128 at (10, 10), 255 elsewhere."""
    img = np.zeros((64, 64, 4), np.uint8)
    img[..., :3] = (40 + 7 * k) % 256, (90 + 13 * k) % 256, (200 + 3 * k) % 256
    img[..., 3] = 255
    img[:8, :8, 3] = 0
    img[10, 10, 3] = 128
    return img


def _png(arr):
    buf = io.BytesIO()
    PIL.Image.fromarray(arr, 'RGBA').save(buf, format='PNG')
    return buf.getvalue()


FAKE_SVG = ('<svg xmlns="http://www.w3.org/2000/svg" width="72" height="72" viewBox="0 0 72 72">'
            '<rect x="0" y="0" width="36" height="72" fill="#ff0000"/></svg>')   # left half red, right transparent


def fake_svg(k):
    """FAKE_SVG's shape in a colour of its own for each k (emoji drawn alike are kept apart by the splits)."""
    return FAKE_SVG.replace('#ff0000', f'#ff{(3 * k) % 256:02x}{(7 * k) % 256:02x}')


def _write_tgz(path, members):
    with tarfile.open(path, 'w:gz') as tar:
        for name, data in sorted(members.items()):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return str(path)


def build_fake_tarballs(folder):
    """Three fake tarballs in `folder`; returns (vendor -> path, vendor -> NpmPackage with their integrity)."""
    entries = _fake_index()
    index = json.dumps(entries).encode()
    images = [e['image'] for e in entries]
    images += [v['image'] for e in entries for v in e.get('skin_variations', {}).values()]
    tgz = {}
    for vendor in ('google', 'twitter'):
        members = {paths.INDEX_MEMBER: index}
        for k, image in enumerate(sorted(images)):
            members[paths.PNG_DIR[vendor] + image] = _png(fake_rgba(k + (50 if vendor == 'twitter' else 0)))
        tgz[vendor] = _write_tgz(os.path.join(folder, f'{vendor}.tgz'), members)
    # OpenMoji: every emoji but the last plain one (1F60B) and its first base; 2764 without FE0F.
    hexcodes = [e['unified'] for e in entries if e['unified'] != '1F60B'] + \
               [v['unified'] for e in entries for v in e.get('skin_variations', {}).values()]
    hexcodes = ['2764' if h == '2764-FE0F' else h for h in hexcodes]
    members = {paths.OPENMOJI_INDEX_MEMBER: json.dumps([{'hexcode': h} for h in hexcodes]).encode()}
    members.update({f'{paths.OPENMOJI_SVG_DIR}{h}.svg': fake_svg(k).encode() for k, h in enumerate(hexcodes)})
    tgz['openmoji'] = _write_tgz(os.path.join(folder, 'openmoji.tgz'), members)
    packages = {v: paths.PACKAGES[v]._replace(integrity=sri_digest(p)) for v, p in tgz.items()}
    return tgz, packages


@pytest.fixture(scope='module')
def fake(tmp_path_factory):
    folder = tmp_path_factory.mktemp('emoji')
    tgz, packages = build_fake_tarballs(str(folder))
    build = lambda name, seed=0, overwrite=False: make_emoji_data(  # noqa: E731
        str(folder / name / 'data'), str(folder / name / 'cache'), seed=seed, tarballs=tgz, packages=packages,
        overwrite=overwrite, log=lambda msg: None, **TINY)
    return {'tgz': tgz, 'packages': packages, 'build': build, 'folder': folder, 'manifest': build('a'),
            'data': str(folder / 'a' / 'data'), 'cache': str(folder / 'a' / 'cache')}


def read_zip(path):
    """-> (labels list, meta dict, {fname: uint8 [64, 64, 3]}) after checking the zip's layout."""
    with zipfile.ZipFile(path) as zf:
        labels = json.loads(zf.read('dataset.json'))['labels']
        meta = json.loads(zf.read('meta.json'))
        pngs = sorted(n for n in zf.namelist() if n.endswith('.png'))
        assert set(zf.namelist()) == set(pngs) | {'dataset.json', 'meta.json'}
        assert [f for f, _ in labels] == pngs == sorted(meta)
        images = {}
        for name in pngs:
            img = PIL.Image.open(io.BytesIO(zf.read(name)))
            assert img.mode == 'RGB' and img.size == (64, 64), name
            images[name] = np.asarray(img)
    return labels, meta, images


def _codes(folder, name):
    return [f[:-4] for f, _ in read_zip(os.path.join(folder, name))[0]]


def _group(code):
    return '-'.join(p for p in code.split('-') if p not in SKINS)

# ----------------------------------------------------------------------------
# Pieces.


def test_integrity_mismatch_is_one_line_cli_error(fake):
    """The real pins do not match the fake tarball: the CLI names the package in one line, no traceback."""
    res = CliRunner().invoke(make_emoji_cli, ['--google-tgz', fake['tgz']['google'], '--data-dir',
                                              str(fake['folder'] / 'x'), '--cache-dir', str(fake['folder'] / 'y')])
    assert res.exit_code == 1
    lines = res.output.strip().splitlines()
    assert lines[-1].startswith('Error: emoji-datasource-google@16.0.0: integrity mismatch')
    assert 'Traceback' not in res.output and not os.path.exists(fake['folder'] / 'x')
    check_integrity(fake['tgz']['google'], fake['packages']['google'])       # the right digest passes
    with pytest.raises(EmojiDataError, match='openmoji@17.0.0: integrity mismatch'):
        check_integrity(fake['tgz']['google'], fake['packages']['openmoji'])


def test_not_a_tarball_is_an_error(tmp_path):
    bad = tmp_path / 'bad.tgz'
    bad.write_bytes(b'not gzip')
    with pytest.raises(EmojiDataError, match='bad.tgz: not a readable .tgz'):
        read_members(str(bad), lambda name: True)


def test_composite_on_background():
    rgba = np.array([[[200, 100, 50, 0], [200, 100, 50, 255], [200, 100, 50, 128]]], np.uint8)   # [1, 3, 4]
    out = composite(rgba, (255, 255, 255))
    assert out.dtype == np.uint8 and out.shape == (1, 3, 3)
    assert out[0, 0].tolist() == [255, 255, 255] and out[0, 1].tolist() == [200, 100, 50]
    assert out[0, 2].tolist() == [round((c * 128 + 255 * 127) / 255) for c in (200, 100, 50)]
    assert composite(rgba, (0, 0, 0))[0, 0].tolist() == [0, 0, 0]


def test_png_of_wrong_size_is_an_error():
    with pytest.raises(EmojiDataError, match=r'x.png: is 32x32, expected 64x64'):
        png_to_rgb(_png(np.zeros((32, 32, 4), np.uint8)), 'x.png', 64, paths.BACKGROUND)


def test_svg_rasterised_to_64_rgb():
    rgb = svg_to_rgb(FAKE_SVG.encode(), 'x.svg', 64, paths.BACKGROUND)
    assert rgb.dtype == np.uint8 and rgb.shape == (64, 64, 3)
    assert (rgb[:, :31] == [255, 0, 0]).all() and (rgb[:, 33:] == 255).all()
    with pytest.raises(EmojiDataError, match='y.svg: cannot be rasterised'):
        svg_to_rgb(b'<svg', 'y.svg', 64, paths.BACKGROUND)


def test_hexcode_matching_handles_variation_selectors():
    got = match_hexcodes(['2764-FE0F', '00A9', '1F441-FE0F-200D-1F5E8-FE0F', '1F600', '1F3F3-FE0F', '1F9FF'],
                         ['2764', '00A9-FE0F', '1F441-200D-1F5E8-FE0F', '1F600', '1F600-FE0F', '1F3F3', '1F3F3-FE0F'])
    assert got == {'2764-FE0F': '2764', '00A9': '00A9-FE0F', '1F441-FE0F-200D-1F5E8-FE0F': '1F441-200D-1F5E8-FE0F',
                   '1F600': '1F600', '1F3F3-FE0F': '1F3F3-FE0F'}

# ----------------------------------------------------------------------------
# A whole build from the fake tarballs.


def test_counts_and_matching(fake):
    counts = fake['manifest']['counts']
    assert counts['google'] == {'images': 28, 'groups': 13}                # Component left out
    assert counts['openmoji'] == {'images': 27, 'groups': 12}              # 1F60B has no SVG; 2764 matched
    assert counts['matched'] == {'images': 27, 'groups': 12}
    assert counts['openmoji_matched_without_fe0f'] == 1                   # 2764-FE0F -> 2764
    assert fake['manifest']['split_images']['noto_train.zip'] + fake['manifest']['split_images']['noto_test.zip'] == 28


def test_splits_disjoint_by_group_and_nested(fake):
    data = fake['data']
    shots = [_codes(data, f'near_shots{k}.zip') for k in (1, 2, 3)]
    assert [len(s) for s in shots] == [1, 2, 3]
    assert set(shots[0]) < set(shots[1]) < set(shots[2])
    assert len({_group(c) for c in shots[2]}) == 3                         # one image per group
    val, test = _codes(data, 'near_val.zip'), _codes(data, 'near_test.zip')
    assert len(val) >= 2 and len(test) >= 4
    groups = [{_group(c) for c in s} for s in (shots[2], val, test)]
    assert not (groups[0] & groups[1] or groups[0] & groups[2] or groups[1] & groups[2])
    for g in groups[1] | groups[2]:                                        # val and test take whole groups
        assert len([c for c in val + test if _group(c) == g]) == (6 if g in ('1F600', '1F601', '1F602') else 1)
    assert '1F60B' not in val + test + shots[2]                            # not drawn by OpenMoji
    for split in ('shots3', 'val', 'test'):                                # near and far hold the same emoji
        assert _codes(data, f'near_{split}.zip') == _codes(data, f'far_{split}.zip')
    train, held = _codes(fake['cache'], 'noto_train.zip'), _codes(data, 'noto_test.zip')
    assert len(train) + len(held) == 28 and not {_group(c) for c in train} & {_group(c) for c in held}


def test_labels_meta_and_pixels(fake):
    labels, meta, images = read_zip(os.path.join(fake['data'], 'near_test.zip'))
    by_code = {e['unified']: e for e in _fake_index()}
    for fname, label in labels:
        code = fname[:-4]
        base = by_code[_group(code)]
        assert meta[fname]['unified'] == code and meta[fname]['vendor'] == 'twitter'
        assert meta[fname]['group'] == _group(code)
        assert meta[fname]['category'] == base['category'] == paths.CATEGORIES[label]
        assert meta[fname]['short_name'].startswith(base['short_name'])
        assert (images[fname][:8, :8] == 255).all()                        # transparent -> white background
        assert (images[fname][20:, 20:] == images[fname][63, 63]).all() and images[fname][63, 63].tolist() != [255] * 3
    skin = [m['short_name'] for m in meta.values() if '-1F3FD' in m['unified']]
    assert all(s.endswith('::skin-tone-4') for s in skin)
    _, far_meta, far_images = read_zip(os.path.join(fake['data'], 'far_test.zip'))
    assert {m['vendor'] for m in far_meta.values()} == {'openmoji'}
    for img in far_images.values():                         # each SVG's colour on its left half, white right
        assert (img[:, :31] == img[0, 0]).all() and img[0, 0, 0] == 255 and (img[:, 33:] == 255).all()


def test_training_reader_reads_a_zip(fake):
    target = load_target(os.path.join(fake['data'], 'far_test.zip'), resolution=64, channels=3)
    labels, _, _ = read_zip(os.path.join(fake['data'], 'far_test.zip'))
    assert target.images.shape == (len(labels), 3, 64, 64) and not target.notes
    assert target.labels.tolist() == [label for _, label in labels]


def test_deterministic_for_a_seed(fake):
    again = fake['build']('b')
    assert again['files'] == fake['manifest']['files'] and again['cache_files'] == fake['manifest']['cache_files']
    other = fake['build']('c', seed=1)
    assert other['files'] != fake['manifest']['files']


def test_existing_outputs_are_replaced_only_when_asked(fake):
    """Re-making identical files needs nothing; files that would change are refused, untouched, without
    --overwrite."""
    fake['build']('d')
    data = fake['folder'] / 'd' / 'data'
    before = {p: p.read_bytes() for p in data.rglob('*') if p.is_file()}
    fake['build']('d')                                        # the same bytes again: fine
    with pytest.raises(EmojiDataError, match='existing file.* would change.*pass --overwrite'):
        fake['build']('d', seed=1)
    assert {p: p.read_bytes() for p in data.rglob('*') if p.is_file()} == before
    changed = fake['build']('d', seed=1, overwrite=True)
    assert json.loads((data / paths.MANIFEST).read_text())['files'] == changed['files'] != fake['manifest']['files']


def test_manifest_lists_every_output(fake):
    manifest = fake['manifest']
    on_disk = sorted(os.path.relpath(os.path.join(r, f), fake['data']) for r, _, fs in os.walk(fake['data'])
                     for f in fs if f != paths.MANIFEST)
    assert sorted(manifest['files']) == on_disk
    for name, entry in manifest['files'].items():
        with open(os.path.join(fake['data'], name), 'rb') as f:
            assert hashlib.sha256(f.read()).hexdigest() == entry['sha256']
    assert manifest['packages']['openmoji']['integrity'] == fake['packages']['openmoji'].integrity
    assert manifest['background_rgb'] == [255, 255, 255] and manifest['settings']['seed'] == 0


def test_dry_run_writes_nothing(tmp_path):
    res = CliRunner().invoke(make_emoji_cli, ['--dry-run', '--data-dir', str(tmp_path / 'd'),
                                              '--cache-dir', str(tmp_path / 'c')])
    assert res.exit_code == 0, res.output
    assert 'openmoji@17.0.0' in res.output and 'near_shots100.zip' in res.output
    assert not os.listdir(tmp_path)

# ----------------------------------------------------------------------------
# The shipped files.


def _shipped():
    with open(os.path.join(DATA, paths.MANIFEST)) as f:
        return json.load(f)


def test_shipped_files_match_manifest():
    manifest = _shipped()
    names = ['noto_test.zip'] + [f'{d}_{s}.zip' for d in ('near', 'far') for s in paths.target_split_names()]
    names += [os.path.join(paths.PREVIEW_DIR, n[:-4] + '.png') for n in names]
    assert sorted(manifest['files']) == sorted(names)
    for name, entry in manifest['files'].items():
        path = os.path.join(DATA, name)
        assert os.path.getsize(path) == entry['bytes'], name
        with open(path, 'rb') as f:
            assert hashlib.sha256(f.read()).hexdigest() == entry['sha256'], f'{name} differs from {paths.MANIFEST}'
    assert {v: p['integrity'] for v, p in manifest['packages'].items()} == \
        {v: p.integrity for v, p in paths.PACKAGES.items()}


def test_shipped_zips_load_with_expected_counts():
    manifest = _shipped()
    for name, entry in manifest['files'].items():
        if not name.endswith('.zip'):
            continue
        target = load_target(os.path.join(DATA, name), resolution=64, channels=3)
        assert target.images.shape[0] == entry['images'] == manifest['split_images'][name], name
        assert not target.notes and target.labels.max() < len(paths.CATEGORIES)
    sizes = manifest['split_images']
    assert [sizes[f'near_shots{k}.zip'] for k in paths.SHOTS] == list(paths.SHOTS)
    assert sizes['near_test.zip'] >= paths.TEST_IMAGES and sizes['far_val.zip'] >= paths.VAL_IMAGES
    shots = [set(_codes(DATA, f'far_shots{k}.zip')) for k in paths.SHOTS]
    assert all(a < b for a, b in zip(shots, shots[1:]))
    groups = {s: {m['group'] for m in read_zip(os.path.join(DATA, f'far_{s}.zip'))[1].values()}
              for s in ('shots100', 'val', 'test')}
    assert len(groups['shots100']) == 100
    shot_groups, val, test = groups['shots100'], groups['val'], groups['test']
    assert not (shot_groups & val or shot_groups & test or val & test)


def test_content_key_joins_the_gender_forms_of_an_emoji():
    from fsgan.benchmarks.emoji.splits import content_key
    assert content_key('1F473-200D-2642-FE0F') == content_key('1F473-200D-2640-FE0F') == content_key('1F473')
    assert content_key('1F468-200D-1F527') == content_key('1F9D1-200D-1F527') == 'P-1F527'   # (man) mechanic
    assert content_key('1F468-200D-1F9B2') != content_key('1F468-200D-1F9B1')             # bald, curly hair
    assert content_key('1F1EE-1F1E9') != content_key('1F1F2-1F1E8')                       # two flags


def test_no_held_out_image_shares_content_with_a_shot_or_val_image():
    """Related groups (gender forms, emoji drawn alike) never sit on two sides of shots | val | test."""
    from fsgan.benchmarks.emoji.index import EmojiImage
    from fsgan.benchmarks.emoji.splits import same_content_components, target_splits
    groups = [f'1F4{i:02X}' for i in range(40)]
    groups += [f'{p}-200D-1F527' for p in ('1F468', '1F469', '1F9D1')]           # man, woman, person mechanic
    groups += ['1F1EE-1F1E9', '1F1F2-1F1E8']                                      # flags drawn alike
    images = [EmojiImage(g, g, 'Objects', g, g) for g in groups]
    same = same_content_components(groups, [{'1F1EE-1F1E9', '1F1F2-1F1E8'}])
    assert same['1F468-200D-1F527'] == same['1F9D1-200D-1F527'] and same['1F1EE-1F1E9'] == same['1F1F2-1F1E8']
    for seed in range(30):
        out = target_splits(images, (3, 6), 5, 10, seed, same_content=same)
        labels = {name: {same[c] for c in out[name]} for name in ('shots6', 'val', 'test')}
        assert not labels['shots6'] & labels['val'] and not labels['shots6'] & labels['test']
        assert not labels['val'] & labels['test']
        assert len(out['test']) >= 10 and len(out['val']) >= 5

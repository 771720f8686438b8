"""Glyph dataset format: the shipped target splits and a tiny fresh render."""

import hashlib
import io
import json
import os
import zipfile

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from fsgan.benchmarks.glyphs import data as mgd
from scripts.make_glyph_data import main as make_glyph_data_cli

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..')
DATA = os.path.join(ROOT, 'data', 'glyphs')
TARGETS = ('near', 'kannada', 'devanagari')
SHOTS = (5, 10, 25, 100)

# Fonts for the tiny render, with the Debian package that installs each one.
TINY_FONTS = {
    '/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf': 'fonts-dejavu-core',
    '/usr/share/fonts/opentype/urw-base35/Z003-MediumItalic.otf': 'fonts-urw-base35',
    '/usr/share/fonts/truetype/noto/NotoSansKannada-Regular.ttf': 'fonts-noto-core',
    '/usr/share/fonts/truetype/noto/NotoSansDevanagari-Regular.ttf': 'fonts-noto-core',
}




def read_zip(path):
    """-> (dataset.json labels list, meta dict, {fname: uint8 array}) after format checks."""
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        labels = json.loads(zf.read('dataset.json'))['labels']
        meta = json.loads(zf.read('meta.json'))
        pngs = sorted(n for n in names if n.endswith('.png'))
        assert sorted(f for f, _ in labels) == pngs, 'dataset.json must list exactly the PNG files'
        assert set(names) == set(pngs) | {'dataset.json', 'meta.json'}
        images = {}
        for i, (fname, label) in enumerate(labels):
            idx = f'{i:08d}'
            assert fname == f'{idx[:5]}/img{idx}.png'
            assert isinstance(label, int)
            img = Image.open(io.BytesIO(zf.read(fname)))
            assert img.mode == 'L' and img.size == (meta['resolution'],) * 2
            images[fname] = np.asarray(img)
    assert meta['num_images'] == len(labels) == len(meta['items'])
    assert meta['format'] == mgd.FORMAT and meta['channels'] == 1
    return labels, meta, images


def _hashes(images):
    return [hashlib.sha1(a.tobytes()).hexdigest() for a in images.values()]


@pytest.mark.parametrize('target', TARGETS)
def test_shipped_target_splits(target):
    """Nested shots, test >= 1000, val/test/shots pixel-disjoint, labels in the target script."""
    script = 'latin' if target == 'near' else target
    valid = set(mgd.class_labels(script))
    shot_hashes = []
    for k in SHOTS:
        labels, meta, images = read_zip(os.path.join(DATA, f'{target}_shots{k}.zip'))
        assert len(labels) == k and meta['split'] == f'shots{k}' and meta['script'] == script
        assert {lab for _, lab in labels} <= valid
        shot_hashes.append(_hashes(images))
    for small, big in zip(shot_hashes, shot_hashes[1:]):
        assert big[:len(small)] == small, 'smaller shot splits must be prefixes of larger ones'
    split_hashes = {'shots': set(shot_hashes[-1])}
    for split in ('val', 'test'):
        labels, meta, images = read_zip(os.path.join(DATA, f'{target}_{split}.zip'))
        assert {lab for _, lab in labels} <= valid
        split_hashes[split] = set(_hashes(images))
        assert len(split_hashes[split]) == len(labels), f'duplicate images inside {target}_{split}'
    assert len(split_hashes['test']) >= 1000
    assert not split_hashes['shots'] & split_hashes['val']
    assert not split_hashes['shots'] & split_hashes['test']
    assert not split_hashes['val'] & split_hashes['test']


def test_shipped_meta_records_fonts_and_versions():
    _, meta, images = read_zip(os.path.join(DATA, 'kannada_shots25.zip'))
    assert meta['raqm'] is True and meta['pillow']
    assert meta['fonts'] and all(len(f['sha256']) == 64 and f['package'] for f in meta['fonts'])
    assert [c['label'] for c in meta['label_map']] == list(range(len(meta['label_map'])))
    for arr in images.values():     # white glyph on black: ink present, border mostly background
        assert arr.max() >= 200 and np.median(np.concatenate([arr[0], arr[-1]])) == 0


def test_label_map_is_global_and_unique():
    classes = mgd.all_classes()
    texts = [(c['script'], c['text']) for c in classes]
    assert len(set(texts)) == len(texts)
    assert [c['text'] for c in classes[:62]] == mgd.LATIN and len(mgd.LATIN) == 62


@pytest.fixture(scope='module')
def tiny_fonts_root(tmp_path_factory):
    missing = sorted({pkg for path, pkg in TINY_FONTS.items() if not os.path.isfile(path)})
    if missing:
        pytest.skip(f'font packages not installed: {" ".join(missing)} (apt-get install -y {" ".join(missing)})')
    root = tmp_path_factory.mktemp('fonts')
    for path in TINY_FONTS:
        os.symlink(path, root / os.path.basename(path))
    return str(root)


def _render(fonts_root, outdir, seed=3, extra=()):
    args = ['--outdir', str(outdir), '--fonts-root', fonts_root, '--seed', str(seed), '--max-chars', '4',
            '--source-size', '12', '--source-test-size', '6', '--shots', '2,5', '--val-size', '4',
            '--test-size', '8', '--train-size', '3', *extra]
    res = CliRunner().invoke(make_glyph_data_cli, args)
    assert res.exit_code == 0, res.output + repr(res.exception)
    return res.output


def test_tiny_render_format_and_determinism(tiny_fonts_root, tmp_path):
    _render(tiny_fonts_root, tmp_path / 'a')
    _render(tiny_fonts_root, tmp_path / 'b')
    _render(tiny_fonts_root, tmp_path / 'c', seed=4, extra=['--datasets', 'kannada'])
    expected = ['source.zip', 'source_test.zip'] + [f'{t}_{s}.zip' for t in TARGETS
                                                    for s in ('shots2', 'shots5', 'val', 'test', 'train')]
    assert sorted(n for n in os.listdir(tmp_path / 'a') if n.endswith('.zip')) == sorted(expected)
    for name in expected:
        a, b = (tmp_path / d / name for d in 'ab')
        assert a.read_bytes() == b.read_bytes(), f'{name} differs between runs with the same seed'
        read_zip(a)
        assert os.path.isfile(tmp_path / 'a' / 'previews' / name.replace('.zip', '.png'))
    assert (tmp_path / 'a' / 'kannada_test.zip').read_bytes() != (tmp_path / 'c' / 'kannada_test.zip').read_bytes()

    fonts = {f['family'] for f in read_zip(tmp_path / 'a' / 'source.zip')[1]['fonts']}
    assert fonts == {'DejaVu Sans'}, 'held-out Z003 and Indic fonts must not enter the Latin source set'
    assert {f['family'] for f in read_zip(tmp_path / 'a' / 'near_test.zip')[1]['fonts']} == {'Z003'}

    _, _, test = read_zip(tmp_path / 'a' / 'kannada_test.zip')
    shots = _hashes(read_zip(tmp_path / 'a' / 'kannada_shots5.zip')[2])
    assert shots[:2] == _hashes(read_zip(tmp_path / 'a' / 'kannada_shots2.zip')[2])
    assert not set(shots) & set(_hashes(test))
    for arr in test.values():
        assert arr.max() >= 200 and (arr > 64).sum() >= 15, 'Kannada glyph rendered blank'


def test_kannada_syllables_are_shaped(tiny_fonts_root):
    """raqm must merge a consonant + vowel sign into one cluster (no dotted-circle placeholder)."""
    font = mgd._load_font(os.path.join(tiny_fonts_root, 'NotoSansKannada-Regular.ttf'), 48)
    joined = font.getbbox('ಕೊ', anchor='ls')
    apart = [font.getbbox(c, anchor='ls') for c in 'ಕೊ']
    assert joined[2] - joined[0] < sum(b[2] - b[0] for b in apart)


def test_dry_run_writes_nothing(tiny_fonts_root, tmp_path):
    out = _render(tiny_fonts_root, tmp_path / 'dry', extra=['--dry-run'])
    assert 'kannada_test.zip: 8 images' in out
    assert not (tmp_path / 'dry').exists()


@pytest.mark.parametrize('args', [['--resolution', '30'], ['--shots', '5,x'], ['--datasets', 'far'],
                                  ['--shots', '0'], ['--heldout-regex', '(']])
def test_bad_options_are_rejected(args, tmp_path):
    res = CliRunner().invoke(make_glyph_data_cli, ['--outdir', str(tmp_path), '--fonts-root', str(tmp_path), '--dry-run', *args])
    assert res.exit_code == 2 and f"Invalid value for '{args[0]}'" in res.output, res.output

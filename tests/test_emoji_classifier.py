"""Emoji classifier: shipped weights, accuracy on held-out real emoji, training, and its metrics (the category
metrics, from the category probe: tests/test_emoji_category_probe.py)."""
import json
import os
import shutil
import zipfile

import numpy as np
import PIL.Image
import pytest
import torch

from dnnlib.util import file_sha256
from fsgan.benchmarks.emoji import paths
from fsgan.benchmarks.emoji.classifier import (DEFAULT_PATH, STYLE_OF_VENDOR, STYLES, EmojiClassifier,
                                               default_config, load_emoji_classifier, read_emoji_zip,
                                               save_emoji_classifier)
from fsgan.benchmarks.emoji.classifier_train import augment, fit, train_emoji_classifier, zip_groups
from fsgan.benchmarks.emoji.data import VendorImages
from fsgan.benchmarks.emoji.images import png_to_rgb
from fsgan.benchmarks.emoji.index import EmojiImage
from metrics.images import ImageSet
from metrics.registry import MetricContext
from fsgan.evaluate import metric_registry as get_registry

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, paths.DATA_DIR)
TEST_ZIPS = ('noto_test.zip', 'near_test.zip', 'far_test.zip')

pytestmark = pytest.mark.usefixtures('one_thread')


def _zip(name):
    return os.path.join(DATA, name)


@pytest.fixture(scope='module')
def clf():
    return load_emoji_classifier(DEFAULT_PATH)


def test_shipped_files_match_their_config(clf):
    weights, config_path = DEFAULT_PATH, DEFAULT_PATH[:-3] + '.json'
    with open(config_path, encoding='utf-8') as f:
        config = json.load(f)
    assert config['weights_sha256'] == file_sha256(weights)
    assert os.path.getsize(weights) < 2 * 1024 * 1024
    assert config['styles'] == list(STYLES) and config['categories'] == list(paths.CATEGORIES)
    assert config['train']['command'].startswith('scripts/train_emoji_classifier.py')
    assert set(config['train']['data']['zips']) >= set(TEST_ZIPS)
    state = torch.load(weights, weights_only=True)
    assert all(isinstance(v, torch.Tensor) for v in state.values())
    assert clf.features(torch.zeros(2, 3, 64, 64, dtype=torch.uint8)).shape == (2, config['feature_dim'])


# Accuracy floors per test set (style, category), a little below the shipped classifier's figures:
# style 0.958 / 0.943 / 0.999 and category 0.845 / 0.780 / 0.780 on noto / near / far (data/emoji/README.md).
ACCURACY_FLOORS = {'noto_test.zip': (0.94, 0.83), 'near_test.zip': (0.93, 0.76), 'far_test.zip': (0.99, 0.76)}


@pytest.mark.parametrize('name', TEST_ZIPS)
def test_accuracy_on_held_out_real_emoji(clf, name):
    # Every image of the set (the first 100 of noto_test are harder than the rest).
    images, categories, meta = read_emoji_zip(_zip(name))
    style, category = clf.predict(images)
    expected_style = torch.tensor([STYLES.index(STYLE_OF_VENDOR[m['vendor']]) for m in meta])
    style_floor, category_floor = ACCURACY_FLOORS[name]
    assert len(images) >= 400
    assert float((style == expected_style).float().mean()) >= style_floor, name
    assert float((category == categories).float().mean()) >= category_floor, name


def test_inputs_are_checked_and_float_matches_uint8(clf):
    images = read_emoji_zip(_zip('near_shots10.zip'))[0]
    assert torch.allclose(clf.features(images), clf.features(images.float() / 127.5 - 1), atol=1e-5)
    with pytest.raises(ValueError, match='64x64'):
        clf.features(torch.zeros(2, 3, 32, 32, dtype=torch.uint8))
    with pytest.raises(ValueError, match='RGB'):
        clf.features(torch.zeros(2, 1, 64, 64, dtype=torch.uint8))


def test_altered_weights_are_refused(clf, tmp_path):
    path = str(tmp_path / 'copy.pt')
    save_emoji_classifier(clf, path)
    images = read_emoji_zip(_zip('far_shots5.zip'))[0]
    assert torch.equal(load_emoji_classifier(str(tmp_path / 'copy.json')).features(images), clf.features(images))
    with open(path, 'ab') as f:
        f.write(b'\0')
    with pytest.raises(ValueError, match='sha256'):
        load_emoji_classifier(path)


def test_augment_moves_content_and_keeps_the_background_white():
    x = torch.ones(4, 3, 64, 64)
    x[:, :, 16:48, 16:48] = -1                       # a black square in the middle
    gen = torch.Generator().manual_seed(0)
    small = augment(x, gen, zoom=(0.5, 0.5), shift_px=0, degrees=0, jitter=0, noise=0)
    assert small[:, :, 16:22, 16:22].min() > 0.99   # the square shrank to about 16x16 px around the centre
    assert small[:, :, 28:36, 28:36].max() < -0.99
    shifted = augment(x, torch.Generator().manual_seed(1), zoom=(1, 1), degrees=0, jitter=0, noise=0)
    assert not torch.allclose(shifted, x) and shifted[:, :, :2, :2].min() > 0.99


def _fake_vendor(zip_name, vendor, limit=None):
    """VendorImages made from a shipped zip, as data.load_vendors would give for those emoji."""
    with zipfile.ZipFile(_zip(zip_name)) as zf:
        meta = json.loads(zf.read('meta.json'))
        names = sorted(meta)[:limit]
        raw = {meta[n]['unified']: zf.read(n) for n in names}
    records = {meta[n]['unified']: EmojiImage(meta[n]['unified'], meta[n]['group'], meta[n]['category'],
                                              meta[n]['short_name'], n) for n in names}
    return VendorImages(vendor, records, raw, png_to_rgb)


def test_training_holds_out_test_groups_and_writes_loadable_weights(tmp_path):
    # A small stand-in data folder: shots5/10 play the test sets, shots25 the validation set.
    data_dir = tmp_path / 'data'
    data_dir.mkdir()
    for dst, src in (('noto_test.zip', 'near_shots5.zip'), ('near_test.zip', 'near_shots10.zip'),
                     ('far_test.zip', 'far_shots10.zip'), ('near_val.zip', 'near_shots25.zip')):
        shutil.copy(_zip(src), data_dir / dst)
    vendors = {'google': _fake_vendor('noto_test.zip', 'google', limit=60),
               'twitter': _fake_vendor('near_shots100.zip', 'twitter'),
               'openmoji': _fake_vendor('far_shots100.zip', 'openmoji')}
    test_groups = zip_groups([_zip('near_shots10.zip')])
    val_groups = zip_groups([_zip('near_shots25.zip')]) - test_groups
    records = [r for v in vendors.values() for r in v.records.values()]
    expected = sum(r.group not in test_groups | val_groups for r in records)
    expected_val = sum(r.group in val_groups for r in records)
    out = str(tmp_path / 'clf.pt')
    config = train_emoji_classifier(out, data_dir=str(data_dir), vendors=vendors, epochs=1, batch_size=32,
                                    command='test', log=lambda *a: None)
    assert config['train']['num_train'] == expected and 0 < expected < 260
    assert config['train']['num_val'] == expected_val and expected_val >= 2 * 15   # 15 groups, near and far
    assert set(config['eval']) == {'noto_test.zip', 'near_test.zip', 'far_test.zip', 'near_val.zip'}
    model = load_emoji_classifier(out)
    assert model.predict(read_emoji_zip(_zip('near_shots5.zip'))[0])[0].shape == (5,)


def test_fit_is_seeded():
    images, categories, _ = read_emoji_zip(_zip('far_shots25.zip'))
    styles = torch.full((len(images),), 2)
    weights = []
    for _ in range(2):
        torch.manual_seed(0)
        model = EmojiClassifier(default_config())
        fit(model, images, styles, categories, epochs=1, batch_size=16, seed=3, log=lambda *a: None)
        weights.append(model.net.embed[1].weight.clone())
    assert torch.equal(weights[0], weights[1])


# ----- metrics -----

def _context(gen, **sets):
    return MetricContext(gen=gen, **sets)


def _run(name, ctx):
    return get_registry()[name].fn(ctx)


def _write_folder(folder, images):
    folder.mkdir()
    for i, im in enumerate(images):
        PIL.Image.fromarray(im).save(folder / f'{i:06d}.png')
    return ImageSet(folder)


def test_emoji_style_finds_the_target_vendor():
    near, far = ImageSet(_zip('near_test.zip'), limit=60), ImageSet(_zip('far_test.zip'), limit=60)
    shots = ImageSet(_zip('near_shots10.zip'))
    res = _run('emoji_style', _context(near, shots=shots))
    assert res['options']['target_style'] == 'twemoji' and res['value'] >= 0.9
    assert res['value'] == res['values']['style_twemoji']
    assert sum(res['values'][f'style_{s}'] for s in STYLES) == pytest.approx(1.0)
    res = _run('emoji_style', _context(far, shots=shots))
    assert res['value'] <= 0.1 and res['values']['style_openmoji'] >= 0.9
    res = _run('emoji_style', _context(far, data=ImageSet(_zip('far_val.zip'))))
    assert res['options']['target_from'] == 'data' and res['value'] >= 0.9


def test_emoji_fd_orders_domains():
    test = ImageSet(_zip('near_test.zip'), limit=150)
    same = _run('emoji_fd', _context(test, data=test))
    near = _run('emoji_fd', _context(ImageSet(_zip('near_val.zip')), data=test, shots=ImageSet(_zip('near_shots25.zip'))))
    far = _run('emoji_fd', _context(ImageSet(_zip('far_val.zip')), data=test))
    assert abs(same['value']) < 1e-4 * far['value']          # zero up to the rounding of scipy's sqrtm
    assert 0 < near['value'] < far['value'] / 2
    assert near['values']['fd_shots'] > 0 and near['values']['num_shots'] == 25


def test_metrics_refuse_other_resolutions(tmp_path):
    small = _write_folder(tmp_path / 'small', [np.zeros((32, 32, 3), np.uint8)] * 2)
    with pytest.raises(ValueError, match='64x64'):
        _run('emoji_fd', _context(small, data=ImageSet(_zip('near_shots5.zip'))))


# ----- scripts/calc_metrics.py --source -----

@pytest.fixture(scope='module')
def calc_metrics():
    import importlib.util
    spec = importlib.util.spec_from_file_location('calc_metrics_emoji', os.path.join(ROOT, 'scripts', 'calc_metrics.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


@pytest.fixture(scope='module')
def altered_p2(tmp_path_factory, p2_path):
    """p2.pkl (64x64 RGB) with noise added to its G_ema's synthesis weights: a stand-in adapted network."""
    import fsgan
    from fsgan.export import save_snapshot

    net = fsgan.load_network(p2_path)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in net['G_ema'].synthesis.parameters():
            if p.numel() > 1:
                p.add_(0.5 * p.std() * torch.randn(p.shape, generator=gen))
    path = str(tmp_path_factory.mktemp('nets') / 'altered.pkl')
    save_snapshot(path, net['G'], net['D'], net['G_ema'])
    return path


def _cli(main, args):
    from click.testing import CliRunner
    return CliRunner().invoke(main, [str(a) for a in args])


def test_calc_metrics_source_draws_the_same_latents(calc_metrics, p2_path, altered_p2, tmp_path):
    out = tmp_path / 'm.jsonl'
    common = ['--num', 8, '--trunc', 0.8, '--device', 'cpu', '--no-progress', '--out', out]
    result = _cli(calc_metrics, ['--network', p2_path, '--source', p2_path, '--metrics', 'emoji_content'] + common)
    assert result.exit_code == 0, result.output
    rec = json.loads(out.read_text().splitlines()[-1])
    assert rec['value'] == 1.0 and rec['options']['source_sha256'] == rec['network_sha256']

    result = _cli(calc_metrics, ['--network', altered_p2, '--source', p2_path, '--metrics', 'emoji_content,emoji_style',
                                 '--shots-dir', _zip('near_shots5.zip'), '--gen-out', tmp_path / 'gen'] + common)
    assert result.exit_code == 0, result.output
    rec = [json.loads(line) for line in out.read_text().splitlines()][-2]
    # the same number from images drawn here: the source network for seeds 0..7 at psi 0.8, categories from the
    # probe on their Inception features
    import fsgan
    from fsgan.benchmarks.emoji.category_probe import load_category_probe
    from fsgan.evaluate import write_samples
    from metrics.inception import InceptionDetector
    write_samples(fsgan.load_network(p2_path)['G_ema'], str(tmp_path / 'src'), range(8), trunc=0.8)
    probe, detector = load_category_probe(), InceptionDetector()
    gen_cat = probe.predict(detector.features_of(ImageSet(tmp_path / 'gen')))
    src_cat = probe.predict(detector.features_of(ImageSet(tmp_path / 'src')))
    assert rec['metric'] == 'emoji_content' and rec['options']['source'] == p2_path
    assert rec['value'] == pytest.approx(float((gen_cat == src_cat).double().mean()))


@pytest.mark.parametrize('args, message', [
    (['--gen-dir', '{near}', '--source', '{p2}', '--metrics', 'emoji_content'], '--source needs --network'),
    (['--network', '{p2}', '--metrics', 'emoji_content'], 'needs --source'),
    (['--gen-dir', '{near}', '--metrics', 'emoji_fd'], 'needs --data or --shots-dir'),
    (['--network', '{p1}', '--metrics', 'emoji_fd', '--data', '{near}', '--num', '2'], '64x64'),
])
def test_calc_metrics_emoji_errors(calc_metrics, p1_path, p2_path, args, message):
    fill = dict(near=_zip('near_shots5.zip'), p1=p1_path, p2=p2_path)
    result = _cli(calc_metrics, [a.format(**fill) for a in args] + ['--device', 'cpu', '--no-progress'])
    assert result.exit_code != 0 and message in result.output, result.output
    assert 'Traceback' not in result.output


def test_emoji_metrics_declare_the_networks_their_numbers_depend_on(tmp_path):
    """Caches of metric numbers (compare.py) key them by these files' contents (metrics.registry.weights_digest)."""
    from dnnlib.util import file_sha256
    from fsgan import evaluate
    from fsgan.benchmarks.emoji.category_probe import DEFAULT_PATH as PROBE_PATH
    from fsgan.benchmarks.emoji.classifier import DEFAULT_PATH as CLASSIFIER_PATH
    from metrics.registry import MetricSpec, weights_digest
    registry = evaluate.metric_registry()
    digest = weights_digest(['fid', 'emoji_fd', 'emoji_style', 'emoji_content', 'emoji_categories'], registry)
    clf, probe = {'emoji_classifier.pt': file_sha256(CLASSIFIER_PATH)}, {'emoji_category_probe.pt': file_sha256(PROBE_PATH)}
    assert digest == dict(emoji_fd=clf, emoji_style=clf, emoji_content=probe, emoji_categories=probe)
    assert set(weights_digest(['glyph_fgd'], registry)['glyph_fgd']) == {'glyph_classifier.pt'}
    fake = {'m': MetricSpec('m', None, 'help', weights=(str(tmp_path / 'gone.pt'),))}
    assert weights_digest(['m'], fake) == {'m': {'gone.pt': None}}

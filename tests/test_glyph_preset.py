"""Glyph-classifier metrics and `compare.py --preset glyphs` (on a tiny stand-in source network)."""
from fsgan import run_setup
import csv
import json
import os

import pytest
import torch
from click.testing import CliRunner

from fsgan.export import save_snapshot
from fsgan.benchmarks.glyphs.classifier import fgd_between, load_dataset_zip, load_glyph_classifier
from fsgan.benchmarks.glyphs.metrics import glyph_metrics
from fsgan import compare
from scripts import compare as compare_cli
from fsgan.benchmarks import preset
from fsgan.benchmarks.glyphs import GLYPHS
from fsgan.benchmarks.glyphs.preset import BENCHMARK
from training import networks


@pytest.fixture(scope='module')
def clf():
    return load_glyph_classifier(os.path.join(GLYPHS, 'glyph_classifier.pt'))


def copies_fgd_is_zero(clf, shots):
    """10 shots against themselves: FGD 0 even though their 128-d covariance is singular."""
    return abs(glyph_metrics(clf, shots, shots)['fgd_shots']) < 1e-6


def test_glyph_metrics_on_real_glyphs(clf):
    test, _ = load_dataset_zip(os.path.join(GLYPHS, 'kannada_test.zip'), limit=400)
    shots, _ = load_dataset_zip(os.path.join(GLYPHS, 'kannada_shots10.zip'))
    latin, _ = load_dataset_zip(os.path.join(GLYPHS, 'near_test.zip'), limit=200)
    real = glyph_metrics(clf, test[:200], shots, test[200:], expect='kannada')
    assert real['script_share'] > 0.95 and real['classes_covered'] > 40 and real['classes_total'] > 60
    assert real['memorised_glyph'] < 0.1 and real['diversity_glyph'] > 0
    other = glyph_metrics(clf, latin, shots, test[200:], expect='kannada')
    assert other['script_share'] < 0.05 and other['fgd_test'] > 3 * real['fgd_test']
    assert real['fgd_test'] == pytest.approx(fgd_between(clf, test[:200], test[200:]), rel=1e-9)
    assert real['fgd_shots'] == pytest.approx(fgd_between(clf, test[:200], shots), rel=1e-9)
    assert copies_fgd_is_zero(clf, shots)
    # Copies of the shots are memorised in both spaces and have no diversity beyond the shots.
    copies = glyph_metrics(clf, shots.repeat(5, 1, 1, 1), shots, test[200:], expect='kannada')
    assert copies['memorised_glyph'] == 1.0 and copies['memorised_pixel'] == 1.0
    assert copies['diversity_glyph'] == pytest.approx(0, abs=1e-3)
    no_test = glyph_metrics(clf, test[:50], shots)
    assert no_test['memorised_glyph'] is None and no_test['fgd_test'] is None and no_test['fgd_shots'] > 0
    assert glyph_metrics(clf, test[:50], shots[:1], test[200:])['memorised_glyph'] is None
    with pytest.raises(ValueError, match='unknown script'):
        glyph_metrics(clf, test[:10], expect='klingon')


@pytest.fixture(scope='module')
def tiny_source(tmp_path_factory):
    """A 1-channel 32x32 StyleGAN2 with few channels, saved like a pretrained source."""
    torch.manual_seed(0)
    kw = dict(z_dim=16, w_dim=16, c_dim=0, img_resolution=32, img_channels=1,
              mapping_kwargs=dict(num_layers=1), synthesis_kwargs=dict(channel_base=256, channel_max=8))
    G = networks.Generator(**kw)
    D = networks.Discriminator(c_dim=0, img_resolution=32, img_channels=1, channel_base=256, channel_max=8,
                               epilogue_kwargs=dict(mbstd_group_size=4))
    path = tmp_path_factory.mktemp('source') / 'tiny.pkl'
    save_snapshot(str(path), G, D, G)
    return str(path)


def test_preset_runs_aggregates_and_resumes(tiny_source, tmp_path, one_thread):
    outdir = str(tmp_path / 'bench')
    kw = dict(methods='fsgan,tgan@lr=0.01', targets=('far',), shots=(5,), seeds=(0, 1), kimg=0.008, num=24,
              num_test=40, source=tiny_source, progress=False)
    rows = preset.run_preset(BENCHMARK, outdir, **kw)
    assert [r['method'] for r in rows] == ['fsgan', 'tgan@lr=0.01', 'real']
    by = {r['method']: r for r in rows}
    for r in rows:
        assert r['seeds'] == 2 and r['target'] == 'far' and r['shots'] == 5
        assert r['fgd_test_mean'] > 0 and 0 <= r['memorised_glyph_mean'] <= 1
        assert r['method'] == 'real' or r['fgd_test_std'] >= 0
        assert r['diversity_glyph_mean'] > 0 and (r['method'] == 'real' or r['trainable_params'] > 0)
    # the reference row: 24 Kannada validation images as samples, the same in both seeds; the classifier reads them
    # as Kannada (the far target's script)
    assert by['real']['fgd_test_std'] is None and by['real']['script_share_mean'] >= 0.9   # no spread: same images
    assert by['fsgan']['trainable_params'] < by['tgan@lr=0.01']['trainable_params']
    lr = [f for f in os.listdir(os.path.join(outdir, 'far-5shot-seed1', 'runs', 'tgan@lr=0.01'))]
    opts = os.path.join(outdir, 'far-5shot-seed1', 'runs', 'tgan@lr=0.01', lr[0], 'training_options.json')
    assert '"lr": 0.01' in open(opts).read()
    with open(os.path.join(outdir, 'benchmark.csv')) as f:
        table = list(csv.DictReader(f))
    assert len(table) == 3 and float(table[0]['fgd_test_mean']) > 0
    md = open(os.path.join(outdir, 'benchmark.md')).read()
    assert '### far, 5 shots (2 seeds)' in md and md.count('±') >= 2 * len(BENCHMARK.columns)
    assert os.path.isfile(os.path.join(outdir, 'figure-far-5shot.png'))
    # Running again trains nothing: every cell is done and its metrics are cached.
    ck = os.path.join(outdir, 'far-5shot-seed0', 'runs', 'fsgan')
    ck = os.path.join(ck, os.listdir(ck)[0], 'checkpoint.pt')
    mtime = os.stat(ck).st_mtime_ns
    again = preset.run_preset(BENCHMARK, outdir, **kw)
    assert os.stat(ck).st_mtime_ns == mtime
    assert [r['fgd_test_mean'] for r in again] == [r['fgd_test_mean'] for r in rows]


def test_preset_aggregate_mean_std():
    rows = {('near', 10, s): [dict(method='fsgan', trainable_params=7, fgd_test=v, classes_covered=None)]
            for s, v in enumerate((1.0, 3.0))}
    (r,) = preset.aggregate(BENCHMARK, rows)
    assert r['fgd_test_mean'] == 2.0 and r['fgd_test_std'] == pytest.approx(2 ** 0.5)   # sample std, ddof 1
    assert r['classes_covered_mean'] is None and r['classes_covered_std'] is None and r['fgd_test_n'] == 2
    rows[('near', 10, 2)] = [dict(method='fsgan', trainable_params=7, fgd_test=None, classes_covered=None)]
    (r,) = preset.aggregate(BENCHMARK, rows)               # a seed without the metric: counted, and said so
    assert r['seeds'] == 3 and r['fgd_test_n'] == 2 and r['fgd_test_mean'] == 2.0
    column = next(c for c in BENCHMARK.columns if c.key == 'fgd_test')
    assert preset.seed_cell(column, r).endswith('(2 of 3)')
    (one,) = preset.aggregate(BENCHMARK, {('near', 10, 0): rows[('near', 10, 0)]})
    assert one['fgd_test_std'] is None and '±' not in preset.seed_cell(column, one)
    assert [c[:2] for c in preset.cells(BENCHMARK, ('near', 'far'), (5, 10), (0,))] == [('near', 5), ('near', 10),
                                                                                     ('far', 5), ('far', 10)]


@pytest.mark.parametrize('args, message', [
    (['--preset', 'glyphs', '--source', 'x.pkl'], 'Invalid value for --source: x.pkl: no such file'),
    (['--preset', 'glyphs', '--target-dir', '.'], '--preset glyphs sets --target-dir itself; drop it'),
    (['--preset', 'glyphs', '--shots', '5', '--seed', '3', '--batch', '4'],
     '--preset glyphs sets --shots, --batch, --seed itself; drop them'),
    (['--preset', 'glyphs', '--preset-shots', '7'], '--preset-shots: glyphs has no near split of 7 shots; choose from'),
    (['--preset-shots', '5', '--parallel', '3'], '--preset-shots, --parallel only apply with --preset'),
    (['--preset', 'glyphs', '--preset-targets', 'mars'], '--preset-targets: unknown mars'),
    (['--preset', 'glyphs', '--preset-shots', '5,x'], "--preset-shots '5,x': expected a comma-separated list"),
    (['--preset', 'glyphs', '--methods', 'fsgan@lr=abc'], "lr must be a finite number > 0"),
    (['--preset', 'glyphs', '--methods', 'fsgan@bogus=1'], "--method-opt bogus: method fsgan has options"),
])
def test_preset_bad_arguments(tmp_path, args, message, monkeypatch):
    import dataclasses
    from fsgan.benchmarks.glyphs import preset as glyph_preset
    # the checks must not depend on the shipped source
    monkeypatch.setattr(glyph_preset, 'BENCHMARK', dataclasses.replace(BENCHMARK, source=__file__))
    res = CliRunner().invoke(compare_cli.main, ['--outdir', str(tmp_path / 'x')] + args)
    assert res.exit_code != 0 and message in res.output, res.output
    assert 'Traceback' not in res.output


def test_parse_method():
    assert compare.parse_method('fsgan') == ('fsgan', {}, {})
    assert compare.parse_method('ssgan@lr=0.002') == ('ssgan', {'lr': 0.002}, {})
    assert compare.parse_method('fsgan@adapt_torgb=true@lr=0.01') == ('fsgan', {'lr': 0.01}, {'adapt_torgb': True})
    assert compare.parse_method('tgan@gamma=5@pl_weight=0@style_mixing=0@mode_seeking=1') == (
        'tgan', {'gamma': 5.0, 'pl_weight': 0.0, 'style_mixing': 0.0, 'mode_seeking': 1.0}, {})
    for bad, message in (('fsgan@lr=-1', 'lr must be'), ('fsgan@kimg=3', 'method fsgan has options'),
                         ('fsgan@lr=', 'lr must be'), ('fsgan@torgb', 'expected METHOD'),
                         ('fsgan@style_mixing=2', 'style_mixing must be'), ('fsgan@gamma=-1', 'gamma must be'),
                         ('fsgan@lr=nan', 'lr must be'), ('fsgan@gamma=inf', 'gamma must be'),
                         ('fsgan@style_mixing=nan', 'style_mixing must be'), ('fsgan@lr=1e400', 'lr must be')):
        with pytest.raises(Exception, match=message):
            compare.parse_method(bad)


def test_train_options_reach_the_training_config(p1_path, target_dir, tmp_path, monkeypatch):
    """Comparison-wide training options apply to every row; a row's own @KEY=VALUE wins."""
    import fsgan.run
    seen = {}
    monkeypatch.setattr(fsgan.run, 'run_training', lambda c, progress=True: seen.setdefault(c.method, c))
    cfg = compare.setup_compare(str(tmp_path / 'cmp'), source=p1_path, target_dir=target_dir,
                                methods='fsgan,tgan@gamma=3@mode_seeking=1', kimg=0.004,
                                train_options={'gamma': 5, 'pl_weight': 0, 'style_mixing': 0})
    assert cfg.settings['train'] == {'gamma': 5.0, 'pl_weight': 0.0, 'style_mixing': 0.0}
    for name, _ in cfg.entries:
        compare.train_method(cfg, name, progress=False)
    assert (seen['fsgan'].gamma, seen['fsgan'].pl_weight, seen['fsgan'].style_mixing) == (5, 0, 0)
    assert 'mode_seeking' not in seen['fsgan'].losses and seen['fsgan'].lr == 0.003
    assert (seen['tgan'].gamma, seen['tgan'].pl_weight, seen['tgan'].losses['mode_seeking']['weight']) == (3, 0, 1)
    with pytest.raises(ValueError, match='unknown kimg'):
        compare.setup_compare(str(tmp_path / 'x'), source=p1_path, target_dir=target_dir, train_options={'kimg': 1})
    with pytest.raises(ValueError, match='gamma must be'):
        compare.setup_compare(str(tmp_path / 'x'), source=p1_path, target_dir=target_dir,
                              train_options={'gamma': float('nan')})


def test_resume_refuses_dropped_train_options(p1_path, target_dir, tmp_path):
    """A comparison made with training options is not continued without them (nor the other way round)."""
    with_opts = compare.setup_compare(str(tmp_path / 'cmp'), source=p1_path, target_dir=target_dir, methods='fsgan',
                                      kimg=0.004, train_options={'gamma': 5})
    compare.load_state(with_opts)
    without = compare.setup_compare(str(tmp_path / 'cmp'), source=p1_path, target_dir=target_dir, methods='fsgan',
                                    kimg=0.004)
    with pytest.raises(compare.CompareError, match="train: {'gamma': 5.0} there, None now"):
        compare.load_state(without)


def test_preset_uses_the_source_regularisation(tmp_path):
    reg = preset.source_regularisation(BENCHMARK.source)
    with open(os.path.join(GLYPHS, 'source_glyph32.json')) as f:
        options = json.load(f)['training_options']
    keys = ('gamma', 'pl_weight', 'style_mixing', 'mode_seeking', 'mode_seeking_hinge')
    assert reg == {k: float(options[k]) for k in keys}
    cfg = preset.cell_config(BENCHMARK, str(tmp_path), 'far', 10, 0, methods='fsgan')
    assert cfg.settings['train'] == reg
    assert preset.source_regularisation(str(tmp_path / 'custom.pkl')) == {}
    (tmp_path / 'old.json').write_text(json.dumps({'training_options': {'gamma': 2, 'pl_weight': 0}}))
    assert preset.source_regularisation(str(tmp_path / 'old.pkl')) == {'gamma': 2.0, 'pl_weight': 0.0}
    (tmp_path / 'hinged.json').write_text(json.dumps({'training_options': {'mode_seeking': 2,
                                                                           'mode_seeking_hinge': True}}))
    hinged = preset.source_regularisation(str(tmp_path / 'hinged.pkl'))
    assert hinged == {'mode_seeking': 2.0, 'mode_seeking_hinge': 1.0}
    c = run_setup.setup_training_config(str(tmp_path), device='cpu', **hinged)  # as the preset and the demo pass it
    assert c.losses['mode_seeking'] == dict(weight=2.0, hinge=True)
    (tmp_path / 'bad.json').write_text('{"training_options": ')
    with pytest.raises(ValueError, match='bad.json'):
        preset.source_regularisation(str(tmp_path / 'bad.pkl'))

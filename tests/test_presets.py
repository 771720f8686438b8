"""Benchmark presets (fsgan.benchmarks.preset): the emoji preset's grid, parallel runs, resume, and the CLI."""
import csv
import dataclasses
import json
import os
import re

import pytest
from click.testing import CliRunner

from dnnlib import EasyDict

from fsgan import compare
from fsgan.benchmarks import PRESET_MODULES, benchmark
from fsgan.benchmarks import preset
from fsgan.benchmarks.emoji import preset as emoji_preset
from fsgan.export import AdapterError
from scripts import compare as compare_cli
from tests.conftest import save_tiny_rgb64

EMOJI = emoji_preset.BENCHMARK


@pytest.fixture(scope='module')
def tiny_emoji_source(tmp_path_factory):
    """A tiny 64x64 RGB source with a grouped regularisation record, as training_options.json is written today."""
    record = {'training_options': {'loss': {'gamma': 0.1, 'pl_weight': 0.0, 'style_mixing': 0.0}}}
    return save_tiny_rgb64(tmp_path_factory.mktemp('emoji_source') / 'tiny.pkl', 0, record)


def small(source):
    """The emoji benchmark with a tiny source, a few samples and the emoji metrics (content preservation reads
    Inception features; FID and the other Inception metrics are covered by tests/test_tools_compare.py and the
    demo's test)."""
    return dataclasses.replace(EMOJI, source=source, num=16, num_test=24,
                               metrics=('emoji_fd', 'emoji_style', 'emoji_content'),
                               table=('emoji_fd', 'emoji_style', 'emoji_content'))


def test_emoji_preset_grid_follows_the_report_scope():
    every = EMOJI.methods[10].split(',')
    assert every[:4] == ['fsgan', 'tgan', 'freezed', 'ssgan'] and set(every) == set(compare.METHODS)
    assert EMOJI.methods[5] == EMOJI.methods[25] == 'fsgan,tgan,freezed'
    assert EMOJI.protocol == 'paper' and EMOJI.kimg is None
    assert sorted(PRESET_MODULES) == ['emoji', 'glyphs'] and benchmark('emoji') is EMOJI
    cfg = preset.cell_config(dataclasses.replace(EMOJI, source=__file__), '/tmp/x', 'far', 5, 1)
    assert cfg.settings['kimg'] == 16 and cfg.settings['tick'] == 8 and cfg.settings['protocol'] == 'paper'
    assert [n for n, _ in cfg.entries] == ['fsgan', 'tgan', 'freezed']
    assert cfg.settings['target_dir'].endswith(os.path.join('data', 'emoji', 'far_shots5.zip'))
    assert cfg.metric_settings['test_dir'].endswith('far_test.zip') and cfg.metric_settings['num_test'] == 0
    assert cfg.metric_settings['metrics'] == list(EMOJI.metrics)
    assert cfg.reference.endswith(os.path.join('data', 'emoji', 'far_val.zip'))   # the 'real' row
    ten = preset.cell_config(dataclasses.replace(EMOJI, source=__file__), '/tmp/x', 'near', 10, 0, split='val')
    assert ten.settings['kimg'] == 20 and len(ten.entries) == len(compare.METHODS)
    assert ten.metric_settings['test_dir'].endswith('near_val.zip') and ten.reference is None


def test_source_regularisation_reads_grouped_records(tiny_emoji_source, tmp_path):
    assert preset.source_regularisation(tiny_emoji_source) == {'gamma': 0.1, 'pl_weight': 0.0, 'style_mixing': 0.0}
    # A snapshot inside a scripts/train.py run folder: that run's own options.
    run = tmp_path / '00000-scratch-emoji64'
    run.mkdir()
    (run / 'training_options.json').write_text(json.dumps({'loss': {'gamma': 0.2, 'pl_weight': 2.0}}))
    snapshot = run / 'network-snapshot-000010.000.pkl'
    snapshot.write_bytes(b'')
    assert preset.source_regularisation(str(snapshot)) == {'gamma': 0.2, 'pl_weight': 2.0}
    (run / 'training_options.json').write_text('[1, 2]')
    with pytest.raises(ValueError, match='training_options.json: not a source description'):
        preset.source_regularisation(str(snapshot))
    assert preset.source_regularisation(str(tmp_path / 'alone.pkl')) == {}


def cell_numbers(outdir, cell):
    with open(os.path.join(outdir, cell, 'metrics.csv')) as f:
        return {r['method']: r for r in csv.DictReader(f)}


@pytest.mark.slow
def test_emoji_preset_in_parallel_matches_serial_and_resumes(tiny_emoji_source, tmp_path, one_thread):
    bench = small(tiny_emoji_source)
    kw = dict(methods='fsgan,tgan', targets=('near',), shots=(5,), seeds=(0, 1), kimg=0.008, progress=False)
    outdir = str(tmp_path / 'par')
    # Train only (as on a device without the metrics' weights): every run trains in a worker, nothing is measured.
    assert preset.run_preset(bench, outdir, parallel=2, threads=1, train_only=True, **kw) is None
    assert sorted(os.listdir(os.path.join(outdir, 'logs'))) == sorted(
        f'near-5shot-seed{s}-{m}.log' for s in (0, 1) for m in ('fsgan', 'tgan'))
    assert not os.path.exists(os.path.join(outdir, 'near-5shot-seed0', 'metrics.csv'))
    state = json.load(open(os.path.join(outdir, 'near-5shot-seed1', compare.STATE_FILE)))
    assert all(state['methods'][m]['done'] for m in ('fsgan', 'tgan'))
    cell = os.path.join(outdir, 'near-5shot-seed0')
    ck = os.path.join(cell, 'runs', 'tgan')
    ck = os.path.join(ck, os.listdir(ck)[0], 'checkpoint.pt')
    mtime = os.stat(ck).st_mtime_ns
    rows = preset.run_preset(bench, outdir, parallel=2, threads=1, **kw)   # measures; trains nothing again
    assert os.stat(ck).st_mtime_ns == mtime
    assert [r['method'] for r in rows] == ['fsgan', 'tgan', 'real']
    for r in rows[:2]:
        assert r['seeds'] == 2 and r['emoji_fd_test_mean'] > 0 and 'fid_test_mean' not in r
        assert 0 <= r['style_share_mean'] <= 1 and 0 <= r['content_mean'] <= 1
    # The reference row: 16 images of near_val (as many as the samples, so emoji-FD too), the same in each seed;
    # real Twemoji images are called Twemoji; no latent, so no content preservation.
    real = rows[2]
    assert real['seeds'] == 2 and real['emoji_fd_test_mean'] > 0 and real['emoji_fd_test_std'] is None
    assert real['style_share_mean'] >= 0.75 and real['content_mean'] is None
    logs = sorted(os.listdir(os.path.join(outdir, 'logs')))
    assert logs == sorted(f'near-5shot-seed{s}-{m}.log' for s in (0, 1) for m in ('fsgan', 'tgan', 'measure'))
    assert len(os.listdir(os.path.join(cell, compare.SOURCE_SAMPLES))) == bench.num + 1  # + its stamp
    md = open(os.path.join(outdir, 'benchmark.md')).read()
    assert md.startswith('Emoji benchmark: source ') and 'protocol paper' in md and 'gamma 0.1' in md
    assert '### near, 5 shots (2 seeds)' in md and 'Content preserved' in md and '\n| real |' in md
    assert "real: the target's validation split" in md and 'content preservation needs a latent' in md
    assert not re.search(r'^\| real \|.*±', md, re.M)          # the same images in every seed: no spread shown
    assert '\nCommand: `' in md and '### Where the runs trained' in md
    assert re.search(r'^- cpu .*, 1 threads: 4 runs$', md, re.M), md   # 2 seeds x 2 methods, 1 thread each
    # The same cell trained and measured in this process gives the same numbers.
    serial = str(tmp_path / 'serial')
    preset.run_preset(bench, serial, **dict(kw, seeds=(0,)))
    par, ser = cell_numbers(outdir, 'near-5shot-seed0'), cell_numbers(serial, 'near-5shot-seed0')
    keys = ('emoji_fd_test', 'emoji_fd_shots', 'style_share', 'content', 'trainable_params')
    assert all(par['fsgan'][k] for k in keys)
    assert {m: [par[m][k] for k in keys] for m in par} == {m: [ser[m][k] for k in keys] for m in ser}
    # Running again trains and measures nothing.
    again = preset.run_preset(bench, outdir, parallel=2, threads=1, **kw)
    assert os.stat(ck).st_mtime_ns == mtime
    assert [r['emoji_fd_test_mean'] for r in again] == [r['emoji_fd_test_mean'] for r in rows]


def test_an_unfinished_run_of_a_cell_is_continued(tiny_emoji_source, tmp_path, one_thread, capsys):
    bench = small(tiny_emoji_source)
    cfg = preset.cell_config(bench, str(tmp_path), 'far', 5, 0, methods='fsgan', kimg=0.004)
    compare.load_state(cfg)
    run_dir = compare.train_method(cfg, 'fsgan', progress=False)
    opts_path = os.path.join(run_dir, 'training_options.json')
    opts = json.load(open(opts_path))
    from fsgan.run import run_kimg
    from fsgan.run_options import load_run_options
    done = run_kimg(run_dir, load_run_options(run_dir))   # one batch of 32 (paper protocol) is past 0.004
    opts['run']['kimg'] = 2 * done                        # as if the run had been killed half-way
    with open(opts_path, 'w') as f:
        json.dump(opts, f)
    plan = preset.plan_preset(bench, str(tmp_path), targets=('far',), shots=(5,), seeds=(0, 1), methods='fsgan',
                              kimg=0.004)
    assert plan[0].startswith(f'--dry-run: preset emoji in {tmp_path}: 2 cells, 2 runs (1 partial, 1 pending); '
                              f'{2 * done - done + 0.004:g} kimg left to train'), plan
    assert [line.split() for line in plan[1:]] == [
        ['far-5shot-seed0', '(0.004', 'kimg', 'per', 'run):'], ['fsgan', 'partial', f'{done:g}/{2 * done:g}', 'kimg',
                                                               run_dir],
        ['far-5shot-seed1', '(0.004', 'kimg', 'per', 'run):'], ['fsgan', 'pending', '0/0.004', 'kimg']]
    assert not os.path.exists(os.path.join(tmp_path, 'far-5shot-seed1'))
    assert compare.train_method(cfg, 'fsgan', progress=False) == run_dir
    assert f'[fsgan] continuing {run_dir}' in capsys.readouterr().out
    assert run_kimg(run_dir, load_run_options(run_dir)) >= 2 * done
    # Each session is recorded: the report can say where the run trained, and from which kimg.
    [place] = preset.training_places({('far', 5, 0): cfg})
    assert place['cell'] == 'far-5shot-seed0' and place['method'] == 'fsgan'
    assert place['kimg'] == [0.0, done] and len(place['where']) == 1 and place['where'][0].startswith('cpu ')
    assert compare.train_method(cfg, 'fsgan', progress=False) == run_dir
    assert f'[fsgan] {run_dir} is finished' in capsys.readouterr().out


@pytest.mark.parametrize('args, message', [
    (['--preset', 'emoji'], 'gone.pkl: missing; the emoji preset needs the files shipped in data/emoji (or give --source)'),
    (['--preset', 'emoji', '--test-dir', '.'], '--preset emoji sets --test-dir itself; drop it'),
    (['--preset', 'emoji', '--preset-targets', 'near,moon'], '--preset-targets: unknown moon'),
    (['--preset', 'emoji', '--parallel', '0'], "Invalid value for '--parallel'"),
])
def test_emoji_preset_bad_arguments(tmp_path, args, message, monkeypatch):
    monkeypatch.setattr(emoji_preset, 'BENCHMARK', dataclasses.replace(EMOJI, source=str(tmp_path / 'gone.pkl')))
    res = CliRunner().invoke(compare_cli.main, ['--outdir', str(tmp_path / 'x')] + args)
    assert res.exit_code != 0 and message in res.output, res.output
    assert 'Traceback' not in res.output and not (tmp_path / 'x').exists()


def test_preset_dry_run_from_the_command_line_writes_nothing(tmp_path):
    outdir = tmp_path / 'glyphs'
    res = CliRunner().invoke(compare_cli.main, ['--preset', 'glyphs', '--outdir', str(outdir), '--preset-shots', '10',
                                                '--preset-seeds', '0,1', '--methods', 'fsgan,tgan', '--dry-run'])
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    targets = len(benchmark('glyphs').targets)
    assert lines[0].startswith(f'--dry-run: preset glyphs in {outdir}: {2 * targets} cells, {4 * targets} runs '
                               f'({4 * targets} pending)'), lines[0]
    assert sum(line.split()[1:2] == ['pending'] for line in lines) == 4 * targets
    assert not outdir.exists()


def test_a_preset_runs_from_another_source(tiny_emoji_source, tmp_path):
    outdir = tmp_path / 'emoji'
    base = ['--preset', 'emoji', '--outdir', str(outdir), '--preset-targets', 'near', '--preset-shots', '5',
            '--preset-seeds', '0', '--methods', 'fsgan', '--dry-run']
    res = CliRunner().invoke(compare_cli.main, base + ['--source', str(tiny_emoji_source)])
    assert res.exit_code == 0, res.output
    assert res.output.splitlines()[0].startswith(f'--dry-run: preset emoji in {outdir}: 1 cells, 1 runs (1 pending)')
    cfg = preset.cell_config(EMOJI, str(outdir), 'near', 5, 0, source=str(tiny_emoji_source))
    assert cfg.settings['source'] == str(tiny_emoji_source) and cfg.settings['train']['gamma'] == 0.1
    res = CliRunner().invoke(compare_cli.main, base + ['--source', str(tmp_path / 'typo.pkl')])
    assert res.exit_code != 0 and 'Traceback' not in res.output
    assert res.output.strip().splitlines()[-1] == (f"Error: Invalid value for --source: {tmp_path / 'typo.pkl'}: "
                                                   f"no such file; give a network snapshot .pkl")
    assert not outdir.exists()


def test_a_cell_trained_on_another_device_is_measured_beside_this_ones(tiny_emoji_source, tmp_path, one_thread):
    """Where a run trained must not change its numbers: a cell trained with train_only (as on a device without
    the metrics' weights) and brought back without its pickles and checkpoint is measured, from the source plus
    its newest adapter, as an extra row of the same cell trained here. Both trained alike, so they agree."""
    bench = small(tiny_emoji_source)
    kw = dict(targets=('near',), shots=(5,), seeds=(0,), kimg=0.004, progress=False)
    away = tmp_path / 'away'
    assert preset.run_preset(bench, str(away), methods='fsgan', train_only=True, **kw) is None
    cell = away / 'near-5shot-seed0'
    assert not (cell / 'metrics.csv').exists() and not (cell / 'samples').exists()
    [run] = (cell / 'runs' / 'fsgan').iterdir()
    brought_back = [p for p in run.iterdir() if p.suffix != '.pkl' and p.name != 'checkpoint.pt']
    assert len(brought_back) < len(list(run.iterdir())) and any(p.name.startswith('adapter-') for p in brought_back)
    for p in set(run.iterdir()) - set(brought_back):
        p.unlink()
    opts_path = run / 'training_options.json'
    opts = json.loads(opts_path.read_text())
    opts['run']['device'] = 'cuda'                       # as trained on a GPU: measured here all the same
    opts_path.write_text(json.dumps(opts))
    given = [f'fsgan-away={run}']
    here = tmp_path / 'here'
    plan = preset.plan_preset(bench, str(here), methods='fsgan', runs=given, targets=('near',), shots=(5,),
                              seeds=(0,), kimg=0.004)
    assert '1 cells, 2 runs (1 given, 1 pending)' in plan[0]
    assert [line.split()[:2] for line in plan[2:]] == [['fsgan', 'pending'], ['fsgan-away', 'given']], plan
    rows = preset.run_preset(bench, str(here), methods='fsgan', runs=given, **kw)
    assert [r['method'] for r in rows] == ['fsgan', 'fsgan-away', 'real']
    numbers = cell_numbers(here, 'near-5shot-seed0')
    assert numbers['fsgan-away']['network'] == str(max(run.glob('adapter-*.pt')))
    assert numbers['fsgan']['network'].endswith('.pkl')
    for k in ('emoji_fd_test', 'emoji_fd_shots', 'style_share', 'content', 'trainable_params'):
        assert float(numbers['fsgan-away'][k]) == pytest.approx(float(numbers['fsgan'][k]), rel=1e-4), k
    assert '| fsgan-away |' in (here / 'benchmark.md').read_text()
    # Refused before anything is written: a grid of several cells (a run folder belongs to one), another source
    # than the run's (its adapter was made for one network), no source at all, a run cut off before its end.
    other = save_tiny_rgb64(tmp_path / 'other.pkl', 1, {'training_options': {}})
    with pytest.raises(ValueError, match='a run folder belongs to one cell, but the grid has 2'):
        preset.run_preset(bench, str(tmp_path / 'two'), methods='fsgan', runs=given, **dict(kw, seeds=(0, 1)))
    with pytest.raises(compare.CompareError, match=f'{other} is not the network --runs fsgan-away=.* trained from'):
        preset.run_preset(dataclasses.replace(bench, source=other), str(tmp_path / 'other'), methods='fsgan',
                          runs=given, **kw)
    for source, message in ((None, f'--runs {given[0]} kept adapter files but no network snapshot; give the '
                                    f'network its run trained from'),
                            (str(tmp_path / 'typo.pkl'), f'{tmp_path / "typo.pkl"}: no such file; give the network '
                                                         f'--runs {given[0]} trained from')):
        res = CliRunner().invoke(compare_cli.main, ['--outdir', str(tmp_path / 'none'), '--runs', given[0],
                                                    '--train-only'] + (['--source', source] if source else []))
        assert res.exit_code != 0 and 'Traceback' not in res.output
        assert res.output.strip().splitlines()[-1] == f'Error: Invalid value for --source: {message}'
    opts['run']['kimg'] *= 100                           # as if the device had stopped it early
    opts_path.write_text(json.dumps(opts))
    with pytest.raises(compare.CompareError, match='its newest adapter is at .* of its 0.4 kimg; finish the run'):
        preset.run_preset(bench, str(tmp_path / 'cut'), methods='fsgan-away', runs=given, **kw)
    assert not any((tmp_path / d).exists() for d in ('two', 'other', 'none', 'cut'))
    # The adapter itself also refuses another source where no sha256 can be checked up front (e.g. a URL).
    with pytest.raises(AdapterError):
        compare.run_generator(EasyDict(settings=dict(source=other)), str(run), 'cpu')


def test_the_report_averages_every_emoji_column_over_seeds(tmp_path):
    """The emoji report's own columns, counts included: a mean over seeds of a count shows one decimal."""
    import numpy as np
    from metrics.registry import Column
    count = Column('categories_within', 'Categories', 'd')
    assert [count.format(v) for v in (7, 7.0, 6.5, None, np.int64(3), np.float32(6.5))] == ['7', '7', '6.5', '',
                                                                                          '3', '6.5']
    results = {('near', 10, seed): [dict({c.key: value for c in EMOJI.columns}, method='fsgan', trainable_params=9)]
               for seed, value in ((0, 6), (1, 7))}
    rows = preset.aggregate(EMOJI, results)
    preset.write_report(EMOJI, str(tmp_path), rows, 'Emoji benchmark')
    [row] = [line for line in (tmp_path / 'benchmark.md').read_text().splitlines() if line.startswith('| fsgan')]
    cells = [c.strip() for c in row.strip('|').split('|')]
    within = [c.key for c in EMOJI.columns].index('categories_within')
    assert len(cells) == 2 + len(EMOJI.columns) and cells[2 + within] == '6.5 ± 0.7', row
    # A row with fewer seeds than the others says so beside its name (the heading counts the most).
    results[('near', 10, 0)].append(dict({c.key: 1 for c in EMOJI.columns}, method='tgan', trainable_params=9))
    preset.write_report(EMOJI, str(tmp_path), preset.aggregate(EMOJI, results), 'Emoji benchmark')
    md = (tmp_path / 'benchmark.md').read_text()
    assert '### near, 10 shots (2 seeds)' in md and '\n| tgan (1 seed) | 9 |' in md and '\n| fsgan | 9 |' in md


def test_bf16_conv_is_a_setting_of_the_comparison_and_reaches_its_runs(tiny_emoji_source, tmp_path, one_thread):
    bench = small(tiny_emoji_source)
    plain = preset.cell_config(bench, str(tmp_path), 'near', 5, 0, methods='fsgan', kimg=0.004)
    assert 'bf16_conv' not in plain.settings        # comparisons made before the option continue unchanged
    compare.load_state(plain)
    cfg = preset.cell_config(bench, str(tmp_path), 'near', 5, 0, methods='fsgan', kimg=0.004, bf16_conv=True)
    with pytest.raises(compare.CompareError, match=r'other settings \(bf16_conv: None there, True now\)'):
        compare.load_state(cfg)
    cfg = preset.cell_config(bench, str(tmp_path / 'bf16'), 'near', 5, 0, methods='fsgan', kimg=0.004,
                             bf16_conv=True)
    compare.load_state(cfg)
    run_dir = compare.train_method(cfg, 'fsgan', progress=False)
    assert json.load(open(os.path.join(run_dir, 'training_options.json')))['run']['bf16_conv'] is True
    assert ', bfloat16 convolutions (--bf16-conv);' in preset.report_header(bench, {('near', 5, 0): cfg}, 'test', (0,))
    assert 'bfloat16' not in preset.report_header(bench, {('near', 5, 0): plain}, 'test', (0,))


@pytest.mark.parametrize('cells, parallel, threads, expect', [(1, 2, 1, 2), (2, 2, 1, 1), (3, 2, 1, 1), (1, 4, 2, 8),
                                                              (2, 4, 1, 2), (6, 1, 3, 3)])
def test_measuring_fewer_cells_than_processes_gives_them_the_idle_threads(monkeypatch, tmp_path, cells, parallel,
                                                                          threads, expect):
    import fsgan.parallel
    calls = []
    monkeypatch.setattr(compare, 'load_state', lambda cfg: {'methods': {}})
    monkeypatch.setattr(fsgan.parallel, 'run_jobs', lambda jobs, parallel, threads, progress: calls.append(
        (len(jobs), parallel, threads)))
    configs = {('near', 10, seed): type('Cfg', (), {'entries': []})() for seed in range(cells)}
    preset.run_in_parallel(configs, str(tmp_path), parallel, threads, progress=lambda line: None)
    assert calls == [(cells, parallel, expect)]     # nothing to train: one call, the measuring

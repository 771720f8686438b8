"""scripts/compare.py: train two methods, figure/table/strips, resume after a kill or a lost 'done' mark."""
import csv
import json
import os

import numpy as np
import PIL.Image
import pytest
import torch
from click.testing import CliRunner

from fsgan.tools import figure
from fsgan import compare
from scripts import compare as cli
from fsgan import training_loop
from fsgan.options import read_training_options


@pytest.fixture
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _args(p1_path, target_dir, outdir):
    return ['--source', p1_path, '--target-dir', target_dir, '--shots', '10', '--methods', 'fsgan,tgan',
            '--kimg', '0.008', '--batch', '4', '--tick', '0.004', '--snap', '1', '--seed', '3', '--num', '6',
            '--cols', '4', '--strip-steps', '3', '--outdir', str(outdir), '--cache-dir', str(outdir) + '-cache',
            '--device', 'cpu', '--no-progress']


def _runs(outdir, method):
    return sorted(os.listdir(outdir / 'runs' / method))


@pytest.mark.slow
def test_compare_trains_resumes_and_writes_outputs(p1_path, target_dir, tmp_path, monkeypatch, one_thread):
    outdir = tmp_path / 'cmp'
    args = _args(p1_path, target_dir, outdir)

    # 1. Kill the comparison while tgan is half-way (after its first snapshot at 0.004 kimg).
    real_snapshot = training_loop.write_snapshot

    def killing_snapshot(state, opts, run_dir):
        real_snapshot(state, opts, run_dir)
        if opts.method == 'tgan' and state.cur_nimg >= 4:
            raise KeyboardInterrupt
    monkeypatch.setattr(training_loop, 'write_snapshot', killing_snapshot)
    res = CliRunner().invoke(cli.main, args)
    assert res.exit_code != 0
    monkeypatch.setattr(training_loop, 'write_snapshot', real_snapshot)
    state = json.loads((outdir / compare.STATE_FILE).read_text())
    assert state['methods']['fsgan']['done'] and 'tgan' not in state['methods']
    fsgan_ck = outdir / 'runs' / 'fsgan' / _runs(outdir, 'fsgan')[0] / 'checkpoint.pt'
    fsgan_mtime = fsgan_ck.stat().st_mtime_ns

    # A dry run says what is left: fsgan done, tgan half-way in its run folder.
    before = sorted(str(p) for p in outdir.rglob('*'))
    res = CliRunner().invoke(cli.main, args + ['--dry-run'])
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    assert lines[0].startswith(f'--dry-run: comparison in {outdir}, 0.008 kimg per run')
    assert lines[1].split() == ['fsgan', 'done', '0.008/0.008', 'kimg', str(fsgan_ck.parent)]
    assert lines[2].split()[:4] == ['tgan', 'partial', '0.004/0.008', 'kimg']
    assert lines[3].split() == ['to', 'train:', '0.004', 'kimg', 'in', '1', 'run']
    assert sorted(str(p) for p in outdir.rglob('*')) == before

    # 2. Running it again continues tgan in its run folder and leaves fsgan alone.
    res = CliRunner().invoke(cli.main, args)
    assert res.exit_code == 0, res.output
    assert _runs(outdir, 'fsgan') == ['00000-fsgan-10shot'] and _runs(outdir, 'tgan') == ['00000-tgan-10shot']
    assert fsgan_ck.stat().st_mtime_ns == fsgan_mtime
    tgan_run = outdir / 'runs' / 'tgan' / '00000-tgan-10shot'
    assert [json.loads(x)['kimg'] for x in (tgan_run / 'stats.jsonl').read_text().splitlines()] == [0.004, 0.008]
    opts = read_training_options(tgan_run / 'training_options.json')
    assert opts['seed'] == 3 and opts['shots'] == 10 and opts['method'] == 'tgan'

    # Figure: a row of shots, then one row per method; 4 columns of 128-pixel cells (32x32 upscaled).
    w, h = PIL.Image.open(outdir / 'comparison.png').size
    cell = figure.default_cell(32)
    assert h == 3 * (cell + figure.PAD) + figure.PAD
    assert w > 4 * (cell + figure.PAD)
    for m in ('fsgan', 'tgan'):
        sw, sh = PIL.Image.open(outdir / f'interp_{m}.png').size
        assert (sw, sh) == (3 * (cell + figure.PAD) + figure.PAD, cell + 2 * figure.PAD)
        assert len(os.listdir(outdir / 'samples' / m)) == 6

    with open(outdir / 'metrics.csv') as f:
        rows = list(csv.DictReader(f))
    assert [r['method'] for r in rows] == ['fsgan', 'tgan']
    for r in rows:
        assert float(r['fid_shots']) > 0 and 0 <= float(r['memorised_inception']) <= 1
        assert float(r['sharpness_mean']) > 0 and r['fid_test'] == '' and r['fgd_shots'] == ''
        assert int(r['trainable_params']) == int(r['trainable_G']) + int(r['trainable_D'])
    assert int(rows[0]['trainable_params']) < int(rows[1]['trainable_params']) / 100  # fsgan << tgan
    md = (outdir / 'metrics.md').read_text().splitlines()
    assert md[0].startswith('| Method | Trainable params | FID shots |')
    assert len([x for x in md if x.startswith('| ')]) == 3

    # 3. Without tgan's 'done' mark its finished run is taken as it is, not retrained; metrics are reused.
    state = json.loads((outdir / compare.STATE_FILE).read_text())
    del state['methods']['tgan']['done']
    (outdir / compare.STATE_FILE).write_text(json.dumps(state))
    tgan_ck_mtime = (tgan_run / 'checkpoint.pt').stat().st_mtime_ns
    res = CliRunner().invoke(cli.main, args)
    assert res.exit_code == 0, res.output
    assert f'[tgan] {tgan_run} is finished' in res.output and 'metrics on' not in res.output
    assert _runs(outdir, 'fsgan') == ['00000-fsgan-10shot'] and _runs(outdir, 'tgan') == ['00000-tgan-10shot']
    assert fsgan_ck.stat().st_mtime_ns == fsgan_mtime
    assert (tgan_run / 'checkpoint.pt').stat().st_mtime_ns == tgan_ck_mtime
    assert json.loads((outdir / compare.STATE_FILE).read_text())['methods']['tgan']['done']

    # Other settings in the same folder are refused with one line.
    res = CliRunner().invoke(cli.main, [a if a != '0.008' else '0.016' for a in args])
    assert res.exit_code != 0 and 'other settings (kimg: 0.008 there, 0.016 now)' in res.output
    assert 'Traceback' not in res.output


def test_fgd_for_glyph_sized_images(tmp_path, monkeypatch, capsys):
    """1-channel 32x32 images get FGD against shots and test set; the Inception metrics are stubbed out. Other
    images get None for the glyph numbers, with one note for the whole comparison."""
    from fsgan.evaluate import metric_registry
    from metrics import registry
    from metrics.images import ImageSet
    values = dict(fid_shots=1.0, mean=0.5, std=0.1, fraction_inception=0.0, fraction_pixel=0.0)
    reg = metric_registry()
    for name in ('fid', 'sharpness', 'memorization'):
        stub = registry.MetricSpec(name, lambda ctx: dict(value=0.0, values=values), '', columns=reg[name].columns)
        monkeypatch.setitem(registry.REGISTRY, name, stub)
    rng = np.random.RandomState(0)
    test_dir = tmp_path / 'test'
    for d, shape, mode, n in (('gen', (32, 32), 'L', 6), ('shots', (32, 32), 'L', 4), ('shot1', (32, 32), 'L', 1),
                              ('test', (32, 32), 'L', 5), ('rgb', (32, 32, 3), 'RGB', 6)):
        (tmp_path / d).mkdir()
        for i in range(n):
            PIL.Image.fromarray((rng.rand(*shape) * 255).astype(np.uint8), mode).save(tmp_path / d / f'{i}.png')
    ms = dict(faces=False, expect='kannada')
    row = compare.method_metrics(str(tmp_path / 'gen'), str(tmp_path / 'shots'), ImageSet(test_dir), ms)
    assert row['fgd_shots'] > 0 and row['fgd_test'] > 0 and row['fid_shots'] == 1.0 and row['num_gen'] == 6
    assert 0 <= row['script_share'] <= 1 and row['classes_total'] > 60 and row['diversity_glyph'] > 0
    assert set(row) == set(compare.METRIC_COLUMNS)
    row = compare.method_metrics(str(tmp_path / 'gen'), str(tmp_path / 'shot1'), None, dict(faces=False))
    assert row['fgd_shots'] is None and row['fgd_test'] is None and row['memorised_inception'] is None
    assert row['script_share'] is None
    shared = {}
    assert 'not applicable' not in capsys.readouterr().out
    for _ in range(2):
        row = compare.method_metrics(str(tmp_path / 'rgb'), str(tmp_path / 'shots'), ImageSet(test_dir), ms,
                                     shared=shared)
        assert row['fgd_test'] is None and row['memorised_glyph'] is None and row['script_share'] is None
        assert row['sharpness_mean'] == 0.5
    assert capsys.readouterr().out.count('glyph metrics not applicable') == 1


def test_train_only_trains_measures_nothing_and_the_same_command_measures(p1_path, target_dir, tmp_path,
                                                                         one_thread):
    outdir = tmp_path / 'cmp'
    args = [a if a != 'fsgan,tgan' else 'fsgan' for a in _args(p1_path, target_dir, outdir)] + ['--bf16-conv']
    res = CliRunner().invoke(cli.main, args + ['--train-only', '--dry-run'])
    assert res.exit_code != 0 and 'give --dry-run or --train-only, not both' in res.output
    assert not outdir.exists()
    res = CliRunner().invoke(cli.main, args + ['--train-only'])
    assert res.exit_code == 0, res.output
    run = outdir / 'runs' / 'fsgan' / '00000-fsgan-10shot'
    assert res.output.splitlines()[-1].split() == ['fsgan', str(run)] and '[fsgan] training' in res.output
    assert sorted(p.name for p in run.glob('adapter-*.pt')) == ['adapter-000000.004.pt', 'adapter-000000.008.pt']
    assert read_training_options(run / 'training_options.json')['bf16_conv'] is True
    assert not (outdir / 'samples').exists() and not (outdir / 'metrics.csv').exists()
    res = CliRunner().invoke(cli.main, args)
    assert res.exit_code == 0, res.output
    assert '[fsgan] training' not in res.output and '[fsgan] metrics on 6 images' in res.output
    with open(outdir / 'metrics.csv') as f:
        [row] = list(csv.DictReader(f))
    assert row['network'] == str(run / 'network-snapshot-000000.008.pkl')


def test_checkpoint_minutes_reach_new_and_continued_rows_and_are_not_a_setting(p1_path, target_dir, tmp_path,
                                                                            monkeypatch, one_thread):
    """--checkpoint-minutes: a new row records it and checkpoints within its tick, so a kill there loses only the
    step under way; the same comparison continues with another value (not a setting), which the continued row
    gets."""
    import fsgan.run
    outdir = tmp_path / 'cmp'
    args = [a if a not in ('fsgan,tgan', '0.004') else {'fsgan,tgan': 'fsgan', '0.004': '0.008'}[a]
            for a in _args(p1_path, target_dir, outdir)] + ['--train-only']  # one tick of 2 steps
    real_step = training_loop.training_step
    steps = []

    def killed_in_second_step(*a, **k):
        if steps:
            raise KeyboardInterrupt
        steps.append(1)
        return real_step(*a, **k)
    monkeypatch.setattr(training_loop, 'training_step', killed_in_second_step)
    res = CliRunner().invoke(cli.main, args + ['--checkpoint-minutes', '1e-9'])
    assert res.exit_code == 130, res.output
    monkeypatch.setattr(training_loop, 'training_step', real_step)
    run = outdir / 'runs' / 'fsgan' / '00000-fsgan-10shot'
    assert read_training_options(run / 'training_options.json')['checkpoint_minutes'] == 1e-9
    assert torch.load(run / 'checkpoint.pt', weights_only=True)['cur_nimg'] == 4
    real_training, seen = fsgan.run.run_training, []

    def recording(c, *a, **k):
        seen.append(c.checkpoint_minutes)
        return real_training(c, *a, **k)
    monkeypatch.setattr(fsgan.run, 'run_training', recording)
    res = CliRunner().invoke(cli.main, args + ['--checkpoint-minutes', '7'])
    assert res.exit_code == 0, res.output
    assert '[fsgan] continuing' in res.output and seen == [7.0]
    assert torch.load(run / 'checkpoint.pt', weights_only=True)['cur_nimg'] == 8
    assert compare.setup_compare(str(outdir), source=p1_path, target_dir=target_dir).checkpoint_minutes == \
        compare.CHECKPOINT_MINUTES


@pytest.mark.parametrize('args, message', [
    (['--methods', 'fsgan,bogus'], 'unknown method(s) bogus'),
    (['--runs', 'noequals'], 'expected NAME=RUNDIR'),
    (['--runs', 'x=/nonexistent/run'], '--runs x=/nonexistent/run: no such folder'),
    (['--methods', 'fsgan', '--no-source'], 'needs --source and --target-dir'),
    (['--num', '1'], 'Invalid value for --num: must be >= 2, got 1'),
    (['--reference', '/nonexistent/real'], "Invalid value for '--reference'"),
    (['--reference', '.', '--runs', 'real=.'], "the row name 'real' is the --reference row"),
])
def test_bad_arguments_one_line_error(p1_path, target_dir, tmp_path, args, message):
    base = ['--source', p1_path, '--target-dir', target_dir, '--outdir', str(tmp_path / 'cmp')]
    if '--no-source' in args:
        base, args = ['--outdir', str(tmp_path / 'cmp')], [a for a in args if a != '--no-source']
    res = CliRunner().invoke(cli.main, base + args)
    assert res.exit_code != 0
    assert message in res.output and 'Traceback' not in res.output
    assert res.output.strip().splitlines()[-1].startswith('Error:')
    assert not (tmp_path / 'cmp').exists()


def test_dry_run_of_a_new_comparison_checks_the_options_and_writes_nothing(p1_path, target_dir, tmp_path):
    outdir = tmp_path / 'cmp'
    res = CliRunner().invoke(cli.main, _args(p1_path, target_dir, outdir) + ['--dry-run'])
    assert res.exit_code == 0, res.output
    assert [line.split()[:3] for line in res.output.splitlines()[1:3]] == [['fsgan', 'pending', '0/0.008'],
                                                                           ['tgan', 'pending', '0/0.008']]
    assert res.output.splitlines()[-1].split() == ['to', 'train:', '0.016', 'kimg', 'in', '2', 'runs']
    assert not outdir.exists()
    res = CliRunner().invoke(cli.main, _args(p1_path, str(tmp_path / 'typo'), outdir) + ['--dry-run'])
    assert res.exit_code != 0 and 'typo' in res.output and 'Traceback' not in res.output
    assert not outdir.exists()


def test_dry_run_fetches_no_remote_source_and_checks_given_runs(p1_path, target_dir, tmp_path, monkeypatch):
    monkeypatch.setenv('FSGAN_CACHE_DIR', str(tmp_path / 'cache'))
    outdir = tmp_path / 'cmp'
    args = ['--target-dir', target_dir, '--methods', 'fsgan', '--outdir', str(outdir), '--dry-run']
    res = CliRunner().invoke(cli.main, args + ['--source', 'ffhq256'])
    assert res.exit_code == 0, res.output
    assert 'not fetched by a dry run' in res.output and 'fsgan  pending  0/20 kimg' in res.output
    assert not (tmp_path / 'cache').exists() and not outdir.exists()
    res = CliRunner().invoke(cli.main, ['--outdir', str(outdir), '--runs', f'mine={tmp_path / "nope"}', '--dry-run'])
    assert res.exit_code != 0 and 'no such folder' in res.output and 'Traceback' not in res.output


@pytest.mark.parametrize('content', ['{"settings": ', '[]', '{"settings": {}}'])
def test_a_damaged_state_file_is_one_line_naming_it(p1_path, target_dir, tmp_path, content):
    outdir = tmp_path / 'cmp'
    outdir.mkdir()
    (outdir / compare.STATE_FILE).write_text(content)
    for extra in ([], ['--dry-run']):
        res = CliRunner().invoke(cli.main, _args(p1_path, target_dir, outdir) + extra)
        assert res.exit_code != 0 and 'Traceback' not in res.output
        last = res.output.strip().splitlines()[-1]
        assert last.startswith(f'Error: {outdir / compare.STATE_FILE}: not') and 'new --outdir' in last, last
    assert (outdir / compare.STATE_FILE).read_text() == content


def test_refuses_foreign_folder(p1_path, target_dir, tmp_path):
    (tmp_path / 'cmp').mkdir()
    (tmp_path / 'cmp' / 'notes.txt').write_text('mine')
    res = CliRunner().invoke(cli.main, ['--source', p1_path, '--target-dir', target_dir,
                                        '--outdir', str(tmp_path / 'cmp')])
    assert res.exit_code != 0 and 'is not empty and holds no compare_state.json' in res.output


def test_a_comparison_in_use_by_another_process_is_one_line(p1_path, target_dir, tmp_path, one_thread):
    """Two compare.py on one --outdir: the second stops before it trains or writes anything."""
    from dnnlib.lock import folder_lock
    from fsgan.compare import LOCK_FILE
    outdir = tmp_path / 'cmp'
    outdir.mkdir()
    with folder_lock(str(outdir), LOCK_FILE):                # the first process, busy
        res = CliRunner().invoke(cli.main, _args(p1_path, target_dir, outdir))
        assert os.listdir(outdir) == [LOCK_FILE]
    lines = res.output.strip().splitlines()
    assert res.exit_code == 1 and len(lines) == 1 and 'is in use by process' in lines[0], res.output
    res = CliRunner().invoke(cli.main, _args(p1_path, target_dir, outdir) + ['--train-only'])
    assert res.exit_code == 0, res.output                    # once it ended: the folder's lock file is no obstacle


def test_a_source_replaced_at_the_same_path_is_refused(p1_path, target_dir, tmp_path, one_thread):
    """A source shipped again at its path (e.g. a later pretraining stage) would mix rows of two networks."""
    import shutil
    from fsgan.export import save_snapshot
    from fsgan.loading import load_network
    source = shutil.copy(p1_path, tmp_path / 'source.pkl')
    args = _args(source, target_dir, tmp_path / 'cmp')
    assert CliRunner().invoke(cli.main, args + ['--train-only']).exit_code == 0
    net = load_network(source)
    with torch.no_grad():
        net['G'].synthesis.b4.conv1.bias.add_(0.1)
    save_snapshot(source, net['G'], net['D'], net['G_ema'])
    res = CliRunner().invoke(cli.main, args)
    lines = res.output.strip().splitlines()
    assert res.exit_code == 1 and 'changed since this comparison trained from it' in lines[-1], res.output


def test_ctrl_c_says_how_to_continue(p1_path, target_dir, tmp_path, monkeypatch, one_thread):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(compare, 'train_method', interrupted)
    res = CliRunner().invoke(cli.main, _args(p1_path, target_dir, tmp_path / 'cmp'))
    lines = res.output.strip().splitlines()
    assert res.exit_code == 130 and 'Aborted' not in res.output, res.output
    assert lines[-1] == 'Error: interrupted; run the same command again to continue (finished runs and checkpoints ' \
                        'are kept)'


def test_augmentation_rows_reach_the_training_config(p1_path, target_dir, tmp_path, monkeypatch):
    """Rows METHOD@aug=ada / METHOD@aug=diffaug (and ADA's options) train with that augmentation."""
    import fsgan.run
    assert compare.parse_method('tgan@aug=ada@ada_target=0.7') == ('tgan', {'aug': 'ada', 'ada_target': 0.7}, {})
    assert compare.parse_method('fsgan@aug=fixed@aug_p=0.2@augpipe=bg') == (
        'fsgan', {'aug': 'fixed', 'aug_p': 0.2, 'augpipe': 'bg'}, {})
    for bad, message in (('fsgan@aug=bogus', 'aug must be one of'), ('fsgan@aug_p=0.2', '--aug-p needs --aug'),
                         ('fsgan@aug=fixed', 'needs --aug-p'), ('fsgan@aug=ada@augpipe=bgx', 'augpipe must be'),
                         ('fsgan@aug=ada@aug_p=2', 'aug_p must be')):
        with pytest.raises(Exception, match=message):
            compare.parse_method(bad)
    seen = {}
    monkeypatch.setattr(fsgan.run, 'run_training', lambda c, progress=True: seen.setdefault(c.aug, c))
    cfg = compare.setup_compare(str(tmp_path / 'cmp'), source=p1_path, target_dir=target_dir,
                            methods='fsgan,fsgan@aug=ada,fsgan@aug=diffaug', kimg=0.004, device='cpu')
    for name, _ in cfg.entries:
        compare.train_method(cfg, name, progress=False)
    assert seen['none'].augment_kwargs == dict(name='none')
    assert seen['ada'].augment_kwargs == dict(name='ada', preset='bgc', p=0.0, target=0.6, ada_kimg=500.0,
                                              interval=4)
    assert seen['diffaug'].augment_kwargs == dict(name='diffaug', policy='color,translation,cutout')


def test_cached_metrics_are_measured_again_when_a_metric_network_changes(p1_path, target_dir, tmp_path,
                                                                        monkeypatch, one_thread):
    """A metric's numbers depend on its network (e.g. a retrained benchmark classifier): cached numbers of the old
    network must not stand beside new ones."""
    import dataclasses
    from fsgan import evaluate
    registry = evaluate.metric_registry()
    weights = tmp_path / 'classifier.pt'
    weights.write_bytes(b'first weights')
    monkeypatch.setitem(registry, 'sharpness', dataclasses.replace(registry['sharpness'], weights=(str(weights),)))
    outdir = tmp_path / 'cmp'
    args = [a if a != 'fsgan,tgan' else 'fsgan' for a in _args(p1_path, target_dir, outdir)]
    first = CliRunner().invoke(cli.main, args)
    assert first.exit_code == 0 and '[fsgan] metrics on 6 images' in first.output, first.output
    again = CliRunner().invoke(cli.main, args)
    assert again.exit_code == 0 and 'metrics on' not in again.output, again.output      # cached
    weights.write_bytes(b'retrained weights')
    res = CliRunner().invoke(cli.main, args)
    assert res.exit_code == 0 and '[fsgan] metrics on 6 images' in res.output, res.output
    state = json.loads((outdir / compare.STATE_FILE).read_text())
    from dnnlib.util import file_sha256
    recorded = state['methods']['fsgan']['metrics_key']['metric_weights']
    assert recorded['sharpness'] == {'classifier.pt': file_sha256(str(weights))}
    from fsgan.benchmarks.glyphs.classifier import DEFAULT_PATH as glyph_classifier
    assert recorded['glyph_fgd'] == {'glyph_classifier.pt': file_sha256(glyph_classifier)}
    assert 'metric_versions' not in state['methods']['fsgan']['metrics_key']    # every metric at its first version
    # A metric whose numbers changed (a new column, a fix) raises its version: its cached numbers are measured again.
    monkeypatch.setitem(registry, 'sharpness', dataclasses.replace(registry['sharpness'], version=2))
    res = CliRunner().invoke(cli.main, args)
    assert res.exit_code == 0 and '[fsgan] metrics on 6 images' in res.output, res.output
    state = json.loads((outdir / compare.STATE_FILE).read_text())
    assert state['methods']['fsgan']['metrics_key']['metric_versions'] == {'sharpness': 2}
    again = CliRunner().invoke(cli.main, args)
    assert again.exit_code == 0 and 'metrics on' not in again.output, again.output


def _write_images(folder, count, size=32, start=0):
    """`count` random size x size RGB PNGs real<i>.png in `folder` (created), numbered from `start`."""
    folder.mkdir(exist_ok=True)
    rng = np.random.RandomState(start)
    for i in range(start, start + count):
        PIL.Image.fromarray(rng.randint(0, 256, (size, size, 3), np.uint8)).save(folder / f'real{i:02d}.png')
    return folder


def _rows(outdir):
    with open(outdir / 'metrics.csv') as f:
        return {r['method']: r for r in csv.DictReader(f)}


def test_the_reference_row_measures_held_out_images_as_if_they_were_samples(p1_path, target_dir, tmp_path,
                                                                            one_thread):
    outdir = tmp_path / 'cmp'
    args = [a if a != 'fsgan,tgan' else 'fsgan' for a in _args(p1_path, target_dir, outdir)]
    args += ['--test-dir', target_dir]
    # Images of two sizes: one line naming the option and a file of each size, before anything trains.
    mixed = _write_images(_write_images(tmp_path / 'mixed', 1), 1, size=48, start=1)
    res = CliRunner().invoke(cli.main, args + ['--reference', str(mixed)])
    assert res.exit_code != 0 and 'Traceback' not in res.output and not outdir.exists()
    assert res.output.strip().splitlines()[-1] == (f'Error: Invalid value for --reference: {mixed}: images of '
                                                   f'different sizes (real00.png is 32x32, real01.png is 48x48); '
                                                   f"give images of one size, the networks' resolution")
    ref = _write_images(tmp_path / 'ref', 4)
    res = CliRunner().invoke(cli.main, args + ['--reference', str(ref)])
    assert res.exit_code == 0, res.output
    assert f'[real] metrics on 4 held-out real images ({ref})' in res.output
    rows = _rows(outdir)
    assert list(rows) == ['fsgan', 'real']
    fsgan, real = rows['fsgan'], rows['real']
    assert float(fsgan['fid_test']) > 0 and float(fsgan['fid_shots']) > 0
    # 4 images against the methods' 6 samples: the Fréchet distances (size-dependent) are left out
    assert real['fid_test'] == real['fid_shots'] == '' and real['trainable_params'] == '' and real['run_dir'] == ''
    assert 0 <= float(real['memorised_inception']) <= 1 and float(real['sharpness_mean']) > 0
    assert real['sharpness_mean'] != fsgan['sharpness_mean']    # noise images, not the samples
    md = (outdir / 'metrics.md').read_text()
    assert '\n| real |' in md and 'real: held-out real target images' in md

    again = CliRunner().invoke(cli.main, args + ['--reference', str(ref)])
    assert again.exit_code == 0 and 'metrics on' not in again.output, again.output     # cached
    _write_images(ref, 1, start=4)                  # another image at the same path: measured again
    again = CliRunner().invoke(cli.main, args + ['--reference', str(ref)])
    assert again.exit_code == 0 and '[real] metrics on 5 held-out' in again.output, again.output
    assert '[fsgan] metrics on' not in again.output

    # The method's own samples as the reference: the row repeats the method's numbers (nothing else is measured),
    # FID included now that the set is as large as the samples; the method is not measured again.
    same = CliRunner().invoke(cli.main, args + ['--reference', str(outdir / 'samples' / 'fsgan')])
    assert same.exit_code == 0, same.output
    assert '[real] metrics on 6 held-out' in same.output and '[fsgan] metrics on' not in same.output
    rows = _rows(outdir)
    for key in ('fid_test', 'fid_shots', 'memorised_inception', 'memorised_pixel', 'sharpness_mean'):
        assert rows['real'][key] == rows['fsgan'][key] != '', key

    # Images at another resolution than the networks': one line naming the option, nothing lost.
    wrong = _write_images(tmp_path / 'wrong', 2, size=48)
    res = CliRunner().invoke(cli.main, args + ['--reference', str(wrong)])
    assert res.exit_code != 0 and 'Traceback' not in res.output
    assert res.output.strip().splitlines()[-1].startswith('Error: Invalid value for --reference: ')
    assert 'its images are 48x48' in res.output
    assert _rows(outdir)['real']['fid_test'] == rows['real']['fid_test']

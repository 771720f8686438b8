"""Training callbacks (fsgan/callbacks): when they run, their checkpointed state across a resume, ADA's p."""
import json
import os

import numpy as np
import PIL.Image
import pytest
import torch
from click.testing import CliRunner

from dnnlib import EasyDict
from fsgan import callbacks
from fsgan.callbacks import Callback, CallbackSpec, build_callbacks, run_callbacks
from fsgan.options import read_training_options, write_training_options
from scripts import train as train_cli
from training.augment import build_augment

pytestmark = pytest.mark.usefixtures('one_thread')


class _Counter(Callback):
    """Counts its calls and records (when, kimg) of each in the run folder."""

    def __init__(self, every, interval=1):
        self.every, self.interval, self.calls = every, interval, 0

    def __call__(self, state, opts, run_dir):
        self.calls += 1
        if run_dir is not None:
            with open(os.path.join(run_dir, f'calls-{self.every}.jsonl'), 'a') as f:
                f.write(json.dumps(dict(calls=self.calls, kimg=state.cur_nimg / 1000)) + '\n')

    def state_dict(self):
        return dict(calls=self.calls)

    def load_state_dict(self, state):
        self.calls = state['calls']


@pytest.fixture
def counters(monkeypatch):
    for every in ('tick', 'snapshot'):
        monkeypatch.setitem(callbacks.CALLBACKS, f'count_{every}', CallbackSpec(
            name=f'count_{every}', build=lambda opts, state, every=every: _Counter(every), description='test'))
    monkeypatch.setitem(callbacks.CALLBACKS, 'count_step', CallbackSpec(
        name='count_step', build=lambda opts, state: _Counter('step', interval=2), description='test'))


def test_callbacks_run_when_they_say():
    made = {'a': _Counter('step', interval=3), 'b': _Counter('tick'), 'c': _Counter('snapshot')}
    state = EasyDict(batch_idx=0)
    for batch_idx in range(1, 10):
        state.batch_idx = batch_idx
        run_callbacks(made, 'step', state, None)
    assert made['a'].calls == 3 and made['b'].calls == 0 and made['c'].calls == 0  # steps 3, 6, 9
    run_callbacks(made, 'tick', state, None)
    assert (made['a'].calls, made['b'].calls, made['c'].calls) == (3, 1, 0)
    assert callbacks.callbacks_state(made) == dict(a=dict(calls=3), b=dict(calls=1), c=dict(calls=0))


def test_ada_p_is_built_only_for_an_adaptive_p():
    for kwargs, built in ((dict(name='ada', p=0.1), True), (dict(name='ada', p=0.1, target=None), False),
                          (dict(name='none'), False), (dict(name='diffaug'), False)):
        found = build_callbacks(EasyDict(batch=4), EasyDict(augment=build_augment(**kwargs)))
        assert ('ada_p' in found) == built, kwargs
    assert found == {} or 'ada_p' not in found
    ada = build_callbacks(EasyDict(batch=4), EasyDict(augment=build_augment('ada', interval=8)))['ada_p']
    assert ada.every == 'step' and ada.interval == 8


def test_callback_state_is_checkpointed_and_resumed(p1_path, target_dir, tmp_path, counters):
    base = ['--resume', p1_path, '--target-dir', target_dir, '--shots', '5', '--batch', '4', '--tick', '0.004',
            '--snap', '2', '--no-progress', '--outdir', str(tmp_path)]
    res = CliRunner().invoke(train_cli.main, base + ['--kimg', '0.016'])
    assert res.exit_code == 0, res.output
    (run,) = [tmp_path / n for n in os.listdir(tmp_path)]
    ck = torch.load(run / 'checkpoint.pt', weights_only=True)
    # 4 steps of 4 images: step callback (interval 2) twice; 4 ticks; snapshots at ticks 2 and 4
    assert ck['callbacks'] == dict(count_tick=dict(calls=4), count_snapshot=dict(calls=2),
                                   count_step=dict(calls=2))
    ticks = [json.loads(x) for x in (run / 'calls-tick.jsonl').read_text().splitlines()]
    assert [t['kimg'] for t in ticks] == [0.004, 0.008, 0.012, 0.016]
    snaps = [json.loads(x) for x in (run / 'calls-snapshot.jsonl').read_text().splitlines()]
    assert [s['kimg'] for s in snaps] == [0.008, 0.016]
    opts = read_training_options(run / 'training_options.json')
    write_training_options(run / 'training_options.json', dict(opts, kimg=0.024))
    res = CliRunner().invoke(train_cli.main, ['--resume-run', str(run), '--no-progress'])
    assert res.exit_code == 0, res.output
    ck = torch.load(run / 'checkpoint.pt', weights_only=True)
    assert ck['callbacks'] == dict(count_tick=dict(calls=6), count_snapshot=dict(calls=3),
                                   count_step=dict(calls=3))  # counted on from the restored state


def test_snapshot_metrics_are_appended_per_snapshot(p1_path, target_dir, tmp_path):
    base = ['--resume', p1_path, '--target-dir', target_dir, '--shots', '5', '--batch', '4', '--tick', '0.004',
            '--snap', '1', '--no-progress', '--outdir', str(tmp_path), '--metrics', 'sharpness']
    res = CliRunner().invoke(train_cli.main, base + ['--kimg', '0.008'])
    assert res.exit_code == 0, res.output
    (run,) = [tmp_path / n for n in os.listdir(tmp_path)]
    assert read_training_options(run / 'training_options.json')['metrics'] == ['sharpness']
    records = [json.loads(x) for x in (run / 'metric-sharpness.jsonl').read_text().splitlines()]
    assert [r['kimg'] for r in records] == [0.004, 0.008]
    assert records[-1]['snapshot'] == 'network-snapshot-000000.008.pkl' and (run / records[-1]['snapshot']).is_file()
    assert records[0]['values']['num_gen'] == 64 and records[0]['value'] == records[0]['values']['mean'] > 0
    with open(run / 'metric-sharpness.jsonl', 'a') as f:  # written after the checkpoint by a run that then died
        f.write(json.dumps(dict(records[-1], kimg=0.012)) + '\n')
    opts = read_training_options(run / 'training_options.json')
    write_training_options(run / 'training_options.json', dict(opts, kimg=0.012))
    res = CliRunner().invoke(train_cli.main, ['--resume-run', str(run), '--no-progress'])
    assert res.exit_code == 0, res.output
    again = [json.loads(x) for x in (run / 'metric-sharpness.jsonl').read_text().splitlines()]
    assert [r['kimg'] for r in again] == [0.004, 0.008, 0.012] and again[:2] == records


def test_benchmark_metrics_are_measured_per_snapshot(tmp_path):
    """A benchmark's own metrics (fsgan.benchmarks.METRIC_MODULES) are available to --metrics, not only built-ins."""
    from tests.conftest import save_tiny_rgb64
    src = save_tiny_rgb64(tmp_path / 'src.pkl')
    targets = tmp_path / 'targets'
    targets.mkdir()
    rng = np.random.RandomState(0)
    for i in range(4):
        PIL.Image.fromarray(rng.randint(0, 256, [64, 64, 3], dtype=np.uint8)).save(targets / f'{i}.png')
    res = CliRunner().invoke(train_cli.main, ['--resume', src, '--target-dir', str(targets), '--batch', '4',
                                              '--kimg', '0.004', '--tick', '0.004', '--snap', '1', '--no-progress',
                                              '--outdir', str(tmp_path / 'runs'), '--metrics', 'emoji_style'])
    assert res.exit_code == 0, res.output
    (run,) = (tmp_path / 'runs').iterdir()
    (record,) = [json.loads(x) for x in (run / 'metric-emoji_style.jsonl').read_text().splitlines()]
    shares = [record['values'][f'style_{s}'] for s in ('noto', 'twemoji', 'openmoji')]
    assert record['values']['num_gen'] == 64 and abs(sum(shares) - 1) < 1e-9 and 0 <= record['value'] <= 1


@pytest.mark.parametrize('names, words', [('bogus', ['--metrics bogus', 'choose from']),
                                          ('sharpness,kid', ['--metrics kid needs data', 'calc_metrics'])])
def test_bad_metric_names_fail_in_one_line(p1_path, target_dir, tmp_path, names, words):
    res = CliRunner().invoke(train_cli.main, ['--resume', p1_path, '--target-dir', target_dir, '--outdir',
                                              str(tmp_path / 'runs'), '--metrics', names])
    lines = res.stderr.strip().splitlines()
    assert res.exit_code != 0 and len(lines) == 1 and lines[0].startswith('Error:'), res.output
    assert all(w in lines[0] for w in words), lines[0]
    assert not (tmp_path / 'runs').exists() or not os.listdir(tmp_path / 'runs')

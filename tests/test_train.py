"""End-to-end training from the CLI on a small network: artefacts, resume, errors."""
from fsgan import run_setup
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from fsgan import load_network
from fsgan.export import apply_adapter
from scripts import train as train_cli
from tests.conftest import ROOT
from fsgan.options import read_training_options, write_training_options

TINY = ['--kimg', '0.008', '--batch', '4', '--tick', '0.004', '--snap', '1', '--no-progress']


def _run(args):
    result = CliRunner().invoke(train_cli.main, args, catch_exceptions=False)
    return result


@pytest.mark.parametrize('method', ['fsgan', 'tgan', 'freezed', 'ssgan'])
def test_each_method_leaves_all_artefacts(p1_path, target_dir, tmp_path, method):
    out = tmp_path / 'runs'
    res = _run(['--resume', p1_path, '--target-dir', target_dir, '--shots', '10', '--method', method,
                '--outdir', str(out)] + TINY)
    assert res.exit_code == 0, res.output
    (run_dir,) = [out / d for d in os.listdir(out)]
    files = set(os.listdir(run_dir))
    for name in ('training_options.json', 'target_shots.json', 'stats.jsonl', 'sessions.jsonl', 'checkpoint.pt',
                 'fakes000000.008.png', 'network-snapshot-000000.008.pkl', 'adapter-000000.008.pt'):
        assert name in files, f'{method}: {name} missing from {sorted(files)}'
    assert not any(f.endswith('.tmp') for f in files)
    opts = read_training_options(run_dir / 'training_options.json')
    assert opts['method'] == method and opts['seed'] == 0 and opts['shots'] == 10
    shots = json.loads((run_dir / 'target_shots.json').read_text())
    assert len(shots['files']) == 10 and len(shots['sha256']) == 10
    assert any('centre-cropped' in n for n in shots['notes'])
    ticks = [json.loads(line) for line in (run_dir / 'stats.jsonl').read_text().splitlines()]
    assert [t['kimg'] for t in ticks] == [0.004, 0.008]

    # The baked snapshot and source + adapter give the same G_ema, truncated too (the adapter carries w_avg).
    snap = load_network(str(run_dir / 'network-snapshot-000000.008.pkl'))
    adapted = apply_adapter(load_network(p1_path), str(run_dir / 'adapter-000000.008.pt'))
    z = torch.randn([2, snap['G_ema'].z_dim], generator=torch.Generator().manual_seed(0))
    c = torch.zeros([2, 0])
    for psi in (1.0, 0.5):
        with torch.no_grad():
            a = snap['G_ema'](z, c, truncation_psi=psi, noise_mode='const')
            b = adapted['G_ema'](z, c, truncation_psi=psi, noise_mode='const')
        assert (a - b).abs().max() <= 1e-5, psi


def test_runs_are_numbered_and_never_overwritten(p1_path, target_dir, tmp_path):
    out = tmp_path / 'runs'
    for _ in range(2):
        assert _run(['--resume', p1_path, '--target-dir', target_dir, '--shots', '4', '--outdir', str(out),
                     '--kimg', '0.004', '--batch', '4', '--tick', '0.004', '--no-progress']).exit_code == 0
    assert sorted(os.listdir(out)) == ['00000-fsgan-4shot', '00001-fsgan-4shot']


def _assert_same_checkpoints(run_a, run_b, nimg):
    """Both runs' checkpoints are at `nimg` images with bit-identical G, D and G_ema."""
    ck_a = torch.load(run_a / 'checkpoint.pt', weights_only=True)
    ck_b = torch.load(run_b / 'checkpoint.pt', weights_only=True)
    assert ck_a['cur_nimg'] == ck_b['cur_nimg'] == nimg
    for key in ('G', 'D', 'G_ema'):
        for name, t in ck_a[key].items():
            assert torch.equal(t, ck_b[key][name]), f'{key}.{name} differs after resume'


@pytest.mark.parametrize('steps_per_tick', [1, 2])
def test_resume_continues_exactly(p1_path, target_dir, tmp_path, steps_per_tick):
    """Stopping after one tick and resuming ends with the same weights and ticks as an uninterrupted run."""
    tick = 0.004 * steps_per_tick
    base = ['--resume', p1_path, '--target-dir', target_dir, '--shots', '5', '--batch', '4',
            '--tick', f'{tick:g}', '--snap', '1', '--no-progress']
    assert _run(base + ['--outdir', str(tmp_path / 'a'), '--kimg', f'{2 * tick:g}']).exit_code == 0
    assert _run(base + ['--outdir', str(tmp_path / 'b'), '--kimg', f'{tick:g}']).exit_code == 0
    run_a = tmp_path / 'a' / os.listdir(tmp_path / 'a')[0]
    run_b = tmp_path / 'b' / os.listdir(tmp_path / 'b')[0]
    opts = read_training_options(run_b / 'training_options.json')
    opts['kimg'] = 2 * tick  # extend the interrupted run to the full length
    write_training_options(run_b / 'training_options.json', opts)
    assert _run(['--resume-run', str(run_b), '--no-progress']).exit_code == 0
    kimgs = [json.loads(line)['kimg'] for line in (run_b / 'stats.jsonl').read_text().splitlines()]
    assert kimgs == [tick, 2 * tick]
    _assert_same_checkpoints(run_a, run_b, nimg=8 * steps_per_tick)


def _uninterrupted_and_stopped(base, tmp_path, monkeypatch, name, stopping, extra):
    """Run `base` into tmp_path/a as it is, and into tmp_path/b with `extra` options while training_loop.<name> is
    replaced by `stopping` (which raises KeyboardInterrupt: exit 130). Returns the two run folders."""
    from fsgan import training_loop
    assert _run(base + ['--outdir', str(tmp_path / 'a')]).exit_code == 0
    with monkeypatch.context() as patch:
        patch.setattr(training_loop, name, stopping)
        res = _run(base + ['--outdir', str(tmp_path / 'b')] + extra)
    assert res.exit_code == 130, res.output
    return tuple(tmp_path / x / os.listdir(tmp_path / x)[0] for x in 'ab')


def test_checkpoints_between_snapshots_resume_exactly(p1_path, target_dir, tmp_path, monkeypatch):
    """--checkpoint-ticks 1 with --snap 5: a run stopped in its third tick resumes from the second tick's
    checkpoint (not from the start) and ends as the same run without the option; --resume-run takes the option
    and records it."""
    from fsgan import training_loop
    base = ['--resume', p1_path, '--target-dir', target_dir, '--shots', '5', '--batch', '4', '--tick', '0.004',
            '--snap', '5', '--kimg', '0.012', '--no-progress']
    real = training_loop.run_callbacks

    def stop_in_third_tick(callbacks, event, state, *args):
        if event == 'tick' and state.cur_tick == 3:
            raise KeyboardInterrupt
        return real(callbacks, event, state, *args)
    run_a, run_b = _uninterrupted_and_stopped(base, tmp_path, monkeypatch, 'run_callbacks', stop_in_third_tick,
                                              ['--checkpoint-ticks', '1'])
    assert torch.load(run_b / 'checkpoint.pt', weights_only=True)['cur_nimg'] == 8
    assert not any(name.startswith('network-snapshot-') for name in os.listdir(run_b))
    assert _run(['--resume-run', str(run_b), '--checkpoint-ticks', '2']).exit_code == 0
    assert read_training_options(run_b / 'training_options.json')['checkpoint_ticks'] == 2
    assert read_training_options(run_a / 'training_options.json')['checkpoint_ticks'] == 0
    kimgs = [json.loads(line)['kimg'] for line in (run_b / 'stats.jsonl').read_text().splitlines()]
    assert kimgs == [0.004, 0.008, 0.012]  # the third tick's record, if any, was dropped and redone
    _assert_same_checkpoints(run_a, run_b, nimg=12)


def test_checkpoints_within_a_tick_resume_exactly(p1_path, target_dir, tmp_path, monkeypatch):
    """--checkpoint-minutes (here: after every step): a run stopped in the third step of its first tick resumes from
    the second step's checkpoint, keeps its tick boundaries and ends as the same run without the option."""
    from fsgan import training_loop
    base = ['--resume', p1_path, '--target-dir', target_dir, '--shots', '5', '--batch', '4', '--tick', '0.012',
            '--snap', '1', '--kimg', '0.024', '--no-progress']
    real = training_loop.training_step
    steps = []

    def stop_in_third_step(*args, **kwargs):
        if len(steps) == 2:
            raise KeyboardInterrupt
        steps.append(1)
        return real(*args, **kwargs)
    run_a, run_b = _uninterrupted_and_stopped(base, tmp_path, monkeypatch, 'training_step', stop_in_third_step,
                                              ['--checkpoint-minutes', '1e-9'])
    ck = torch.load(run_b / 'checkpoint.pt', weights_only=True)
    assert (ck['cur_nimg'], ck['tick_start_nimg'], ck['cur_tick']) == (8, 0, 0)
    assert _run(['--resume-run', str(run_b), '--checkpoint-minutes', '30']).exit_code == 0
    assert read_training_options(run_b / 'training_options.json')['checkpoint_minutes'] == 30
    assert read_training_options(run_a / 'training_options.json')['checkpoint_minutes'] == 0
    kimgs = [json.loads(line)['kimg'] for line in (run_b / 'stats.jsonl').read_text().splitlines()]
    assert kimgs == [0.012, 0.024]  # the ticks end where the uninterrupted run's do
    _assert_same_checkpoints(run_a, run_b, nimg=24)


def test_dry_run_prints_counts(p1_path, target_dir, tmp_path):
    res = _run(['--resume', p1_path, '--target-dir', target_dir, '--shots', '3', '--dry-run',
                '--outdir', str(tmp_path / 'runs')])
    assert res.exit_code == 0, res.output
    for method in ('fsgan', 'tgan', 'freezed', 'ssgan'):
        assert f'trainable[{method}]' in res.output
    assert not (tmp_path / 'runs').exists() or not os.listdir(tmp_path / 'runs')


@pytest.mark.parametrize('args, message', [
    (['--target-dir', '/nonexistent/dir'], 'no such file or folder'),
    (['--shots', '50'], 'fewer than --shots 50'),
    (['--method', 'bogus'], "Invalid value for '--method'"),
    (['--method-opt', 'bogus=1'], '--method-opt bogus'),
    (['--freezed', '2'], '--freezed is an option of --method freezed'),
])
def test_bad_input_one_line_error(p1_path, target_dir, tmp_path, args, message):
    base = ['--resume', p1_path, '--target-dir', target_dir, '--outdir', str(tmp_path)]
    merged = base + args
    proc = subprocess.run([sys.executable, os.path.join(ROOT, 'scripts', 'train.py')] + merged,
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode != 0
    assert message in proc.stderr
    assert 'Traceback' not in proc.stderr


def test_unreadable_images_are_listed(p1_path, target_dir, tmp_path):
    bad = tmp_path / 'bad'
    bad.mkdir()
    for name in os.listdir(target_dir):
        (bad / name).write_bytes(open(os.path.join(target_dir, name), 'rb').read())
    (bad / 'broken.png').write_bytes(b'\x89PNG not really')
    res = CliRunner().invoke(train_cli.main, ['--resume', p1_path, '--target-dir', str(bad), '--outdir',
                                              str(tmp_path / 'runs'), '--no-progress', '--kimg', '0.004'])
    assert res.exit_code != 0
    assert 'broken.png' in res.output and 'unreadable' in res.output


def test_shot_selection_is_deterministic(target_dir):
    from training.dataset import load_target
    a = load_target(target_dir, 32, 3, shots=4, seed=7)
    b = load_target(target_dir, 32, 3, shots=4, seed=7)
    c = load_target(target_dir, 32, 3, shots=4, seed=8)
    assert a.files == b.files and np.array_equal(a.images, b.images)
    assert a.files != c.files
    assert a.images.shape == (4, 3, 32, 32) and a.images.dtype == np.uint8


@pytest.mark.slow
def test_two_process_gloo_training(p1_path, target_dir, tmp_path):
    """--gpus 2 on the CPU: two gloo processes, gradients averaged, parameters checked in sync; with
    --checkpoint-minutes both ranks look at rank 0's clock together at the 16th step, within the first tick, and
    take the checkpoint it calls for together (a rank left out would hang the run)."""
    out = tmp_path / 'runs'
    proc = subprocess.run([sys.executable, os.path.join(ROOT, 'scripts', 'train.py'), '--resume', p1_path,
                           '--target-dir', target_dir, '--shots', '5', '--outdir', str(out), '--gpus', '2',
                           '--device', 'cpu', '--kimg', '0.072', '--batch', '4', '--tick', '0.068', '--snap', '1',
                           '--no-progress', '--checkpoint-minutes', '1e-9'], capture_output=True, text=True, cwd=ROOT,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    (run_dir,) = [out / d for d in os.listdir(out)]
    ck = torch.load(run_dir / 'checkpoint.pt', weights_only=True)
    assert ck['cur_nimg'] == 72 and len(ck['rng']) == 2
    assert [json.loads(line)['kimg'] for line in (run_dir / 'stats.jsonl').read_text().splitlines()] == [0.068, 0.072]
    tick_lines = [line for line in proc.stdout.splitlines() if line.startswith('tick ')]
    assert [line.split()[3] for line in tick_lines] == ['0.068', '0.072']  # rank 0 only


@pytest.mark.slow
def test_a_training_error_in_a_worker_process_is_one_line(p1_path, target_dir, tmp_path):
    """--gpus 2: a worker's TrainingError (here non-finite values) reaches the user as one line, not a traceback."""
    proc = subprocess.run([sys.executable, os.path.join(ROOT, 'scripts', 'train.py'), '--resume', p1_path,
                           '--target-dir', target_dir, '--shots', '5', '--outdir', str(tmp_path / 'runs'), '--gpus', '2',
                           '--device', 'cpu', '--kimg', '0.008', '--batch', '4', '--lr', '1e30', '--no-progress'],
                          capture_output=True, text=True, cwd=ROOT)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 1 and len(lines) == 1, proc.stderr
    assert lines[0].startswith('Error: non-finite value at kimg'), proc.stderr


def test_no_progress_prints_a_line_per_tick(p1_path, target_dir, tmp_path):
    """Without the bar (a run logging to a file), each tick prints kimg, seconds, img/s and the losses."""
    out = tmp_path / 'runs'
    res = _run(['--resume', p1_path, '--target-dir', target_dir, '--shots', '5', '--outdir', str(out)] + TINY)
    assert res.exit_code == 0, res.output
    lines = [line.split() for line in res.output.splitlines() if line.startswith('tick ')]
    assert [w[:4] for w in lines] == [['tick', '1', 'kimg', '0.004'], ['tick', '2', 'kimg', '0.008']]
    (run_dir,) = [out / d for d in os.listdir(out)]
    ticks = [json.loads(line) for line in (run_dir / 'stats.jsonl').read_text().splitlines()]
    for words, tick in zip(lines, ticks):
        fields = dict(zip(words[::2], words[1::2]))
        assert float(fields['img/s']) > 0
        assert float(fields['G']) == pytest.approx(tick['stats']['Loss/G/loss'], abs=5e-4)
        assert float(fields['D']) == pytest.approx(tick['stats']['Loss/D/loss'], abs=5e-4)


def test_progress_bar_when_kimg_is_not_a_multiple_of_batch(tmp_path, p1_path, target_dir, one_thread):
    """The last batch overshoots --kimg (200 images at batch 16 ends at 208); the bar must not break."""
    from fsgan.run import run_training
    from fsgan.run_setup import setup_training_config
    c = setup_training_config(target_dir, outdir=str(tmp_path), resume=p1_path, method='fsgan', shots=10,
                              kimg=0.04, batch=16, snap=0, kimg_per_tick=0.04, device='cpu')
    run_dir = run_training(c, progress=True)
    assert os.path.isfile(os.path.join(run_dir, 'network-snapshot-000000.048.pkl'))  # 3 batches of 16


def test_dlr_sets_only_the_discriminator_rate(p1_path, target_dir):
    """--dlr defaults to --lr; given, it is D's Adam rate (G keeps --lr), both times the lazy-reg ratio."""
    from fsgan.training_loop import setup_run
    same = run_setup.setup_training_config(target_dir, resume=p1_path, method='fsgan', lr=0.03, device='cpu')
    assert same.dlr == same.lr == 0.03
    c = run_setup.setup_training_config(target_dir, resume=p1_path, method='fsgan', lr=0.03, dlr=0.002,
                                        method_options=dict(full_d=True), device='cpu')
    state = setup_run(c, torch.device('cpu'))
    assert state.opt_G.param_groups[0]['lr'] == pytest.approx(0.03 * 4 / 5)
    assert state.opt_D.param_groups[0]['lr'] == pytest.approx(0.002 * 16 / 17)
    with pytest.raises(run_setup.SetupError, match='--dlr'):
        run_setup.setup_training_config(target_dir, resume=p1_path, dlr=-1, device='cpu')

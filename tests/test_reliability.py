"""Faults during training: NaN/Inf detection and rollback, TensorBoard events, kill -9 and resume."""
import json
import os
import signal
import struct
import subprocess
import sys
import time

import pytest
import torch
from click.testing import CliRunner

from scripts import train as train_cli
from tests.conftest import ROOT
from torch_utils import tb_events
from training.loss import StyleGAN2Loss
from fsgan.options import read_training_options

TINY = ['--batch', '4', '--tick', '0.004', '--snap', '1', '--no-progress']


def _decode_varint(buf, i):
    shift = value = 0
    while True:
        b = buf[i]
        i += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return value, i


def _decode_fields(buf):
    """Minimal protobuf wire decoder: list of (field number, wire type, value)."""
    out, i = [], 0
    while i < len(buf):
        key, i = _decode_varint(buf, i)
        num, wire = key >> 3, key & 7
        if wire == 0:
            val, i = _decode_varint(buf, i)
        elif wire == 1:
            val, i = struct.unpack('<d', buf[i:i + 8])[0], i + 8
        elif wire == 5:
            val, i = struct.unpack('<f', buf[i:i + 4])[0], i + 4
        elif wire == 2:
            n, i = _decode_varint(buf, i)
            val, i = buf[i:i + n], i + n
        else:
            raise AssertionError(f'unexpected wire type {wire}')
        out.append((num, wire, val))
    return out


def test_crc32c_check_value():
    assert tb_events.crc32c(b'123456789') == 0xE3069283


def test_event_file_round_trip(tmp_path):
    w = tb_events.ScalarWriter(str(tmp_path))
    w.add_scalars({'Loss/G/loss': 1.5, 'Loss/D/loss': -0.25}, step=12)
    w.close()
    records = list(tb_events.read_records(w.path))
    assert len(records) == 2
    first = dict((n, v) for n, _w, v in _decode_fields(records[0]))
    assert first[3] == b'brain.Event:2'
    fields = _decode_fields(records[1])
    assert [v for n, _w, v in fields if n == 2] == [12]
    summary = [v for n, _w, v in fields if n == 5][0]
    values = {}
    for _n, _w, value in _decode_fields(summary):
        inner = dict((n, v) for n, _w2, v in _decode_fields(value))
        values[inner[1].decode()] = inner[2]
    assert values == {'Loss/G/loss': 1.5, 'Loss/D/loss': -0.25}
    with open(w.path, 'r+b') as f:  # a flipped byte is detected
        f.seek(-6, os.SEEK_END)
        f.write(b'\xff')
    with pytest.raises(ValueError, match='CRC'):
        list(tb_events.read_records(w.path))


def _poison_after(monkeypatch, calls):
    """Make the loss report NaN from the `calls`-th accumulate_gradients call on."""
    original = StyleGAN2Loss.accumulate_gradients
    counter = {'n': 0}

    def patched(self, phase, *args, **kwargs):
        counter['n'] += 1
        losses = original(self, phase, *args, **kwargs)
        if counter['n'] >= calls and counter['n'] < calls + 2:
            losses = {k: float('nan') for k in losses}
        return losses
    monkeypatch.setattr(StyleGAN2Loss, 'accumulate_gradients', patched)


def test_nan_stops_with_clear_message(p1_path, target_dir, tmp_path, monkeypatch):
    _poison_after(monkeypatch, 6)
    res = CliRunner().invoke(train_cli.main, ['--resume', p1_path, '--target-dir', target_dir, '--shots', '5',
                                              '--outdir', str(tmp_path), '--kimg', '0.016'] + TINY)
    assert res.exit_code != 0
    assert 'non-finite value at kimg' in res.output and 'phase' in res.output
    (run_dir,) = [tmp_path / d for d in os.listdir(tmp_path)]
    ck = torch.load(run_dir / 'checkpoint.pt', weights_only=True)
    assert ck['cur_nimg'] == 4                     # the last complete snapshot, before the NaN step
    assert not any(f.endswith('.tmp') for f in os.listdir(run_dir))


def test_nan_rollback_halves_lr_and_finishes(p1_path, target_dir, tmp_path, monkeypatch):
    _poison_after(monkeypatch, 6)
    res = CliRunner().invoke(train_cli.main, ['--resume', p1_path, '--target-dir', target_dir, '--shots', '5',
                                              '--outdir', str(tmp_path), '--kimg', '0.012',
                                              '--nan-policy', 'rollback'] + TINY)
    assert res.exit_code == 0, res.output
    assert 'rolled back to kimg 0.004' in res.output
    (run_dir,) = [tmp_path / d for d in os.listdir(tmp_path)]
    ck = torch.load(run_dir / 'checkpoint.pt', weights_only=True)
    assert ck['cur_nimg'] == 12 and ck['lr_scale'] == 0.5
    opts = read_training_options(run_dir / 'training_options.json')
    assert ck['opt_G']['param_groups'][0]['lr'] == pytest.approx(opts['lr'] * 0.5 * 4 / 5)


def test_nan_rollback_forgets_the_records_it_redoes(p1_path, target_dir, tmp_path, monkeypatch):
    """A rollback past a tick record (checkpoints every second tick here) redoes that tick: stats.jsonl keeps one
    record per kimg, as a resumed run's does."""
    _poison_after(monkeypatch, 6)                  # the second step, after tick 1's record, before its checkpoint
    res = CliRunner().invoke(train_cli.main, ['--resume', p1_path, '--target-dir', target_dir, '--shots', '5',
                                              '--outdir', str(tmp_path), '--kimg', '0.012',
                                              '--nan-policy', 'rollback'] + TINY + ['--snap', '2'])
    assert res.exit_code == 0, res.output
    assert 'rolled back to kimg 0.000' in res.output
    (run_dir,) = [tmp_path / d for d in os.listdir(tmp_path)]
    kimgs = [json.loads(line)['kimg'] for line in (run_dir / 'stats.jsonl').read_text().splitlines()]
    assert kimgs == [0.004, 0.008, 0.012]


def test_tensorboard_events_written(p1_path, target_dir, tmp_path):
    res = CliRunner().invoke(train_cli.main, ['--resume', p1_path, '--target-dir', target_dir, '--shots', '5',
                                              '--outdir', str(tmp_path), '--kimg', '0.008'] + TINY)
    assert res.exit_code == 0, res.output
    (run_dir,) = [tmp_path / d for d in os.listdir(tmp_path)]
    (events,) = [f for f in os.listdir(run_dir) if f.startswith('events.out.tfevents.')]
    records = list(tb_events.read_records(str(run_dir / events)))
    assert len(records) == 3  # file version + 2 ticks
    assert b'Loss/G/loss' in records[1] and b'Loss/D/loss' in records[2]


def _train_cmd(p1_path, target_dir, outdir, kimg):
    return [sys.executable, os.path.join(ROOT, 'scripts', 'train.py'), '--resume', p1_path, '--target-dir',
            target_dir, '--shots', '5', '--outdir', outdir, '--kimg', str(kimg)] + TINY


def _kill_when(proc, run_parent, predicate, timeout=240):
    """Poll the run folder and kill -9 the training process when predicate(run_dir) holds."""
    start = time.time()
    while time.time() - start < timeout:
        runs = os.listdir(run_parent) if os.path.isdir(run_parent) else []
        if runs and predicate(os.path.join(run_parent, runs[0])):
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            return os.path.join(run_parent, runs[0])
        if proc.poll() is not None:
            raise AssertionError(f'training ended before the kill point: {proc.stderr.read()}')
        time.sleep(0.01)
    proc.kill()
    raise AssertionError('kill point not reached in time')


@pytest.mark.slow
@pytest.mark.parametrize('kill_point', ['during_first_snapshot', 'after_first_checkpoint', 'mid_second_tick'])
def test_kill9_then_resume(p1_path, target_dir, tmp_path, kill_point):
    """A real kill -9 at several moments leaves nothing corrupt; --resume-run finishes with the right kimg."""
    parent = str(tmp_path / 'runs')
    preds = {
        'during_first_snapshot': lambda d: os.path.exists(os.path.join(d, 'fakes000000.004.png')),
        'after_first_checkpoint': lambda d: os.path.exists(os.path.join(d, 'checkpoint.pt')),
        'mid_second_tick': lambda d: os.path.exists(os.path.join(d, 'checkpoint.pt'))
        and time.sleep(1.0) is None,
    }
    proc = subprocess.Popen(_train_cmd(p1_path, target_dir, parent, 0.012), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=ROOT)
    run_dir = _kill_when(proc, parent, preds[kill_point])
    # Nothing half-written under a final name: every pickle/checkpoint present loads.
    for name in os.listdir(run_dir):
        path = os.path.join(run_dir, name)
        if name.endswith('.pkl'):
            from fsgan import load_network
            load_network(path)
        elif name == 'checkpoint.pt':
            torch.load(path, weights_only=True)
    res = subprocess.run([sys.executable, os.path.join(ROOT, 'scripts', 'train.py'), '--resume-run', run_dir,
                          '--no-progress'], capture_output=True, text=True, cwd=ROOT)
    if not os.path.exists(os.path.join(run_dir, 'checkpoint.pt')) and res.returncode != 0:
        assert 'no checkpoint.pt yet' in res.stderr and 'Traceback' not in res.stderr
        return
    assert res.returncode == 0, res.stderr
    ck = torch.load(os.path.join(run_dir, 'checkpoint.pt'), weights_only=True)
    assert ck['cur_nimg'] == 12
    kimgs = [json.loads(line)['kimg'] for line in open(os.path.join(run_dir, 'stats.jsonl'))]
    assert kimgs == [0.004, 0.008, 0.012]
    assert not any(n.endswith('.tmp') for n in os.listdir(run_dir))


def test_disk_full_during_snapshot_keeps_previous(p1_path, target_dir, tmp_path, monkeypatch):
    """ENOSPC while writing the second snapshot: one-line error, first snapshot and checkpoint intact."""
    import errno
    from dnnlib import fileio
    from fsgan import training_loop as loop
    real_fsync = fileio.os.fsync
    state = {'snapshots': 0}
    real_write_snapshot = loop.write_snapshot

    def counting_write_snapshot(*args, **kwargs):
        state['snapshots'] += 1
        return real_write_snapshot(*args, **kwargs)

    def fsync(fd):
        if state['snapshots'] >= 2:
            raise OSError(errno.ENOSPC, 'No space left on device')
        return real_fsync(fd)
    monkeypatch.setattr(loop, 'write_snapshot', counting_write_snapshot)
    monkeypatch.setattr(fileio.os, 'fsync', fsync)
    res = CliRunner().invoke(train_cli.main, ['--resume', p1_path, '--target-dir', target_dir, '--shots', '5',
                                              '--outdir', str(tmp_path), '--kimg', '0.008'] + TINY)
    monkeypatch.setattr(fileio.os, 'fsync', real_fsync)
    assert res.exit_code != 0
    assert 'No space left on device' in res.output and 'free disk space' in res.output
    assert 'Traceback' not in res.output
    (run_dir,) = [tmp_path / d for d in os.listdir(tmp_path)]
    names = os.listdir(run_dir)
    assert not any(n.endswith('.tmp') for n in names)
    ck = torch.load(run_dir / 'checkpoint.pt', weights_only=True)
    assert ck['cur_nimg'] == 4
    from fsgan import load_network
    load_network(str(run_dir / 'network-snapshot-000000.004.pkl'))


def test_finite_check_names_first_phase_gradient_and_weight():
    from dnnlib import EasyDict
    from fsgan.training_loop import FiniteCheck, TrainingError
    G, D = torch.nn.Linear(2, 2), torch.nn.Linear(2, 1)
    state = EasyDict(G=G, D=D, cur_nimg=2000)
    params = list(G.parameters()) + list(D.parameters())
    for p in params:
        p.grad = torch.zeros_like(p)
    checks = FiniteCheck()
    checks.add('Gmain', {'G': torch.tensor(0.5)}, params)
    checks.add('Dmain', {'Dreal': 0.25}, params)
    assert checks.result(state) == {'G': 0.5, 'Dreal': 0.25}
    checks = FiniteCheck()
    checks.add('Gmain', {'G': torch.tensor(0.5)}, params)
    D.bias.grad[0] = float('inf')  # each probe holds the values at its add(): Gmain saw finite gradients
    checks.add('Dmain', {'Dreal': torch.tensor(0.1)}, params)
    checks.add('Dreg', {'Dr1': torch.tensor(float('nan'))}, params)  # a later phase is not the one named
    with pytest.raises(TrainingError, match=r'kimg 2.000 \(phase Dmain\): gradient of bias$'):
        checks.result(state)
    checks = FiniteCheck()
    checks.add('Gmain', {'G': torch.tensor(float('nan')), 'Gpl': torch.tensor(1.0)}, params)
    with pytest.raises(TrainingError, match=r'\(phase Gmain\): G=nan$'):
        checks.result(state)
    with torch.no_grad():
        G.weight[0, 0] = float('nan')
    checks = FiniteCheck()
    checks.add('Gmain', {}, list(G.parameters()), what='weight')
    with pytest.raises(TrainingError, match='weight of weight'):
        checks.result(state)


def test_atomic_path_mode_and_cleanup(tmp_path):
    from dnnlib.fileio import NEW_FILE_MODE, atomic_path
    target = tmp_path / 'sub' / 'x.bin'
    with atomic_path(target) as tmp:
        assert os.path.dirname(tmp) == str(target.parent) and not target.exists()
        with open(tmp, 'wb') as f:
            f.write(b'new')
    assert target.read_bytes() == b'new' and os.stat(target).st_mode & 0o777 == NEW_FILE_MODE
    with pytest.raises(ValueError):
        with atomic_path(target) as tmp:
            with open(tmp, 'wb') as f:
                f.write(b'half')
            raise ValueError('writer failed')
    assert target.read_bytes() == b'new' and os.listdir(target.parent) == ['x.bin']


def test_resume_removes_temp_files_a_kill_left(tmp_path):
    """A writer killed mid-write leaves `.<name>.<random>.tmp`; resuming under the folder's lock removes it."""
    from dnnlib.fileio import atomic_path, remove_abandoned_temps
    with atomic_path(str(tmp_path / 'checkpoint.pt')) as tmp:
        name = os.path.basename(tmp)  # the name a kill at this moment would leave
    (tmp_path / name).write_bytes(b'half a checkpoint')
    (tmp_path / '.kept.tmp.d').mkdir()
    (tmp_path / 'stats.jsonl').write_text('{}\n')
    assert remove_abandoned_temps(str(tmp_path)) == [name]
    assert sorted(os.listdir(tmp_path)) == ['.kept.tmp.d', 'checkpoint.pt', 'stats.jsonl']


def test_ctrl_c_during_torch_save_completes_the_file_then_interrupts(tmp_path, python_ctrl_c):
    """Unheld, a Ctrl-C inside torch.save's writer surfaces as a RuntimeError (no one-line 'interrupted' message,
    exit code 1); held by ctrl_c_deferred the file is completed and the interrupt follows the block."""
    from dnnlib.fileio import atomic_open, ctrl_c_deferred
    from tests.conftest import CtrlCWriter
    payload = {'w': torch.arange(100000, dtype=torch.float32)}
    with pytest.raises(RuntimeError):
        with open(tmp_path / 'unheld.pt', 'wb') as f:
            torch.save(payload, CtrlCWriter(f))
    after = []
    with pytest.raises(KeyboardInterrupt):
        with ctrl_c_deferred():
            with atomic_open(tmp_path / 'held.pt') as f:
                torch.save(payload, CtrlCWriter(f))
            after.append('rest of the block')
    assert after == ['rest of the block']
    assert torch.equal(torch.load(tmp_path / 'held.pt', weights_only=True)['w'], payload['w'])
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_second_ctrl_c_interrupts_at_once(python_ctrl_c):
    from dnnlib.fileio import ctrl_c_deferred
    reached = []
    with pytest.raises(KeyboardInterrupt):
        with ctrl_c_deferred():
            os.kill(os.getpid(), signal.SIGINT)
            reached.append(1)
            os.kill(os.getpid(), signal.SIGINT)
            reached.append(2)
    assert reached == [1] and signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_ctrl_c_deferred_leaves_other_handlers_alone(python_ctrl_c):
    from dnnlib.fileio import ctrl_c_deferred
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with ctrl_c_deferred():
        os.kill(os.getpid(), signal.SIGINT)     # ignored, as before
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN

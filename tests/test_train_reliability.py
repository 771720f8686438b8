"""Runs and snapshots: unique snapshot names, resumable from anywhere, options checked on resume, a locked run
folder, a damaged checkpoint and Ctrl-C each ending in one line that says how to go on."""
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch
from click.testing import CliRunner

from scripts import train as train_cli
from tests.conftest import ROOT
from fsgan.options import read_training_options, write_training_options

pytestmark = pytest.mark.usefixtures('one_thread')
TINY = ['--batch', '4', '--tick', '0.004', '--snap', '1', '--no-progress']


def _train(args, **kwargs):
    return CliRunner().invoke(train_cli.main, [str(a) for a in args], **kwargs)


def _one_line_error(res, *words):
    lines = res.stderr.strip().splitlines()
    assert res.exit_code != 0, res.output
    assert len(lines) == 1 and lines[0].startswith('Error:') and 'Traceback' not in res.output, res.output
    for word in words:
        assert word in lines[0], (word, lines[0])
    return lines[0]


def _new_run(p1_path, target_dir, outdir, kimg='0.008', extra=()):
    res = _train(['--resume', p1_path, '--target-dir', target_dir, '--shots', '5', '--outdir', outdir,
                  '--kimg', kimg] + TINY + list(extra))
    assert res.exit_code == 0, res.output
    (name,) = os.listdir(outdir)
    return os.path.join(outdir, name)


@pytest.fixture(scope='module')
def finished_run(p1_path, target_dir, tmp_path_factory):
    """A finished run (kimg 0.008, snapshots at 0.004 and 0.008); tests copy it before changing it."""
    return _new_run(p1_path, target_dir, str(tmp_path_factory.mktemp('finished')))


@pytest.fixture
def run_copy(finished_run, tmp_path):
    return shutil.copytree(finished_run, tmp_path / 'run')


def _listing(run_dir):
    return {n: os.path.getmtime(os.path.join(run_dir, n)) for n in os.listdir(run_dir)}


def test_snapshots_below_one_kimg_keep_their_own_names(p1_path, target_dir, tmp_path):
    run_dir = _new_run(p1_path, target_dir, tmp_path, kimg='0.128', extra=['--tick', '0.032', '--batch', '8'])
    tags = ['000000.032', '000000.064', '000000.096', '000000.128']
    names = os.listdir(run_dir)
    for prefix, ext in (('network-snapshot-', '.pkl'), ('fakes', '.png'), ('adapter-', '.pt')):
        assert sorted(n for n in names if n.startswith(prefix)) == [f'{prefix}{t}{ext}' for t in tags]
    from fsgan.export import artefact_kimg, latest_artefact
    assert latest_artefact(run_dir, 'network-snapshot-', '.pkl').endswith('network-snapshot-000000.128.pkl')
    assert [artefact_kimg(f'network-snapshot-{t}.pkl') for t in tags] == [0.032, 0.064, 0.096, 0.128]
    from fsgan import load_network
    load_network(os.path.join(run_dir, 'network-snapshot-000000.032.pkl'))   # each one is a whole snapshot


def test_names_of_older_runs_still_sort_by_kimg(tmp_path):
    from fsgan.compare import latest
    from fsgan.benchmarks.ship import snapshot_kimg
    for name in ('network-snapshot-000001.pkl', 'network-snapshot-000000.500.pkl', 'network-snapshot-000001.250.pkl'):
        (tmp_path / name).write_bytes(b'')
    assert latest(str(tmp_path), 'network-snapshot-', '.pkl').endswith('000001.250.pkl')
    assert snapshot_kimg('x/network-snapshot-000026.pkl') == 26 and snapshot_kimg('network-snapshot-000020.480.pkl') \
        == 20.48
    assert '(0 = only the final snapshot)' in ' '.join(CliRunner().invoke(train_cli.main, ['-h']).output.split())


def test_resume_run_from_another_working_directory(p1_path, target_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    relative = os.path.relpath(p1_path, ROOT)
    run_dir = _new_run(relative, target_dir, tmp_path / 'runs', kimg='0.004')
    opts = read_training_options(os.path.join(run_dir, 'training_options.json'))
    assert opts['source'] == p1_path and os.path.isabs(opts['target_dir']) and os.path.isabs(opts['outdir'])
    monkeypatch.chdir(tmp_path)
    res = _train(['--resume-run', run_dir, '--kimg', '0.008', '--no-progress'])
    assert res.exit_code == 0, res.output
    assert torch.load(os.path.join(run_dir, 'checkpoint.pt'), weights_only=True)['cur_nimg'] == 8
    opts['source'] = relative                                # a run recorded before paths were absolute
    write_training_options(os.path.join(run_dir, 'training_options.json'), opts)
    _one_line_error(_train(['--resume-run', run_dir, '--kimg', '0.012']), 'training_options.json', '"source"',
                    'absolute path')


def test_resume_run_refuses_options_it_would_ignore(run_copy):
    before = _listing(run_copy)
    res = _train(['--resume-run', run_copy, '--resume', 'ffhq256', '--batch', '8', '--seed', '3'])
    _one_line_error(res, '--resume', '--batch', '--seed', 'drop')
    res = _train(['--resume-run', run_copy])                 # finished: says so, writes nothing
    assert res.exit_code == 0 and 'is finished (kimg 0.008 of 0.008)' in res.output, res.output
    res = _train(['--resume-run', run_copy, '--kimg', '0.012', '--dry-run'])
    assert res.exit_code == 0 and 'would continue' in res.output and 'to 0.012' in res.output, res.output
    _one_line_error(_train(['--resume-run', run_copy, '--kimg', '0.004']), '--kimg 0.004', 'already at kimg 0.008')
    for bad in ('inf', 'nan', '-1'):                         # refused before the run's options are touched
        _one_line_error(_train(['--resume-run', run_copy, '--kimg', bad]), 'kimg', bad)
    assert _listing(run_copy) == before


def test_kimg_extends_a_run_exactly(p1_path, target_dir, tmp_path, finished_run):
    """--resume-run RUN --kimg continues a shorter run to the same weights as an uninterrupted one."""
    short = _new_run(p1_path, target_dir, tmp_path / 'short', kimg='0.004')
    res = _train(['--resume-run', short, '--kimg', '0.008', '--no-progress'])
    assert res.exit_code == 0, res.output
    assert read_training_options(os.path.join(short, 'training_options.json'))['kimg'] == 0.008
    assert [json.loads(x)['kimg'] for x in open(os.path.join(short, 'stats.jsonl'))] == [0.004, 0.008]
    a = torch.load(os.path.join(finished_run, 'checkpoint.pt'), weights_only=True)
    b = torch.load(os.path.join(short, 'checkpoint.pt'), weights_only=True)
    for key in ('G', 'D', 'G_ema'):
        for name, t in a[key].items():
            assert torch.equal(t, b[key][name]), f'{key}.{name}'
    assert f'Last snapshot: {os.path.join(short, "network-snapshot-000000.008.pkl")}' in res.output


def test_resume_run_refuses_a_changed_source_network(p1_path, target_dir, tmp_path):
    """Resuming on another network than the run trained from would stamp its adapters with the wrong source."""
    from fsgan.export import save_snapshot
    from fsgan.loading import load_network
    source = shutil.copy(p1_path, tmp_path / 'source.pkl')
    run_dir = _new_run(source, target_dir, tmp_path / 'runs', kimg='0.004')
    net = load_network(source)
    with torch.no_grad():
        net['G'].synthesis.b4.conv1.bias.add_(0.1)
    save_snapshot(source, net['G'], net['D'], net['G_ema'])
    before = _listing(run_dir)
    _one_line_error(_train(['--resume-run', run_dir, '--kimg', '0.008']), str(source), 'not the network',
                    'put the original back')
    assert _listing(run_dir) == before
    shutil.copy(p1_path, source)                             # the original back: the run continues
    assert _train(['--resume-run', run_dir, '--kimg', '0.008', '--no-progress']).exit_code == 0


def test_damaged_checkpoint_names_the_last_snapshot(run_copy, tmp_path):
    ck = run_copy / 'checkpoint.pt'
    ck.write_bytes(ck.read_bytes()[:5000])
    line = _one_line_error(_train(['--resume-run', run_copy, '--kimg', '0.012']), 'checkpoint.pt is damaged',
                           'network-snapshot-000000.008.pkl', '--resume')
    assert 'weights_only' not in line
    command = shlex.split(line.split('with: ', 1)[1])
    assert command[:2] == ['python', 'scripts/train.py'] and '--kimg' in command
    res = _train(command[2:] + ['--outdir', tmp_path / 'continued'] + TINY)   # the advice works
    assert res.exit_code == 0, res.output
    ck.write_bytes(b'not a checkpoint')
    _one_line_error(_train(['--resume-run', run_copy, '--kimg', '0.012']), 'damaged', 'last snapshot')


@pytest.mark.parametrize('edit, words', [
    (lambda o: o.pop('device'), ['"device" is missing']),
    (lambda o: o.update(batch='four'), ['"batch" is "four"', 'integer']),
    (lambda o: o.update(kimg=-1), ['"kimg" is -1']),
    (lambda o: o.update(method='bogus'), ['"method" is "bogus"']),
    (lambda o: o.update(method_options=[]), ['"method_options"']),
    (lambda o: o.update(method_options=dict(bogus=True)), ['"method_options" has bogus']),
    ('{"kimg": 0.012,', ['not valid JSON', 'line 1']),
    ('[1, 2]', ['not an object']),
])
def test_hand_edited_options_are_checked(run_copy, edit, words):
    path = run_copy / 'training_options.json'
    if callable(edit):
        opts = read_training_options(path)
        edit(opts)
        write_training_options(path, opts)
    else:
        path.write_text(edit)
    before = _listing(run_copy)
    _one_line_error(_train(['--resume-run', run_copy, '--kimg', '0.012']), 'training_options.json', *words)
    assert _listing(run_copy) == before


def test_a_run_folder_in_use_is_refused(run_copy):
    from dnnlib.lock import FolderLocked, folder_lock
    with folder_lock(str(run_copy)):
        before = (run_copy / 'stats.jsonl').read_text()
        line = _one_line_error(_train(['--resume-run', run_copy, '--kimg', '0.012']), 'in use by process')
        assert str(os.getpid()) in line and (run_copy / 'stats.jsonl').read_text() == before
        with pytest.raises(FolderLocked):
            with folder_lock(str(run_copy)):
                pass
    assert not (run_copy / 'run.lock').exists()
    (run_copy / 'run.lock').write_text('{"pid": 999999, "host": "elsewhere", "since": "yesterday"}')  # left behind
    res = _train(['--resume-run', run_copy, '--kimg', '0.012', '--no-progress'])
    assert res.exit_code == 0, res.output
    assert [json.loads(x)['kimg'] for x in (run_copy / 'stats.jsonl').read_text().splitlines()] == [0.004, 0.008,
                                                                                                    0.012]


def test_a_lock_dies_with_its_process(tmp_path):
    """kill -9 of the holder frees the folder at once (the kernel drops the flock)."""
    from dnnlib.lock import FolderLocked, folder_lock
    holder = subprocess.Popen([sys.executable, '-c', 'import sys, time; from dnnlib.lock import folder_lock\n'
                               f'with folder_lock({str(tmp_path)!r}):\n    print("held", flush=True); time.sleep(60)'],
                              cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == 'held'
    with pytest.raises(FolderLocked, match=f'process {holder.pid} on'):
        with folder_lock(str(tmp_path)):
            pass
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    assert (tmp_path / 'run.lock').exists()                  # the file stays, the lock does not
    with folder_lock(str(tmp_path)):
        pass


def test_a_run_refused_before_its_first_checkpoint_leaves_no_folder(p1_path, target_dir, tmp_path):
    res = _train(['--resume', p1_path, '--target-dir', target_dir, '--shots', '5', '--outdir', tmp_path / 'runs',
                  '--method', 'freezed', '--freezed', '999'] + TINY)
    _one_line_error(res, '--freezed 999')
    assert os.listdir(tmp_path / 'runs') == []


def test_a_folder_made_for_a_lock_goes_again_when_nothing_was_written(tmp_path):
    from dnnlib.lock import creating_folder_lock
    with pytest.raises(ValueError, match='refused'):
        with creating_folder_lock(str(tmp_path / 'new'), 'x.lock'):
            assert os.listdir(tmp_path / 'new') == ['x.lock']
            raise ValueError('refused')
    assert not (tmp_path / 'new').exists()
    with creating_folder_lock(str(tmp_path / 'new'), 'x.lock'):
        (tmp_path / 'new' / 'work.txt').write_text('kept')
    assert os.listdir(tmp_path / 'new') == ['work.txt']     # work stays, the lock file goes
    (tmp_path / 'new' / 'work.txt').unlink()
    with creating_folder_lock(str(tmp_path / 'new'), 'x.lock'):
        pass
    assert (tmp_path / 'new').is_dir()                       # not made here: an existing folder is never removed


def test_interrupt_before_the_first_snapshot_resumes_exactly(p1_path, target_dir, tmp_path, monkeypatch,
                                                             finished_run):
    """Ctrl-C in the second step: the exact resume command, exit code 130, and the start checkpoint it resumes."""
    from fsgan import training_loop
    real, calls = training_loop.training_step, []

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)
    monkeypatch.setattr(training_loop, 'training_step', interrupted)
    res = _train(['--resume', p1_path, '--target-dir', target_dir, '--shots', '5', '--outdir', tmp_path,
                  '--kimg', '0.008'] + TINY + ['--tick', '0.008'])      # the first snapshot would follow step 2
    monkeypatch.setattr(training_loop, 'training_step', real)
    (run_dir,) = [os.path.join(tmp_path, n) for n in os.listdir(tmp_path)]
    line = _one_line_error(res, 'interrupted; continue with:', f'--resume-run {run_dir}')
    assert res.exit_code == 130 and 'Aborted' not in res.output
    assert not [n for n in os.listdir(run_dir) if n.startswith('network-snapshot-')]
    assert torch.load(os.path.join(run_dir, 'checkpoint.pt'), weights_only=True)['cur_nimg'] == 0
    command = shlex.split(line.split('continue with: ', 1)[1])
    assert command[-2:] == ['--resume-run', run_dir] and os.path.samefile(command[0], sys.executable)
    res = _train(command[2:] + ['--no-progress'])
    assert res.exit_code == 0, res.output
    a = torch.load(os.path.join(finished_run, 'checkpoint.pt'), weights_only=True)
    b = torch.load(os.path.join(run_dir, 'checkpoint.pt'), weights_only=True)
    assert all(torch.equal(t, b['G_ema'][n]) for n, t in a['G_ema'].items())


def test_ctrl_c_while_a_snapshot_is_written_finishes_it(p1_path, target_dir, tmp_path, monkeypatch, python_ctrl_c):
    """A Ctrl-C that arrives inside the adapter's torch.save: the snapshot and checkpoint are completed, then the
    run stops with the one-line resume advice and exit code 130 (not a RuntimeError traceback)."""
    import contextlib
    from fsgan import export
    from tests.conftest import CtrlCWriter
    real_open = export.atomic_open

    @contextlib.contextmanager
    def interrupting_open(path, *args, **kwargs):
        with real_open(path, *args, **kwargs) as f:
            yield CtrlCWriter(f) if os.path.basename(path).startswith('adapter-') else f
    monkeypatch.setattr(export, 'atomic_open', interrupting_open)
    res = _train(['--resume', p1_path, '--target-dir', target_dir, '--shots', '5', '--outdir', tmp_path,
                  '--kimg', '0.008'] + TINY)
    (run_dir,) = [os.path.join(tmp_path, n) for n in os.listdir(tmp_path)]
    _one_line_error(res, 'interrupted; continue with:', f'--resume-run {run_dir}')
    assert res.exit_code == 130
    assert export.load_adapter(os.path.join(run_dir, 'adapter-000000.004.pt'))['method'] == 'fsgan'
    assert torch.load(os.path.join(run_dir, 'checkpoint.pt'), weights_only=True)['cur_nimg'] == 4
    assert not [n for n in os.listdir(run_dir) if n.endswith('.tmp')]


def _default_sigint():
    """In the child before exec: SIGINT back to its default. A suite started in the background (`cmd &` in a
    script) runs with SIGINT ignored, every child inherits that, and Python then installs no KeyboardInterrupt
    handler, so Ctrl-C could not be simulated."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.slow
def test_ctrl_c_prints_the_resume_command(p1_path, target_dir, tmp_path):
    proc = subprocess.Popen([sys.executable, os.path.join(ROOT, 'scripts', 'train.py'), '--resume', p1_path,
                             '--target-dir', target_dir, '--shots', '5', '--outdir', str(tmp_path), '--kimg', '10',
                             '--batch', '4', '--no-progress'], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=dict(os.environ, OMP_NUM_THREADS='1'),
                            preexec_fn=_default_sigint)
    start = time.time()
    while not any(os.path.isfile(os.path.join(tmp_path, n, 'checkpoint.pt')) for n in os.listdir(tmp_path)):
        assert proc.poll() is None and time.time() - start < 120, proc.communicate()
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=120)
    (run_dir,) = [os.path.join(tmp_path, n) for n in os.listdir(tmp_path)]
    assert proc.returncode == 130 and 'Aborted' not in err and 'Traceback' not in err, err
    assert err.strip().splitlines()[-1].endswith(f'--resume-run {run_dir}')
    assert not os.path.exists(os.path.join(run_dir, 'run.lock'))


def test_tiny_runs_show_their_kimg(p1_path, target_dir, tmp_path):
    res = _train(['--resume', p1_path, '--target-dir', target_dir, '--shots', '5', '--outdir', tmp_path,
                  '--kimg', '0.008', '--batch', '4', '--tick', '0.004'])
    assert res.exit_code == 0, res.output
    assert '0.008/0.008 kimg' in res.stderr and '0.00/0.00 kimg' not in res.stderr


@pytest.mark.parametrize('args, words, absent', [
    (['--resume', '{tmp}'], ['is a directory'], ''),
    (['--outdir', '{file}'], ['--outdir', 'not a folder'], '--resume-run'),
    (['--outdir', '{file}/runs'], ['--outdir', 'cannot create it'], '--resume-run'),
    (['--bogus'], ['--bogus'], 'Usage'),
])
def test_path_and_option_mistakes_are_one_line(p1_path, target_dir, tmp_path, args, words, absent):
    (tmp_path / 'file').write_text('x')
    fill = dict(tmp=tmp_path, file=tmp_path / 'file')
    base = {'--resume': p1_path, '--outdir': tmp_path / 'runs'}
    for flag, value in zip(args[::2], args[1::2]):
        base[flag] = value.format(**fill)
    res = _train(['--target-dir', target_dir, '--no-progress'] + [x for kv in base.items() for x in kv]
                 + (args if args == ['--bogus'] else []))
    line = _one_line_error(res, *words)
    assert not absent or absent not in line
    assert not (tmp_path / 'runs').exists()


def test_readme_lists_every_file_of_a_run_folder(finished_run):
    with open(os.path.join(ROOT, 'README.md'), encoding='utf-8') as f:
        readme = f.read()
    section = readme[readme.index('### A run folder'):readme.index('### Target images')]
    for name in os.listdir(finished_run):
        pattern = re.sub(r'\d{6}\.\d{3}', '{tag}', name)
        pattern = 'events.out.tfevents.*' if name.startswith('events.out.tfevents.') else pattern
        assert f'`{pattern}`' in section, name
    assert '`run.lock`' in section

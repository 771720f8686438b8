"""python -m fsgan.selfcheck: the quick CPU run gives every section with a pass and sane content; a
crashing section is recorded while the others run; bad options end in one line."""
import json
import math
import os
import subprocess
import sys

import pytest
import torch

from fsgan import selfcheck
from fsgan.methods import METHODS
from tests.conftest import ROOT


@pytest.mark.slow
def test_quick_cpu_run_passes_every_section(tmp_path):
    out = tmp_path / 'selfcheck.json'
    proc = subprocess.run([sys.executable, '-m', 'fsgan.selfcheck', '--quick', '--device', 'cpu', '--json', str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, OMP_NUM_THREADS='1'))  # one thread, as the suite's other workers
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads(out.read_text())
    assert set(report) == {'header', *selfcheck.SECTIONS}
    for name in selfcheck.SECTIONS:
        assert report[name]['status'] == 'pass', (name, report[name].get('summary'), report[name].get('traceback'))
        assert report[name]['seconds'] > 0 and f'{name:<11} pass' in proc.stdout
    head = report['header']
    assert head['torch'] == torch.__version__ and head['device'] == 'cpu' and head['quick'] is True
    assert head['native_build']['cpu']['state'] == 'ok'

    ops = report['ops']
    assert len(ops['cases']) >= 50 and {c['dtype'] for c in ops['cases']} == {'float32', 'float64'}
    assert {c['op'] for c in ops['cases']} == {'bias_act', 'upfirdn2d'}
    assert all(c['native_ran'] == 'native' and c['native']['ok'] for c in ops['cases'])
    assert 'clamp boundary' in {c['case'] for c in ops['cases']}

    rows = {(r['fixture'], r['mode']): r for r in report['fixtures']['rows']}
    assert all(rows[(f, 'float32')]['status'] == 'pass' for f in ('p1', 'p2', 't1'))
    assert rows[('p2', 'float16 blocks')]['status'] == 'skipped'  # CUDA only
    assert max(rows[('p1', 'float32')]['max_abs_diff'].values()) <= 1e-4

    methods = {r['method']: r for r in report['methods']['rows']}
    assert set(methods) == set(METHODS)
    for r in methods.values():
        assert r['frozen_changed'] == [] and 0 < r['trainable_changed'] <= r['trainable_tensors']
        assert all(math.isfinite(v) for v in r['losses'].values()) and 'G' in r['losses']
    assert methods['fsgan']['trainable_numbers'] < methods['tgan']['trainable_numbers']

    speed = report['speed']
    assert {r['method'] for r in speed['rows']} == set(METHODS)
    assert all(r['ms_per_step'] > 0 and r['img_per_s'] > 0 for r in speed['rows'])
    assert speed['svd_setup']['seconds'] > 0 and speed['svd_setup']['trainable'] > 0

    assert report['header']['tf32'] == dict(matmul=False, cudnn=False)  # the fixtures' float32 needs it off

    e2e = report['end_to_end']
    assert e2e['train']['rc'] == 0 and e2e['generate']['rc'] == 0 and e2e['snapshots']
    assert 'grid.png' in e2e['generated'] and e2e['options']['allow_tf32'] is False


def test_crashing_section_is_recorded_and_the_rest_runs(tmp_path, monkeypatch, capsys):
    def boom(ctx):
        raise RuntimeError('simulated crash')

    def fine(ctx):
        assert ctx.device.type == 'cpu' and ctx.quick
        return dict(status='pass', summary='ok')
    monkeypatch.setattr(selfcheck, 'SECTIONS', dict(first=boom, second=fine))
    out = tmp_path / 'r.json'
    report = selfcheck.run_selfcheck(torch.device('cpu'), True, str(out), ['first', 'second'])
    assert report['first']['status'] == 'error' and 'simulated crash' in report['first']['summary']
    assert 'RuntimeError' in report['first']['traceback']
    assert report['second']['status'] == 'pass'
    assert json.loads(out.read_text())['second']['summary'] == 'ok'
    assert 'first       error' in capsys.readouterr().out


def test_json_is_rewritten_after_each_section(tmp_path, monkeypatch):
    out = tmp_path / 'r.json'
    seen = []

    def record(ctx):
        seen.append(sorted(json.loads(out.read_text())))  # what an interrupted run would have left
        return dict(status='pass', summary='')
    monkeypatch.setattr(selfcheck, 'SECTIONS', dict(a=record, b=record))
    selfcheck.run_selfcheck(torch.device('cpu'), True, str(out), ['a', 'b'])
    assert seen == [['header'], ['a', 'header']]


@pytest.mark.parametrize('args, message', [
    (['--sections', 'ops,bogus'], '--sections'),
    (['--json', '/nonexistent/dir/out.json'], '--json'),
] + ([] if torch.cuda.is_available() else [(['--device', 'cuda'], 'CUDA is not available')]))
def test_bad_options_one_line(args, message):
    proc = subprocess.run([sys.executable, '-m', 'fsgan.selfcheck'] + args, cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode != 0 and message in proc.stderr and 'Traceback' not in proc.stderr
    assert not os.path.exists('/nonexistent/dir/out.json')

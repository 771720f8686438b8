"""EWC and AdAM end to end on p1: a hundred images from the CLI (artefacts, baked snapshot = source + adapter) and
as compare.py rows."""
import csv
import json
import os

import pytest
import torch
from click.testing import CliRunner

from fsgan.export import latest_artefact
from fsgan import load_network
from fsgan.export import apply_adapter
from scripts import compare as compare_cli
from scripts import train as train_cli

QUICK = {'ewc': ['--loss', 'ewc.samples=20'],
         'adam': ['--method-opt', 'probe_kimg=0.02', '--method-opt', 'probe_samples=20']}


@pytest.mark.slow
@pytest.mark.parametrize('method', ['ewc', 'adam'])
def test_trains_a_hundred_images_from_the_cli(p1_path, target_dir, tmp_path, method, one_thread):
    out = tmp_path / 'runs'
    res = CliRunner().invoke(train_cli.main, ['--resume', p1_path, '--target-dir', target_dir, '--shots', '10',
                                              '--method', method, '--kimg', '0.1', '--batch', '4', '--tick', '0.05',
                                              '--no-progress', '--outdir', str(out)] + QUICK[method])
    assert res.exit_code == 0, res.output
    (run_dir,) = [out / d for d in os.listdir(out)]
    ticks = [json.loads(line) for line in (run_dir / 'stats.jsonl').read_text().splitlines()]
    assert [t['kimg'] for t in ticks] == [0.052, 0.1]
    if method == 'ewc':
        assert ticks[-1]['stats']['Loss/G/ewc'] > 0
    snap = load_network(latest_artefact(str(run_dir), 'network-snapshot-', '.pkl'))
    adapted = apply_adapter(load_network(p1_path), latest_artefact(str(run_dir), 'adapter-', '.pt'))
    z = torch.randn([2, snap['G_ema'].z_dim], generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        a = snap['G_ema'](z, torch.zeros([2, 0]), noise_mode='const')
        b = adapted['G_ema'](z, torch.zeros([2, 0]), noise_mode='const')
        source = load_network(p1_path)['G_ema'](z, torch.zeros([2, 0]), noise_mode='const')
    assert (a - b).abs().max() <= 1e-5
    assert (a - source).abs().max() > 1e-3   # it did adapt


@pytest.mark.slow
def test_compare_rows(p1_path, target_dir, tmp_path, one_thread):
    outdir = tmp_path / 'cmp'
    methods = 'ewc@loss.ewc.samples=20,adam@probe_kimg=0.02@probe_samples=20'
    res = CliRunner().invoke(compare_cli.main, [
        '--source', p1_path, '--target-dir', target_dir, '--shots', '10', '--methods', methods, '--kimg', '0.1',
        '--batch', '4', '--tick', '0.1', '--snap', '1', '--num', '6', '--cols', '4', '--strip-steps', '3',
        '--outdir', str(outdir), '--cache-dir', str(outdir) + '-cache', '--device', 'cpu', '--no-progress'])
    assert res.exit_code == 0, res.output
    with open(outdir / 'metrics.csv') as f:
        rows = {r['method']: r for r in csv.DictReader(f)}
    assert list(rows) == methods.split(',')
    assert int(rows[methods.split(',')[0]]['trainable_params']) == 263987 + 288993   # every tensor of G and D
    assert 0 < int(rows[methods.split(',')[1]]['trainable_params']) < 263987 + 288993
    assert all(float(r['fid_shots']) > 0 for r in rows.values())

"""EWC (fsgan/methods/ewc.py, fsgan/losses/ewc.py): the penalty, its Fisher information, and its state on resume."""
from fsgan import run_setup
import copy
import json
import os

import pytest
import torch
from click.testing import CliRunner

from dnnlib import EasyDict
from fsgan import load_network
from fsgan.losses import build_loss_terms, ewc
from fsgan.methods import adapt
from scripts import train as train_cli
from fsgan.options import read_training_options, write_training_options


@pytest.fixture(scope='module')
def source(p1_path):
    return load_network(p1_path)


def _prepared(source, samples=3):
    """An ewc term prepared on a copy of p1 adapted for the method ewc (every tensor trains), and that G."""
    G, D = copy.deepcopy(source['G']).train(), copy.deepcopy(source['D']).train()
    adapt(G, D, method='ewc')
    (term,) = build_loss_terms({'ewc': dict(weight=5e8, samples=samples)})
    term.prepare(EasyDict(G=G, D=D, opts=EasyDict(seed=0), device=torch.device('cpu')))
    return term, G


def test_penalty_is_zero_at_the_source_and_grows_as_theta_moves(source):
    term, G = _prepared(source)
    ctx = EasyDict(G=G)
    assert term.G_value(ctx).item() == 0.0
    assert all(not torch.equal(f, torch.zeros_like(f)) for n, f in term.fisher.items() if n.endswith('.weight'))
    direction = {n: torch.randn_like(p) for n, p in G.named_parameters()}
    anchor = {n: p.detach().clone() for n, p in G.named_parameters()}
    values = []
    for t in (0.001, 0.002, 0.004):
        with torch.no_grad():
            for n, p in G.named_parameters():
                p.copy_(anchor[n] + t * direction[n])
        values.append(term.G_value(ctx).item())
    assert 0 < values[0] < values[1] < values[2]
    assert values[2] / values[0] == pytest.approx(16, rel=1e-3)   # quadratic in the distance from the source
    expected = sum((term.fisher[n] * (0.004 * direction[n]).square()).sum() for n in term.fisher)
    assert values[2] == pytest.approx(float(expected), rel=1e-4)


def test_fisher_is_a_mean_of_per_sample_squares_and_leaves_the_run_alone(source):
    G, D = copy.deepcopy(source['G']).train(), copy.deepcopy(source['D'])
    adapt(G, D, method='ewc')
    w_avg = G.mapping.w_avg.clone()
    rng = torch.random.get_rng_state()
    one, two = ewc.fisher_diagonal(G, D, 1), ewc.fisher_diagonal(G, D, 2)
    assert torch.equal(torch.random.get_rng_state(), rng) and torch.equal(G.mapping.w_avg, w_avg)
    assert set(one) == {n for n, p in G.named_parameters()}   # G's trainable tensors only, none of D's
    for n in one:   # 2 * F(2) - F(1) is the second image's squared gradient: never negative
        assert (2 * two[n] - one[n] >= -1e-6 * one[n].abs().max().clamp(min=1e-30)).all()
        assert (one[n] >= 0).all()
    assert any(not torch.allclose(one[n], two[n]) for n in one)


def test_the_method_brings_the_term_and_the_user_overrides_it(p1_path, target_dir):
    c = run_setup.setup_training_config(target_dir, resume=p1_path, method='ewc', device='cpu')
    assert c.losses == {'ewc': dict(weight=5e8, samples=1000)} and c.lr == 0.002
    c = run_setup.setup_training_config(target_dir, resume=p1_path, method='ewc', device='cpu',
                                        losses={'ewc': dict(weight=1e3, samples=10)})
    assert c.losses == {'ewc': dict(weight=1e3, samples=10)}
    assert run_setup.setup_training_config(target_dir, resume=p1_path, method='ewc', device='cpu',
                                           losses={'ewc': 0}).losses == {}


def _train(args):
    res = CliRunner().invoke(train_cli.main, args, catch_exceptions=False)
    assert res.exit_code == 0, res.output
    return res


def test_state_resumes_bit_exactly_without_recomputation(p1_path, target_dir, tmp_path, monkeypatch, one_thread):
    """F and theta_S are computed once per run, saved in checkpoint.pt and restored by --resume-run; the resumed
    run ends where an uninterrupted one does."""
    calls = []
    real = ewc.fisher_diagonal
    monkeypatch.setattr(ewc, 'fisher_diagonal', lambda *a, **k: calls.append(1) or real(*a, **k))
    base = ['--resume', p1_path, '--target-dir', target_dir, '--shots', '5', '--batch', '4', '--tick', '0.004',
            '--snap', '1', '--no-progress', '--method', 'ewc', '--loss', 'ewc.samples=4']
    _train(base + ['--outdir', str(tmp_path / 'a'), '--kimg', '0.008'])
    _train(base + ['--outdir', str(tmp_path / 'b'), '--kimg', '0.004'])
    assert len(calls) == 2
    run_a, run_b = [tmp_path / d / os.listdir(tmp_path / d)[0] for d in ('a', 'b')]
    opts = read_training_options(run_b / 'training_options.json')
    opts['kimg'] = 0.008
    write_training_options(run_b / 'training_options.json', opts)
    _train(['--resume-run', str(run_b), '--no-progress'])
    assert len(calls) == 2   # restored, not recomputed
    ck_a, ck_b = [torch.load(r / 'checkpoint.pt', weights_only=True) for r in (run_a, run_b)]
    assert ck_a['cur_nimg'] == ck_b['cur_nimg'] == 8
    (state_a,), (state_b,) = ck_a['loss_terms'], ck_b['loss_terms']
    for part in ('fisher', 'anchor'):
        assert state_a[part].keys() == state_b[part].keys()
        assert all(torch.equal(state_a[part][n], state_b[part][n]) for n in state_a[part])
    for key in ('G', 'D', 'G_ema'):
        for name, t in ck_a[key].items():
            assert torch.equal(t, ck_b[key][name]), f'{key}.{name} differs after resume'
    stats = [json.loads(line)['stats'] for line in (run_b / 'stats.jsonl').read_text().splitlines()]
    assert [s['Loss/G/ewc'] > 0 for s in stats] == [False, True]   # one step per tick: the first at the source

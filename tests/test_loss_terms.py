"""Registered loss terms (fsgan.losses): the same checks for every term, options, and old run folders."""
import copy
import json
import os

import pytest
import torch
from click.testing import CliRunner

from dnnlib import EasyDict
from fsgan import load_network
from fsgan.losses import LOSS_TERMS, LossTerm, build_loss_terms, resolve_losses
from scripts import train as train_cli
from training.loss import StyleGAN2Loss
from training.training_loop import loss_config, setup_run, training_step


def _ctx(n=4, c_dim=3, G=None):
    """A batch as the loss hands it to the terms: differentiable fakes, reals, latents, cross-entropies, G."""
    gen = torch.Generator().manual_seed(0)
    gen_img = torch.randn([n, 3, 8, 8], generator=gen).requires_grad_(True)
    return EasyDict(gen_img=gen_img, gen_z=torch.randn([n, 5], generator=gen), real_img=torch.randn([n, 3, 8, 8]),
                    gen_c=torch.eye(c_dim)[torch.arange(n) % c_dim], real_c=torch.eye(c_dim)[torch.arange(n) % c_dim],
                    gen_ce=(gen_img.flatten(1).mean(1) ** 2 + 1), real_ce=torch.rand([n], generator=gen) + 0.5, G=G)


QUICK_OPTIONS = {'ewc': dict(samples=2)}  # keep prepare() quick; the checks below do not depend on these


def _term_and_G(name, p1_path):
    """Term `name` at weight 2.5, prepared (if it keeps state) on a copy of p1 as the loop prepares it, and that G
    with its tensors then moved a little, as training moves them."""
    (term,) = build_loss_terms({name: dict(weight=2.5, **QUICK_OPTIONS.get(name, {}))})
    net = load_network(p1_path)
    G, D = copy.deepcopy(net['G']).train().requires_grad_(True), copy.deepcopy(net['D']).train()
    if term.needs_prepare():
        images = torch.randint(0, 256, [4, 3, 32, 32], dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
        term.prepare(EasyDict(G=G, D=D, G_ema=copy.deepcopy(G).eval(), source=net, images=images,
                              device=torch.device('cpu'), opts=EasyDict(seed=0)))
        assert not term.needs_prepare()
    with torch.no_grad():
        for p in G.parameters():
            p.add_(torch.randn_like(p) * 0.01)
    return term, G


@pytest.mark.parametrize('name', sorted(LOSS_TERMS))
def test_every_term_adds_weight_times_its_mean(name, p1_path):
    """For each phase a term joins: loss + weight * mean(value), recorded as G<stat>/D<stat>, differentiable (in
    the images or in G's tensors)."""
    term, G = _term_and_G(name, p1_path)
    assert term.phases and term.phases <= {'G', 'D'} and term.stat
    loss = StyleGAN2Loss(None, None, terms=[term])
    for net in sorted(term.phases):
        ctx = _ctx(G=G)
        value = term.G_value(ctx) if net == 'G' else term.D_value(ctx)
        assert value is not None and torch.isfinite(value).all()
        losses = {}
        total = loss.add_terms(net, ctx, torch.tensor(1.0), losses)
        assert torch.allclose(total, 1 + 2.5 * value.mean())
        assert torch.equal(losses[net + term.stat], value.mean())
        if net == 'G':
            total.backward()
            grads = [ctx.gen_img.grad] + [p.grad for p in G.parameters()]
            assert any(g is not None and g.abs().sum() > 0 for g in grads)
    assert term.state_dict() == {} or isinstance(term.state_dict(), dict)
    term.load_state_dict(term.state_dict())


@pytest.mark.parametrize('name', sorted(LOSS_TERMS))
def test_weight_zero_drops_the_term(name):
    assert build_loss_terms({name: 0.0}) == [] and resolve_losses({name: 0}) == {}


def test_options_are_typed_and_checked():
    assert resolve_losses({'mode_seeking': dict(weight=1, hinge='true')}) == \
        {'mode_seeking': dict(weight=1.0, hinge=True)}
    for bad, message in (({'nope': 1}, 'Unknown loss term'), ({'mode_seeking': -1}, 'weight'),
                         ({'mode_seeking': dict(weight=1, hinge='maybe')}, 'true or false'),
                         ({'class': dict(weight=1, margin=2)}, 'no option')):
        with pytest.raises(ValueError, match=message):
            resolve_losses(bad)


def test_terms_sum_in_registry_order():
    """A fixed summation order, whatever order the options came in (runs are bit-reproducible)."""
    a = [t.stat for t in build_loss_terms({'mode_seeking': 1, 'class': 1})]
    b = [t.stat for t in build_loss_terms({'class': 1, 'mode_seeking': 1})]
    assert a == b == [LOSS_TERMS[n].build(1).stat for n in LOSS_TERMS if n in ('mode_seeking', 'class')]


def test_cli_records_terms_and_rejects_bad_ones(p1_path, target_dir, tmp_path):
    args = ['--resume', p1_path, '--target-dir', target_dir, '--shots', '4', '--kimg', '0.004', '--batch', '4',
            '--tick', '0.004', '--no-progress', '--outdir', str(tmp_path / 'runs')]
    res = CliRunner().invoke(train_cli.main, args + ['--loss', 'mode_seeking=2', '--loss', 'mode_seeking.hinge=on'])
    assert res.exit_code == 0, res.output
    (run_dir,) = os.listdir(tmp_path / 'runs')
    opts = json.loads((tmp_path / 'runs' / run_dir / 'training_options.json').read_text())
    assert opts['losses'] == {'mode_seeking': {'weight': 2.0, 'hinge': True}}
    stats = [json.loads(line)['stats'] for line in (tmp_path / 'runs' / run_dir / 'stats.jsonl').read_text().splitlines()]
    assert all('Loss/G/ms' in s for s in stats)
    for extra, message in ((['--loss', 'nope=1'], 'nope'), (['--loss', 'class=1'], '--cond'),
                           (['--loss', 'mode_seeking'], 'NAME=WEIGHT'), (['--loss', 'mode_seeking=x'], 'number')):
        res = CliRunner().invoke(train_cli.main, args + extra)
        assert res.exit_code != 0 and message in res.output and 'Traceback' not in res.output


def test_shorthand_and_loss_option_train_identically(p1_path, target_dir, tmp_path, one_thread):
    """--mode-seeking 1 and --loss mode_seeking=1 resolve alike and give bit-identical steps."""
    weights = []
    for kwargs in (dict(mode_seeking=1.0), dict(losses={'mode_seeking': 1.0})):
        c = train_cli.setup_training_config(target_dir, resume=p1_path, batch=4, device='cpu', **kwargs)
        torch.manual_seed(0)
        state = setup_run(c, torch.device('cpu'))
        images = torch.randint(0, 256, [8, 3, 32, 32], dtype=torch.uint8)
        for _ in range(2):
            losses = training_step(state, c, images, 'cpu')
        assert 'Gms' in losses
        weights.append([p.detach().clone() for p in state.G.parameters()])
    assert all(torch.equal(a, b) for a, b in zip(*weights))


def test_run_folders_before_the_registry_keep_their_terms():
    old = EasyDict(mode_seeking=2.0, mode_seeking_hinge=True, class_loss=0.0)
    assert loss_config(old) == {'mode_seeking': dict(weight=2.0, hinge=True)}
    assert loss_config(EasyDict()) == {}
    assert loss_config(EasyDict(losses={'class': {'weight': 1.0}})) == {'class': {'weight': 1.0}}


class _Probe(LossTerm):
    """A stateful term for the tests: prepare() counts its calls and stores a tensor in its state."""
    phases, stat, calls = frozenset({'G'}), 'probe', 0

    def __init__(self, weight):
        super().__init__(weight)
        self.value = None

    def needs_prepare(self):
        return self.value is None

    def prepare(self, run):
        _Probe.calls += 1
        self.value = run.G.mapping.w_avg.detach().clone() + 1

    def G_value(self, ctx):
        return ctx.gen_img.mean() * 0

    def state_dict(self):
        return {'value': self.value}

    def load_state_dict(self, state):
        self.value = state['value']


def test_term_state_is_prepared_once_and_restored_on_resume(p1_path, target_dir, tmp_path, monkeypatch):
    from fsgan.losses import LossTermSpec
    monkeypatch.setitem(LOSS_TERMS, '_probe', LossTermSpec(name='_probe', build=_Probe, description='test'))
    _Probe.calls = 0
    out = tmp_path / 'runs'
    args = ['--resume', p1_path, '--target-dir', target_dir, '--shots', '4', '--batch', '4', '--tick', '0.004',
            '--snap', '1', '--no-progress', '--outdir', str(out), '--loss', '_probe=1']
    assert CliRunner().invoke(train_cli.main, args + ['--kimg', '0.004'], catch_exceptions=False).exit_code == 0
    assert _Probe.calls == 1
    (run_dir,) = [out / d for d in os.listdir(out)]
    ck = torch.load(run_dir / 'checkpoint.pt', weights_only=True)
    assert ck['loss_terms'][0]['value'] is not None
    opts = json.loads((run_dir / 'training_options.json').read_text())
    opts['kimg'] = 0.008
    (run_dir / 'training_options.json').write_text(json.dumps(opts))
    res = CliRunner().invoke(train_cli.main, ['--resume-run', str(run_dir), '--no-progress'], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert _Probe.calls == 1  # restored from checkpoint.pt, not recomputed


def test_a_method_brings_its_terms(p1_path, target_dir, monkeypatch):
    """MethodSpec.losses join every run of the method; the user's --loss entries win (weight 0 drops one)."""
    import dataclasses
    from fsgan.methods import METHODS
    monkeypatch.setitem(METHODS, 'tgan', dataclasses.replace(METHODS['tgan'], losses={'mode_seeking': 0.5}))
    c = train_cli.setup_training_config(target_dir, resume=p1_path, method='tgan', device='cpu')
    assert c.losses == {'mode_seeking': dict(weight=0.5, hinge=False)}
    c = train_cli.setup_training_config(target_dir, resume=p1_path, method='tgan', device='cpu',
                                        losses={'mode_seeking': dict(hinge=True)})
    assert c.losses == {'mode_seeking': dict(weight=0.5, hinge=True)}
    assert train_cli.setup_training_config(target_dir, resume=p1_path, method='tgan', device='cpu',
                                           losses={'mode_seeking': 0}).losses == {}

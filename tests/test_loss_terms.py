"""Registered loss terms (fsgan.losses): the same checks for every term, options, and old run folders."""
from fsgan import run_setup
import copy
import json
import os

import pytest
import torch
from click.testing import CliRunner

from dnnlib import EasyDict
from fsgan import load_network
from fsgan.losses import LOSS_TERMS, LossTerm, build_loss_terms, resolve_losses
from fsgan.methods import adapt
from scripts import train as train_cli
from training.loss import StyleGAN2Loss
from fsgan.training_loop import loss_config, setup_run, training_step
from fsgan.options import read_training_options, write_training_options


def _ctx(n=4, c_dim=3, G=None, D=None):
    """A batch as the loss hands it to the terms: differentiable fakes, reals, latents, cross-entropies, networks."""
    gen = torch.Generator().manual_seed(0)
    gen_img = torch.randn([n, 3, 8, 8], generator=gen).requires_grad_(True)
    return EasyDict(gen_img=gen_img, gen_z=torch.randn([n, 5], generator=gen), real_img=torch.randn([n, 3, 8, 8]),
                    gen_c=torch.eye(c_dim)[torch.arange(n) % c_dim], real_c=torch.eye(c_dim)[torch.arange(n) % c_dim],
                    gen_ce=(gen_img.flatten(1).mean(1) ** 2 + 1), real_ce=torch.rand([n], generator=gen) + 0.5,
                    G=G, D=D)


@pytest.fixture(scope='module')
def run(p1_path):
    """What terms attach to and prepare from: p1's networks (every tensor trains), the source, 4 targets."""
    source = load_network(p1_path)
    G, D = copy.deepcopy(source['G']).train(), copy.deepcopy(source['D']).train()
    adapt(G, D, method='tgan')
    return EasyDict(G=G, D=D, G_ema=None, source=source, images=torch.zeros([4, 3, 32, 32], dtype=torch.uint8),
                    device=torch.device('cpu'), opts=EasyDict(seed=0))


QUICK_OPTIONS = {'ewc': dict(samples=2)}  # keep prepare() quick; the checks below do not depend on these


def _ready_term(name, run):
    """Term `name` at weight 2.5, attached and prepared as the loop does it; then G's tensors move a little, as
    training moves them (terms that measure a distance from the source are 0 before that)."""
    (term,) = build_loss_terms({name: dict(weight=2.5, **QUICK_OPTIONS.get(name, {}))})
    term.attach(run.G, run.D)
    if term.needs_prepare():
        term.prepare(run)
    assert not term.needs_prepare()
    with torch.no_grad():
        for p in run.G.parameters():
            p.add_(torch.randn_like(p) * 0.01)
    return term


@pytest.mark.parametrize('name', sorted(LOSS_TERMS))
def test_every_term_adds_weight_times_its_mean(name, run):
    """For each phase a term joins: loss + weight * mean(value), recorded as G<stat>/D<stat>, differentiable
    (through the fakes or G's own tensors). A term without phases changes the game through its hooks instead."""
    term = _ready_term(name, run)
    assert term.phases <= {'G', 'D'} and term.stat
    loss = StyleGAN2Loss(None, None, terms=[term])
    for net in sorted(term.phases):
        ctx = _ctx(G=run.G, D=run.D)
        torch.manual_seed(1)  # the same draws for terms that sample (e.g. their own latents)
        value = term.G_value(ctx) if net == 'G' else term.D_value(ctx)
        assert value is not None and torch.isfinite(value).all()
        losses = {}
        torch.manual_seed(1)
        total = loss.add_terms(net, ctx, torch.tensor(1.0), losses)
        assert torch.allclose(total, 1 + 2.5 * value.mean())
        assert torch.equal(losses[net + term.stat], value.mean())
        if net == 'G':
            run.G.zero_grad(set_to_none=True)
            total.backward()
            grads = [t.grad for t in [ctx.gen_img] + list(run.G.parameters()) if t.grad is not None]
            assert any(g.abs().sum() > 0 for g in grads)
    if not term.phases:
        img, c = torch.zeros([2, 3, 32, 32]), torch.zeros([2, 0])
        hooked = [(term.begin_batch(step), term.gen_latents(torch.zeros([2, run.G.z_dim])),
                   term.D_logits(run.D, img, c))[1:] for step in range(8)]
        assert any(x is not None for pair in hooked for x in pair), f'{name}: neither phases nor a hook acts'
    assert isinstance(term.state_dict(), dict)
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
    a = [t.stat for t in build_loss_terms({n: 1 for n in LOSS_TERMS})]
    b = [t.stat for t in build_loss_terms({n: 1 for n in reversed(LOSS_TERMS)})]
    assert a == b == [LOSS_TERMS[n].build(1).stat for n in LOSS_TERMS]


def test_cli_records_terms_and_rejects_bad_ones(p1_path, target_dir, tmp_path):
    args = ['--resume', p1_path, '--target-dir', target_dir, '--shots', '4', '--kimg', '0.004', '--batch', '4',
            '--tick', '0.004', '--no-progress', '--outdir', str(tmp_path / 'runs')]
    res = CliRunner().invoke(train_cli.main, args + ['--loss', 'mode_seeking=2', '--loss', 'mode_seeking.hinge=on'])
    assert res.exit_code == 0, res.output
    (run_dir,) = os.listdir(tmp_path / 'runs')
    opts = read_training_options(tmp_path / 'runs' / run_dir / 'training_options.json')
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
        c = run_setup.setup_training_config(target_dir, resume=p1_path, batch=4, device='cpu', **kwargs)
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
    opts = read_training_options(run_dir / 'training_options.json')
    opts['kimg'] = 0.008
    write_training_options(run_dir / 'training_options.json', opts)
    res = CliRunner().invoke(train_cli.main, ['--resume-run', str(run_dir), '--no-progress'], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert _Probe.calls == 1  # restored from checkpoint.pt, not recomputed


def test_a_method_brings_its_terms(p1_path, target_dir, monkeypatch):
    """MethodSpec.losses join every run of the method; the user's --loss entries win (weight 0 drops one)."""
    import dataclasses
    from fsgan.methods import METHODS
    monkeypatch.setitem(METHODS, 'tgan', dataclasses.replace(METHODS['tgan'], losses={'mode_seeking': 0.5}))
    c = run_setup.setup_training_config(target_dir, resume=p1_path, method='tgan', device='cpu')
    assert c.losses == {'mode_seeking': dict(weight=0.5, hinge=False)}
    c = run_setup.setup_training_config(target_dir, resume=p1_path, method='tgan', device='cpu',
                                        losses={'mode_seeking': dict(hinge=True)})
    assert c.losses == {'mode_seeking': dict(weight=0.5, hinge=True)}
    assert run_setup.setup_training_config(target_dir, resume=p1_path, method='tgan', device='cpu',
                                           losses={'mode_seeking': 0}).losses == {}

"""CDC (fsgan/methods/cdc.py, fsgan/losses/cdc_dist.py, cdc_patch.py): the distance-consistency formula, zero at the
source, the layer mapping, anchors and the patch-level D through the loss core, what a step changes, resume."""
from fsgan import run_setup
import copy
import json
import math
import os

import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner

from dnnlib import EasyDict
from fsgan.export import latest_artefact
from fsgan import load_network
from fsgan.export import apply_adapter
from fsgan.features import capture_outputs
from fsgan.losses import build_loss_terms
from fsgan.losses.cdc_dist import CDCDistance, consistency_layers, log_similarities
from fsgan.losses.cdc_patch import CDCPatch
from fsgan.methods import adapt
from scripts import train as train_cli
from training.loss import StyleGAN2Loss
from fsgan.training_loop import prepare_loss_terms, setup_run, training_step
from fsgan.options import read_training_options, write_training_options

pytestmark = pytest.mark.usefixtures('one_thread')


@pytest.fixture(scope='module')
def source(p1_path):
    return load_network(p1_path)


def _run(source, G, D, images=10):
    return EasyDict(G=G, D=D, G_ema=None, source=source, images=torch.zeros([images, 3, 32, 32], dtype=torch.uint8),
                    device=torch.device('cpu'), opts=EasyDict(seed=0, start='G'))


def _dist_value(term, G, n=4):
    ctx = EasyDict(G=G, gen_z=torch.zeros([n, G.z_dim]), gen_c=torch.zeros([n, G.c_dim]))
    return term.G_value(ctx)


def test_consistency_is_zero_at_the_source_and_positive_after_a_change(source):
    G = copy.deepcopy(source['G']).train().requires_grad_(True)
    term = CDCDistance(1000.0)
    assert term.needs_prepare()
    term.prepare(_run(source, G, None))
    assert not term.needs_prepare()
    torch.manual_seed(0)
    value = _dist_value(term, G)
    assert value.shape == (4,) and torch.equal(value, torch.zeros(4))

    with torch.no_grad():
        G.synthesis.b16.conv0.weight.add_(torch.randn_like(G.synthesis.b16.conv0.weight) * 0.5)
        G.synthesis.b8.conv1.weight.add_(torch.randn_like(G.synthesis.b8.conv1.weight) * 0.5)
        G.synthesis.b32.conv1.weight.mul_(-1)
    source_before = {k: v.clone() for k, v in term.source.state_dict().items()}
    values = []
    for seed in range(3):
        torch.manual_seed(seed)
        value = _dist_value(term, G)
        assert torch.all(value >= 0) and value.sum() > 0
        values.append(value)
    values[-1].mean().backward()
    assert G.synthesis.b16.conv0.weight.grad.abs().sum() > 0 or G.synthesis.b32.conv1.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in term.source.parameters())
    assert all(torch.equal(v, source_before[k]) for k, v in term.source.state_dict().items())


def _reference(features_s, features_t, chosen):
    """The official code's loops: per anchor i, cosine similarity to every j != i at its layer, softmax, then
    KLDivLoss(log target, source) with its default mean over all N (N - 1) entries."""
    n = len(chosen)
    dist_s, dist_t = torch.zeros(n, n - 1, dtype=torch.float64), torch.zeros(n, n - 1, dtype=torch.float64)
    for i in range(n):
        others = [j for j in range(n) if j != i]
        for col, j in enumerate(others):
            fs, ft = features_s[chosen[i]], features_t[chosen[i]]
            dist_s[i, col] = F.cosine_similarity(fs[i:i + 1], fs[j:j + 1])[0]
            dist_t[i, col] = F.cosine_similarity(ft[i:i + 1], ft[j:j + 1])[0]
    p_s, p_t = torch.softmax(dist_s, 1), torch.softmax(dist_t, 1)
    return (p_s * (torch.log(p_s) - torch.log(p_t))).mean()  # torch's KLDivLoss(log p_t, p_s), reduction 'mean'


def test_consistency_formula_matches_the_official_loops():
    g = torch.Generator().manual_seed(1)
    names = ['a', 'b', 'c']
    feats_s = {n: torch.randn(5, 40, generator=g, dtype=torch.float64) for n in names}
    feats_t = {n: f + 0.7 * torch.randn(5, 40, generator=g, dtype=torch.float64) for n, f in feats_s.items()}
    chosen = ['b', 'a', 'b', 'c', 'a']
    log_s, log_t = log_similarities(feats_s, chosen), log_similarities(feats_t, chosen)
    value = (log_s.exp() * (log_s - log_t)).sum(1) / (len(chosen) - 1)
    assert value.mean().item() == pytest.approx(_reference(feats_s, feats_t, chosen).item(), rel=1e-9)


def test_consistency_layers_map_rosinality_indices(source):
    """Every synthesis conv but the 4x4 one, in rosinality's order (index 2k-1 = b{2^(k+2)}.conv0, 2k = .conv1)."""
    G = source['G']
    names = consistency_layers(G)
    expected = [f'synthesis.b{2 ** (k + 2)}.conv{i}' for k in range(1, int(math.log2(G.img_resolution)) - 1)
                for i in (0, 1)]
    assert names == expected == ['synthesis.b8.conv0', 'synthesis.b8.conv1', 'synthesis.b16.conv0',
                                 'synthesis.b16.conv1', 'synthesis.b32.conv0', 'synthesis.b32.conv1']
    with capture_outputs(G, names) as out:
        G(torch.randn([2, G.z_dim]), torch.zeros([2, 0]))
    assert [out[n].shape[-1] for n in names] == [8, 8, 16, 16, 32, 32]
    assert not G._forward_hooks and not any(m._forward_hooks for m in G.modules())  # hooks gone after the block
    with pytest.raises(ValueError, match='no submodule'):
        with capture_outputs(G, ['synthesis.b64.conv0']):
            pass


def _patch_term(source, **options):
    G, D = copy.deepcopy(source['G']).train(), copy.deepcopy(source['D']).train()
    adapt(G, D, method='cdc')
    term = CDCPatch(1.0, **options)
    head = term.attach(G, D)
    term.prepare(_run(source, G, D))
    return term, G, D, head


def test_anchor_steps_and_patch_steps(source):
    term, G, D, head = _patch_term(source, anchor_std=0.1)
    assert term.layer == 'b32.conv1' and term.anchors.shape == (10, G.z_dim)  # one anchor per target image
    assert sum(p.numel() for p in head) == 64 * 9 + 1 and not any(p is q for p in head for q in D.parameters())
    z = torch.randn([64, G.z_dim])
    for step, patch in ((0, False), (1, True), (2, True), (3, True), (4, False), (8, False)):
        term.begin_batch(step)
        chosen = term.gen_latents(z)
        logits = term.D_logits(D, torch.randn([3, 3, 32, 32]), torch.zeros([3, 0]))
        if patch:
            assert chosen is None and logits.shape == (3, 16 * 16)
        else:
            assert logits is None
            offsets = (chosen[:, None] - term.anchors[None]).norm(dim=2).min(1).values  # to the nearest anchor
            assert offsets.max() < 0.1 * math.sqrt(G.z_dim) * 1.5 and offsets.min() > 0
    other = CDCPatch(1.0, anchors=3)
    other.attach(G, D)
    other.prepare(_run(source, G, D))
    assert other.anchors.shape == (3, G.z_dim) and torch.equal(other.anchors, term.anchors[:3])  # seeded by the run


def test_config_f_1024_patch_head():
    """On a config-f 1024 D the head reads b64.conv1, a 32x32 map of 512 channels: 512 * 9 + 1 training-only numbers."""
    from training.networks import Discriminator
    term = CDCPatch(1.0)
    head = term.attach(None, Discriminator(0, 1024, 3))
    assert term.layer == 'b64.conv1' and sum(p.numel() for p in head) == 4609


def test_patch_head_reads_the_map_without_d_gain(source):
    """b32.conv1 runs with gain sqrt(1/2) inside the resnet block; the head sees the map of the conv at gain 1."""
    term, _G, D, _head = _patch_term(source)
    img = torch.randn([2, 3, 32, 32])
    inputs = {}
    handle = D.b32.conv1.register_forward_hook(lambda m, i, o: inputs.update(x=i[0], y=o))
    term.begin_batch(1)
    logits = term.D_logits(D, img, torch.zeros([2, 0]))
    handle.remove()
    assert torch.allclose(inputs['y'] * term.feature_gain, D.b32.conv1(inputs['x']), atol=1e-5)
    assert torch.allclose(logits, term.head(D.b32.conv1(inputs['x'])).flatten(1), atol=1e-5)
    with pytest.raises(ValueError, match='not a conv layer'):
        CDCPatch(1.0, layer='b32').attach(None, D)


def test_loss_core_uses_patch_logits_and_anchor_latents(source):
    term, G, D, head = _patch_term(source)
    loss = StyleGAN2Loss(G, D, r1_gamma=10, pl_weight=0, terms=[term])
    real, gen_z = torch.randn([4, 3, 32, 32]), torch.randn([4, G.z_dim])
    c = torch.zeros([4, 0])

    term.begin_batch(1)  # patch step: the logistic loss over every patch logit, R1 on their per-image mean
    torch.manual_seed(5)
    losses = loss.accumulate_gradients('Dboth', real, c, gen_z, c, gain=1)
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in head)
    real_tmp = real.clone().requires_grad_(True)
    patch = term.D_logits(D, real_tmp, c)
    assert losses['Dreal'].item() == pytest.approx(F.softplus(-patch).mean().item(), rel=1e-5)
    grads = torch.autograd.grad(patch.mean(1).sum(), real_tmp)[0]
    assert losses['Dr1'].item() == pytest.approx((grads.square().sum([1, 2, 3]) * 5).mean().item(), rel=1e-4)

    term.begin_batch(4)  # anchor step: D's own logits, the fakes' latents near the anchors
    seen = []
    handle = G.mapping.register_forward_hook(lambda m, i, o: seen.append(i[0].detach().clone()))
    losses = loss.accumulate_gradients('Gmain', real, c, gen_z, c, gain=1)
    handle.remove()
    assert len(seen) == 1  # no style-mixing pass
    assert (seen[0][:, None] - term.anchors[None]).norm(dim=2).min(1).values.max() < 0.15 * math.sqrt(G.z_dim)
    assert math.isfinite(losses['G'].item())


def _cdc_config(p1_path, target_dir, **kwargs):
    return run_setup.setup_training_config(target_dir, resume=p1_path, method='cdc', batch=4, device='cpu', **kwargs)


def test_method_brings_its_terms_and_a_step_changes_only_its_tensors(p1_path, target_dir, source):
    c = _cdc_config(p1_path, target_dir)
    assert c.lr == 0.002 and c.losses == {'cdc_dist': dict(weight=1000.0, batch=4),
                                          'cdc_patch': dict(weight=1.0, anchors=0, anchor_every=4, anchor_std=0.1,
                                                            layer='')}
    torch.manual_seed(0)
    state = setup_run(c, torch.device('cpu'))
    dist, patch = state.loss.terms
    prepare_loss_terms(state, c, torch.randint(0, 256, [6, 3, 32, 32], dtype=torch.uint8), 'cpu')
    head = list(patch.head.parameters())
    assert all(any(p is q for q in state.opt_D.param_groups[0]['params']) for p in head)
    before = {n: t.clone() for n, t in state.G.state_dict().items()}
    before_d = {n: t.clone() for n, t in state.D.state_dict().items()}
    head_before, anchors = [p.detach().clone() for p in head], patch.anchors.clone()
    source_before = {n: t.clone() for n, t in dist.source.state_dict().items()}
    images = torch.randint(0, 256, [6, 3, 32, 32], dtype=torch.uint8)
    for _ in range(2):  # an anchor step, then a patch step
        losses = training_step(state, c, images, 'cpu')
        assert 'Gcdc' in losses and all(math.isfinite(v) for v in losses.values())
    changed = [n for n, t in state.G.state_dict().items() if not torch.equal(t, before[n])]
    assert set(changed) <= {n for n, _ in state.G.named_parameters()} | {'mapping.w_avg'} and len(changed) > 10
    assert any(not torch.equal(t, before_d[n]) for n, t in state.D.state_dict().items())
    assert all(not torch.equal(p, q) for p, q in zip(head, head_before))
    assert torch.equal(patch.anchors, anchors)
    assert all(torch.equal(t, source_before[n]) for n, t in dist.source.state_dict().items())
    assert patch.anchors.shape[0] == 6


def _train(args):
    return CliRunner().invoke(train_cli.main, args, catch_exceptions=False)


@pytest.mark.slow
def test_cli_run_exports_plain_networks_and_resumes_bit_exactly(p1_path, target_dir, tmp_path, monkeypatch):
    """40 images from the CLI, and the same run stopped after 20 and resumed (a patch step first): bit-identical
    networks, head, anchors and optimiser state. (compare.py trains 100 images in the slow test below.)"""
    base = ['--resume', p1_path, '--target-dir', target_dir, '--shots', '5', '--batch', '4', '--method', 'cdc',
            '--tick', '0.02', '--snap', '1', '--no-progress']  # 5 steps a tick: anchor and patch steps both
    assert _train(base + ['--outdir', str(tmp_path / 'a'), '--kimg', '0.04']).exit_code == 0
    assert _train(base + ['--outdir', str(tmp_path / 'b'), '--kimg', '0.02']).exit_code == 0
    run_a, run_b = [tmp_path / d / os.listdir(tmp_path / d)[0] for d in ('a', 'b')]
    opts = read_training_options(run_b / 'training_options.json')
    opts['kimg'] = 0.04
    write_training_options(run_b / 'training_options.json', opts)
    calls = []
    monkeypatch.setattr(CDCPatch, 'prepare', lambda self, run: calls.append(run))
    assert _train(['--resume-run', str(run_b), '--no-progress']).exit_code == 0
    assert calls == []  # anchors and head come from checkpoint.pt
    ck_a, ck_b = [torch.load(r / 'checkpoint.pt', weights_only=True) for r in (run_a, run_b)]
    assert ck_a['cur_nimg'] == ck_b['cur_nimg'] == 40 and ck_b['batch_idx'] == 10
    for key in ('G', 'D', 'G_ema'):
        assert all(torch.equal(ck_a[key][n], ck_b[key][n]) for n in ck_a[key]), key
    state_a, state_b = ck_a['opt_D']['state'], ck_b['opt_D']['state']
    assert len(state_a) == len(list(load_network(p1_path)['D'].parameters())) + 2  # D's tensors and the head's
    assert all(torch.equal(state_a[i][k], state_b[i][k]) for i in state_a for k in state_a[i])
    patch_a, patch_b = ck_a['loss_terms'][1], ck_b['loss_terms'][1]
    assert patch_a['anchors'].shape == (5, 64) and torch.equal(patch_a['anchors'], patch_b['anchors'])
    assert all(torch.equal(patch_a['head'][k], patch_b['head'][k]) for k in patch_a['head'])
    stats = [json.loads(line)['stats'] for line in (run_a / 'stats.jsonl').read_text().splitlines()]
    assert all(s['Loss/G/cdc'] > 0 for s in stats)

    # Snapshots are plain networks with the source's tensor names; the adapter reproduces G_ema on the source.
    snap = load_network(latest_artefact(str(run_a), 'network-snapshot-', '.pkl'))
    assert set(snap['D'].state_dict()) == set(load_network(p1_path)['D'].state_dict())
    adapted = apply_adapter(load_network(p1_path), latest_artefact(str(run_a), 'adapter-', '.pt'))
    z = torch.randn([2, 64], generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        a = snap['G_ema'](z, torch.zeros([2, 0]), noise_mode='const')
        b = adapted['G_ema'](z, torch.zeros([2, 0]), noise_mode='const')
    assert (a - b).abs().max() <= 1e-5


def test_options_are_checked_before_training(p1_path, target_dir):
    for losses, message in (({'cdc_patch': dict(anchor_every=0)}, 'anchor_every'),
                            ({'cdc_dist': dict(batch=1)}, 'batch'), ({'cdc_patch': dict(anchor_std=-1)}, 'anchor_std')):
        with pytest.raises(run_setup.SetupError, match=message):
            _cdc_config(p1_path, target_dir, losses=losses)
    assert _cdc_config(p1_path, target_dir, losses={'cdc_patch': 0}).losses == {'cdc_dist': dict(weight=1000.0, batch=4)}
    assert [t.stat for t in build_loss_terms({'cdc_patch': 1, 'cdc_dist': 1})] == ['cdc', 'patch']


def test_from_scratch_has_no_source_for_the_consistency():
    term = CDCDistance(1.0)
    with pytest.raises(ValueError, match='needs a source'):
        term.prepare(EasyDict(source=None, opts=EasyDict(), device='cpu'))


@pytest.mark.slow
def test_compare_rows_with_cdc_and_its_ablation(p1_path, target_dir, tmp_path):
    """compare.py trains every registered method and a CDC row without the patch-level D, a few hundred images each."""
    import csv
    from fsgan.methods import METHODS
    from scripts import compare
    quick = {'ewc': 'ewc@loss.ewc.samples=20', 'adam': 'adam@probe_kimg=0.02@probe_samples=20'}  # short set-ups
    rows = [quick.get(m, m) for m in METHODS] + ['cdc@loss.cdc_patch=0']
    args = ['--source', p1_path, '--target-dir', target_dir, '--shots', '10', '--methods', ','.join(rows),
            '--kimg', '0.1', '--batch', '4', '--tick', '0.1', '--snap', '1', '--num', '4', '--cols', '2',
            '--strip-steps', '2', '--outdir', str(tmp_path / 'cmp'), '--cache-dir', str(tmp_path / 'cache'),
            '--device', 'cpu', '--no-progress']
    res = CliRunner().invoke(compare.main, args)
    assert res.exit_code == 0, res.output
    with open(tmp_path / 'cmp' / 'metrics.csv') as f:
        table = {r['method']: r for r in csv.DictReader(f)}
    assert list(table) == rows
    assert table['cdc']['trainable_params'] == table['tgan']['trainable_params']
    for name in ('cdc', 'cdc@loss.cdc_patch=0'):
        (run,) = (tmp_path / 'cmp' / 'runs' / name).iterdir()
        opts = read_training_options(run / 'training_options.json')
        assert opts['method'] == 'cdc' and opts['kimg'] == 0.1
        assert ('cdc_patch' in opts['losses']) == (name == 'cdc') and opts['losses']['cdc_dist']['weight'] == 1000

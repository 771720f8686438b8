"""AdAM (fsgan/methods/adam.py): kernel modulation, the importance mask, the probe, and the mask across resumes."""
import copy
import os

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from fsgan.export import latest_artefact
from fsgan import load_network
from fsgan.export import apply_adapter, baked_copy, load_adapter, save_adapter
from fsgan.methods import adam, adapt
from fsgan.methods.freezed import paper_depth
from fsgan.methods.reparam import KernelModulation, baked_state_dict
from scripts import train as train_cli
from training.networks import Discriminator, Generator
from fsgan.options import read_training_options, write_training_options


@pytest.fixture(scope='module')
def source(p1_path):
    return load_network(p1_path)


def _random_mask(G, D, seed=0):
    """A mask of the right length for G and D with about half the filters important."""
    gen = torch.Generator().manual_seed(seed)
    n_g, n_d = adam.mask_length(adam._g_units(G)), adam.mask_length(adam._d_units(D))
    return adam.encode_mask(torch.rand([n_g], generator=gen) < 0.5, torch.rand([n_d], generator=gen) < 0.5)


def _outputs(G, D):
    z = torch.randn([3, G.z_dim], generator=torch.Generator().manual_seed(1))
    c = torch.zeros([3, 0])
    with torch.no_grad():
        img = G(z, c, noise_mode='const')
        return img, D(img, c)


@pytest.mark.parametrize('shape', [[8, 3, 3, 3], [6, 5]])
def test_modulation_at_init_equals_the_source_kernel(shape):
    torch.manual_seed(0)
    w = torch.randn(shape)
    important = torch.tensor([True, False, True, True, False, True] + [False, True][:shape[0] - 6])
    mod = KernelModulation(w, important, seed=3)
    assert torch.equal(mod(w), w)
    assert mod.u.shape == (w[0].numel(),) and mod.v.shape == (int(important.sum()),)
    assert mod.rows.shape == (int((~important).sum()),) + tuple(shape[1:])
    with torch.no_grad():   # trained: important rows are W0 * (1 + v u^T), the others the fine-tuned copies
        mod.u.copy_(torch.randn_like(mod.u))
        mod.v.copy_(torch.randn_like(mod.v))
        mod.rows.add_(1)
        out = mod(w).reshape(shape[0], -1)
    flat = w.reshape(shape[0], -1)
    assert torch.allclose(out[important], flat[important] * (1 + mod.v[:, None] * mod.u[None, :]))
    assert torch.equal(out[~important], flat[~important] + 1)


def test_adapted_networks_equal_the_source_at_step_0(source):
    """With a probed-like mask (modulated and fine-tuned filters mixed): every baked tensor is the source's."""
    G, D = copy.deepcopy(source['G_ema']), copy.deepcopy(source['D'])
    ref = {**{'G.' + k: v for k, v in G.state_dict().items()}, **{'D.' + k: v for k, v in D.state_dict().items()}}
    adapt(G, D, method='adam', mask=_random_mask(G, D))
    baked = {**{'G.' + k: v for k, v in baked_state_dict(G).items()},
             **{'D.' + k: v for k, v in baked_state_dict(D).items()}}
    assert baked.keys() == ref.keys()
    assert all(torch.equal(baked[k], ref[k]) for k in ref)


def test_a_step_changes_only_the_methods_tensors(source):
    """With a mask: every returned tensor changes, nothing else (the source rows W0 stay frozen)."""
    G, D = copy.deepcopy(source['G_ema']).train(), copy.deepcopy(source['D']).train()
    mask = _random_mask(G, D)
    params = adapt(G, D, method='adam', mask=mask)
    ids = {id(p) for p in params}
    tensors = {n: t for net in (G, D) for n, t in list(net.named_parameters()) + list(net.named_buffers())}
    before = {n: t.detach().clone() for n, t in tensors.items()}
    opt = torch.optim.Adam(params, lr=0.01)
    img = G.synthesis(G.mapping(torch.randn([4, G.z_dim]), torch.zeros([4, 0]), skip_w_avg_update=True))
    (D(img, torch.zeros([4, 0])).square().mean() + img.square().mean()).backward()
    opt.step()
    for n, t in tensors.items():
        assert (not torch.equal(t, before[n])) == (id(t) in ids), n
    # The trainable tensors are u, v and the fine-tuned rows of the layers, biases, noise strengths, D's epilogue.
    kinds = {n.split('.')[-1] for net in (G, D) for n, p in net.named_parameters() if id(p) in ids}
    assert kinds == {'u', 'v', 'rows', 'bias', 'noise_strength', 'weight'}
    assert {n for n, p in D.named_parameters() if id(p) in ids and n.endswith('.weight')} == \
        {'b4.conv.weight', 'b4.fc.weight', 'b4.out.weight'}
    assert not G.synthesis.b4.const.requires_grad


def test_bake_and_adapter_reproduce_a_masked_run(source, p1_path, tmp_path):
    G, D, G_ema = copy.deepcopy(source['G_ema']), copy.deepcopy(source['D']), copy.deepcopy(source['G_ema'])
    options = dict(mask=_random_mask(G, D, seed=2), quantile=75.0)
    params = adapt(G, D, method='adam', **options)
    adapt(G_ema, None, method='adam', **options)
    with torch.no_grad():
        for p in params:
            p.add_(torch.randn_like(p) * 0.05)
        G_ema.load_state_dict(G.state_dict())
    img, logits = _outputs(G, D)
    img_b, logits_b = _outputs(baked_copy(G), baked_copy(D))
    assert (img_b - img).abs().max() <= 1e-5 and (logits_b - logits).abs().max() <= 1e-5
    save_adapter(str(tmp_path / 'adapter.pt'), 'adam', options, source['sha256'], G, D, G_ema)
    fresh = apply_adapter(load_network(p1_path), str(tmp_path / 'adapter.pt'))
    img_a, logits_a = _outputs(fresh['G'], fresh['D'])
    assert torch.equal(img_a, img) and torch.equal(logits_a, logits)


def test_mask_encoding_and_its_errors(source):
    G, D = source['G_ema'], source['D']
    n_g, n_d = adam.mask_length(adam._g_units(G)), adam.mask_length(adam._d_units(D))
    g, d = torch.rand([n_g]) < 0.3, torch.rand([n_d]) < 0.7
    g2, d2 = adam.decode_mask(adam.encode_mask(g, d), n_g, n_d)
    assert torch.equal(g, g2) and torch.equal(d, d2)
    assert adam.decode_mask('', n_g, n_d)[0].all()
    for bad, message in (('nonsense', 'G part and a D part'), ('3:zz/4:00', 'not a mask'),
                         (adam.encode_mask(g[:-1], d), 'probed on another network')):
        with pytest.raises(ValueError, match=message):
            adapt(copy.deepcopy(G), copy.deepcopy(D), method='adam', mask=bad)
    with pytest.raises(ValueError, match='quantile'):
        adapt(copy.deepcopy(G), None, method='adam', quantile=100)


def test_importance_is_the_fisher_score_above_the_groups_quantile(source):
    """Per group, the filters whose score (official formulas) exceeds the group's percentile are the important
    ones; numpy's percentile gives the same cut."""
    G, D = copy.deepcopy(source['G_ema']), copy.deepcopy(source['D'])
    adapt(G, D, method='adam')
    gen = torch.Generator().manual_seed(0)
    fisher = {id(p): torch.rand(p.shape, generator=gen) for net in (G, D) for p in net.parameters()}
    g_bits, d_bits = adam.decode_mask(adam.importance_mask(G, D, fisher, 75.0),
                                      adam.mask_length(adam._g_units(G)), adam.mask_length(adam._d_units(D)))
    for units, bits, groups in ((adam._g_units(G), g_bits, ('G conv', 'G affine')),
                                (adam._d_units(D), d_bits, ('D conv',))):
        scored = adam.filter_scores(units, fisher)
        for group in groups:
            scores = torch.cat([s for g, s in scored if g == group]).double()
            per_unit = bits.split([len(s) for _g, s in scored])
            picked = torch.cat([b for (g, _s), b in zip(scored, per_unit) if g == group])
            assert torch.equal(picked, scores > float(np.percentile(scores.numpy(), 75)))
            assert 0.2 < picked.double().mean() < 0.3
    conv, affine = G.synthesis.b8.conv0, G.synthesis.b8.conv0.affine   # the first masked layer and its affine
    (g0, s0), (g1, s1) = adam.filter_scores(adam._g_units(G), fisher)[:2]
    mod, mod_a = conv.parametrizations.weight[0], affine.parametrizations.weight[0]
    assert (g0, g1) == ('G conv', 'G affine')
    assert torch.equal(s0, fisher[id(mod.u)].mean() + fisher[id(mod.v)])
    assert torch.equal(s1, (fisher[id(mod_a.u)].mean() + fisher[id(mod_a.v)] + fisher[id(affine.bias)]) / 2)


def _train(args):
    res = CliRunner().invoke(train_cli.main, args, catch_exceptions=False)
    assert res.exit_code == 0, res.output
    return res


def test_probe_runs_once_and_the_mask_resumes(p1_path, target_dir, tmp_path, monkeypatch, one_thread):
    """The probe fills `mask` once per run: recorded in training_options.json, checkpoint.pt and the adapter; a
    resumed run reads it instead of probing, and ends where an uninterrupted run does."""
    calls = []
    real = adam.modulation_fisher
    monkeypatch.setattr(adam, 'modulation_fisher', lambda *a, **k: calls.append(1) or real(*a, **k))
    base = ['--resume', p1_path, '--target-dir', target_dir, '--shots', '5', '--batch', '4', '--tick', '0.004',
            '--snap', '1', '--no-progress', '--method', 'adam', '--method-opt', 'probe_kimg=0.008',
            '--method-opt', 'probe_samples=3']
    _train(base + ['--outdir', str(tmp_path / 'a'), '--kimg', '0.008'])
    _train(base + ['--outdir', str(tmp_path / 'b'), '--kimg', '0.004'])
    assert len(calls) == 2
    run_a, run_b = [tmp_path / d / os.listdir(tmp_path / d)[0] for d in ('a', 'b')]
    opts = read_training_options(run_b / 'training_options.json')
    mask = opts['method_options']['mask']
    assert mask and mask == read_training_options(run_a / 'training_options.json')['method_options']['mask']
    assert torch.load(run_b / 'checkpoint.pt', weights_only=True)['options']['method_options']['mask'] == mask
    assert load_adapter(latest_artefact(str(run_b), 'adapter-', '.pt'))['method_options']['mask'] == mask
    opts['kimg'] = 0.008
    write_training_options(run_b / 'training_options.json', opts)
    _train(['--resume-run', str(run_b), '--no-progress'])
    assert len(calls) == 2   # read back, not probed again
    ck_a, ck_b = [torch.load(r / 'checkpoint.pt', weights_only=True) for r in (run_a, run_b)]
    assert ck_a['cur_nimg'] == ck_b['cur_nimg'] == 8
    for key in ('G', 'D', 'G_ema'):
        for name, t in ck_a[key].items():
            assert torch.equal(t, ck_b[key][name]), f'{key}.{name} differs after resume'


def test_config_f_1024_counts():
    """Trainable counts on a config-f 1024 G+D (README's method table): ewc trains everything; adam before probing
    (every kernel modulated) and after a probe at quantile 50, at its fewest and most (important filters chosen
    among the largest or the smallest rows of each group); freezed at the paper protocol's depth."""
    torch.manual_seed(0)
    G0, D0 = Generator(512, 0, 512, 1024, 3), Discriminator(0, 1024, 3)

    def count(method, **options):
        G, D = copy.deepcopy(G0), copy.deepcopy(D0)
        params = adapt(G, D, method=method, **options)
        return sum(p.numel() for p in G.parameters() if p.requires_grad), \
            sum(p.numel() for p in D.parameters() if p.requires_grad), sum(p.numel() for p in params)

    assert count('ewc') == (30370060, 29012513, 59382573)
    assert count('freezed', freezed=paper_depth(D0))[2] == 46893325   # the README table's freezed row
    assert count('adam') == (ADAM_PROBE[0], ADAM_PROBE[1], sum(ADAM_PROBE))
    units = (adam._g_units(G0), adam._d_units(D0))
    fewest, most = [adam.encode_mask(*[_half_by_row_size(u, big) for u in units]) for big in (True, False)]
    assert sum(count('adam', mask=fewest)[:2]) == ADAM_Q50[0]
    assert sum(count('adam', mask=most)[:2]) == ADAM_Q50[1]


ADAM_PROBE = (112455, 6621924)     # G, D
ADAM_Q50 = (20843915, 39005899)    # fewest, most


def _half_by_row_size(units, largest):
    """Mask bits: per group, half of the filters important, those with the largest (or smallest) rows."""
    masked = [(g, m.weight[0].numel(), m.weight.shape[0]) for _n, m, g in units if g is not None]
    sizes = torch.cat([torch.full([n], float(size)) for _g, size, n in masked])
    groups = [g for g, _s, n in masked for _ in range(n)]
    out = torch.zeros([len(sizes)], dtype=torch.bool)
    for group in set(groups):
        idx = torch.tensor([i for i, g in enumerate(groups) if g == group])
        order = torch.argsort(sizes[idx], descending=largest, stable=True)
        out[idx[order[:len(idx) // 2]]] = True
    return out


@pytest.mark.parametrize('extra, message', [
    (['--method-opt', 'quantile=most'], '--method-opt quantile=most: expected a float'),
    (['--method-opt', 'quantile=100'], 'quantile must be in [0, 100)'),
    (['--method-opt', 'probe_samples=0'], 'probe_samples >= 1'),
    (['--method-opt', 'mask=12:ff/3:00'], 'probed on another network'),
])
def test_bad_options_one_line_error(p1_path, target_dir, tmp_path, extra, message):
    res = CliRunner().invoke(train_cli.main, ['--resume', p1_path, '--target-dir', target_dir, '--method', 'adam',
                                              '--kimg', '0.004', '--batch', '4', '--no-progress',
                                              '--outdir', str(tmp_path)] + extra)
    assert res.exit_code != 0 and message in res.output and 'Traceback' not in res.output

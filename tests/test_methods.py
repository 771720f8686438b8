"""Adaptation methods: trainable counts, exactness at step 0, what an optimiser step changes, bake, adapters."""
import copy
import pickle

import numpy as np
import pytest
import torch

from fsgan import load_network
from fsgan.export import AdapterError, apply_adapter, baked_copy, save_adapter
from fsgan.methods import METHODS, adapt, layers
from fsgan.methods.reparam import SingularValueScale, thin_svd
from training.networks import Discriminator, Generator

METHOD_NAMES = sorted(METHODS)  # every registered method gets the invariant tests below


def _outputs(G, D, seed=0):
    """Deterministic G image and D logits on fixed inputs."""
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn([4, G.z_dim], generator=gen)
    c = torch.zeros([4, G.c_dim])
    with torch.no_grad():
        img = G(z, c, truncation_psi=0.7, noise_mode='const')
        logits = D(img, c) if D is not None else None
    return img, logits


def _snapshot(net):
    return {n: t.detach().clone() for n, t in list(net.named_parameters()) + list(net.named_buffers())}


@pytest.fixture(scope='module')
def source(p1_path):
    return load_network(p1_path)


@pytest.mark.slow
def test_config_f_1024_counts():
    """Exact trainable counts on a config-f 1024 G+D (the numbers the FSGAN paper setting implies)."""
    torch.manual_seed(0)
    expected = dict(fsgan=(9664, 6561), tgan=(30370060, 29012513), cdc=(30370060, 29012513), ssgan=(11136, 12096))
    G0 = Generator(512, 0, 512, 1024, 3)
    D0 = Discriminator(0, 1024, 3)
    for method, (n_g, n_d) in expected.items():
        G, D = copy.deepcopy(G0), copy.deepcopy(D0)
        params = adapt(G, D, method=method)
        assert sum(p.numel() for p in params) == n_g + n_d
        assert sum(p.numel() for p in G.parameters() if p.requires_grad) == n_g
        assert sum(p.numel() for p in D.parameters() if p.requires_grad) == n_d
    # The expected numbers follow from the architecture: full fine-tuning trains every tensor; fsgan's G trains
    # one scale per singular value of each mapping FC and synthesis conv (min(out, in * k * k) of them).
    everything = (sum(p.numel() for p in G0.parameters()), sum(p.numel() for p in D0.parameters()))
    assert expected['tgan'] == expected['cdc'] == everything
    assert expected['fsgan'][0] == sum(min(layer.weight.shape[0], layer.weight[0].numel())
                                       for _name, layer in layers.mapping_fcs(G0) + layers.synthesis_convs(G0))


@pytest.mark.parametrize('method', METHOD_NAMES)
def test_step0_reproduces_pretrained(source, method):
    G, D = copy.deepcopy(source['G_ema']), copy.deepcopy(source['D'])
    ref_img, ref_logits = _outputs(G, D)
    adapt(G, D, method=method)
    img, logits = _outputs(G, D)
    assert (img - ref_img).abs().max() <= 1e-4
    assert (logits - ref_logits).abs().max() <= 1e-4


@pytest.mark.parametrize('method', METHOD_NAMES)
def test_only_returned_tensors_change(source, method):
    G, D = copy.deepcopy(source['G_ema']).train(), copy.deepcopy(source['D']).train()
    params = adapt(G, D, method=method)
    before_g, before_d = _snapshot(G), _snapshot(D)
    trainable_ids = {id(p) for p in params}
    opt = torch.optim.Adam(params, lr=0.01)
    c = torch.zeros([4, 0])
    img = G.synthesis(G.mapping(torch.randn([4, G.z_dim]), c, skip_w_avg_update=True))  # w_avg: see MethodSpec
    logits = D(img, c)
    (logits.square().mean() + img.square().mean()).backward()
    opt.step()
    for net, before in ((G, before_g), (D, before_d)):
        current = dict(list(net.named_parameters()) + list(net.named_buffers()))
        for name, old in before.items():
            tensor = current[name]
            changed = not torch.equal(tensor.detach(), old)
            if id(tensor) in trainable_ids:
                assert changed, f'{method}: trainable {name} did not change'
            else:
                assert not changed, f'{method}: frozen {name} changed'


def test_freezed_freezes_layers_nearest_image(source):
    G, D = copy.deepcopy(source['G_ema']), copy.deepcopy(source['D'])
    adapt(G, D, method='freezed', freezed=3)
    b32 = D.b32
    assert not any(p.requires_grad for layer in (b32.fromrgb, b32.conv0, b32.conv1) for p in layer.parameters())
    assert all(p.requires_grad for p in b32.skip.parameters())
    assert all(p.requires_grad for p in G.parameters())
    with pytest.raises(ValueError, match='freezed'):
        adapt(copy.deepcopy(source['G_ema']), copy.deepcopy(source['D']), method='freezed', freezed=999)


def test_unknown_method_and_option(source):
    with pytest.raises(ValueError, match='Unknown adaptation method'):
        adapt(copy.deepcopy(source['G_ema']), None, method='nope')
    with pytest.raises(ValueError, match='no option'):
        adapt(copy.deepcopy(source['G_ema']), None, method='fsgan', bogus=1)
    assert set(METHOD_NAMES) <= set(METHODS)


@pytest.mark.parametrize('options', [dict(), dict(train_sigma=True), dict(centered=True),
                                     dict(adapt_affine=True, adapt_torgb=True), dict(adapt_mapping=False)])
def test_fsgan_variants_exact_at_init(source, options):
    G = copy.deepcopy(source['G_ema'])
    ref, _ = _outputs(G, None)
    params = adapt(G, None, method='fsgan', **options)
    img, _ = _outputs(G, None)
    assert (img - ref).abs().max() <= 1e-4
    default_count = len(adapt(copy.deepcopy(source['G_ema']), None, method='fsgan'))
    if options.get('adapt_affine'):
        assert len(params) > default_count
    if options.get('adapt_mapping') is False:
        assert len(params) == default_count - source['G_ema'].mapping.num_layers
        assert all(not p.requires_grad for p in G.mapping.parameters())


def test_svd_reparam_formula():
    """W = U diag(lam * s0) V^T: scaling lam scales exactly the corresponding singular direction."""
    torch.manual_seed(1)
    w = torch.randn(8, 3, 3, 3)
    svd = SingularValueScale(w)
    flat = w.reshape(8, -1).double()
    U, s, Vh = thin_svd(flat)
    assert torch.allclose(svd(w), w, atol=1e-5)
    with torch.no_grad():
        svd.lam[0] = 3.0
    expected = flat + 2.0 * s[0] * torch.outer(U[:, 0], Vh[0])
    assert torch.allclose(svd(w).reshape(8, -1).double(), expected, atol=1e-4)
    ref = np.linalg.svd(flat.numpy(), compute_uv=False)
    assert np.allclose(s.numpy(), ref, rtol=1e-10)


@pytest.mark.parametrize('method', METHOD_NAMES)
def test_bake_and_adapter_exact(source, p1_path, tmp_path, method):
    G, D = copy.deepcopy(source['G_ema']), copy.deepcopy(source['D'])
    G_ema = copy.deepcopy(source['G_ema'])
    params = adapt(G, D, method=method)
    adapt(G_ema, None, method=method)
    torch.manual_seed(5)
    with torch.no_grad():
        for p in params:
            p.add_(torch.randn_like(p) * 0.05)
        for name, p in G_ema.named_parameters():
            p.copy_(dict(G.named_parameters())[name])
    img, logits = _outputs(G, D)

    # Bake: plain networks with the same outputs, picklable in the persistent format, reloadable.
    Gb, Db = baked_copy(G), baked_copy(D)
    img_b, logits_b = _outputs(Gb, Db)
    assert (img_b - img).abs().max() <= 1e-5
    assert (logits_b - logits).abs().max() <= 1e-5
    path = tmp_path / 'snap.pkl'
    path.write_bytes(pickle.dumps(dict(G=Gb, D=Db, G_ema=Gb, training_set_kwargs=None, augment_pipe=None)))
    reloaded = load_network(str(path))
    img_r, logits_r = _outputs(reloaded['G'], reloaded['D'])
    assert torch.equal(img_r, img_b) and torch.equal(logits_r, logits_b)

    # Adapter: applying it to the source reproduces the adapted networks exactly.
    adapter = tmp_path / 'adapter.pt'
    save_adapter(str(adapter), method, {}, source['sha256'], G, D, G_ema)
    fresh = apply_adapter(load_network(p1_path), str(adapter))
    img_a, logits_a = _outputs(fresh['G'], fresh['D'])
    assert torch.equal(img_a, img) and torch.equal(logits_a, logits)
    img_e, _ = _outputs(fresh['G_ema'], None)
    assert torch.equal(img_e, img)


def test_adapter_refuses_other_source(source, p2_path, tmp_path):
    G, D = copy.deepcopy(source['G_ema']), copy.deepcopy(source['D'])
    adapt(G, D, method='fsgan')
    path = tmp_path / 'adapter.pt'
    save_adapter(str(path), 'fsgan', {}, source['sha256'], G, D, G)
    with pytest.raises(AdapterError, match='made for source network'):
        apply_adapter(load_network(p2_path), str(path))
    (tmp_path / 'junk.pt').write_bytes(b'not an adapter')
    with pytest.raises(AdapterError, match='not a readable adapter'):
        apply_adapter(load_network(p2_path), str(tmp_path / 'junk.pt'))


def test_fsgan_full_d_trains_every_d_tensor(source):
    """full_d=True: G keeps only singular-value scales; D has no re-parameterisation and every tensor trains."""
    G, D = copy.deepcopy(source['G_ema']), copy.deepcopy(source['D'])
    params = adapt(G, D, method='fsgan', full_d=True)
    ids = {id(p) for p in params}
    assert all(id(p) in ids for p in D.parameters())
    assert not any('parametrizations' in n for n, _ in D.named_parameters())
    g_only = adapt(copy.deepcopy(source['G_ema']), None, method='fsgan')
    assert sum(p.numel() for p in params) == sum(p.numel() for p in g_only) + sum(p.numel() for p in D.parameters())

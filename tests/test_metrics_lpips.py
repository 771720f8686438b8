"""LPIPS mechanics with a small stand-in feature network, the VGG16 loader, and intra-cluster diversity."""

import itertools

import numpy as np
import PIL.Image
import pytest
import torch
import torch.nn as nn

from metrics.diversity import intra_cluster_from_features, intra_lpips, lpips_input
from metrics.images import ImageSet
from metrics.lpips import LPIPS, VGG16_CONVS, load_lpips_vgg, squared_distances


pytestmark = pytest.mark.usefixtures('one_thread')


class TinyNet(nn.Module):
    """Two conv layers; returns both activations (2 'LPIPS layers')."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.c1 = nn.Conv2d(3, 4, 3, padding=1)
        self.c2 = nn.Conv2d(4, 6, 3, stride=2, padding=1)

    def forward(self, x):
        a = torch.relu(self.c1(x))
        return [a, torch.relu(self.c2(a))]


def _tiny_lpips():
    return LPIPS(TinyNet(), [torch.rand(4, generator=torch.Generator().manual_seed(1)),
                             torch.rand(6, generator=torch.Generator().manual_seed(2))]).eval()


def _reference_lpips(model, x, y):
    """Per-layer, per-pixel loops over the definition (normalise over channels, weight, average, sum)."""
    shift, scale = model.shift, model.scale
    with torch.no_grad():
        fx = model.net((x - shift) / scale)
        fy = model.net((y - shift) / scale)
    total = 0.0
    for a, b, w in zip(fx, fy, model.lin):
        _, _, h, wd = a.shape
        acc = 0.0
        for i in range(h):
            for j in range(wd):
                va, vb = a[0, :, i, j].double(), b[0, :, i, j].double()
                na = va / (va.norm() + 1e-10)
                nb = vb / (vb.norm() + 1e-10)
                acc += float((w.double() * (na - nb) ** 2).sum())
        total += acc / (h * wd)
    return total


def test_lpips_matches_loop_reference():
    model = _tiny_lpips()
    g = torch.Generator().manual_seed(3)
    x = torch.rand(1, 3, 10, 12, generator=g) * 2 - 1
    y = torch.rand(1, 3, 10, 12, generator=g) * 2 - 1
    got = float(model(x, y)[0])
    assert got == pytest.approx(_reference_lpips(model, x, y), rel=1e-4)
    assert got > 0


def test_lpips_zero_on_identical_and_symmetric():
    model = _tiny_lpips()
    g = torch.Generator().manual_seed(4)
    x = torch.rand(3, 3, 16, 16, generator=g) * 2 - 1
    y = torch.rand(3, 3, 16, 16, generator=g) * 2 - 1
    assert torch.allclose(model(x, x), torch.zeros(3), atol=1e-6)
    assert torch.allclose(model(x, y), model(y, x), rtol=1e-5)
    ex, ey = model.embed(x), model.embed(y)
    assert torch.allclose(squared_distances(ex, ey).diagonal().float(), model(x, y), rtol=1e-4)


def test_lpips_rejects_negative_weights():
    with pytest.raises(ValueError):
        LPIPS(TinyNet(), [torch.ones(4), -torch.ones(6)])


def _fake_lpips_vgg_state():
    """A state dict named like lpips.LPIPS(net='vgg').state_dict(), random values."""
    g = torch.Generator().manual_seed(5)
    slices = {0: 1, 2: 1, 5: 2, 7: 2, 10: 3, 12: 3, 14: 3, 17: 4, 19: 4, 21: 4, 24: 5, 26: 5, 28: 5}
    state = {'scaling_layer.shift': torch.zeros(1, 3, 1, 1), 'scaling_layer.scale': torch.ones(1, 3, 1, 1)}
    in_ch = 3
    for idx, out_ch in VGG16_CONVS:
        state[f'net.slice{slices[idx]}.{idx}.weight'] = torch.randn(out_ch, in_ch, 3, 3, generator=g) * 0.05
        state[f'net.slice{slices[idx]}.{idx}.bias'] = torch.zeros(out_ch)
        in_ch = out_ch
    for k, c in enumerate((64, 128, 256, 512, 512)):
        state[f'lin{k}.model.1.weight'] = torch.rand(1, c, 1, 1, generator=g)
    return state


def test_vgg_loader_reads_lpips_state_dict(tmp_path):
    state = _fake_lpips_vgg_state()
    path = tmp_path / 'lpips_vgg.pth'
    torch.save(state, path)
    model = load_lpips_vgg(path)
    assert torch.equal(model.net.convs['28'].weight, state['net.slice5.28.weight'])
    assert torch.equal(model.lin[4], state['lin4.model.1.weight'].reshape(-1))
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    feats = model.net(x)
    assert [tuple(f.shape[1:]) for f in feats] == [(64, 32, 32), (128, 16, 16), (256, 8, 8), (512, 4, 4), (512, 2, 2)]
    d = model(x, x.flip(0))
    assert d.shape == (2,) and torch.all(d > 0)

    torch.save({k: v for k, v in state.items() if k.startswith('lin') and not k.startswith('lin3')}, path)
    with pytest.raises(ValueError, match='lin'):
        load_lpips_vgg(path)
    (tmp_path / 'junk.pth').write_bytes(b'not a state dict')
    with pytest.raises(ValueError):
        load_lpips_vgg(tmp_path / 'junk.pth')


def _brute_intra(dist_fn, gen, shots, cap):
    clusters = {}
    for i, g in enumerate(gen):
        k = min(range(len(shots)), key=lambda s: dist_fn(g, shots[s]))
        clusters.setdefault(k, []).append(i)
    vals = []
    for members in clusters.values():
        members = members[:cap]
        if len(members) >= 2:
            vals.append(np.mean([dist_fn(gen[a], gen[b]) for a, b in itertools.combinations(members, 2)]))
    return float(np.mean(vals))


def test_intra_cluster_features_against_brute_force():
    rng = np.random.RandomState(6)
    shots = rng.randn(3, 5) * 4
    gen = shots[rng.randint(0, 3, 40)] + rng.randn(40, 5) * (1 + rng.rand(40, 1))
    out = intra_cluster_from_features(gen, shots, max_per_cluster=6)
    ref = _brute_intra(lambda a, b: np.linalg.norm(a - b), gen, shots, 6)
    assert out['value'] == pytest.approx(ref, rel=1e-9)
    assert sum(out['cluster_sizes']) == 40


def test_intra_cluster_features_skip_clusters_of_fewer_than_two():
    # Shots at 0, 10 and 100 on a line: two samples near 0 (distance 2 apart), one near 10, none near 100.
    shots = np.array([[0.0], [10.0], [100.0]])
    gen = np.array([[-1.0], [1.0], [9.0]])
    out = intra_cluster_from_features(gen, shots)
    assert out['cluster_sizes'] == [2, 1, 0] and out['per_cluster'] == [2.0, None, None]
    assert out['value'] == 2.0 and out['clusters_used'] == 1
    # No cluster with two members: no value (NaN), not 0
    lone = intra_cluster_from_features(np.array([[1.0], [9.0]]), shots)
    assert np.isnan(lone['value']) and lone['clusters_used'] == 0


def test_intra_lpips_on_image_folders(tmp_path):
    rng = np.random.RandomState(7)
    shots_dir, gen_dir = tmp_path / 'shots', tmp_path / 'gen'
    shots_dir.mkdir()
    gen_dir.mkdir()
    shots = [rng.randint(0, 256, (16, 16, 3)).astype(np.uint8) for _ in range(3)]
    gen = []
    for i in range(9):
        noise = rng.randint(-40, 41, (16, 16, 3))
        gen.append(np.clip(shots[i % 3].astype(int) + noise, 0, 255).astype(np.uint8))
    for i, im in enumerate(shots):
        PIL.Image.fromarray(im).save(shots_dir / f'{i}.png')
    for i, im in enumerate(gen):
        PIL.Image.fromarray(im).save(gen_dir / f'{i}.png')
    model = _tiny_lpips()
    out = intra_lpips(model, ImageSet(gen_dir), ImageSet(shots_dir), batch_size=4, res=None, max_per_cluster=2)

    def dist(a, b):
        return float(model(lpips_input([a], None), lpips_input([b], None))[0])
    assert out['value'] == pytest.approx(_brute_intra(dist, gen, shots, 2), rel=1e-4)
    assert out['cluster_sizes'] == [3, 3, 3]


def test_intra_lpips_metric_wiring(tmp_path, monkeypatch):
    """The registered metric with a stand-in LPIPS (real LPIPS-VGG weights are not shipped)."""
    import metrics.lpips
    from metrics.registry import MetricContext, get_registry

    rng = np.random.RandomState(8)
    for name, n in (('shots', 2), ('gen', 4)):
        (tmp_path / name).mkdir()
        for i in range(n):
            PIL.Image.fromarray(rng.randint(0, 256, (24, 24, 3)).astype(np.uint8)).save(tmp_path / name / f'{i}.png')
    monkeypatch.setattr(metrics.lpips, 'lpips_vgg', lambda weights, device='cpu': _tiny_lpips())
    ctx = MetricContext(gen=ImageSet(tmp_path / 'gen'), shots=ImageSet(tmp_path / 'shots'), lpips_weights='x.pth')
    out = get_registry()['intra_lpips'].fn(ctx)
    assert sum(out['values']['cluster_sizes']) == 4 and out['values']['num_gen'] == 4
    assert out['value'] == out['values']['intra_lpips'] and out['value'] > 0


def test_intra_lpips_clusters_the_first_1000_samples(tmp_path):
    """CDC's protocol: 1,000 samples; a larger generated set is cut to its first max_gen images."""
    from metrics.diversity import CDC_NUM_GEN
    assert CDC_NUM_GEN == 1000
    rng = np.random.RandomState(9)
    for name, n in (('shots', 2), ('gen', 7)):
        (tmp_path / name).mkdir()
        for i in range(n):
            PIL.Image.fromarray(rng.randint(0, 256, (8, 8, 3)).astype(np.uint8)).save(tmp_path / name / f'{i}.png')
    model = _tiny_lpips()
    out = intra_lpips(model, ImageSet(tmp_path / 'gen'), ImageSet(tmp_path / 'shots'), res=None, max_gen=5)
    first5 = intra_lpips(model, ImageSet(tmp_path / 'gen', limit=5), ImageSet(tmp_path / 'shots'), res=None)
    assert out['num_gen'] == 5 and sum(out['cluster_sizes']) == 5
    assert out['value'] == first5['value'] and out['per_cluster'] == first5['per_cluster']

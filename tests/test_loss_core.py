"""The StyleGAN2 loss core against hand-written formulas: R1, path length, the G_ema update and the lazy
regularisation gains of the optimisers (as in stylegan2-ada-pytorch's training loop)."""
import math

import pytest
import torch

from dnnlib import EasyDict
from fsgan.training_loop import make_optimizer, phases, update_ema
from training.loss import StyleGAN2Loss


class _QuadraticD(torch.nn.Module):
    """D(x) = w / 2 * sum(x^2) per image: grad_x D = w x, known in closed form."""

    def __init__(self, w=1.5):
        super().__init__()
        self.w = torch.nn.Parameter(torch.tensor(float(w)))

    def forward(self, img, c):
        return (self.w / 2 * img.square().flatten(1).sum(1)).unsqueeze(1)  # [N, 1]


def _reals(n=3, seed=0):
    return torch.randn([n, 1, 4, 4], generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize('gamma', [10.0, 0.5])
def test_r1_is_half_gamma_times_the_squared_gradient_norm(gamma):
    D, x = _QuadraticD(1.5), _reals()
    loss = StyleGAN2Loss(G=None, D=D, r1_gamma=gamma)
    losses = loss.accumulate_gradients('Dreg', x, torch.zeros([3, 0]), None, None, gain=1)
    sq_norm = (1.5 * x).square().flatten(1).sum(1)                       # |grad_x D(x)|^2 = w^2 |x|^2, [N]
    expected = gamma / 2 * sq_norm.mean()
    assert float(losses['Dr1']) == pytest.approx(float(expected), rel=1e-6)
    assert float(losses['Dr1']) != pytest.approx(float(gamma * sq_norm.mean()), rel=1e-3)  # not gamma, gamma / 2
    # d/dw of gamma/2 E[w^2 |x|^2] = gamma w E[|x|^2]
    assert float(D.w.grad) == pytest.approx(float(gamma * 1.5 * x.square().flatten(1).sum(1).mean()), rel=1e-5)


def test_r1_gain_scales_the_gradient_not_the_reported_loss():
    x = _reals()
    grads = []
    for gain in (1, 16):
        D = _QuadraticD(1.5)
        losses = StyleGAN2Loss(G=None, D=D, r1_gamma=10.0).accumulate_gradients(
            'Dreg', x, torch.zeros([3, 0]), None, None, gain=gain)
        grads.append(float(D.w.grad))
    assert grads[1] == pytest.approx(16 * grads[0], rel=1e-6)
    assert float(losses['Dr1']) == pytest.approx(5.0 * float((1.5 * x).square().flatten(1).sum(1).mean()), rel=1e-6)


class _LinearG(torch.nn.Module):
    """ws = z on every layer; img = sum_l A_l ws_l: the Jacobian d img / d ws is A, known in closed form."""

    def __init__(self, num_ws=3, w_dim=5, res=4, seed=0):
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.num_ws, self.z_dim, self.c_dim, self.res = num_ws, w_dim, 0, res
        self.A = torch.nn.Parameter(torch.randn([num_ws, w_dim, res * res], generator=gen))

    def mapping(self, z, c, skip_w_avg_update=False):
        return z[:, None, :].repeat(1, self.num_ws, 1)

    def synthesis(self, ws):
        return torch.einsum('nlk,lkp->np', ws, self.A).reshape(-1, 1, self.res, self.res)


def _expected_lengths(G, noise):
    """|J^T y| as stylegan2-ada computes it: sqrt(mean over layers of the squared norm of J_l^T y), [N]."""
    jty = torch.einsum('lkp,np->nlk', G.A.detach(), noise.flatten(1))   # [N, num_ws, w_dim]
    return jty.square().sum(2).mean(1).sqrt()


def test_path_length_penalty_and_its_running_mean():
    G = _LinearG()
    loss = StyleGAN2Loss(G=G, D=None, style_mixing_prob=0, pl_weight=2.0, pl_decay=0.01)
    z, c = torch.randn([8, G.z_dim], generator=torch.Generator().manual_seed(1)), torch.zeros([8, 0])
    pl_mean = 0.0
    for call in range(3):
        torch.manual_seed(100 + call)
        losses = loss.accumulate_gradients('Greg', None, None, z, c, gain=1)
        torch.manual_seed(100 + call)        # the penalty's y ~ N(0, I) / sqrt(H W), drawn first in the phase
        noise = torch.randn([4, 1, G.res, G.res]) / math.sqrt(G.res * G.res)   # batch 8 // pl_batch_shrink 2
        lengths = _expected_lengths(G, noise)
        pl_mean = pl_mean + 0.01 * (float(lengths.mean()) - pl_mean)         # EMA with decay 0.01
        assert float(loss.pl_mean) == pytest.approx(pl_mean, rel=1e-5)
        penalty = (lengths - pl_mean).square()
        assert float(losses['Gpl']) == pytest.approx(2.0 * float(penalty.mean()), rel=1e-4)
    assert pl_mean != pytest.approx(float(lengths.mean()), rel=1e-2)  # a decay of 1 (no averaging) would differ


def test_path_length_gradient_flows_through_the_running_mean():
    """As in stylegan2-ada-pytorch the running mean moves towards the batch's mean lengths with their gradient
    (pl_decay of it), so the penalty's gradient has that path too (about 1% of it here)."""
    G = _LinearG()
    loss = StyleGAN2Loss(G=G, D=None, style_mixing_prob=0, pl_weight=2.0, pl_decay=0.01)
    z, c = torch.randn([8, G.z_dim], generator=torch.Generator().manual_seed(1)), torch.zeros([8, 0])
    torch.manual_seed(100)
    loss.accumulate_gradients('Greg', None, None, z, c, gain=3)
    torch.manual_seed(100)
    noise = torch.randn([4, 1, G.res, G.res]) / math.sqrt(G.res * G.res)
    A = G.A.detach().clone().requires_grad_(True)
    lengths = torch.einsum('lkp,np->nlk', A, noise.flatten(1)).square().sum(2).mean(1).sqrt()
    pl_mean = torch.zeros([]).lerp(lengths.mean(), 0.01)
    ((lengths - pl_mean).square() * 2.0).mean().mul(3).backward()
    assert torch.allclose(G.A.grad, A.grad, rtol=1e-5, atol=1e-8)


def _ema_state(g=1.0, ema=0.0, cur_nimg=0):
    G, G_ema = torch.nn.Linear(2, 1), torch.nn.Linear(2, 1)
    for net, value in ((G, g), (G_ema, ema)):
        torch.nn.init.constant_(net.weight, value)
        torch.nn.init.constant_(net.bias, value)
        net.register_buffer('count', torch.tensor(float(value)))
    G.bias.requires_grad_(False)  # a frozen tensor: G_ema keeps its own
    return EasyDict(G=G, G_ema=G_ema, cur_nimg=cur_nimg)


def _w(net):
    return float(net.weight.detach()[0, 0])


def test_g_ema_moves_halfway_in_one_half_life():
    state = _ema_state()
    opts = EasyDict(ema_kimg=0.016, ema_rampup=None)   # 16 images: 4 steps of batch 4
    for _ in range(4):
        update_ema(state, opts, batch=4)
    beta = 0.5 ** (4 / 16)
    assert _w(state.G_ema) == pytest.approx(1 - beta ** 4, rel=1e-6)
    assert _w(state.G_ema) == pytest.approx(0.5, rel=1e-6)
    assert float(state.G_ema.bias.detach()[0]) == 0.0           # frozen in G: not averaged
    assert float(state.G_ema.count) == 1.0             # buffers are copied


def test_g_ema_ramp_up_shortens_the_half_life_early():
    opts = EasyDict(ema_kimg=10.0, ema_rampup=0.05)
    state = _ema_state(cur_nimg=400)                   # half-life min(10000, 400 x 0.05 = 20) images
    update_ema(state, opts, batch=8)
    beta = 0.5 ** (8 / 20)
    assert _w(state.G_ema) == pytest.approx(1 - beta, rel=1e-6)
    late = _ema_state(cur_nimg=10 ** 7)                # ramp-up over: the half-life is ema_kimg
    update_ema(late, opts, batch=8)
    assert _w(late.G_ema) == pytest.approx(1 - 0.5 ** (8 / 10000), rel=1e-4)  # float32 lerp
    start = _ema_state(cur_nimg=0)                     # no images seen: G_ema becomes G
    update_ema(start, opts, batch=8)
    assert _w(start.G_ema) == pytest.approx(1.0)


@pytest.mark.parametrize('interval', [4, 16])
def test_lazy_regularisation_gains_match_stylegan2_ada(interval):
    p = torch.nn.Parameter(torch.zeros([2]))
    opt = make_optimizer([p], 0.002, interval)
    mb_ratio = interval / (interval + 1)               # stylegan2-ada-pytorch: lr * mb_ratio, beta ** mb_ratio
    group = opt.param_groups[0]
    assert group['lr'] == pytest.approx(0.002 * mb_ratio, rel=1e-12)
    assert group['betas'] == pytest.approx((0.0, 0.99 ** mb_ratio), rel=1e-12)
    assert group['eps'] == 1e-8
    assert group['betas'][1] != pytest.approx(0.99 * mb_ratio, rel=1e-6)
    plain = make_optimizer([p], 0.002, 0).param_groups[0]     # no lazy regularisation: no correction
    assert plain['lr'] == 0.002 and plain['betas'] == (0.0, 0.99)


def test_lazy_phases_run_the_regularisers_every_interval():
    p, q = torch.nn.Parameter(torch.zeros([1])), torch.nn.Parameter(torch.zeros([1]))
    state = EasyDict(opt_G=make_optimizer([p], 0.002, 4), opt_D=make_optimizer([q], 0.002, 16))
    names = [(name, interval) for name, _opt, interval in phases(state, EasyDict(G_reg_interval=4,
                                                                                 D_reg_interval=16))]
    assert names == [('Gmain', 1), ('Greg', 4), ('Dmain', 1), ('Dreg', 16)]
    both = [name for name, _opt, _i in phases(state, EasyDict(G_reg_interval=0, D_reg_interval=0))]
    assert both == ['Gboth', 'Dboth']

"""torch_utils.ops.grid_sample_gradfix: torch's grid_sample with a second derivative on every device."""
import pytest
import torch

from torch_utils.ops import grid_sample_gradfix


def _inputs(seed=0):
    """Images [2, 3, 5, 6] and a grid [2, 4, 3, 2] reaching a little outside [-1, 1], float64."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand([2, 3, 5, 6], dtype=torch.float64, generator=gen).requires_grad_(True)
    grid = torch.rand([2, 4, 3, 2], dtype=torch.float64, generator=gen) * 2.4 - 1.2
    return x, grid


def _torch(x, grid):
    return torch.nn.functional.grid_sample(x, grid, mode='bilinear', padding_mode='zeros', align_corners=False)


def test_forward_is_torch_grid_sample():
    x, grid = _inputs()
    assert torch.equal(grid_sample_gradfix.grid_sample(x, grid), _torch(x, grid))


def test_gradcheck_and_gradgradcheck():
    x, grid = _inputs(1)
    assert torch.autograd.gradcheck(lambda v: grid_sample_gradfix.grid_sample(v, grid), (x,))
    assert torch.autograd.gradgradcheck(lambda v: grid_sample_gradfix.grid_sample(v, grid), (x,))


def _bilinear_reference(x, grid):
    """Bilinear sampling with zeros outside, align_corners=False, from gathers (twice differentiable)."""
    n, c, h, w = x.shape
    ix = ((grid[..., 0] + 1) * w - 1) / 2                                     # [N, H_out, W_out]
    iy = ((grid[..., 1] + 1) * h - 1) / 2
    out = 0
    for xi in (ix.floor(), ix.floor() + 1):
        for yi in (iy.floor(), iy.floor() + 1):
            weight = (1 - (ix - xi).abs()) * (1 - (iy - yi).abs()) * ((xi >= 0) & (xi < w) & (yi >= 0) & (yi < h))
            index = (yi.clamp(0, h - 1) * w + xi.clamp(0, w - 1)).long().flatten(1)  # [N, H_out * W_out]
            values = x.flatten(2).gather(2, index[:, None].expand(n, c, -1)).reshape(n, c, *ix.shape[1:])
            out = out + values * weight[:, None]
    return out


def test_r1_style_double_backward_matches_a_reference():
    """The second derivative an R1 penalty takes equals that of sampling written with gathers."""
    x, grid = _inputs(2)
    assert torch.allclose(_bilinear_reference(x, grid), _torch(x, grid), rtol=0, atol=1e-12)

    def r1_grad(sample):
        y = sample(x, grid)
        weights = torch.arange(y.numel(), dtype=y.dtype).reshape(y.shape)
        (g,) = torch.autograd.grad((y.square() * weights).sum(), x, create_graph=True)
        return torch.autograd.grad(g.square().sum(), x)[0]
    expected = r1_grad(_bilinear_reference)
    assert expected.abs().max() > 0
    assert torch.allclose(r1_grad(grid_sample_gradfix.grid_sample), expected, rtol=1e-10, atol=1e-10)


def test_grid_gets_first_derivatives_only():
    x, grid = _inputs(3)
    grid.requires_grad_(True)
    (a,) = torch.autograd.grad(_torch(x, grid).square().sum(), grid)
    (b,) = torch.autograd.grad(grid_sample_gradfix.grid_sample(x, grid).square().sum(), grid, create_graph=True)
    assert torch.allclose(a, b)
    with pytest.raises(NotImplementedError, match='grids that do not require grad'):
        b.square().sum().backward()


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA device')
def test_torch_cuda_grid_sample_still_lacks_a_second_derivative():
    """Fails once torch's CUDA grid_sample gains a second derivative: then the fix can go."""
    x, grid = (t.cuda() for t in _inputs(4))
    y = _torch(x, grid)
    (g,) = torch.autograd.grad(y.square().sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match='not implemented'):
        g.square().sum().backward()

"""grid_sample (bilinear, zero padding, align_corners=False) with a second derivative for its input on
every device.

R1 through ADA's geometric transforms needs the gradient of the gradient with respect to the sampled
images. PyTorch's CUDA grid_sample has no derivative for its backward ("derivative for
aten::grid_sampler_2d_backward is not implemented", seen with torch 2.11 + CUDA 13 on an H200), while
the CPU path has one. Here the backward is itself an autograd Function: its input gradient is linear in
the output gradient (the transpose of sampling), so its own gradient with respect to the output gradient
is grid_sample again; the input gradient does not depend on the input. The grid gets first derivatives
only (ADA's grids are built from random parameters and need none).
"""
import torch

_BILINEAR, _ZEROS = 0, 0  # aten's enum values of interpolation and padding modes


def grid_sample(input, grid):
    """input [N, C, H_in, W_in], grid [N, H_out, W_out, 2] in [-1, 1] (x, y) -> [N, C, H_out, W_out];
    bilinear, zeros outside, align_corners=False, as torch.nn.functional.grid_sample."""
    return _GridSample.apply(input, grid)


def _sample(input, grid):
    return torch.nn.functional.grid_sample(input, grid, mode='bilinear', padding_mode='zeros', align_corners=False)


class _GridSample(torch.autograd.Function):
    @staticmethod
    def forward(ctx, input, grid):
        ctx.save_for_backward(input, grid)
        return _sample(input, grid)

    @staticmethod
    def backward(ctx, grad_output):
        input, grid = ctx.saved_tensors
        grad_input, grad_grid = _GridSampleBackward.apply(grad_output, input, grid, ctx.needs_input_grad[1])
        return grad_input, grad_grid


class _GridSampleBackward(torch.autograd.Function):
    @staticmethod
    def forward(ctx, grad_output, input, grid, want_grid_grad):
        grad_input, grad_grid = torch.ops.aten.grid_sampler_2d_backward(
            grad_output, input, grid, _BILINEAR, _ZEROS, False, [True, bool(want_grid_grad)])
        ctx.save_for_backward(grid)
        ctx.set_materialize_grads(False)  # unused outputs get None, not zeros
        return grad_input, (grad_grid if want_grid_grad else None)

    @staticmethod
    def backward(ctx, grad2_grad_input, grad2_grad_grid):
        (grid,) = ctx.saved_tensors
        if grad2_grad_grid is not None:
            raise NotImplementedError('grid_sample_gradfix: no second derivative through the grid\'s gradient; '
                                      'build grids that do not require grad')
        if grad2_grad_input is None or not ctx.needs_input_grad[0]:
            return None, None, None, None
        return _sample(grad2_grad_input, grid), None, None, None

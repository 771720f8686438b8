"""Time the native upfirdn2d / bias_act kernels against the PyTorch reference.

Shapes are those of StyleGAN2 generator and discriminator layers (config-f style, channel_base
16384, channel_max 512: C(r) = min(16384 // r, 512)) at batch 4, for 64x64 and 256x256 models:
  G up-filter    upfirdn2d [N, C, r+1, r+1], padding 1, gain 4 (after the stride-2 transposed conv)
  G img up       upsample2d [N, 3, r/2, r/2] -> [N, 3, r, r] (skip toRGB)
  G/D lrelu      bias_act lrelu with bias, def_gain, clamp 256 on [N, C, r, r]
  D down-filter  upfirdn2d [N, C, r, r], padding 2 (before the stride-2 conv)
  D skip down    downsample2d [N, C, r, r] -> [N, C, r/2, r/2]
  feature up     upsample2d [N, C, r/2, r/2] -> [N, C, r, r]

Columns: best wall-clock ms of at least 5 calls, forward and forward+backward (autograd.grad
w.r.t. x), for impl='ref' and the native kernel, and the speed-up ref / native. On a machine
shared with other jobs, --threads 1 gives the steadiest numbers.

Usage: python scripts/bench_ops.py [--res 64,256] [--device cpu|cuda] [--batch 4] [--min-time 0.2] [--threads N]
(--device: cuda when available, else cpu)
"""
import click

from fsgan.bench import bench_ops
from fsgan.tools.cli import command, device_option, resolve_device


@command()
@click.option('--res', default='64,256', show_default=True, help='Comma-separated model resolutions.')
@device_option()
@click.option('--batch', type=click.IntRange(min=1), default=4, show_default=True)
@click.option('--min-time', type=click.FloatRange(min=0, min_open=True), default=0.2, show_default=True,
              help='Seconds each timing runs at least.')
@click.option('--threads', type=click.IntRange(min=1), default=None, help='torch.set_num_threads (CPU).')
def main(res, device, batch, min_time, threads):
    """Time the native upfirdn2d / bias_act kernels against the PyTorch reference."""
    try:
        resolutions = [int(r) for r in res.split(',') if r.strip()]
    except ValueError:
        raise click.BadParameter(f'{res!r}: expected comma-separated integers, e.g. 64,256', param_hint='--res')
    if not resolutions or any(r < 8 or r & (r - 1) for r in resolutions):
        raise click.BadParameter(f'{res!r}: expected powers of two of at least 8, e.g. 64,256', param_hint='--res')
    bench_ops(resolutions, resolve_device(device), batch, min_time, threads)


if __name__ == '__main__':
    main()

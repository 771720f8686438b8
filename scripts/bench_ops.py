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

Usage: python scripts/bench_ops.py [--res 64 256] [--device cpu] [--batch 4] [--min-time 0.2] [--threads N]
"""
import argparse

from fsgan.bench import bench_ops


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--res', type=int, nargs='+', default=[64, 256])
    ap.add_argument('--device', default='cpu')
    ap.add_argument('--batch', type=int, default=4)
    ap.add_argument('--min-time', type=float, default=0.2)
    ap.add_argument('--threads', type=int, default=None, help='torch.set_num_threads (CPU)')
    args = ap.parse_args()
    bench_ops(args.res, args.device, args.batch, args.min_time, args.threads)


if __name__ == '__main__':
    main()

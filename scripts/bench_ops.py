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
import time

import torch

from torch_utils.ops import bias_act, native, upfirdn2d


def channels(r, channel_base=16384, channel_max=512):
    return min(channel_base // r, channel_max)


def layer_cases(res, batch):
    """(name, shape, fn(x, impl)) for every distinct layer shape of a res x res model."""
    f = upfirdn2d.setup_filter([1, 3, 3, 1])
    cases = []
    r = 8
    while r <= res:
        c = channels(r)
        b = torch.randn(c)
        cases += [
            (f'G up-filter   r={r:<4}', [batch, c, r + 1, r + 1],
             lambda x, impl: upfirdn2d.upfirdn2d(x, f, padding=1, gain=4, impl=impl)),
            (f'G img up      r={r:<4}', [batch, 3, r // 2, r // 2],
             lambda x, impl: upfirdn2d.upsample2d(x, f, impl=impl)),
            (f'G/D lrelu     r={r:<4}', [batch, c, r, r],
             lambda x, impl, b=b: bias_act.bias_act(x, b.to(x.device), act='lrelu', clamp=256, impl=impl)),
            (f'D down-filter r={r:<4}', [batch, c, r, r],
             lambda x, impl: upfirdn2d.upfirdn2d(x, f, padding=2, impl=impl)),
            (f'D skip down   r={r:<4}', [batch, c, r, r],
             lambda x, impl: upfirdn2d.downsample2d(x, f, impl=impl)),
            (f'feature up    r={r:<4}', [batch, c, r // 2, r // 2],
             lambda x, impl: upfirdn2d.upsample2d(x, f, impl=impl)),
        ]
        r *= 2
    return cases


def timeit(fn, device, min_time, min_reps=5):
    """Best wall-clock seconds per call over at least min_reps calls and min_time seconds."""
    fn()
    best, total, reps = float('inf'), 0.0, 0
    while total < min_time or reps < min_reps:
        reps += 1
        if device.type == 'cuda':
            torch.cuda.synchronize()
        t = time.perf_counter()
        fn()
        if device.type == 'cuda':
            torch.cuda.synchronize()
        dt = time.perf_counter() - t
        best, total = min(best, dt), total + dt
    return best


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--res', type=int, nargs='+', default=[64, 256])
    ap.add_argument('--device', default='cpu')
    ap.add_argument('--batch', type=int, default=4)
    ap.add_argument('--min-time', type=float, default=0.2)
    ap.add_argument('--threads', type=int, default=None, help='torch.set_num_threads (CPU)')
    args = ap.parse_args()
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)

    t = time.time()
    ok = native.available(device)
    print(f'native {device.type}: {"ok" if ok else "unavailable"} ({time.time() - t:.1f} s), '
          f'torch {torch.__version__}, threads {torch.get_num_threads()}')
    print(native.build_status()[device.type])
    if not ok:
        return

    torch.manual_seed(0)
    for res in args.res:
        print(f'\n{res}x{res} model, batch {args.batch}; ms per call (speed-up = ref / native)')
        print(f'{"layer":<22} {"shape":<20} {"fwd ref":>9} {"fwd nat":>9} {"x":>5} '
              f'{"f+b ref":>9} {"f+b nat":>9} {"x":>5}')
        sums = [0.0] * 4
        for name, shape, fn in layer_cases(res, args.batch):
            x = torch.randn(shape, device=device)
            xg = x.clone().requires_grad_(True)
            row = []
            for impl in ('ref', 'cuda'):
                fwd = timeit(lambda: fn(x, impl), device, args.min_time)
                y = fn(xg, impl)
                dy = torch.randn_like(y)
                fb = timeit(lambda: torch.autograd.grad(fn(xg, impl), xg, dy), device, args.min_time)
                row += [fwd, fb]
            fr, fbr, fn_, fbn = row
            for i, v in enumerate([fr, fn_, fbr, fbn]):
                sums[i] += v
            print(f'{name:<22} {str(shape):<20} {fr * 1e3:9.3f} {fn_ * 1e3:9.3f} {fr / fn_:5.2f} '
                  f'{fbr * 1e3:9.3f} {fbn * 1e3:9.3f} {fbr / fbn:5.2f}')
        print(f'{"total":<43} {sums[0] * 1e3:9.3f} {sums[1] * 1e3:9.3f} {sums[0] / sums[1]:5.2f} '
              f'{sums[2] * 1e3:9.3f} {sums[3] * 1e3:9.3f} {sums[2] / sums[3]:5.2f}')


if __name__ == '__main__':
    main()

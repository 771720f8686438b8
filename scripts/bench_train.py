"""Benchmark (not a test): training step time of each method on one small config, and SVD set-up time.

  python scripts/bench_train.py                 # step times on the bundled 32x32 network, SVD set-up for config-f 1024
  python scripts/bench_train.py --steps 20 --skip-config-f
"""
import copy
import os
import time

import click
import torch


from dnnlib import EasyDict
from fsgan.training_loop import setup_run, training_step
from fsgan.tools.cli import command, device_option, resolve_device

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def step_time(method, network, batch, steps, device):
    """Mean seconds per training step (all phases due at that step, averaged over `steps` after 2 warm-up)."""
    opts = EasyDict(source=network, method=method, method_options={}, style_mixing=0.9, gamma=10.0, pl_weight=2.0,
                    lr=0.002, G_reg_interval=4, D_reg_interval=16, batch=batch, mirror=False, ema_kimg=10.0,
                    ema_rampup=0.05)
    state = setup_run(opts, torch.device(device))
    res = state.G.img_resolution
    images = torch.randint(0, 256, [64, state.G.img_channels, res, res], dtype=torch.uint8)
    for _ in range(2):
        training_step(state, opts, images, device)
    start = time.perf_counter()
    for _ in range(steps):
        training_step(state, opts, images, device)
    return (time.perf_counter() - start) / steps, state.num_trainable


@command()
@click.option('--network', default=os.path.join(ROOT, 'tests', 'fixtures', 'p1.pkl'), show_default=True)
@click.option('--batch', default=16, show_default=True)
@click.option('--steps', default=16, show_default=True, help='Timed steps (a multiple of 16 covers every phase).')
@device_option()
@click.option('--skip-config-f', is_flag=True, help='Skip the config-f 1024 SVD set-up timing.')
def main(network, batch, steps, device, skip_config_f):
    device = resolve_device(device)
    print(f'torch {torch.__version__}, threads {torch.get_num_threads()}, device {device}')
    for method in ('fsgan', 'tgan', 'freezed', 'ssgan'):
        sec, counts = step_time(method, network, batch, steps, device)
        print(f'{method:8s} {sec * 1000:8.1f} ms/step  (batch {batch}, trainable G {counts["G"]:,} D {counts["D"]:,})')
    if not skip_config_f:
        from fsgan.methods import adapt
        from training.networks import Discriminator, Generator
        G, D = Generator(512, 0, 512, 1024, 3), Discriminator(0, 1024, 3)
        start = time.perf_counter()
        params = adapt(copy.deepcopy(G), copy.deepcopy(D), method='fsgan')
        print(f'SVD set-up, config-f 1024 G+D: {time.perf_counter() - start:.1f} s '
              f'({sum(p.numel() for p in params):,} trainable)')


if __name__ == '__main__':
    main()

"""Benchmark (not a test): training step time of each method on one small config, and SVD set-up time.

  python scripts/bench_train.py                 # step times on the bundled 32x32 network, SVD set-up for config-f 1024
  python scripts/bench_train.py --steps 20 --skip-config-f
"""
import os

import click

from fsgan.bench import bench_train
from fsgan.tools.cli import command, device_option, resolve_device

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@command()
@click.option('--network', default=os.path.join(ROOT, 'tests', 'fixtures', 'p1.pkl'), show_default=True)
@click.option('--batch', default=16, show_default=True)
@click.option('--steps', default=16, show_default=True, help='Timed steps (a multiple of 16 covers every phase).')
@device_option()
@click.option('--skip-config-f', is_flag=True, help='Skip the config-f 1024 SVD set-up timing.')
def main(network, batch, steps, device, skip_config_f):
    bench_train(network, batch, steps, resolve_device(device), config_f=not skip_config_f)


if __name__ == '__main__':
    main()

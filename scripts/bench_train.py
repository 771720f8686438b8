"""Benchmark (not a test): training step time of each method on one small config, and SVD set-up time.

  python scripts/bench_train.py                 # step times on the bundled 32x32 network, SVD set-up for config-f 1024
  python scripts/bench_train.py --steps 20 --skip-config-f
  python scripts/bench_train.py --network data/emoji/source_emoji64.pkl --batch 32 --methods tgan \
      --bf16-conv --skip-config-f    # the emoji source's step, float32 and --bf16-conv alternately
  python scripts/bench_train.py --network data/emoji/source_emoji64.pkl --batch 32 --methods tgan \
      --skip-config-f --steps 2 --demod-forms   # + G forward + backward with each demodulation form
"""
import os

import click

from fsgan.bench import TIMED_METHODS, bench_train, demodulation_forms
from fsgan.methods import METHODS
from fsgan.tools.cli import command, device_option, resolve_device

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@command()
@click.option('--network', default=os.path.join(ROOT, 'tests', 'fixtures', 'p1.pkl'), show_default=True)
@click.option('--batch', default=16, show_default=True)
@click.option('--steps', default=16, show_default=True, help='Timed steps (a multiple of 16 covers every phase).')
@device_option()
@click.option('--skip-config-f', is_flag=True, help='Skip the config-f 1024 SVD set-up timing.')
@click.option('--methods', default=','.join(TIMED_METHODS), show_default=True, help='Comma-separated methods.')
@click.option('--bf16-conv', is_flag=True, help='Time every method with train.py --bf16-conv too.')
@click.option('--repeat', default=1, show_default=True, help='Time each (method, precision) this many times.')
@click.option('--demod-forms', is_flag=True, help='Also time G\'s forward + backward in the --bf16-conv mode with '
              'each demodulation form (styles² @ Σw² products, per-sample weights), 6 alternating repetitions.')
def main(network, batch, steps, device, skip_config_f, methods, bf16_conv, repeat, demod_forms):
    names = [m.strip() for m in methods.split(',') if m.strip()]
    unknown = [m for m in names if m not in METHODS]
    if not names or unknown:
        raise click.BadParameter(f'{", ".join(unknown) or "none given"}; choose from {", ".join(METHODS)}',
                                 param_hint='--methods')
    for i in range(repeat):
        bench_train(network, batch, steps, resolve_device(device), config_f=not skip_config_f and i == 0,
                    methods=names, bf16_conv=bf16_conv)
    if demod_forms:
        demodulation_forms(network, batch, device=resolve_device(device))


if __name__ == '__main__':
    main()

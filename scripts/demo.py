"""README command one: FSGAN few-shot adaptation of the shipped glyph source on the CPU, then samples,
an interpolation video and a metrics report.

Details (files written, how a re-run continues): fsgan/benchmarks/glyphs/demo.py.
"""
import json
import os

import click

from fsgan.benchmarks.glyphs.demo import (DEFAULT_KIMG, DEFAULT_LR, DEFAULT_SOURCE, DEFAULT_TARGET, DEFAULT_TEST,
                                         ROOT, run_demo)
from fsgan.tools.cli import command


@command()
@click.option('--outdir', default=os.path.join(ROOT, 'runs', 'demo'), show_default=True, help='Parent folder.')
@click.option('--kimg', type=click.FloatRange(min=0, min_open=True), default=DEFAULT_KIMG, show_default=True,
              help='Adaptation length in thousands of images.')
@click.option('--lr', type=click.FloatRange(min=0, min_open=True), default=DEFAULT_LR, show_default=True,
              help='FSGAN learning rate (the paper\'s is 0.003; the default is the best on the Kannada validation split).')
@click.option('--source', default=DEFAULT_SOURCE, show_default=True, help='Source network.')
@click.option('--target', default=DEFAULT_TARGET, show_default=True, help='Target shots (folder or zip).')
@click.option('--test', default=DEFAULT_TEST, show_default=True, type=click.Path(exists=True),
              help='Held-out target images for FGD/FID.')
@click.option('--num', type=click.IntRange(min=2), default=500, show_default=True, help='Samples for the metrics.')
@click.option('--num-test', type=click.IntRange(min=2), default=1000, show_default=True,
              help='Test images for the metrics.')
def main(outdir, kimg, lr, source, target, test, num, num_test):
    """Adapt --source to --target with FSGAN and write samples, a video and metrics."""
    from fsgan.evaluate import EvaluateError
    from fsgan.loading import NetworkLoadError
    from fsgan.run_setup import SetupError
    from training.dataset import DataError
    from fsgan.training_loop import TrainingError
    try:
        run_dir, paths, row = run_demo(outdir, source, target, test, kimg, lr, num, num_test)
    except (EvaluateError, NetworkLoadError, SetupError, DataError, TrainingError) as e:
        raise click.ClickException(str(e).splitlines()[0]) from None
    with open(os.path.join(run_dir, 'metrics.md')) as f:
        print('\n' + f.read())
    print(f'Done. Run folder: {run_dir}')
    print(f'  samples:  {paths["samples"]}')
    print(f'  video:    {paths["video"]}')
    print(f'  metrics:  {paths["metrics"]} (and metrics.md)')
    print(json.dumps({k: row[k] for k in ('fgd_test', 'fid_test', 'script_share', 'memorised_glyph')}))


if __name__ == '__main__':
    main()

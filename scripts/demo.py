"""README command one: few-shot adaptation of a shipped source on the CPU, then figures, an interpolation video and
a metrics report.

--benchmark emoji (default): the 64-px Noto emoji source adapted to 10 Twemoji shots, with a before/after figure
and the unadapted source's metrics beside the adapted G's (fsgan/benchmarks/emoji/demo.py). --benchmark glyphs
(or --glyphs): the earlier benchmark, the 32-px Latin glyph source adapted to 10 Kannada glyphs
(fsgan/benchmarks/glyphs/demo.py).
"""
import json
import os

import click

from fsgan.benchmarks.glyphs import ROOT
from fsgan.tools.cli import command

POSITIVE = click.FloatRange(min=0, min_open=True)


def demo_defaults(benchmark):
    """(module of the demo, its defaults {option: value})."""
    if benchmark == 'emoji':
        from fsgan.benchmarks.emoji import demo
        return demo, dict(kimg=demo.DEFAULT_KIMG, lr=demo.DEFAULT_LR, source=demo.DEFAULT_SOURCE,
                          target=demo.DEFAULT_TARGET, test=demo.DEFAULT_TEST, num=demo.DEFAULT_NUM,
                          num_test=demo.DEFAULT_NUM_TEST)
    from fsgan.benchmarks.glyphs import demo
    return demo, dict(kimg=demo.DEFAULT_KIMG, lr=demo.DEFAULT_LR, source=demo.DEFAULT_SOURCE,
                      target=demo.DEFAULT_TARGET, test=demo.DEFAULT_TEST, num=500, num_test=1000)


def check_before_training(outdir, test):
    """One-line errors for an output folder that cannot be made and a test set that cannot be read, before
    minutes of training are spent."""
    from metrics.images import ImageSet
    from training.dataset import DataError
    if os.path.exists(outdir) and not os.path.isdir(outdir):
        raise click.BadParameter(f'{outdir} is a file; give a folder for the run folders', param_hint='--outdir')
    existing = os.path.abspath(outdir)
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing) or not os.access(existing, os.W_OK):
        raise click.BadParameter(f'{outdir}: cannot write in {existing}; give a folder you can write to',
                                 param_hint='--outdir')
    try:
        test_set = ImageSet(test)
        for i in range(len(test_set)):
            test_set.read(i)
    except (ValueError, DataError) as e:
        raise click.BadParameter(str(e), param_hint='--test') from None


def print_summary(benchmark, run_dir, paths, row):
    with open(os.path.join(run_dir, 'metrics.md')) as f:
        print('\n' + f.read())
    print(f'Done. Run folder: {run_dir}')
    for key in ('before_after', 'samples', 'video', 'metrics'):
        if key in paths:
            label = key.replace('_', '/') + ':'
            print(f'  {label:14s}{paths[key]}' + (' (and metrics.md)' if key == 'metrics' else ''))
    keys = (('emoji_fd_test', 'fid_test', 'style_share', 'content', 'nearest_shot') if benchmark == 'emoji'
            else ('fgd_test', 'fid_test', 'script_share', 'memorised_glyph'))
    print(json.dumps({k: row.get(k) for k in keys}))


@command()
@click.option('--benchmark', type=click.Choice(['emoji', 'glyphs']), default='emoji', show_default=True,
              help='Which shipped benchmark to adapt.')
@click.option('--glyphs', 'glyphs', is_flag=True, help='The earlier glyph benchmark: the same as --benchmark glyphs.')
@click.option('--outdir', default=os.path.join(ROOT, 'runs', 'demo'), show_default=True, help='Parent folder.')
@click.option('--kimg', type=POSITIVE, help="Adaptation length in thousands of images [default: the demo's: "
                                            "glyphs 2, emoji 4].")
@click.option('--lr', type=POSITIVE, help="FSGAN learning rate [default: glyphs 0.03, the best on the Kannada "
                                          "validation split; emoji 0.003, the paper's].")
@click.option('--source', help='Source network [default: the benchmark\'s shipped source].')
@click.option('--target', help='Target shots, folder or zip [default: the benchmark\'s 10 shots].')
@click.option('--test', type=click.Path(exists=True), help='Held-out target images for the metrics '
                                                           '[default: the benchmark\'s test split].')
@click.option('--num', type=click.IntRange(min=2), help='Samples for the metrics [default: glyphs 500, emoji 200].')
@click.option('--num-test', type=click.IntRange(min=0), help='Test images for the metrics, 0 = all '
                                                             '[default: glyphs 1000, emoji all].')
def main(benchmark, glyphs, outdir, kimg, lr, source, target, test, num, num_test):
    """Adapt a shipped source with FSGAN and write samples, figures, a video and metrics."""
    if glyphs:
        if click.get_current_context().get_parameter_source('benchmark') is click.core.ParameterSource.COMMANDLINE \
                and benchmark != 'glyphs':
            raise click.BadParameter(f'--glyphs and --benchmark {benchmark} contradict each other; give one',
                                     param_hint='--glyphs')
        benchmark = 'glyphs'
    from fsgan.evaluate import EvaluateError
    from fsgan.loading import NetworkLoadError
    from fsgan.run_setup import SetupError
    from training.dataset import DataError
    from fsgan.training_loop import TrainingError
    demo, defaults = demo_defaults(benchmark)
    given = dict(kimg=kimg, lr=lr, source=source, target=target, test=test, num=num, num_test=num_test)
    options = dict(defaults, **{k: v for k, v in given.items() if v is not None})
    if benchmark == 'glyphs' and options['num_test'] == 1:
        raise click.BadParameter('the glyph demo needs at least 2 test images', param_hint='--num-test')
    check_before_training(outdir, options['test'])
    try:
        run_dir, paths, row = demo.run_demo(outdir, **options)
    except (EvaluateError, NetworkLoadError, SetupError, DataError, TrainingError) as e:
        raise click.ClickException(str(e).splitlines()[0]) from None
    print_summary(benchmark, run_dir, paths, row)


if __name__ == '__main__':
    main()

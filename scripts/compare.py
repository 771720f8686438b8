"""Compare adaptation methods on the same shots and seed: one figure, a metrics table, interpolation strips.

Examples:
  python scripts/compare.py --source ffhq256 --target-dir shots/ --shots 10 --methods fsgan,tgan,freezed,ssgan --outdir cmp
  python scripts/compare.py --outdir cmp2 --runs fsgan=runs/00003-fsgan-10shot --runs tgan=runs/00004-tgan-10shot

Details (files written, how a re-run continues): fsgan/compare.py.
"""
import os

import click

from fsgan.benchmarks import PRESET_MODULES
from fsgan.compare import (CHECKPOINT_MINUTES, DEFAULT_METHODS, TRAIN_KEYS, CompareError, plan, plan_lines,
                          run_compare, setup_compare)
from fsgan.compare import train_only as train_only_runs
from fsgan.evaluate import EvaluateError
from fsgan.protocol import PROTOCOLS
from fsgan.run_setup import SetupError
from fsgan.tools.cli import FINITE, command, interrupted


TRAIN_ONLY_DONE = ('--train-only: the runs are trained and nothing was measured; the same command without '
                   '--train-only, in the same place, measures them')


def one_line_error(e):
    """A library error as click's one-line error: naming its option when it has one."""
    if getattr(e, 'option', None):
        return click.BadParameter(str(e), param_hint=e.option)
    return click.ClickException(str(e).splitlines()[0] if str(e) else type(e).__name__)


RESUME_ADVICE = 'run the same command again to continue (finished runs and checkpoints are kept)'


NOT_FOR_PRESETS = ('target_dir', 'test_dir', 'shots', 'batch', 'seed', 'tick', 'snap', 'num', 'num_test', 'faces',
                   'trunc', 'metrics_trunc', 'cols', 'strip_steps', 'cache_dir', 'reference')  # a preset sets these
PRESET_ONLY = ('preset_targets', 'preset_shots', 'preset_seeds', 'parallel', 'threads', 'split')


def refuse_options_of_the_other_mode(ctx, preset):
    """UsageError for options given on the command line that the chosen mode (a preset, or one comparison) would
    ignore."""
    from click.core import ParameterSource
    names = NOT_FOR_PRESETS if preset is not None else PRESET_ONLY
    given = [f'--{n.replace("_", "-")}' for n in names if ctx.get_parameter_source(n) is ParameterSource.COMMANDLINE]
    if given and preset is not None:
        raise click.UsageError(f'--preset {preset} sets {", ".join(given)} itself; drop {"it" if len(given) == 1 else "them"}')
    if given:
        raise click.UsageError(f'{", ".join(given)} only apply with --preset; drop {"it" if len(given) == 1 else "them"} '
                               f'or give --preset')


def run_benchmark_preset(name, outdir, methods, targets, shots, seeds, kimg, split, device, progress,
                         protocol, parallel, threads, dry_run=False, source=None, runs=(), train_only=False,
                         bf16_conv=False, checkpoint_minutes=None):
    """--preset NAME: run the benchmark's grid (fsgan.benchmarks.preset) and print its report (dry_run: print
    what it would train; train_only: train, measure nothing). source: another source network than the preset's
    shipped one; runs: run folders of a one-cell grid's cell, trained elsewhere, as extra rows."""
    from fsgan.benchmarks import benchmark
    from fsgan.benchmarks import preset as presets
    from dnnlib.lock import FolderLocked
    from fsgan.export import AdapterError
    from fsgan.loading import NetworkLoadError
    from fsgan.parallel import JobError
    from training.dataset import DataError
    from fsgan.training_loop import TrainingError
    bench = benchmark(name)
    try:
        grid = dict(targets=None if targets is None else presets.parse_list(targets, str, '--preset-targets'),
                    shots=None if shots is None else presets.parse_list(shots, int, '--preset-shots'),
                    seeds=None if seeds is None else presets.parse_list(seeds, int, '--preset-seeds'),
                    methods=methods, kimg=kimg, split=split, protocol=protocol, source=source, runs=runs,
                    bf16_conv=bf16_conv)
        if dry_run:
            click.echo('\n'.join(presets.plan_preset(bench, outdir, **grid)))
            return
        rows = presets.run_preset(bench, outdir, device=device, progress=progress, parallel=parallel,
                                  threads=threads, train_only=train_only, checkpoint_minutes=checkpoint_minutes,
                                  **grid)
    except (CompareError, EvaluateError, SetupError, DataError, NetworkLoadError, TrainingError, JobError,
            AdapterError, FolderLocked, ValueError) as e:
        raise one_line_error(e) from None
    except OSError as e:
        raise click.ClickException(f'{e.filename or outdir}: {e.strerror or e}') from None
    except KeyboardInterrupt:
        raise interrupted(RESUME_ADVICE) from None
    if train_only:
        click.echo(f'{TRAIN_ONLY_DONE}; it writes {os.path.join(outdir, "benchmark.md")}')
        return
    with open(os.path.join(outdir, 'benchmark.md')) as f:
        click.echo(f.read())
    click.echo(f'{len(rows)} rows: {os.path.join(outdir, "benchmark.csv")}, figures {outdir}/figure-*.png')


@command()
@click.option('--outdir', required=True, type=click.Path(file_okay=False),
              help='Comparison folder: new, or one of an earlier comparison with the same settings to continue it.')
@click.option('--source', metavar='NETWORK', help='Source network: path, URL or short name.')
@click.option('--target-dir', metavar='DIR|ZIP', help='Target images (folder or zip).')
@click.option('--shots', type=int, default=10, show_default=True, help='Number of target images.')
@click.option('--methods', help=f'Methods to train, comma-separated; METHOD@KEY=VALUE changes a training option '
              f'({", ".join(TRAIN_KEYS)}) or a method option [default: {",".join(DEFAULT_METHODS)}; '
              "only the --runs entries when --runs is given; with --preset, the preset's methods for each "
              "shot count (or compare's default where it sets none), --runs or not].")
@click.option('--runs', multiple=True, metavar='NAME=RUNDIR',
              help='Use an existing run folder as row NAME (repeatable); with --preset, for a grid of one cell '
                   '(a run of that cell trained elsewhere, e.g. on another device).')
@click.option('--kimg', type=float, help='Training length [default: 20, 16 for <= 5 shots].')
@click.option('--batch', type=int, help='Batch size [default: per protocol].')
@click.option('--protocol', type=click.Choice(list(PROTOCOLS)),
              help='Adaptation protocol of every trained row (see scripts/train.py --protocol) '
                   "[default: paper; a preset's own: ours for glyphs, as its documented tables].")
@click.option('--seed', type=int, default=0, show_default=True, help='Seed of shot selection and training.')
@click.option('--tick', type=float, default=1.0, show_default=True, help='Tick length in kimg.')
@click.option('--snap', type=int, default=5, show_default=True, help='Snapshot (and checkpoint) every this many ticks.')
@click.option('--test-dir', type=click.Path(exists=True), help='Test images for FID/FGD against the test set.')
@click.option('--num', type=int, default=64, show_default=True,
              help='Generated images per method for the metrics. Small by default so the metrics stay cheap on a '
                   'CPU (FID of 64 images is biased; use e.g. 5000 on a GPU for paper-like numbers).')
@click.option('--reference', type=click.Path(exists=True), metavar='DIR|ZIP',
              help='Held-out real target images (none of them a shot), measured as the extra row "real" as if they '
                   'were samples: what each metric gives for images that copy nothing.')
@click.option('--num-test', type=int, default=256, show_default=True,
              help='Test images used (first in name order; 0 = all). Small by default for the CPU.')
@click.option('--faces', is_flag=True, help='Images are faces: add the face-quality index (FQI).')
@click.option('--trunc', type=FINITE, default=0.8, show_default=True, help='Truncation psi of the figure and strips.')
@click.option('--metrics-trunc', type=FINITE, default=1.0, show_default=True,
              help='Truncation psi of the metric samples.')
@click.option('--cols', type=int, default=10, show_default=True, help='Images per row of the figure.')
@click.option('--strip-steps', type=int, default=10, show_default=True, help='Images per interpolation strip.')
@click.option('--cache-dir', type=click.Path(file_okay=False),
              help='Inception feature cache [default: as calc_metrics.py].')
@click.option('--device', type=click.Choice(['cpu', 'cuda']), help='Device [default: cuda when available].')
@click.option('--no-progress', is_flag=True, help='No training progress bars.')
@click.option('--preset', type=click.Choice(sorted(PRESET_MODULES)),
              help='Run a whole benchmark: its shipped source adapted to its targets over shots x seeds x methods '
                   '(glyphs: fsgan/benchmarks/glyphs/preset.py, emoji: fsgan/benchmarks/emoji/preset.py); --methods, '
                   '--kimg, --protocol, --device, --bf16-conv, --runs and --source (another source: a network '
                   'snapshot .pkl, e.g. one of your own runs) apply, the other training options do not.')
@click.option('--preset-targets', help='Preset targets [default: all of the preset: near,far].')
@click.option('--preset-shots', help="Preset shot counts [default: the preset's: 5,10,25].")
@click.option('--preset-seeds', help="Preset seeds [default: the preset's: 0,1,2].")
@click.option('--parallel', type=click.IntRange(min=1), default=1, show_default=True,
              help='Preset: runs trained (and cells measured) at once, each in its own process (N GPU processes on '
                   'one GPU, or N CPU processes of --threads threads).')
@click.option('--threads', type=click.IntRange(min=1), default=1, show_default=True,
              help='Preset with --parallel: CPU threads per process.')
@click.option('--split', type=click.Choice(['test', 'val']), default='test', show_default=True,
              help='Preset evaluation split: val for choosing settings, test for the report.')
@click.option('--dry-run', is_flag=True,
              help='Check the options and print what would be trained (per run: done, partial at kimg, or pending) '
                   'and the kimg left, without writing anything.')
@click.option('--train-only', is_flag=True,
              help='Train (or continue) the runs and stop: no samples, no metrics, e.g. on a device without the '
                   "metrics' weights. The same command without it measures. A run folder brought back without its "
                   'network-snapshot-*.pkl is measured from --source plus its newest adapter-*.pt.')
@click.option('--bf16-conv', is_flag=True,
              help="Trained rows run their training steps' convolutions in bfloat16 (scripts/train.py --bf16-conv): "
                   'faster on CPUs with AMX or AVX512-BF16; a setting of the comparison.')
@click.option('--checkpoint-minutes', type=click.FloatRange(min=0), default=CHECKPOINT_MINUTES, show_default=True,
              help='Trained rows write their checkpoint this often, within ticks too (scripts/train.py '
                   '--checkpoint-minutes; 0: at snapshots only): a killed comparison loses at most about that much '
                   'training per run. Results do not depend on it.')
def main(outdir, source, target_dir, shots, methods, runs, kimg, batch, protocol, seed, tick, snap, test_dir, num,
         reference, num_test,
         faces, trunc, metrics_trunc, cols, strip_steps, cache_dir, device, no_progress, preset, preset_targets,
         preset_shots, preset_seeds, parallel, threads, split, dry_run, train_only, bf16_conv, checkpoint_minutes):
    """Train (or take) several adaptations of one source on the same shots and compare them side by side.

    Writes comparison.png, metrics.csv/.md and interp_<method>.png into --outdir; metrics use --num
    (default 64) images per method so they stay cheap on a CPU. Re-run the same command to continue.
    """
    from dnnlib.lock import FolderLocked
    from fsgan.export import AdapterError
    from fsgan.loading import NetworkLoadError, is_remote_source
    from training.dataset import DataError
    from fsgan.training_loop import TrainingError
    if dry_run and train_only:
        raise click.UsageError('give --dry-run or --train-only, not both')
    refuse_options_of_the_other_mode(click.get_current_context(), preset)
    if preset is not None:
        run_benchmark_preset(preset, outdir, methods, preset_targets, preset_shots, preset_seeds, kimg, split,
                             device, not no_progress, protocol=protocol, parallel=parallel, threads=threads,
                             dry_run=dry_run, source=source, runs=runs, train_only=train_only,
                             bf16_conv=bf16_conv, checkpoint_minutes=checkpoint_minutes)
        return
    try:
        cfg = setup_compare(outdir, source=source, target_dir=target_dir, shots=shots, methods=methods, runs=runs,
                            kimg=kimg, batch=batch, protocol=protocol or 'paper', seed=seed, tick=tick, snap=snap,
                            test_dir=test_dir, num=num, num_test=num_test, faces=faces, trunc=trunc,
                            metrics_trunc=metrics_trunc, cols=cols, strip_steps=strip_steps, device=device,
                            cache_dir=cache_dir, bf16_conv=bf16_conv, checkpoint_minutes=checkpoint_minutes,
                            reference=reference)
        if dry_run:
            rows = plan(cfg)
            remote = ('; the source is a URL or short name, not fetched by a dry run (the comparison checks it and '
                      'the targets when it runs)' if is_remote_source(cfg.settings['source']) else '')
            click.echo(f'--dry-run: comparison in {outdir}, {cfg.settings["kimg"]:g} kimg per run; nothing was '
                       f'written{remote}')
            click.echo('\n'.join(plan_lines(rows)))
            return
        if train_only:
            trained = train_only_runs(cfg, progress=not no_progress)
            click.echo(f'{TRAIN_ONLY_DONE}\n' + '\n'.join(f'  {name}  {run_dir}' for name, run_dir in trained.items()))
            return
        result = run_compare(cfg, progress=not no_progress)
    except (CompareError, EvaluateError, SetupError, DataError, NetworkLoadError, TrainingError, AdapterError,
            FolderLocked, ValueError) as e:
        raise one_line_error(e) from None
    except OSError as e:
        raise click.ClickException(f'{e.filename or outdir}: {e.strerror or e}') from None
    except KeyboardInterrupt:
        raise interrupted(RESUME_ADVICE) from None
    with open(result['markdown']) as f:
        click.echo(f.read())
    click.echo(f'Figure: {result["figure"]}\nTable:  {result["csv"]}, {result["markdown"]}')


if __name__ == '__main__':
    main()

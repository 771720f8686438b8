"""Few-shot adaptation of a pretrained StyleGAN2 (or training from scratch without --resume).

Examples:
  python scripts/train.py --resume ffhq256 --target-dir DIR --shots 10 --method fsgan --outdir runs
  python scripts/train.py --resume-run runs/00003-fsgan-10shot       # continue an interrupted run
  python scripts/train.py --target-dir glyphs.zip --cfg glyph32 --kimg 500   # from scratch
"""
import os
import shlex
import sys

import click

from fsgan.options import SetupError, click_options
from fsgan.run import continue_run, report_last_snapshot, run_training
from fsgan.run_setup import setup_training_config
from fsgan.tools.cli import check_output_dir, command, interrupted

# Options --resume-run takes; all else comes from the run's options.
RESUME_OPTIONS = ('resume_run', 'kimg', 'checkpoint_ticks', 'checkpoint_minutes', 'dry_run', 'no_progress')


def refuse_with_resume_run(ctx):
    """SetupError naming the options given with --resume-run that it does not take."""
    from click.core import ParameterSource
    given = [p.opts[0] for p in ctx.command.params if p.name not in RESUME_OPTIONS
             and ctx.get_parameter_source(p.name) in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)]
    if given:
        raise SetupError(f'--resume-run continues a run with the options it recorded; drop {", ".join(given)} '
                         f'(only --kimg, --checkpoint-ticks, --checkpoint-minutes, --dry-run and --no-progress apply)')


def resume_command(run_dir):
    """The command that continues run_dir: this interpreter and this script, relative when below the working folder."""
    def short(path):
        rel = os.path.relpath(path)
        return path if rel.startswith('..') else rel
    return shlex.join([short(sys.executable), short(os.path.abspath(__file__)), '--resume-run', run_dir])


def stopped_error(e):
    """A ClickException for a KeyboardInterrupt or OSError that stopped training (exit code 130 for Ctrl-C)."""
    run_dir = getattr(e, 'run_dir', None)
    resumable = run_dir is not None and os.path.isfile(os.path.join(run_dir, 'checkpoint.pt'))
    advice = f'continue with: {resume_command(run_dir)}' if resumable else 'nothing to resume; start a new run'
    if isinstance(e, KeyboardInterrupt):
        return interrupted(advice)
    where = f'{e.filename}: ' if e.filename else ''
    return click.ClickException(f'{where}{e.strerror or e}; check --outdir permissions and free disk space; {advice}')


@command()
@click_options
@click.option('--resume-run', type=click.Path(file_okay=False),
              help='Continue an interrupted run folder with its recorded options (--kimg extends it; '
                   '--checkpoint-ticks and --checkpoint-minutes set those intervals).')
@click.option('--dry-run', is_flag=True, help='Print the options and trainable counts, then exit.')
@click.option('--no-progress', is_flag=True, help='No progress bar: a line per tick instead (kimg, sec/tick, img/s, losses).')
def main(resume_run, dry_run, no_progress, **opts):
    """Adapt a pretrained StyleGAN2 to a few target images (or train one from scratch)."""
    from dnnlib.lock import FolderLocked
    from fsgan.loading import NetworkLoadError
    from training.dataset import DataError
    from fsgan.training_loop import TrainingError
    try:
        if resume_run is not None:
            refuse_with_resume_run(click.get_current_context())
            report_last_snapshot(continue_run(resume_run, opts['kimg'], dry_run, progress=not no_progress,
                                              checkpoint_ticks=opts['checkpoint_ticks'],
                                              checkpoint_minutes=opts['checkpoint_minutes']))
            return
        if opts['target_dir'] is None:
            raise SetupError('--target-dir is required (a folder or zip of target images)')
        from click.core import ParameterSource
        if opts.get('resume') is not None and \
                click.get_current_context().get_parameter_source('cfg') is ParameterSource.COMMANDLINE:
            raise SetupError(f'--cfg {opts["cfg"]} sets the networks of a run from scratch; with --resume the source '
                             f'sets them: drop one of the two')
        check_output_dir(opts['outdir'], '--outdir', overwrite=True)  # run folders are new folders inside it
        c = setup_training_config(**opts)
        report_last_snapshot(run_training(c, progress=not no_progress, dry_run=dry_run))
    except (SetupError, DataError, NetworkLoadError, TrainingError, FolderLocked, ValueError) as e:
        raise click.ClickException(str(e)) from None
    except (KeyboardInterrupt, OSError) as e:  # Ctrl-C, disk full, ...: earlier snapshots are intact (atomic writes)
        raise stopped_error(e) from None


if __name__ == '__main__':
    main()

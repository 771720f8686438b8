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


from fsgan import protocol as protocols
from fsgan.losses import LOSS_TERMS
from fsgan.methods import METHODS
from fsgan.run import continue_run, report_last_snapshot, run_training
from fsgan.run_setup import (AUG_MODES, SCRATCH_CFGS, SetupError, parse_loss_options,
                             parse_method_options, setup_training_config)
from training.augment_ada import ADA_PRESETS
from fsgan.tools.cli import check_output_dir, command

RESUME_OPTIONS = ('resume_run', 'kimg', 'dry_run', 'no_progress')  # all else comes from the run's options


def refuse_with_resume_run(ctx):
    """SetupError naming the options given with --resume-run that it does not take."""
    from click.core import ParameterSource
    given = [p.opts[0] for p in ctx.command.params if p.name not in RESUME_OPTIONS
             and ctx.get_parameter_source(p.name) in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)]
    if given:
        raise SetupError(f'--resume-run continues a run with the options it recorded; drop {", ".join(given)} '
                         f'(only --kimg, --dry-run and --no-progress apply)')


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
        error = click.ClickException(f'interrupted; {advice}')
        error.exit_code = 130
        return error
    where = f'{e.filename}: ' if e.filename else ''
    return click.ClickException(f'{where}{e.strerror or e}; check --outdir permissions and free disk space; {advice}')


@command()
@click.option('--outdir', default='runs', show_default=True, help='Parent folder of run folders.')
@click.option('--resume', 'resume', metavar='NETWORK', help='Source network: path, URL or short name (e.g. ffhq256).')
@click.option('--target-dir', '--data', 'target_dir', metavar='DIR|ZIP', help='Target images (folder or zip).')
@click.option('--shots', type=click.IntRange(min=1), help='Number of target images to use [default: all].')
@click.option('--method', type=click.Choice(sorted(METHODS)), default='fsgan', show_default=True,
              help='Adaptation method: ' + '; '.join(f'{n}: {s.description}' for n, s in sorted(METHODS.items())))
@click.option('--method-opt', 'method_opts', multiple=True, metavar='KEY=VALUE',
              help='Method option, e.g. adapt_affine=true (repeatable).')
@click.option('--freezed', type=click.IntRange(min=0), help='FreezeD: D layers to freeze from the image side.')
@click.option('--kimg', type=click.FloatRange(min=0, min_open=True), help='Training length [default: 20, 16 for <=5 shots].')
@click.option('--protocol', type=click.Choice(list(protocols.PROTOCOLS)), default=protocols.DEFAULT_PROTOCOL,
              show_default=True, help='Adaptation protocol: the EMA, w_avg, start, FreezeD depth and batch of the '
              'FSGAN paper, of its official code, or this project\'s earlier settings (README table).')
@click.option('--start', type=click.Choice(list(protocols.STARTS)),
              help='Source generator that G and G_ema start from [default: per protocol].')
@click.option('--track-w-avg', type=click.Choice(['true', 'false']),
              help='Let w_avg track the adapted mapping output [default: per protocol].')
@click.option('--batch', type=click.IntRange(min=1), help='Batch size [default: per protocol; 16 from scratch].')
@click.option('--lr', type=click.FloatRange(min=0, min_open=True), help='Learning rate [default: per method].')
@click.option('--dlr', type=click.FloatRange(min=0, min_open=True), help='D learning rate [default: --lr].')
@click.option('--gamma', type=click.FloatRange(min=0), default=10.0, show_default=True, help='R1 weight.')
@click.option('--pl-weight', type=click.FloatRange(min=0), default=2.0, show_default=True, help='Path-length weight.')
@click.option('--style-mixing', type=click.FloatRange(0, 1), default=0.9, show_default=True,
              help='Style mixing probability.')
@click.option('--mode-seeking', type=click.FloatRange(min=0), default=0.0, show_default=True,
              help='Mode-seeking weight (Mao et al. 2019) against collapse of small from-scratch nets; 0 = off.')
@click.option('--mode-seeking-hinge', is_flag=True,
              help='Mode seeking only penalises sample pairs closer than the real batch\'s pairs '
                   '(needs --mode-seeking > 0; with one shot the real pairs are identical and it does nothing).')
@click.option('--ema', 'ema_kimg', type=click.FloatRange(min=0),
              help='G_ema half-life in kimg [default: per protocol; batch * 10 / 32 from scratch].')
@click.option('--ema-rampup', type=click.FloatRange(min=0),
              help='G_ema ramp-up: half-life at most this fraction of the images seen; 0 = off '
                   '[default: per protocol; 0.05 from scratch].')
@click.option('--mirror', is_flag=True, help='Add x-flips of the targets.')
@click.option('--loss', 'loss_opts', multiple=True, metavar='NAME=WEIGHT|NAME.OPTION=VALUE',
              help='Registered loss term (fsgan/losses) and its weight or options, e.g. mode_seeking=2, '
                   'mode_seeking.hinge=true (repeatable). Terms: ' + ', '.join(sorted(LOSS_TERMS)) + '.')
@click.option('--cond', is_flag=True, help='Train a class-conditional model on the targets\' dataset.json labels '
              '(class k = label k; from scratch there are max label + 1 classes, so use labels 0..K-1).')
@click.option('--class-loss', type=click.FloatRange(min=0), default=0.0, show_default=True,
              help='With --cond: weight of a cross-entropy on D\'s logits of all classes (reals train D, fakes train G).')
@click.option('--seed', type=click.IntRange(min=0), default=0, show_default=True, help='Random seed.')
@click.option('--snap', type=click.IntRange(min=0), default=5, show_default=True,
              help='Snapshot interval in ticks (0 = only the final snapshot).')
@click.option('--tick', 'kimg_per_tick', type=click.FloatRange(min=0, min_open=True), default=1.0, show_default=True,
              help='Tick length in kimg.')
@click.option('--cfg', type=click.Choice(sorted(SCRATCH_CFGS)), default='glyph32', show_default=True,
              help='Configuration when training from scratch (no --resume).')
@click.option('--device', type=click.Choice(['cpu', 'cuda']), help='Device [default: cuda when available].')
@click.option('--gpus', type=click.IntRange(min=1), default=1, show_default=True,
              help='Processes: one per GPU (nccl), or CPU processes (gloo) with --device cpu.')
@click.option('--nan-policy', type=click.Choice(['stop', 'rollback']), default='stop', show_default=True,
              help='On NaN/Inf: stop with a message, or roll back to the last snapshot with the lr halved.')
@click.option('--aug', type=click.Choice(AUG_MODES), default='noaug', show_default=True,
              help='Augment every image D sees: noaug (= none), ada (adaptive p), fixed (p = --aug-p), '
                   'diffaug (DiffAugment).')
@click.option('--aug-p', type=click.FloatRange(0, 1), help='ADA strength p: --aug fixed uses it, --aug ada starts '
              'from it [default: 0].')
@click.option('--augpipe', type=click.Choice(list(ADA_PRESETS)), help='ADA transform groups, initials of blit, geom, '
              'color, filter, noise, cutout [default: bgc].')
@click.option('--ada-target', type=click.FloatRange(0, 1), help='ADA target of E[sign(D(real))] [default: 0.6].')
@click.option('--ada-kimg', type=click.FloatRange(min=0, min_open=True),
              help='ADA: kimg for p to move by 1 [default: 500].')
@click.option('--diffaug-policy', metavar='LIST', help='With --aug diffaug: comma-separated policies from color, '
              'translation, cutout [default: color,translation,cutout].')
@click.option('--allow-tf32', is_flag=True, help='CUDA: use TF32 for float32 matmuls and convolutions (faster on '
              'Ampere and later GPUs, 10 mantissa bits); off by default, as in stylegan2-ada-pytorch.')
@click.option('--resume-run', type=click.Path(file_okay=False),
              help='Continue an interrupted run folder with its recorded options (--kimg extends it).')
@click.option('--dry-run', is_flag=True, help='Print the options and trainable counts, then exit.')
@click.option('--no-progress', is_flag=True, help='No progress bar.')
def main(outdir, resume, target_dir, shots, method, method_opts, freezed, kimg, protocol, start, track_w_avg, batch, lr,
         dlr, gamma, pl_weight, style_mixing, mode_seeking, mode_seeking_hinge, ema_kimg, ema_rampup, mirror, cond, class_loss, seed, snap, kimg_per_tick, cfg, device, gpus, nan_policy, resume_run,
         dry_run, no_progress, allow_tf32, loss_opts, **aug_opts):
    """Adapt a pretrained StyleGAN2 to a few target images (or train one from scratch)."""
    from dnnlib.lock import FolderLocked
    from fsgan.loading import NetworkLoadError
    from training.dataset import DataError
    from fsgan.training_loop import TrainingError
    try:
        if resume_run is not None:
            refuse_with_resume_run(click.get_current_context())
            report_last_snapshot(continue_run(resume_run, kimg, dry_run, progress=not no_progress))
            return
        if target_dir is None:
            raise SetupError('--target-dir is required (a folder or zip of target images)')
        check_output_dir(outdir, '--outdir', overwrite=True)  # run folders are new folders inside it
        c = setup_training_config(target_dir, outdir=outdir, resume=resume, method=method,
                                  method_options=parse_method_options(method_opts, method), freezed=freezed,
                                  shots=shots, kimg=kimg, protocol=protocol, start=start,
                                  track_w_avg=None if track_w_avg is None else track_w_avg == 'true', batch=batch, lr=lr, dlr=dlr, gamma=gamma, pl_weight=pl_weight,
                                  style_mixing=style_mixing, mode_seeking=mode_seeking,
                                  mode_seeking_hinge=mode_seeking_hinge, ema_kimg=ema_kimg, ema_rampup=ema_rampup, mirror=mirror, cond=cond, class_loss=class_loss, seed=seed, snap=snap, kimg_per_tick=kimg_per_tick, cfg=cfg,
                                  device=device, nan_policy=nan_policy, gpus=gpus, allow_tf32=allow_tf32,
                                  losses=parse_loss_options(loss_opts), **aug_opts)
        report_last_snapshot(run_training(c, progress=not no_progress, dry_run=dry_run))
    except (SetupError, DataError, NetworkLoadError, TrainingError, FolderLocked, ValueError) as e:
        raise click.ClickException(str(e)) from None
    except (KeyboardInterrupt, OSError) as e:  # Ctrl-C, disk full, ...: earlier snapshots are intact (atomic writes)
        raise stopped_error(e) from None


if __name__ == '__main__':
    main()

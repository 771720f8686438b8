"""Few-shot adaptation of a pretrained StyleGAN2 (or training from scratch without --resume).

Examples:
  python scripts/train.py --resume ffhq256 --target-dir DIR --shots 10 --method fsgan --outdir runs
  python scripts/train.py --resume-run runs/00003-fsgan-10shot       # continue an interrupted run
  python scripts/train.py --target-dir glyphs.zip --cfg glyph32 --kimg 500   # from scratch
"""
import json
import math
import os
import re
import sys

import click

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from dnnlib import EasyDict  # noqa: E402
from fsgan.methods import METHODS, get_method  # noqa: E402

# Small from-scratch configurations for the CPU: resolution -> G/D kwargs (channels come from the data).
# Glyphs have no stochastic texture: without per-pixel noise inputs G cannot satisfy D's minibatch-stddev
# features with pixel noise (pretraining trials with noise drifted into salt-and-pepper images).
SCRATCH_CFGS = {
    'glyph32': dict(resolution=32, z_dim=128, w_dim=128, mapping_layers=2, channel_base=2048, channel_max=64,
                    D_channel_base=2048, D_channel_max=64, mbstd_group=4, mbstd_channels=8, use_noise=False),
    'glyph32-wide': dict(resolution=32, z_dim=128, w_dim=128, mapping_layers=2, channel_base=2048, channel_max=128,
                         D_channel_base=4096, D_channel_max=128, mbstd_group=4, mbstd_channels=1, use_noise=False),
    'small64': dict(resolution=64, z_dim=256, w_dim=256, mapping_layers=4, channel_base=8192, channel_max=256,
                    D_channel_base=8192, D_channel_max=256, mbstd_group=4, mbstd_channels=1, use_noise=True),
}


class SetupError(Exception):
    """A bad combination of options (the message names the option)."""


TRAIN_OPTION_BOUNDS = {'lr': '> 0', 'dlr': '> 0', 'gamma': '>= 0', 'pl_weight': '>= 0', 'style_mixing': 'in [0, 1]',
                       'mode_seeking': '>= 0', 'mode_seeking_hinge': '0 or 1', 'class_loss': '>= 0'}


SWITCH_WORDS = {'1': True, 'true': True, 'yes': True, 'on': True, '0': False, 'false': False, 'no': False, 'off': False}


def check_train_option(key, value):
    """float(value) if it is a valid setting of training option `key` (TRAIN_OPTION_BOUNDS), else SetupError.

    A '0 or 1' option (a switch) also takes the SWITCH_WORDS, as boolean method options do.
    """
    bound = TRAIN_OPTION_BOUNDS[key]
    if bound == '0 or 1' and isinstance(value, str) and value.strip().lower() in SWITCH_WORDS:
        return float(SWITCH_WORDS[value.strip().lower()])
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    ok = math.isfinite(number) and (number > 0 if bound == '> 0' else number >= 0)
    if not ok or (bound == 'in [0, 1]' and number > 1) or (bound == '0 or 1' and number not in (0, 1)):
        raise SetupError(f'{key} must be a finite number {bound}, got {value!r}')
    return number


def parse_method_options(pairs, method):
    """['key=value', ...] -> {key: value} with values typed like the method's defaults."""
    spec = get_method(method)
    out = {}
    for pair in pairs:
        if '=' not in pair:
            raise SetupError(f'--method-opt {pair!r}: expected KEY=VALUE')
        key, value = pair.split('=', 1)
        if key not in spec.options:
            raise SetupError(f'--method-opt {key}: method {method} has options {", ".join(spec.options) or "none"}')
        default = spec.options[key]
        if isinstance(default, bool):
            if value.lower() not in SWITCH_WORDS:
                raise SetupError(f'--method-opt {key}={value}: expected true or false')
            out[key] = SWITCH_WORDS[value.lower()]
        elif isinstance(default, int):
            try:
                out[key] = int(value)
            except ValueError:
                raise SetupError(f'--method-opt {key}={value}: expected an integer') from None
        else:
            out[key] = type(default)(value)
    return out


def setup_training_config(
    target_dir,             # Folder or zip of target images.
    outdir='runs',          # Parent of the numbered run folders.
    resume=None,            # Source network (path, URL or short name); None = train from scratch.
    method='fsgan',         # Adaptation method (see fsgan.methods).
    method_options=None,    # Extra method options {name: value}.
    freezed=None,           # FreezeD: number of D layers to freeze (method freezed only).
    shots=None,             # Number of target images, None = all.
    kimg=None,              # Training length in thousands of images; None = paper default (20, or 16 for <= 5 shots).
    batch=16,               # Batch size.
    lr=None,                # Learning rate; None = the method's paper setting.
    dlr=None,               # D learning rate; None = lr.
    gamma=10.0,             # R1 weight.
    pl_weight=2.0,          # Path-length weight (0 = off).
    style_mixing=0.9,       # Style mixing probability.
    mode_seeking=0.0,       # Mode-seeking weight (Mao et al. 2019), 0 = off; for small from-scratch nets.
    mode_seeking_hinge=False,  # Hinge that term at the real batch's pair distance (training.loss); needs
                               # mode_seeking > 0 and distinct real images (shots >= 2).
    ema_kimg=None,          # G_ema half-life in kimg; None = batch * 10 / 32.
    ema_rampup=0.05,        # G_ema ramp-up (fraction of images seen), None = off.
    mirror=False,           # Add x-flips of the targets.
    cond=False,             # Condition on the targets' dataset.json labels (class-conditional G and D).
    class_loss=0.0,         # With cond: weight of the classification term on D's logits (training.loss).
    seed=0,                 # Random seed (shots selection, init, training).
    snap=5,                 # Snapshot every this many ticks.
    kimg_per_tick=1.0,      # Length of a tick in kimg.
    cfg='glyph32',          # From-scratch configuration (only without --resume).
    device=None,            # 'cpu', 'cuda' or None = CUDA when available.
    grid_trunc=0.8,         # Truncation psi of the snapshot grids.
    nan_policy='stop',      # On NaN/Inf: 'stop', or 'rollback' to the last snapshot with the lr halved.
    gpus=1,                 # Number of processes (one per GPU; gloo processes on the CPU).
    allow_tf32=False,       # CUDA: TF32 for float32 matmuls and convolutions (faster, 10 mantissa bits).
):
    """Pure setup: options -> resolved, JSON-able training config (no files touched)."""
    import torch
    if resume is None:
        method = 'tgan'  # from scratch, every tensor trains
    spec = get_method(method)
    method_options = dict(method_options or {})
    if freezed is not None:
        if method != 'freezed':
            raise SetupError(f'--freezed is an option of --method freezed, not {method}')
        method_options['freezed'] = freezed
    if shots is not None and shots < 1:
        raise SetupError(f'--shots must be >= 1, got {shots}')
    if batch < 1:
        raise SetupError(f'--batch must be >= 1, got {batch}')
    given = dict(lr=lr, dlr=dlr, gamma=gamma, pl_weight=pl_weight, style_mixing=style_mixing, mode_seeking=mode_seeking,
                 mode_seeking_hinge=mode_seeking_hinge, class_loss=class_loss)
    for key, value in given.items():
        if value is not None:
            try:
                given[key] = check_train_option(key, value)
            except SetupError as e:
                raise SetupError(f'--{key.replace("_", "-")}: {e}') from None
    lr = float(lr if lr is not None else spec.lr)
    if given['mode_seeking_hinge'] and not given['mode_seeking']:
        raise SetupError('--mode-seeking-hinge needs a --mode-seeking weight > 0')
    if given['class_loss'] and not cond:
        raise SetupError('--class-loss needs --cond (class labels for the reals)')
    if gpus < 1 or batch % gpus != 0:
        raise SetupError(f'--batch {batch} must be a multiple of --gpus {gpus}')
    if kimg is None:
        kimg = 16 if (shots is not None and shots <= 5) else 20
    if device is None:
        device = 'cuda' if torch.cuda.is_available() else 'cpu'
    if device == 'cuda' and not torch.cuda.is_available():
        raise SetupError('--device cuda: CUDA is not available on this machine; use --device cpu')
    if device == 'cuda' and gpus > torch.cuda.device_count():
        raise SetupError(f'--gpus {gpus}: only {torch.cuda.device_count()} CUDA device(s) here')
    if resume is None and cfg not in SCRATCH_CFGS:
        raise SetupError(f'--cfg {cfg!r}: choose one of {", ".join(SCRATCH_CFGS)}')
    c = EasyDict(
        target_dir=target_dir, outdir=outdir, source=resume, method=method, method_options=method_options,
        shots=shots, kimg=float(kimg), batch=batch, lr=lr, dlr=float(dlr) if dlr is not None else lr,
        gamma=float(gamma), pl_weight=float(pl_weight), style_mixing=float(style_mixing),
        mode_seeking=float(mode_seeking), mode_seeking_hinge=bool(given['mode_seeking_hinge']),
        ema_kimg=float(ema_kimg if ema_kimg is not None else batch * 10 / 32), ema_rampup=ema_rampup,
        G_reg_interval=4, D_reg_interval=16, mirror=bool(mirror), cond=bool(cond),
        class_loss=float(class_loss), seed=int(seed), snap=int(snap),
        kimg_per_tick=float(kimg_per_tick), device=device, grid_seed=int(seed), grid_size=16,
        grid_trunc=float(grid_trunc), cfg=cfg if resume is None else None, nan_policy=nan_policy, num_gpus=int(gpus),
        allow_tf32=bool(allow_tf32),
    )
    return c


def scratch_kwargs(cfg, channels, c_dim=0):
    """G and D constructor kwargs for a from-scratch configuration (c_dim classes, 0 = unconditional)."""
    s = SCRATCH_CFGS[cfg]
    G_kwargs = dict(z_dim=s['z_dim'], c_dim=c_dim, w_dim=s['w_dim'], img_resolution=s['resolution'],
                    img_channels=channels, mapping_kwargs=dict(num_layers=s['mapping_layers']),
                    synthesis_kwargs=dict(channel_base=s['channel_base'], channel_max=s['channel_max'],
                                          num_fp16_res=0, conv_clamp=None, use_noise=s['use_noise']))
    D_kwargs = dict(c_dim=c_dim, img_resolution=s['resolution'], img_channels=channels,
                    channel_base=s['D_channel_base'], channel_max=s['D_channel_max'], num_fp16_res=0,
                    conv_clamp=None, epilogue_kwargs=dict(mbstd_group_size=s['mbstd_group'],
                                                          mbstd_num_channels=s['mbstd_channels']))
    return G_kwargs, D_kwargs


def next_run_dir(outdir, desc):
    """Create and return outdir/<NNNNN>-<desc>, numbered after every existing run (never reused)."""
    os.makedirs(outdir, exist_ok=True)
    ids = [int(m.group(1)) for m in (re.match(r'^(\d+)-', n) for n in os.listdir(outdir)) if m]
    run_id = max(ids, default=-1) + 1
    while True:
        path = os.path.join(outdir, f'{run_id:05d}-{desc}')
        try:
            os.makedirs(path)
            return path
        except FileExistsError:
            run_id += 1


def network_geometry(c):
    """(resolution, channels, c_dim) the targets must fit; channels and c_dim are None from scratch."""
    if c.source is not None:
        from fsgan.loading import load_network
        net = load_network(c.source)
        G = net['G_ema'] if net['G_ema'] is not None else net['G']
        return G.img_resolution, G.img_channels, G.c_dim
    return SCRATCH_CFGS[c.cfg]['resolution'], None, None


def target_labels(c, target, c_dim):
    """--cond: the targets' classes int64 [N], checked against the network's c_dim (None: from scratch)."""
    if not c.get('cond'):
        return None
    if target.labels is None:
        raise SetupError(f'--cond: {c.target_dir} has no dataset.json labels; add one or drop --cond')
    if c_dim == 0:
        raise SetupError(f'--cond: the network {c.source} is unconditional; drop --cond')
    if int(target.labels.min()) < 0:
        raise SetupError(f'--cond: {c.target_dir} has negative label {int(target.labels.min())}; use labels >= 0')
    if c_dim is not None and int(target.labels.max()) >= c_dim:
        raise SetupError(f'--cond: {c.target_dir} has label {int(target.labels.max())} but the network has '
                         f'{c_dim} classes; use labels 0..{c_dim - 1}')
    return target.labels


def _worker(rank, c, run_dir, images, labels, resume, progress, init_file):
    """One process of a multi-process run."""
    from torch_utils import distributed
    from training.training_loop import training_loop
    distributed.init(rank, c.num_gpus, init_file, 'cuda' if c.device == 'cuda' else 'cpu')
    try:
        training_loop(c, run_dir, images, resume=resume, progress=progress, labels=labels)
        distributed.barrier()  # no rank tears the group down while another still uses it
    finally:
        distributed.shutdown()


def launch(c, run_dir, images, labels=None, resume=False, progress=True):
    """Run the training loop in this process, or in c.num_gpus processes."""
    from training.training_loop import training_loop
    if c.get('num_gpus', 1) == 1:
        training_loop(c, run_dir, images, resume=resume, progress=progress, labels=labels)
        return
    import tempfile
    import torch.multiprocessing as mp
    with tempfile.TemporaryDirectory() as tmp:
        mp.spawn(_worker, args=(c, run_dir, images, labels, resume, progress, os.path.join(tmp, 'init')),
                 nprocs=c.num_gpus, join=True)


def run_training(c, resume_run=None, progress=True, dry_run=False):
    """Prepare data and run folder, then train. Returns the run folder (None for a dry run)."""
    from training.dataset import load_target
    from training.training_loop import write_run_files
    import numpy as np
    if resume_run is not None:
        images = np.load(os.path.join(resume_run, 'target_shots.npy'))
        labels = None
        if c.get('cond'):
            labels_path = os.path.join(resume_run, 'target_labels.npy')
            if not os.path.isfile(labels_path):
                raise SetupError(f'--resume-run {resume_run}: this --cond run has no target_labels.npy; restore it '
                                 f'or start a new run')
            labels = np.load(labels_path)
        launch(c, resume_run, images, labels, resume=True, progress=progress)
        return resume_run
    resolution, channels, c_dim = network_geometry(c)
    if channels is None:  # from scratch: keep the data's channel count (1 for grayscale sources)
        channels = 1 if _looks_grayscale(c.target_dir) else 3
    target = load_target(c.target_dir, resolution, channels, shots=c.shots, seed=c.seed)
    for note in target.notes:
        print(f'[data] {note}')
    labels = target_labels(c, target, c_dim)
    if c.source is None:
        c.G_kwargs, c.D_kwargs = scratch_kwargs(c.cfg, channels, 0 if labels is None else int(labels.max()) + 1)
    c.resolution = resolution
    images = target.images
    if dry_run:
        print_dry_run(c, images)
        return None
    desc = f'{c.method}-{len(images)}shot' if c.source is not None else f'scratch-{c.cfg}'
    run_dir = next_run_dir(c.outdir, desc)
    print(f'Run folder: {run_dir}')
    write_run_files(run_dir, c, target.record())
    from dnnlib.fileio import atomic_open
    with atomic_open(os.path.join(run_dir, 'target_shots.npy')) as f:
        np.save(f, images)
    if labels is not None:
        with atomic_open(os.path.join(run_dir, 'target_labels.npy')) as f:
            np.save(f, labels)
    launch(c, run_dir, images, labels, progress=progress)
    return run_dir


def _looks_grayscale(path):
    """True when the first image of the target folder/zip is single-channel."""
    from training.dataset import _list_source
    import PIL.Image
    import io
    names, read, _labels, _skipped = _list_source(path)
    if not names:
        return False
    return PIL.Image.open(io.BytesIO(read(names[0]))).mode in ('L', 'I;16', 'I', '1')


def print_dry_run(c, images):
    """Print the resolved options and the trainable counts of every method, then return."""
    from training.training_loop import build_networks
    from fsgan.methods import adapt
    print(json.dumps(c, indent=2, sort_keys=True))
    print(f'targets: {list(images.shape)} uint8')
    for name in sorted(METHODS):
        G, D, _G_ema, _src = build_networks(c, 'cpu')
        opts = c.method_options if name == c.method else {}
        params = adapt(G, D, method=name, **opts)
        print(f'trainable[{name}]: {sum(p.numel() for p in params):,}')


@click.command(context_settings=dict(help_option_names=['-h', '--help']))
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
@click.option('--batch', type=click.IntRange(min=1), default=16, show_default=True, help='Batch size.')
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
@click.option('--ema', 'ema_kimg', type=click.FloatRange(min=0), help='G_ema half-life in kimg [default: batch * 10 / 32].')
@click.option('--mirror', is_flag=True, help='Add x-flips of the targets.')
@click.option('--cond', is_flag=True, help='Train a class-conditional model on the targets\' dataset.json labels '
              '(class k = label k; from scratch there are max label + 1 classes, so use labels 0..K-1).')
@click.option('--class-loss', type=click.FloatRange(min=0), default=0.0, show_default=True,
              help='With --cond: weight of a cross-entropy on D\'s logits of all classes (reals train D, fakes train G).')
@click.option('--seed', type=click.IntRange(min=0), default=0, show_default=True, help='Random seed.')
@click.option('--snap', type=click.IntRange(min=0), default=5, show_default=True, help='Snapshot interval in ticks.')
@click.option('--tick', 'kimg_per_tick', type=click.FloatRange(min=0, min_open=True), default=1.0, show_default=True,
              help='Tick length in kimg.')
@click.option('--cfg', type=click.Choice(sorted(SCRATCH_CFGS)), default='glyph32', show_default=True,
              help='Configuration when training from scratch (no --resume).')
@click.option('--device', type=click.Choice(['cpu', 'cuda']), help='Device [default: cuda when available].')
@click.option('--gpus', type=click.IntRange(min=1), default=1, show_default=True,
              help='Processes: one per GPU (nccl), or CPU processes (gloo) with --device cpu.')
@click.option('--nan-policy', type=click.Choice(['stop', 'rollback']), default='stop', show_default=True,
              help='On NaN/Inf: stop with a message, or roll back to the last snapshot with the lr halved.')
@click.option('--allow-tf32', is_flag=True, help='CUDA: use TF32 for float32 matmuls and convolutions (faster on '
              'Ampere and later GPUs, 10 mantissa bits); off by default, as in stylegan2-ada-pytorch.')
@click.option('--resume-run', type=click.Path(file_okay=False), help='Continue an interrupted run folder.')
@click.option('--dry-run', is_flag=True, help='Print the options and trainable counts, then exit.')
@click.option('--no-progress', is_flag=True, help='No progress bar.')
def main(outdir, resume, target_dir, shots, method, method_opts, freezed, kimg, batch, lr, dlr, gamma, pl_weight,
         style_mixing, mode_seeking, mode_seeking_hinge, ema_kimg, mirror, cond, class_loss, seed, snap, kimg_per_tick, cfg, device, gpus, nan_policy, resume_run,
         dry_run, no_progress, allow_tf32):
    """Adapt a pretrained StyleGAN2 to a few target images (or train one from scratch)."""
    from fsgan.loading import NetworkLoadError
    from training.dataset import DataError
    from training.training_loop import TrainingError
    try:
        if resume_run is not None:
            opts_path = os.path.join(resume_run, 'training_options.json')
            if not os.path.isfile(opts_path):
                raise SetupError(f'--resume-run {resume_run}: no training_options.json there; give a run folder')
            with open(opts_path) as f:
                c = EasyDict(json.load(f))
            run_training(c, resume_run=resume_run, progress=not no_progress)
            return
        if target_dir is None:
            raise SetupError('--target-dir is required (a folder or zip of target images)')
        c = setup_training_config(target_dir, outdir=outdir, resume=resume, method=method,
                                  method_options=parse_method_options(method_opts, method), freezed=freezed,
                                  shots=shots, kimg=kimg, batch=batch, lr=lr, dlr=dlr, gamma=gamma, pl_weight=pl_weight,
                                  style_mixing=style_mixing, mode_seeking=mode_seeking,
                                  mode_seeking_hinge=mode_seeking_hinge, ema_kimg=ema_kimg, mirror=mirror, cond=cond, class_loss=class_loss, seed=seed, snap=snap, kimg_per_tick=kimg_per_tick, cfg=cfg,
                                  device=device, nan_policy=nan_policy, gpus=gpus, allow_tf32=allow_tf32)
        run_training(c, progress=not no_progress, dry_run=dry_run)
    except (SetupError, DataError, NetworkLoadError, TrainingError, ValueError) as e:
        raise click.ClickException(str(e)) from None
    except OSError as e:  # unwritable outdir, disk full, ...: earlier snapshots are intact (atomic writes)
        where = f'{e.filename}: ' if e.filename else ''
        raise click.ClickException(f'{where}{e.strerror or e}; check --outdir permissions and free disk space, '
                                   f'then continue with --resume-run') from None


if __name__ == '__main__':
    main()

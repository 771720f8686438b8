"""Few-shot adaptation of a pretrained StyleGAN2 (or training from scratch without --resume).

Examples:
  python scripts/train.py --resume ffhq256 --target-dir DIR --shots 10 --method fsgan --outdir runs
  python scripts/train.py --resume-run runs/00003-fsgan-10shot       # continue an interrupted run
  python scripts/train.py --target-dir glyphs.zip --cfg glyph32 --kimg 500   # from scratch
"""
import contextlib
import json
import math
import os
import re
import shlex
import sys

import click

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from dnnlib import EasyDict  # noqa: E402
from fsgan import protocol as protocols  # noqa: E402
from fsgan.losses import LOSS_TERMS  # noqa: E402
from fsgan.methods import METHODS, get_method  # noqa: E402
from training.augment_ada import ADA_PRESETS  # noqa: E402
from fsgan.tools.cli import check_output_dir, command  # noqa: E402

# Small from-scratch configurations for the CPU: resolution -> G/D kwargs (channels come from the data).
# Glyphs have no stochastic texture: without per-pixel noise inputs G cannot satisfy D's minibatch-stddev
# features with pixel noise (pretraining trials with noise drifted into salt-and-pepper images).
SCRATCH_CFGS = {
    'glyph32': dict(resolution=32, z_dim=128, w_dim=128, mapping_layers=2, channel_base=2048, channel_max=64,
                    D_channel_base=2048, D_channel_max=64, mbstd_group=4, mbstd_channels=8, use_noise=False),
    'glyph32-wide': dict(resolution=32, z_dim=128, w_dim=128, mapping_layers=2, channel_base=2048, channel_max=128,
                         D_channel_base=4096, D_channel_max=128, mbstd_group=4, mbstd_channels=1, use_noise=False),
    # Emoji source (data/emoji): 64x64 RGB, G 1.84M / D 1.47M tensors, small enough for CPU adaptation demos.
    'emoji64': dict(resolution=64, z_dim=256, w_dim=256, mapping_layers=4, channel_base=4096, channel_max=128,
                    D_channel_base=4096, D_channel_max=128, mbstd_group=4, mbstd_channels=1, use_noise=True),
    'small64': dict(resolution=64, z_dim=256, w_dim=256, mapping_layers=4, channel_base=8192, channel_max=256,
                    D_channel_base=8192, D_channel_max=256, mbstd_group=4, mbstd_channels=1, use_noise=True),
}


class SetupError(Exception):
    """A bad combination of options (the message names the option)."""


TRAIN_OPTION_BOUNDS = {'lr': '> 0', 'dlr': '> 0', 'gamma': '>= 0', 'pl_weight': '>= 0', 'style_mixing': 'in [0, 1]',
                       'mode_seeking': '>= 0', 'mode_seeking_hinge': '0 or 1', 'class_loss': '>= 0',
                       'aug_p': 'in [0, 1]', 'ada_target': 'in [0, 1]', 'ada_kimg': '> 0'}
AUG_MODES = ('noaug', 'none', 'ada', 'fixed', 'diffaug')  # as stylegan2-ada-pytorch's --aug, plus diffaug
TRAIN_OPTION_CHOICES = {'aug': AUG_MODES, 'augpipe': tuple(ADA_PRESETS)}  # training options that take a name


SWITCH_WORDS = {'1': True, 'true': True, 'yes': True, 'on': True, '0': False, 'false': False, 'no': False, 'off': False}


def check_train_option(key, value):
    """float(value) if it is a valid setting of training option `key` (TRAIN_OPTION_BOUNDS), else SetupError.

    A '0 or 1' option (a switch) also takes the SWITCH_WORDS, as boolean method options do. An option of
    TRAIN_OPTION_CHOICES gives back its value as a name.
    """
    if key in TRAIN_OPTION_CHOICES:
        if value not in TRAIN_OPTION_CHOICES[key]:
            raise SetupError(f'{key} must be one of {", ".join(TRAIN_OPTION_CHOICES[key])}, got {value!r}')
        return str(value)
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
            try:
                out[key] = type(default)(value)
            except ValueError:
                raise SetupError(f'--method-opt {key}={value}: expected a {type(default).__name__}') from None
    return out


def augment_config(aug='noaug', aug_p=None, augpipe=None, diffaug_policy=None, ada_target=None, ada_kimg=None):
    """--aug and its options -> (mode, augment_kwargs for training.augment.build_augment).

    Modes: noaug (alias none); ada: the ADA pipeline with p adapted to D's overfitting from --aug-p (default 0);
    fixed: the ADA pipeline at p = --aug-p; diffaug: DiffAugment with --diffaug-policy.
    """
    from training.augment import parse_diffaug_policy
    def checked(key, value):
        try:
            return None if value is None else check_train_option(key, value)
        except SetupError as e:
            raise SetupError(f'--{key.replace("_", "-")}: {e}') from None
    aug, augpipe, aug_p = checked('aug', aug), checked('augpipe', augpipe), checked('aug_p', aug_p)
    ada_target, ada_kimg = checked('ada_target', ada_target), checked('ada_kimg', ada_kimg)
    mode = 'none' if aug == 'noaug' else aug
    for flag, value, needs in (('--aug-p', aug_p, ('ada', 'fixed')), ('--augpipe', augpipe, ('ada', 'fixed')),
                               ('--diffaug-policy', diffaug_policy, ('diffaug',)),
                               ('--ada-target', ada_target, ('ada',)), ('--ada-kimg', ada_kimg, ('ada',))):
        if value is not None and mode not in needs:
            raise SetupError(f'{flag} needs --aug {" or ".join(needs)} (got --aug {aug})')
    if mode == 'none':
        return mode, dict(name='none')
    if mode == 'diffaug':
        policy = diffaug_policy if diffaug_policy is not None else 'color,translation,cutout'
        try:
            policy = ','.join(parse_diffaug_policy(policy))
        except ValueError as e:
            raise SetupError(f'--diffaug-policy: {e}') from None
        return mode, dict(name='diffaug', policy=policy)
    preset = augpipe if augpipe is not None else 'bgc'
    if mode == 'fixed':
        if aug_p is None:
            raise SetupError('--aug fixed needs --aug-p (the augmentation strength, 0..1)')
        return mode, dict(name='ada', preset=preset, p=aug_p, target=None)
    return mode, dict(name='ada', preset=preset, p=aug_p if aug_p is not None else 0.0,
                      target=ada_target if ada_target is not None else 0.6,
                      ada_kimg=ada_kimg if ada_kimg is not None else 500.0, interval=4)


def setup_training_config(
    target_dir,             # Folder or zip of target images.
    outdir='runs',          # Parent of the numbered run folders.
    resume=None,            # Source network (path, URL or short name); None = train from scratch.
    method='fsgan',         # Adaptation method (see fsgan.methods).
    method_options=None,    # Extra method options {name: value}.
    freezed=None,           # FreezeD: number of D layers to freeze (method freezed only).
    shots=None,             # Number of target images, None = all.
    kimg=None,              # Training length in thousands of images; None = paper default (20, or 16 for <= 5 shots).
    batch=None,             # Batch size; None = the protocol's (paper 32, fsgan-repo and ours 16, scratch 16).
    lr=None,                # Learning rate; None = the method's paper setting.
    dlr=None,               # D learning rate; None = lr.
    gamma=10.0,             # R1 weight.
    pl_weight=2.0,          # Path-length weight (0 = off).
    style_mixing=0.9,       # Style mixing probability.
    mode_seeking=0.0,       # Mode-seeking weight (Mao et al. 2019), 0 = off; for small from-scratch nets.
    mode_seeking_hinge=False,  # Hinge that term at the real batch's pair distance (training.loss); needs
                               # mode_seeking > 0 and distinct real images (shots >= 2).
    ema_kimg=None,          # G_ema half-life in kimg; None = the protocol's (paper 10; ours batch * 10 / 32).
    ema_rampup=None,        # G_ema ramp-up (fraction of images seen); 0 = off; None = the protocol's.
    protocol='paper',       # Adaptation protocol (fsgan.protocol): 'paper', 'fsgan-repo' or 'ours'.
    start=None,             # Source generator G and G_ema start from: 'G' or 'G_ema'; None = the protocol's.
    track_w_avg=None,       # Let w_avg track the mapping output during adaptation; None = the protocol's.
    mirror=False,           # Add x-flips of the targets.
    cond=False,             # Condition on the targets' dataset.json labels (class-conditional G and D).
    class_loss=0.0,         # With cond: weight of the classification term on D's logits (fsgan/losses/class_loss.py).
    losses=None,            # Registered loss terms (fsgan.losses): {name: weight or {weight, **options}}; the three
                            # options above are shorthands for 'mode_seeking' (with hinge) and 'class'.
    seed=0,                 # Random seed (shots selection, init, training).
    snap=5,                 # Snapshot every this many ticks.
    kimg_per_tick=1.0,      # Length of a tick in kimg.
    cfg='glyph32',          # From-scratch configuration (only without --resume).
    device=None,            # 'cpu', 'cuda' or None = CUDA when available.
    grid_trunc=0.8,         # Truncation psi of the snapshot grids.
    nan_policy='stop',      # On NaN/Inf: 'stop', or 'rollback' to the last snapshot with the lr halved.
    gpus=1,                 # Number of processes (one per GPU; gloo processes on the CPU).
    aug='noaug',            # Augmentation of D's inputs: noaug (= none), ada, fixed, diffaug (augment_config).
    aug_p=None,             # ADA strength p: fixed value (--aug fixed) or start value (--aug ada, None = 0).
    augpipe=None,           # ADA preset (training.augment_ada.ADA_PRESETS); None = bgc.
    diffaug_policy=None,    # DiffAugment policies, comma-separated; None = color,translation,cutout.
    ada_target=None,        # ADA target of E[sign(D(real))]; None = 0.6.
    ada_kimg=None,          # ADA: kimg for p to move by 1; None = 500.
    allow_tf32=False,       # CUDA: TF32 for float32 matmuls and convolutions (faster, 10 mantissa bits).
):
    """Pure setup: options -> resolved, JSON-able training config (no files touched)."""
    import torch
    if resume is None:
        method = 'tgan'  # from scratch, every tensor trains
        protocol = None
    spec = get_method(method)
    method_options = dict(method_options or {})
    if freezed is not None and method != 'freezed':
        raise SetupError(f'--freezed is an option of --method freezed, not {method}')
    if start is not None and start not in protocols.STARTS:
        raise SetupError(f'--start {start!r}: choose one of {", ".join(protocols.STARTS)}')
    if ema_rampup is not None and not (math.isfinite(ema_rampup) and ema_rampup >= 0):
        raise SetupError(f'--ema-rampup must be a finite number >= 0 (0 = off), got {ema_rampup}')
    try:
        proto = protocols.resolve(protocol, dict(batch=batch, ema_kimg=ema_kimg, start=start, track_w_avg=track_w_avg,
                                                 freezed=freezed, ema_rampup=ema_rampup))
    except ValueError as e:
        raise SetupError(str(e)) from None
    if method == 'freezed':
        method_options.setdefault('freezed', proto['freezed'])  # --method-opt freezed=K wins too
    batch = proto['batch']
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
    losses = merge_loss_options(losses, given, defaults=spec.losses)
    if 'class' in losses and not cond:
        raise SetupError('--class-loss needs --cond (class labels for the reals), as does --loss class')
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
    aug_mode, augment_kwargs = augment_config(aug, aug_p, augpipe, diffaug_policy, ada_target, ada_kimg)
    if resume is None and cfg not in SCRATCH_CFGS:
        raise SetupError(f'--cfg {cfg!r}: choose one of {", ".join(SCRATCH_CFGS)}')
    c = EasyDict(
        target_dir=local_path(target_dir), outdir=os.path.abspath(outdir), source=local_path(resume), method=method,
        method_options=method_options,
        shots=shots, kimg=float(kimg), batch=batch, lr=lr, dlr=float(dlr) if dlr is not None else lr,
        gamma=float(gamma), pl_weight=float(pl_weight), style_mixing=float(style_mixing),
        losses=losses,
        protocol=protocol, ema_kimg=float(proto['ema_kimg']), ema_rampup=proto['ema_rampup'] or None,
        start=proto['start'], track_w_avg=proto['track_w_avg'],
        G_reg_interval=4, D_reg_interval=16, mirror=bool(mirror), cond=bool(cond),
        seed=int(seed), snap=int(snap),
        kimg_per_tick=float(kimg_per_tick), device=device, grid_seed=int(seed), grid_size=16,
        grid_trunc=float(grid_trunc), cfg=cfg if resume is None else None, nan_policy=nan_policy, num_gpus=int(gpus),
        aug=aug_mode, augment_kwargs=augment_kwargs,
        allow_tf32=bool(allow_tf32),
    )
    return c


def merge_loss_options(losses, given, defaults=None):
    """Resolved {term: {weight, **options}} from the method's `defaults`, then `losses` and the shorthand options
    in `given` (checked values of mode_seeking, mode_seeking_hinge, class_loss); SetupError names the option."""
    from fsgan.losses import resolve_losses

    def entry(v):
        return dict(v) if isinstance(v, dict) else dict(weight=v)
    merged = {k: entry(v) for k, v in (defaults or {}).items()}
    for k, v in (losses or {}).items():
        merged[k] = dict(merged.get(k, {}), **entry(v))
    if given['mode_seeking']:
        merged.setdefault('mode_seeking', {})['weight'] = given['mode_seeking']
    if given['mode_seeking_hinge']:
        merged.setdefault('mode_seeking', {})['hinge'] = True
    if given['class_loss']:
        merged.setdefault('class', {})['weight'] = given['class_loss']
    if merged.get('mode_seeking', {}).get('hinge') and not merged['mode_seeking'].get('weight'):
        raise SetupError('--mode-seeking-hinge needs a --mode-seeking weight > 0')
    try:
        return resolve_losses(merged)
    except ValueError as e:
        raise SetupError(f'--loss: {e}') from None


def parse_loss_options(pairs):
    """['NAME=WEIGHT' | 'NAME.OPTION=VALUE', ...] -> {NAME: {weight, OPTION: value}} (values checked later)."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition('=')
        name, _dot, option = key.partition('.')
        if not sep or not name or not value:
            raise SetupError(f'--loss {pair!r}: expected NAME=WEIGHT or NAME.OPTION=VALUE')
        entry = out.setdefault(name, {})
        if option:
            entry[option] = SWITCH_WORDS.get(value.strip().lower(), value)
        else:
            try:
                entry['weight'] = float(value)
            except ValueError:
                raise SetupError(f'--loss {pair!r}: the weight must be a number') from None
    return out


def local_path(path):
    """`path` made absolute when it names a local file or folder, so a run resumes from any working directory;
    URLs, short network names and paths that do not exist stay as given."""
    from fsgan.network_urls import NETWORK_URLS
    if path is None or path in NETWORK_URLS or '://' in path or not os.path.exists(path):
        return path
    return os.path.abspath(path)


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
    """(resolution, channels, c_dim) the targets must fit; channels and c_dim are None from scratch.

    Also resolves the protocol items that depend on the source network (resolve_source_items).
    """
    if c.source is None:
        return SCRATCH_CFGS[c.cfg]['resolution'], None, None
    from fsgan.loading import load_network
    net = load_network(c.source)
    resolve_source_items(c, net)
    G = net['G_ema'] if net['G_ema'] is not None else net['G']
    return G.img_resolution, G.img_channels, G.c_dim


def resolve_source_items(c, net):
    """In place: FreezeD's 'paper' depth for this D, and the start generator when the source lacks the one asked."""
    from fsgan.methods.freezed import paper_depth
    other = dict(G='G_ema', G_ema='G')
    if c.get('start') in other and net[c.start] is None:
        print(f'[protocol] {c.source} has no {c.start}; G and G_ema start from its {other[c.start]}')
        c.start = other[c.start]
    if c.method_options.get('freezed') == 'paper':
        c.method_options['freezed'] = paper_depth(net['D'])


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


@contextlib.contextmanager
def naming_run(run_dir):
    """Let a KeyboardInterrupt or OSError that leaves the block carry the run folder (for the resume advice)."""
    try:
        yield
    except (KeyboardInterrupt, OSError) as e:
        e.run_dir = run_dir
        raise


def _resume(c, run_dir, progress, record_options=False):
    """Continue run_dir from its checkpoint (the caller holds the folder's lock); record_options: first write `c`
    into its training_options.json (a run extended by --kimg)."""
    import numpy as np
    from dnnlib.fileio import atomic_write_json, remove_abandoned_temps
    remove_abandoned_temps(run_dir)  # left by a kill mid-write; the lock keeps writers out
    images = np.load(os.path.join(run_dir, 'target_shots.npy'))
    labels = None
    if c.get('cond'):
        labels_path = os.path.join(run_dir, 'target_labels.npy')
        if not os.path.isfile(labels_path):
            raise SetupError(f'--resume-run {run_dir}: this --cond run has no target_labels.npy; restore it '
                             f'or start a new run')
        labels = np.load(labels_path)
    if record_options:
        atomic_write_json(os.path.join(run_dir, 'training_options.json'), c)
    with naming_run(run_dir):
        launch(c, run_dir, images, labels, resume=True, progress=progress)
    return run_dir


def run_training(c, resume_run=None, progress=True, dry_run=False):
    """Prepare data and run folder, then train. Returns the run folder (None for a dry run).

    The run folder is locked while it trains (dnnlib.lock): a second process refuses to train in it.
    """
    from dnnlib.lock import folder_lock
    from training.dataset import load_target
    from training.training_loop import write_run_files
    import numpy as np
    if resume_run is not None:
        with folder_lock(resume_run):
            return _resume(c, resume_run, progress)
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
    with folder_lock(run_dir), naming_run(run_dir):
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
    from fsgan.methods.freezed import paper_depth
    print(json.dumps(c, indent=2, sort_keys=True))
    print(f'targets: {list(images.shape)} uint8')
    print(protocols.describe(c))
    for name in sorted(METHODS):
        G, D, _G_ema, _src = build_networks(c, 'cpu')
        opts = c.method_options if name == c.method else {}
        if name == 'freezed' and name != c.method and c.source is not None:
            depth = protocols.protocol_defaults(c.get('protocol', 'ours'))['freezed']
            opts = dict(freezed=paper_depth(D) if depth == 'paper' else depth)
        params = adapt(G, D, method=name, **opts)
        print(f'trainable[{name}]: {sum(p.numel() for p in params):,}')


def continue_run(run_dir, kimg=None, dry_run=False, progress=True):
    """--resume-run: continue run_dir from its checkpoint; `kimg` extends the run (recorded in its options).

    Returns run_dir, or None when nothing ran: a dry run (prints the plan) or a finished run (says so).
    """
    from dnnlib.lock import folder_lock
    from fsgan.run_options import load_run_options
    from training.training_loop import read_checkpoint
    c = load_run_options(run_dir)
    c.kimg = float(c.kimg if kimg is None else kimg)
    done_kimg = int(read_checkpoint(run_dir, c, mmap=True)['cur_nimg']) / 1000
    if kimg is not None and kimg <= done_kimg:
        raise SetupError(f'--kimg {kimg:g}: the run in {run_dir} is already at kimg {done_kimg:g}; give a larger '
                         f'--kimg to extend it')
    if dry_run:
        print(json.dumps(c, indent=2, sort_keys=True))
        print(f'--dry-run: would continue {run_dir} from kimg {done_kimg:g} to {c.kimg:g}')
        return None
    if done_kimg >= c.kimg:
        print(f'{run_dir} is finished (kimg {done_kimg:g} of {c.kimg:g}); give --kimg to extend it')
        return None
    with folder_lock(run_dir):
        return _resume(c, run_dir, progress, record_options=kimg is not None)


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


def report_last_snapshot(run_dir):
    """Print where the last snapshot of a finished run is."""
    from fsgan.export import latest_artefact
    if run_dir is not None:
        snapshot = latest_artefact(run_dir, 'network-snapshot-', '.pkl')
        print(f'Last snapshot: {snapshot}' if snapshot else f'No snapshot in {run_dir}')


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
    from training.training_loop import TrainingError
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

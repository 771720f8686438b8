"""Training-run setup: command-line options -> one validated run configuration (EasyDict).

`setup_training_config` is a pure function of its arguments (it reads nothing from disk); `network_geometry`,
`target_labels` and `scratch_kwargs` resolve what depends on the source network and the targets.
"""
import math
import os
import re

from dnnlib import EasyDict
from fsgan import protocol as protocols
from fsgan.methods import get_method
from training.augment_ada import ADA_PRESETS

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

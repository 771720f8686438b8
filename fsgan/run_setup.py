"""Training-run setup: command-line options -> one validated run configuration (EasyDict).

`setup_training_config` is a pure function of its arguments (it reads nothing from disk); `network_geometry`,
`target_labels` and `scratch_kwargs` resolve what depends on the source network and the targets.
"""
import os
import re

from dnnlib import EasyDict
from fsgan import protocol as protocols
from fsgan.callbacks.snapshot_metrics import metric_names
from fsgan.methods import get_method
from fsgan.options import BY_NAME, SWITCH_WORDS, SetupError, check_given, option_defaults
# Kept importable from here: fsgan.compare checks comparison rows (METHOD@KEY=VALUE) with them.
from fsgan.options import TRAIN_OPTION_BOUNDS, TRAIN_OPTION_CHOICES, check_train_option  # noqa: F401

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
    checked = check_given(dict(aug=aug, aug_p=aug_p, augpipe=augpipe, ada_target=ada_target, ada_kimg=ada_kimg))
    aug, aug_p, augpipe, ada_target, ada_kimg = (checked[k] for k in ('aug', 'aug_p', 'augpipe', 'ada_target',
                                                                       'ada_kimg'))
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


def setup_training_config(target_dir, **options):
    """Pure setup: training options -> resolved, JSON-able training config (no files touched).

    options: any of fsgan.options.OPTIONS's setup parameters (names, defaults, bounds and help are there), as
    Python values or as scripts/train.py's click command passes them: method_options and losses also as
    KEY=VALUE strings (--method-opt, --loss), track_w_avg also as 'true' or 'false'. SetupError names the option.
    """
    import torch
    o = given_options(target_dir, options)
    spec = get_method(o.method)
    proto = resolve_protocol(o)
    lr = float(o.lr if o.lr is not None else spec.lr)
    losses = merge_loss_options(o.losses, o, defaults=spec.losses)
    if 'class' in losses and not o.cond:
        raise SetupError('--class-loss needs --cond (class labels for the reals), as does --loss class')
    batch, gpus = proto['batch'], o.gpus
    if batch % gpus != 0:
        raise SetupError(f'--batch {batch} must be a multiple of --gpus {gpus}')
    device = o.device if o.device is not None else ('cuda' if torch.cuda.is_available() else 'cpu')
    if device == 'cuda' and not torch.cuda.is_available():
        raise SetupError('--device cuda: CUDA is not available on this machine; use --device cpu')
    if device == 'cuda' and gpus > torch.cuda.device_count():
        raise SetupError(f'--gpus {gpus}: only {torch.cuda.device_count()} CUDA device(s) here')
    aug_mode, augment_kwargs = augment_config(o.aug, o.aug_p, o.augpipe, o.diffaug_policy, o.ada_target, o.ada_kimg)
    kimg = o.kimg if o.kimg is not None else protocols.paper_kimg(o.shots)
    scratch = o.resume is None
    return EasyDict(
        target_dir=local_path(o.target_dir), outdir=os.path.abspath(o.outdir), source=local_path(o.resume),
        method=o.method, method_options=o.method_options, shots=o.shots, kimg=float(kimg), batch=batch, lr=lr,
        dlr=float(o.dlr) if o.dlr is not None else lr, gamma=float(o.gamma), pl_weight=float(o.pl_weight),
        style_mixing=float(o.style_mixing), losses=losses, protocol=o.protocol,
        ema_kimg=float(proto['ema_kimg']), ema_rampup=proto['ema_rampup'] or None, start=proto['start'],
        track_w_avg=proto['track_w_avg'], G_reg_interval=4, D_reg_interval=16, mirror=bool(o.mirror),
        cond=bool(o.cond), seed=o.seed, snap=o.snap, checkpoint_ticks=int(o.checkpoint_ticks or 0),
        checkpoint_minutes=float(o.checkpoint_minutes or 0),
        kimg_per_tick=float(o.kimg_per_tick), device=device,
        grid_seed=o.seed, grid_size=16, grid_trunc=float(o.grid_trunc), cfg=o.cfg if scratch else None,
        nan_policy=o.nan_policy, num_gpus=gpus, aug=aug_mode, augment_kwargs=augment_kwargs,
        allow_tf32=bool(o.allow_tf32), bf16_conv=bool(o.bf16_conv), metrics=metric_names(o.metrics),
    )


def given_options(target_dir, options):
    """EasyDict of every setup option: defaults (fsgan.options.OPTIONS), then `options`, checked against the table;
    from scratch (no resume) the method is tgan and there is no protocol. Parses --method-opt, --loss and
    --track-w-avg words."""
    o = EasyDict(option_defaults(dict(options, target_dir=target_dir)))
    if o.resume is None:
        o.method, o.protocol = 'tgan', None  # from scratch, every tensor trains
    o.update(check_given({k: v for k, v in o.items() if BY_NAME[k].kind in ('float', 'int', 'flag', 'choice')}))
    if isinstance(o.method_options, (list, tuple)):
        o.method_options = parse_method_options(o.method_options, o.method)
    o.method_options = dict(o.method_options or {})
    if isinstance(o.losses, (list, tuple)):
        o.losses = parse_loss_options(o.losses)
    if isinstance(o.track_w_avg, str):
        if o.track_w_avg.strip().lower() not in SWITCH_WORDS:
            raise SetupError(f'--track-w-avg {o.track_w_avg!r}: expected true or false')
        o.track_w_avg = SWITCH_WORDS[o.track_w_avg.strip().lower()]
    if o.freezed is not None and o.method != 'freezed':
        raise SetupError(f'--freezed is an option of --method freezed, not {o.method}')
    return o


def resolve_protocol(o):
    """The protocol's items (fsgan.protocol.resolve) with the options given; FreezeD's depth joins the method
    options of --method freezed (where --method-opt freezed=K does not set it)."""
    given = {k: o[k] for k in ('batch', 'ema_kimg', 'start', 'track_w_avg', 'freezed', 'ema_rampup')}
    try:
        proto = protocols.resolve(o.protocol, given)
    except ValueError as e:
        raise SetupError(str(e)) from None
    if o.method == 'freezed':
        o.method_options.setdefault('freezed', proto['freezed'])
    return proto


def merge_loss_options(losses, given, defaults=None):
    """Resolved {term: {weight, **options}} from the method's `defaults`, then `losses` and the shorthand options
    in `given` (checked values of mode_seeking, mode_seeking_hinge, class_loss); SetupError names the option."""
    from fsgan.losses import resolve_losses

    def entry(v):
        return dict(v) if isinstance(v, dict) else dict(weight=v)
    merged = {k: entry(v) for k, v in (defaults or {}).items()}
    for k, v in (losses or {}).items():
        merged[k] = dict(merged.get(k, {}), **entry(v))
    if given.get('mode_seeking'):
        merged.setdefault('mode_seeking', {})['weight'] = given['mode_seeking']
    if given.get('mode_seeking_hinge'):
        merged.setdefault('mode_seeking', {})['hinge'] = True
    if given.get('class_loss'):
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

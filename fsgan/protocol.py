"""Adaptation protocols: the training settings around a method, as one named, recorded choice.

A protocol fixes the G_ema schedule, whether w_avg keeps tracking, which source generator the run starts
from, FreezeD's depth, the batch and the learning rate. Every item can still be overridden by its own
option; training_options.json records the protocol name and every resolved item.

  item          paper                      fsgan-repo                 ours
  ema_kimg      10 (half-life, kimg)       10                         batch * 10 / 32
  ema_rampup    None (off)                 None                       0.05
  track_w_avg   True for every method      True                       the method's default (off for fsgan, ssgan)
  start         'G' (raw G; G_ema too)     'G'                        'G_ema'
  freezed       'paper': D blocks >= 32 px 'paper'                    4 (fromrgb + the top block's convs)
  batch         32                         16                         16
  lr            the method's (fsgan 0.003, one lr for G and D)

Sources: the FSGAN paper (Robb et al. 2020) for the 20-kimg schedule, lr 0.003 and the FreezeD count
(47M trainable on config-f 1024 = D blocks 1024..32 frozen); its official TensorFlow code for the EMA
(10-kimg half-life, no ramp-up), w_avg tracking (beta 0.995), the raw-G start, and the batch (32 in the
launcher of the paper's time, 16 in the code's latest version). The official FreezeD pattern freezes almost
nothing; 'fsgan-repo' uses the paper's depth instead. From scratch no protocol applies: stylegan2-ada-pytorch's
ramp-up and batch * 10 / 32 half-life.
"""

PROTOCOLS = {
    'paper': dict(ema_kimg=10.0, ema_rampup=None, track_w_avg=True, start='G', freezed='paper', batch=32),
    'fsgan-repo': dict(ema_kimg=10.0, ema_rampup=None, track_w_avg=True, start='G', freezed='paper', batch=16),
    'ours': dict(ema_kimg=None, ema_rampup=0.05, track_w_avg=None, start='G_ema', freezed=4, batch=16),
}
SCRATCH = dict(ema_kimg=None, ema_rampup=0.05, track_w_avg=True, start=None, freezed=None, batch=16)
DEFAULT_PROTOCOL = 'paper'
STARTS = ('G', 'G_ema')
PAPER_FREEZED_MIN_RES = 32  # FreezeD at the paper's depth freezes every D block of at least this resolution
PAPER_KIMG, PAPER_KIMG_FEW, FEW_SHOTS = 20, 16, 5  # the paper's length: 20 kimg, 16 for <= 5 shots


def paper_kimg(shots):
    """The paper's training length in kimg for `shots` target images (None: not known, the 20-kimg default)."""
    return PAPER_KIMG_FEW if shots is not None and shots <= FEW_SHOTS else PAPER_KIMG


def protocol_defaults(name):
    """The settings of protocol `name` (None: training from scratch); ValueError for an unknown name."""
    if name is None:
        return dict(SCRATCH)
    if name not in PROTOCOLS:
        raise ValueError(f'--protocol {name!r}: choose one of {", ".join(PROTOCOLS)}')
    return dict(PROTOCOLS[name])


def resolve(name, given):
    """Protocol settings with the explicitly given ones (not None) taking precedence.

    given: {item: value or None}; ema_kimg None resolves to batch * 10 / 32 (stylegan2-ada-pytorch).
    Returns {item: value} for every item of the protocol table.
    """
    out = protocol_defaults(name)
    out.update({k: v for k, v in given.items() if v is not None and k in out})
    if out['ema_kimg'] is None:
        out['ema_kimg'] = out['batch'] * 10 / 32
    return out


def describe(opts):
    """One line: the protocol and its resolved items, for --dry-run and logs."""
    rampup = 'off' if opts.get('ema_rampup') is None else f'{opts["ema_rampup"]:g}'
    w_avg = opts.get('track_w_avg')
    w_avg = "the method's default" if w_avg is None else ('tracked' if w_avg else 'frozen')
    freezed = opts.get('method_options', {}).get('freezed')
    parts = [f'protocol {opts.get("protocol") or "none (from scratch)"}:', f'G_ema half-life {opts["ema_kimg"]:g} kimg,',
             f'ramp-up {rampup},', f'w_avg {w_avg},', f'start {opts.get("start") or "new networks"},',
             f'batch {opts["batch"]},', f'lr {opts["lr"]:g} (D {opts.get("dlr", opts["lr"]):g})']
    if freezed is not None:
        parts.insert(-2, f'FreezeD depth {freezed},')
    return ' '.join(parts)

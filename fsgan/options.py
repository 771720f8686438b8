"""The training options, declared once: command-line flags, setup checks and the run folder's record.

`OPTIONS` is one table of every option of a training run. Each `Option` gives its name (the parameter of
fsgan.run_setup.setup_training_config and of scripts/train.py's click command), the component it configures
(`group`), its type and bounds, its default and its help text. From it come:

  - scripts/train.py's click options (`click_options`): same flags, help and defaults;
  - setup_training_config's defaults and checks (`option_defaults`, `check_given`), and the training options a
    comparison row may set (`METHOD@KEY=VALUE`: `TRAIN_OPTION_BOUNDS`, `TRAIN_OPTION_CHOICES`, `check_train_option`);
  - the check of a run folder's training_options.json before a resume (fsgan.run_options.recorded_rule).

training_options.json holds the resolved options grouped per component (written by `write_training_options`,
groups and keys sorted), e.g. for `--resume p1.pkl --target-dir targets --kimg 0.004 --batch 4 --tick 0.004`:

    {
      "augmentation": {"aug": "none", "augment_kwargs": {"name": "none"}},
      "data":         {"cond": false, "mirror": false, "resolution": 32, "shots": null, "target_dir": "/abs/targets"},
      "loss":         {"D_reg_interval": 16, "G_reg_interval": 4, "gamma": 10.0, "losses": {}, "pl_weight": 2.0,
                       "style_mixing": 0.9},
      "method":       {"method": "fsgan", "method_options": {}, "protocol": "paper"},
      "networks":     {"cfg": null, "source": "/abs/p1.pkl", "start": "G", "track_w_avg": true},
      "optimiser":    {"batch": 4, "dlr": 0.003, "ema_kimg": 10.0, "ema_rampup": null, "lr": 0.003},
      "run":          {"allow_tf32": false, "bf16_conv": false, "device": "cpu", "grid_seed": 0, "grid_size": 16,
                       "checkpoint_minutes": 0.0, "checkpoint_ticks": 0, "grid_trunc": 0.8, "kimg": 0.004, "kimg_per_tick": 0.004, "metrics": [],
                       "nan_policy": "stop", "num_gpus": 1, "outdir": "/abs/runs", "seed": 0, "snap": 5}
    }

Keys keep their flat names inside the groups (a key belongs to exactly one group), so `flatten_options` turns the
file back into the flat view the training loop uses (and checkpoint.pt records). Run folders written before the
grouping hold that flat view directly; `read_training_options` accepts both forms. From scratch, "networks" also
holds G_kwargs and D_kwargs (the networks' constructor arguments).
"""
import json
import math
from dataclasses import dataclass
from typing import Callable, Optional, Tuple, Union

from fsgan import protocol as protocols
from fsgan.losses import LOSS_TERMS, resolve_losses
from fsgan.methods import METHODS
from training.augment_ada import ADA_PRESETS

GROUPS = ('method', 'networks', 'loss', 'augmentation', 'optimiser', 'data', 'run')
AUG_MODES = ('noaug', 'none', 'ada', 'fixed', 'diffaug')  # as stylegan2-ada-pytorch's --aug, plus diffaug
SWITCH_WORDS = {'1': True, 'true': True, 'yes': True, 'on': True, '0': False, 'false': False, 'no': False, 'off': False}


@dataclass(frozen=True)
class Option:
    """One training option.

    kind: 'float' or 'int' (bounded by low/high, low_open: low excluded), 'flag' (an on/off flag; recorded as
    true/false), 'switch' (the words true/false on the command line; recorded as true/false or null), 'choice'
    (one of `choices`, a tuple or a function returning one), 'text', 'pairs' (repeatable KEY=VALUE on the
    command line; recorded as an object).
    """
    name: str                           # Parameter of setup_training_config and of the click command.
    group: str                          # Component (GROUPS) whose part of training_options.json records it.
    kind: str = 'float'
    flags: Tuple[str, ...] = ()         # Command-line flags; () = not on the command line.
    help: str = ''
    default: object = None
    low: Optional[float] = None
    high: Optional[float] = None
    low_open: bool = False
    choices: Union[Tuple[str, ...], Callable, None] = None
    metavar: Optional[str] = None
    key: Optional[str] = ''             # Key in training_options.json: '' = name; None = folded into another key.
    required: bool = False              # training_options.json must hold it (resumable runs always did).
    nullable: bool = False              # A required key that may be null.
    compare: bool = False               # A comparison row may set it (METHOD@KEY=VALUE).
    setup: bool = True                  # A parameter of setup_training_config (else only recorded).
    what: Optional[str] = None          # What the recorded value must be, where the kind does not say it.
    check: Optional[Callable] = None    # Test of the recorded value, where the kind does not give one.

    @property
    def record_key(self):
        return self.name if self.key == '' else self.key

    def choice_list(self):
        return tuple(self.choices() if callable(self.choices) else self.choices)

    def bound_text(self):
        """'> 0', '>= 0', 'in [0, 1]', '0 or 1' (flags) or '' (unbounded)."""
        if self.kind == 'flag':
            return '0 or 1'
        if self.high is not None:
            return f'in [{self.low:g}, {self.high:g}]'
        if self.low is not None:
            return f'{">" if self.low_open else ">="} {self.low:g}'
        return ''


def _scratch_cfgs():
    from fsgan.run_setup import SCRATCH_CFGS
    return sorted(SCRATCH_CFGS)


def _loss_terms(value):
    """value is a {term: {weight, **options}} object that fsgan.losses.resolve_losses accepts."""
    try:
        return isinstance(value, dict) and resolve_losses(value) is not None
    except (ValueError, TypeError, AttributeError):
        return False


O = Option
OPTIONS = (
    O('outdir', 'run', 'text', ('--outdir',), 'Parent folder of run folders.', default='runs'),
    O('resume', 'networks', 'text', ('--resume',), 'Source network: path, URL or short name (e.g. ffhq256).',
      metavar='NETWORK', key='source', required=True, nullable=True,
      what='a network path, URL or short name, or null'),
    O('target_dir', 'data', 'text', ('--target-dir', '--data'), 'Target images (folder or zip).',
      metavar='DIR|ZIP', required=True, what='a path'),
    O('shots', 'data', 'int', ('--shots',), 'Number of target images to use [default: all].', low=1),
    O('method', 'method', 'choice', ('--method',), 'Adaptation method: ' + '; '.join(
        f'{n}: {s.description}' for n, s in sorted(METHODS.items())), default='fsgan',
      choices=tuple(sorted(METHODS)), required=True),
    O('method_options', 'method', 'pairs', ('--method-opt',), 'Method option, e.g. adapt_affine=true (repeatable).',
      metavar='KEY=VALUE', required=True),
    O('freezed', 'method', 'int', ('--freezed',), 'FreezeD: D layers to freeze from the image side.', low=0,
      key=None),
    O('kimg', 'run', 'float', ('--kimg',), 'Training length [default: 20, 16 for <=5 shots].', low=0,
      low_open=True, required=True),
    O('protocol', 'method', 'choice', ('--protocol',), 'Adaptation protocol: the EMA, w_avg, start, FreezeD depth '
      'and batch of the FSGAN paper, of its official code, or this project\'s earlier settings (README table).',
      default=protocols.DEFAULT_PROTOCOL, choices=tuple(protocols.PROTOCOLS)),
    O('start', 'networks', 'choice', ('--start',), 'Source generator that G and G_ema start from [default: per '
      'protocol].', choices=tuple(protocols.STARTS)),
    O('track_w_avg', 'networks', 'switch', ('--track-w-avg',), 'Let w_avg track the adapted mapping output '
      '[default: per protocol].'),
    O('batch', 'optimiser', 'int', ('--batch',), 'Batch size [default: per protocol; 16 from scratch].', low=1,
      required=True),
    O('lr', 'optimiser', 'float', ('--lr',), 'Learning rate [default: per method].', low=0, low_open=True,
      required=True, compare=True),
    O('dlr', 'optimiser', 'float', ('--dlr',), 'D learning rate [default: --lr].', low=0, low_open=True,
      compare=True),
    O('gamma', 'loss', 'float', ('--gamma',), 'R1 weight.', default=10.0, low=0, required=True, compare=True),
    O('pl_weight', 'loss', 'float', ('--pl-weight',), 'Path-length weight.', default=2.0, low=0, required=True,
      compare=True),
    O('style_mixing', 'loss', 'float', ('--style-mixing',), 'Style mixing probability.', default=0.9, low=0, high=1,
      required=True, compare=True),
    O('mode_seeking', 'loss', 'float', ('--mode-seeking',), 'Mode-seeking weight (Mao et al. 2019) against collapse '
      'of small from-scratch nets; 0 = off.', default=0.0, low=0, compare=True),
    O('mode_seeking_hinge', 'loss', 'flag', ('--mode-seeking-hinge',), 'Mode seeking only penalises sample pairs '
      'closer than the real batch\'s pairs (needs --mode-seeking > 0; with one shot the real pairs are identical '
      'and it does nothing).', compare=True),
    O('ema_kimg', 'optimiser', 'float', ('--ema',), 'G_ema half-life in kimg [default: per protocol; batch * 10 / 32 '
      'from scratch].', low=0, required=True),
    O('ema_rampup', 'optimiser', 'float', ('--ema-rampup',), 'G_ema ramp-up: half-life at most this fraction of the '
      'images seen; 0 = off [default: per protocol; 0.05 from scratch].', low=0),
    O('mirror', 'data', 'flag', ('--mirror',), 'Add x-flips of the targets.', required=True),
    O('losses', 'loss', 'pairs', ('--loss',), 'Registered loss term (fsgan/losses) and its weight or options, e.g. '
      'mode_seeking=2, mode_seeking.hinge=true (repeatable). Terms: ' + ', '.join(sorted(LOSS_TERMS)) + '.',
      metavar='NAME=WEIGHT|NAME.OPTION=VALUE', what='an object {term: {weight, options}} of registered loss terms',
      check=_loss_terms),
    O('cond', 'data', 'flag', ('--cond',), 'Train a class-conditional model on the targets\' dataset.json labels '
      '(class k = label k; from scratch there are max label + 1 classes, so use labels 0..K-1).'),
    O('class_loss', 'loss', 'float', ('--class-loss',), 'With --cond: weight of a cross-entropy on D\'s logits of all '
      'classes (reals train D, fakes train G).', default=0.0, low=0, compare=True),
    O('seed', 'run', 'int', ('--seed',), 'Random seed.', default=0, low=0, required=True),
    O('snap', 'run', 'int', ('--snap',), 'Snapshot interval in ticks (0 = only the final snapshot).', default=5, low=0,
      required=True),
    O('checkpoint_ticks', 'run', 'int', ('--checkpoint-ticks',), 'Also write checkpoint.pt every N ticks between '
      'snapshots (a kill then costs at most N ticks; results do not depend on it, except that --nan-policy '
      'rollback goes back to the newest checkpoint). Default 0: only with the snapshots. Also taken with '
      '--resume-run.', low=0),
    O('checkpoint_minutes', 'run', 'float', ('--checkpoint-minutes',), 'Also write checkpoint.pt whenever this many '
      'minutes have passed since the last one, within ticks too (a kill then costs at most about that long; a run '
      'resumed within a tick goes on exactly as without the stop, and that tick\'s record averages its statistics '
      'from the resume on). Default 0: off. Also taken with --resume-run.', low=0),
    O('kimg_per_tick', 'run', 'float', ('--tick',), 'Tick length in kimg.', default=1.0, low=0, low_open=True,
      required=True),
    O('cfg', 'networks', 'choice', ('--cfg',), 'Configuration when training from scratch (no --resume).',
      default='glyph32', choices=_scratch_cfgs),
    O('device', 'run', 'choice', ('--device',), 'Device [default: cuda when available].', choices=('cpu', 'cuda'),
      required=True),
    O('gpus', 'run', 'int', ('--gpus',), 'Processes: one per GPU (nccl), or CPU processes (gloo) with --device cpu.',
      default=1, low=1, key='num_gpus'),
    O('nan_policy', 'run', 'choice', ('--nan-policy',), 'On NaN/Inf: stop with a message, or roll back to the last '
      'snapshot with the lr halved.', default='stop', choices=('stop', 'rollback')),
    O('aug', 'augmentation', 'choice', ('--aug',), 'Augment every image D sees: noaug (= none), ada (adaptive p), '
      'fixed (p = --aug-p), diffaug (DiffAugment).', default='noaug', choices=AUG_MODES, compare=True),
    O('aug_p', 'augmentation', 'float', ('--aug-p',), 'ADA strength p: --aug fixed uses it, --aug ada starts from '
      'it [default: 0].', low=0, high=1, key=None, compare=True),
    O('augpipe', 'augmentation', 'choice', ('--augpipe',), 'ADA transform groups, initials of blit, geom, color, '
      'filter, noise, cutout [default: bgc].', choices=tuple(ADA_PRESETS), key=None, compare=True),
    O('ada_target', 'augmentation', 'float', ('--ada-target',), 'ADA target of E[sign(D(real))] [default: 0.6].',
      low=0, high=1, key=None, compare=True),
    O('ada_kimg', 'augmentation', 'float', ('--ada-kimg',), 'ADA: kimg for p to move by 1 [default: 500].', low=0,
      low_open=True, key=None, compare=True),
    O('diffaug_policy', 'augmentation', 'text', ('--diffaug-policy',), 'With --aug diffaug: comma-separated policies '
      'from color, translation, cutout [default: color,translation,cutout].', metavar='LIST', key=None),
    O('allow_tf32', 'run', 'flag', ('--allow-tf32',), 'CUDA: use TF32 for float32 matmuls and convolutions (faster '
      'on Ampere and later GPUs, 10 mantissa bits); off by default, as in stylegan2-ada-pytorch.'),
    O('bf16_conv', 'run', 'flag', ('--bf16-conv',), 'Run the training steps\' float32 convolutions in bfloat16 '
      '(8 mantissa bits; float32 accumulation, results rounded to bfloat16 and returned as float32); about 3x faster convolutions on CPUs with AMX or '
      'AVX512-BF16; the modulated convolutions then also demodulate from the [N, C_in] x [C_in, C_out] product '
      '(equal up to float32 rounding). Snapshot grids, metrics and generation stay float32. Off by default.'),
    O('metrics', 'run', 'text', ('--metrics',), 'Metrics (metrics registry) of every snapshot on 64 samples against '
      'the targets, appended to metric-<name>.jsonl, e.g. sharpness,memorization [default: none].',
      metavar='NAME[,NAME]', what='a list of metric names',
      check=lambda v: isinstance(v, list) and all(isinstance(n, str) for n in v)),
    O('grid_trunc', 'run', 'float', help='Truncation psi of the snapshot grids.', default=0.8, required=True),
    # Recorded only: resolved by the setup or the run.
    O('augment_kwargs', 'augmentation', 'object', help='Arguments of training.augment.build_augment.', setup=False),
    O('G_reg_interval', 'loss', 'int', help='Steps between lazy path-length steps.', low=0, required=True,
      setup=False),
    O('D_reg_interval', 'loss', 'int', help='Steps between lazy R1 steps.', low=0, required=True, setup=False),
    O('grid_seed', 'run', 'int', help='Seed of the snapshot grids\' latents.', low=0, required=True, setup=False),
    O('grid_size', 'run', 'int', help='Samples in a snapshot grid.', low=1, required=True, setup=False),
    O('resolution', 'data', 'int', help='Target resolution in pixels.', low=1, required=True, setup=False),
    O('G_kwargs', 'networks', 'object', help='From scratch: the generator\'s constructor arguments.', setup=False),
    O('D_kwargs', 'networks', 'object', help='From scratch: the discriminator\'s constructor arguments.', setup=False),
)
del O
BY_NAME = {o.name: o for o in OPTIONS}
BY_KEY = {o.record_key: o for o in OPTIONS if o.record_key is not None}
assert all(o.group in GROUPS for o in OPTIONS)

TRAIN_OPTION_BOUNDS = {o.name: o.bound_text() for o in OPTIONS if o.compare and o.kind != 'choice'}
TRAIN_OPTION_CHOICES = {o.name: o.choice_list() for o in OPTIONS if o.compare and o.kind == 'choice'}


class SetupError(Exception):
    """A bad option or combination of options (the message names the option)."""


def flag_of(option):
    """The option's first command-line flag, or its name where it has none."""
    return option.flags[0] if option.flags else option.name


def check_value(option, value):
    """value as a valid setting of `option`, else SetupError naming the option.

    Numbers (strings too) come back as float, or int for 'int' options; a flag takes 0 or 1 or the
    SWITCH_WORDS and comes back as 0.0 or 1.0; a choice comes back as its name; other kinds as given.
    """
    name = option.name
    if option.kind == 'choice':
        choices = option.choice_list()
        if value not in choices:
            raise SetupError(f'{name} must be one of {", ".join(choices)}, got {value!r}')
        return str(value)
    if option.kind not in ('float', 'int', 'flag'):
        return value
    if option.kind == 'flag' and isinstance(value, str) and value.strip().lower() in SWITCH_WORDS:
        return float(SWITCH_WORDS[value.strip().lower()])
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    ok = math.isfinite(number)
    if option.kind == 'flag':
        ok = ok and number in (0, 1)
    else:
        ok = ok and (option.low is None or (number > option.low if option.low_open else number >= option.low))
        ok = ok and (option.high is None or number <= option.high)
    if option.kind == 'int':
        if not (ok and number == int(number)):
            raise SetupError(f'{name} must be an integer {option.bound_text()}, got {value!r}')
        return int(number)
    if not ok:
        bound = f' {option.bound_text()}' if option.bound_text() else ''
        raise SetupError(f'{name} must be a finite number{bound}, got {value!r}')
    return number


def check_train_option(key, value):
    """float(value) if it is a valid setting of training option `key` (TRAIN_OPTION_BOUNDS), else SetupError.

    A '0 or 1' option (a switch) also takes the SWITCH_WORDS, as boolean method options do. An option of
    TRAIN_OPTION_CHOICES gives back its value as a name.
    """
    if key not in TRAIN_OPTION_BOUNDS and key not in TRAIN_OPTION_CHOICES:
        raise KeyError(key)
    return check_value(BY_NAME[key], value)


def check_given(options):
    """{name: checked value} of the options (setup parameters) given and not None; SetupError '--flag: ...'."""
    out = dict(options)
    for name, value in options.items():
        if value is not None:
            try:
                out[name] = check_value(BY_NAME[name], value)
            except SetupError as e:
                raise SetupError(f'{flag_of(BY_NAME[name])}: {e}') from None
    return out


def option_defaults(given):
    """The setup parameters: the table's defaults overridden by `given`; TypeError names unknown ones."""
    defaults = {o.name: o.default for o in OPTIONS if o.setup}
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise TypeError(f'unknown training option(s) {", ".join(unknown)}; see fsgan.options.OPTIONS')
    return dict(defaults, **given)


def _click_kwargs(option):
    """click.option keyword arguments of a command-line option."""
    import click
    kw = dict(help=option.help)
    if option.kind == 'float':
        kw['type'] = click.FloatRange(min=option.low, max=option.high, min_open=option.low_open)
    elif option.kind == 'int':
        kw['type'] = click.IntRange(min=option.low, max=option.high)
    elif option.kind == 'flag':
        kw['is_flag'] = True
    elif option.kind == 'switch':
        kw['type'] = click.Choice(['true', 'false'])
    elif option.kind == 'choice':
        kw['type'] = click.Choice(list(option.choice_list()))
    elif option.kind == 'pairs':
        kw['multiple'] = True
    if option.metavar:
        kw['metavar'] = option.metavar
    if option.default is not None and option.kind != 'flag':
        kw.update(default=option.default, show_default=True)
    return kw


def click_options(command):
    """Decorate a click command with every command-line training option, in table order."""
    import click
    for option in reversed([o for o in OPTIONS if o.flags]):
        command = click.option(*option.flags, option.name, **_click_kwargs(option))(command)
    return command


# ----------------------------------------------------------------------------- training_options.json

def group_options(flat):
    """Flat options {key: value} -> {group: {key: value}} in GROUPS order (empty groups left out).

    ValueError for a key the table does not know (every recorded key has one group)."""
    out = {g: {} for g in GROUPS}
    for key, value in flat.items():
        if key not in BY_KEY:
            raise ValueError(f'training option {key!r} has no group; declare it in fsgan.options.OPTIONS')
        out[BY_KEY[key].group][key] = value
    return {g: v for g, v in out.items() if v}


def is_grouped(options):
    """True for the grouped form of training_options.json (every top-level entry is a group object)."""
    return (isinstance(options, dict) and bool(options)
            and all(k in GROUPS and isinstance(v, dict) for k, v in options.items()))


def flatten_options(options):
    """The flat view {key: value} of training_options.json's content, grouped or (older runs) flat."""
    if not is_grouped(options):
        return dict(options)
    return {key: value for group in options.values() for key, value in group.items()}


def read_training_options(path):
    """The flat view of the training_options.json at `path` (grouped or flat), unchecked.

    OSError and json.JSONDecodeError pass through; see fsgan.run_options.load_run_options for the checked read."""
    with open(path, encoding='utf-8') as f:
        return flatten_options(json.load(f))


def write_training_options(path, options):
    """Write flat `options` to `path` in the grouped form, atomically."""
    from dnnlib.fileio import atomic_write_json
    atomic_write_json(path, group_options(options))

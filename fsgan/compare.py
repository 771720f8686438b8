"""The comparison engine (scripts/compare.py): adaptation methods on the same shots and seed, one figure, a
metrics table (built from the registered metrics' Columns), interpolation strips.

Examples:
  python scripts/compare.py --source ffhq256 --target-dir shots/ --shots 10 --methods fsgan,tgan,freezed,ssgan --outdir cmp
  python scripts/compare.py --outdir cmp2 --runs fsgan=runs/00003-fsgan-10shot --runs tgan=runs/00004-tgan-10shot

The comparison folder (--outdir) holds:
  compare_state.json        settings, and per method its run folder, a 'done' mark and cached metrics (and under
                            'reference' the cached metrics of the --reference row)
  runs/<method>/NNNNN-...   the training runs (scripts/train.py run folders)
  shots/<hash>/shotNN.png   the target shots as the networks saw them (converted, at network resolution)
  samples/<method>/NNNNNN.png     the --num generated images the metrics use (image i is seed i)
  comparison.png            top row: target shots; then one row per method, seeds 0..cols-1
  metrics.csv, metrics.md   the table (Robb et al. Table 2.1 style)
  interp_<method>.png       interpolation strip seed 0 -> seed 1 (lerp in w) per method
  figures/                  memorisation figures of the metrics
With --reference (held-out real images of the target, e.g. a benchmark's validation split), the table ends with
the row REFERENCE_ROW: those images measured as if they were a method's samples (measure_reference), i.e. what
each metric gives for target images that copy nothing.

Running the same command again continues a killed comparison: finished methods (state 'done') are
kept, a method with a checkpointed run folder under runs/<method>/ is continued with
run_training(resume_run=...), metrics are reused while the snapshot and metric settings are unchanged.
train_only() (compare.py --train-only) trains without measuring; a row whose run folder kept only adapter files
is measured from --source plus its newest adapter (run_generator).
plan() (compare.py --dry-run) says which rows that would train, and from which kimg, without writing anything.
"""
import contextlib
import csv
import hashlib
import io
import json
import os
import re

from dnnlib import EasyDict
from dnnlib.fileio import atomic_write_bytes, atomic_write_json
from fsgan.methods import METHODS
from fsgan.protocol import PROTOCOLS, paper_kimg
from fsgan.run_setup import (TRAIN_OPTION_BOUNDS, TRAIN_OPTION_CHOICES, SetupError, augment_config,
                             check_train_option, parse_loss_options, parse_method_options)
from fsgan.losses import resolve_losses
from fsgan import evaluate
from metrics.registry import Column, cache_key

STATE_FILE = 'compare_state.json'
LOCK_FILE = 'compare.lock'  # held while a process trains or measures the comparison (dnnlib.lock)
STATE_VERSION = 1
DEFAULT_METHODS = ('fsgan', 'tgan', 'freezed', 'ssgan')
CHECKPOINT_MINUTES = 10.0  # trained rows checkpoint this often (train.py --checkpoint-minutes): a kill costs little
REFERENCE_ROW = 'real'     # the table row of the --reference images
# The registered metrics (fsgan.evaluate.metric_registry) a comparison measures, those that apply (metric_names).
METRICS = ('fid', 'sharpness', 'fqi', 'memorization', 'glyph_fgd', 'glyph_memorisation', 'glyph_diversity',
           'glyph_script')
RUN_COLUMNS = ('method', 'run_dir', 'network', 'trainable_params', 'trainable_G', 'trainable_D')


def metric_columns(metrics=METRICS):
    """Keys of a method's metric numbers: 'num_gen', then every Column key of the registered `metrics`."""
    return ('num_gen',) + tuple(c.key for c in evaluate.columns(metrics))


METRIC_COLUMNS = metric_columns()
CSV_COLUMNS = RUN_COLUMNS + METRIC_COLUMNS
METHOD_COLUMN = Column('method', 'Method', 's')
TRAINABLE_COLUMN = Column('trainable_params', 'Trainable params', ',',
                          note="numbers in the run's adapter file (G + D).")


class CompareError(Exception):
    """A comparison that cannot go on (the message says what to do). option: the option it concerns, or None
    (scripts/compare.py then prints the message alone)."""

    def __init__(self, message, option=None):
        super().__init__(message)
        self.option = option


def parse_runs(pairs):
    """['name=RUNDIR', ...] -> {name: RUNDIR} (order kept); raises CompareError naming --runs."""
    out = {}
    for pair in pairs:
        name, sep, path = pair.partition('=')
        if not sep or not re.fullmatch(r'[A-Za-z0-9_.+-]+', name) or not path:
            raise CompareError(f'{pair!r}: expected NAME=RUNDIR with NAME of letters, digits, _.+-', '--runs')
        if name in out:
            raise CompareError(f'{name} given twice', '--runs')
        out[name] = path
    return out


TRAIN_KEYS = tuple(TRAIN_OPTION_BOUNDS) + tuple(TRAIN_OPTION_CHOICES)  # training options a row may set
AUG_KEYS = ('aug', 'aug_p', 'augpipe', 'ada_target', 'ada_kimg')  # of those, the ones augment_config checks together


def parse_method(spec):
    """'fsgan' -> ('fsgan', {}, {}); 'fsgan@lr=0.01@gamma=5@adapt_torgb=true' -> ('fsgan', {'lr': 0.01, 'gamma': 5.0},
    {'adapt_torgb': True}): a method with training options (TRAIN_KEYS, as scripts/train.py names them) and/or
    method options (scripts/train.py --method-opt) changed. 'tgan@aug=ada' -> ('tgan', {'aug': 'ada'}, {}): the
    augmentation options (AUG_KEYS; DiffAugment rows use the default policy). 'tgan@loss.mode_seeking=1' ->
    ('tgan', {'losses': {'mode_seeking': {'weight': 1.0}}}, {}): a registered loss term (fsgan.losses), its weight
    or (loss.NAME.OPTION=VALUE) an option."""
    name, *overrides = spec.split('@')
    train, pairs, loss_pairs = {}, [], []
    for item in overrides:
        key, sep, value = item.partition('=')
        if key.startswith('loss.') and sep:
            loss_pairs.append(item[len('loss.'):])
        elif key in TRAIN_KEYS:
            try:
                train[key] = check_train_option(key, value)
            except SetupError as e:
                raise CompareError(f'{spec!r}: {e}', '--methods') from None
        elif not sep or not key:
            raise CompareError(f'{spec!r}: expected METHOD[@KEY=VALUE...] with KEY one of '
                               f'{", ".join(TRAIN_KEYS)} or a method option', '--methods')
        else:
            pairs.append(item)
    try:
        augment_config(**{k: train[k] for k in AUG_KEYS if k in train})
        if loss_pairs:
            train['losses'] = parse_loss_options(loss_pairs)
            resolve_losses(train['losses'])
    except (SetupError, ValueError) as e:
        raise CompareError(f'{spec!r}: {e}', '--methods') from None
    if name not in METHODS:
        return name, train, {}
    try:
        options = parse_method_options(pairs, name)
    except SetupError as e:
        raise CompareError(f'{spec!r}: {e}', '--methods') from None
    return name, train, options


def row_names(methods, run_map, source, target_dir):
    """The comparison's rows: the --methods entries (default DEFAULT_METHODS without --runs), then the --runs
    names not among them. Raises CompareError for unknown or repeated methods, or rows to train without a source
    and target."""
    if methods is None:
        names = [] if run_map else list(DEFAULT_METHODS)
    else:
        names = [m.strip() for m in methods.split(',') if m.strip()]
    unknown = [m for m in names if m not in run_map and parse_method(m)[0] not in METHODS]
    if unknown:
        raise CompareError(f'unknown method(s) {", ".join(unknown)}; choose from {", ".join(sorted(METHODS))} '
                           f'or name a --runs entry', '--methods')
    if len(set(names)) != len(names):
        raise CompareError('a method is listed twice', '--methods')
    names += [n for n in run_map if n not in names]
    if not names:
        raise CompareError('nothing to compare; give --methods and/or --runs', '--methods')
    to_train = [n for n in names if n not in run_map]
    if to_train and (source is None or target_dir is None):
        raise CompareError(f'training {", ".join(to_train)} needs --source and --target-dir '
                           f'(or give their run folders with --runs NAME=RUNDIR)', '--source')
    return names


def check_bounds(values):
    """CompareError naming the first option of {option: (value or None, lowest allowed)} below its bound."""
    for flag, (value, low) in values.items():
        if value is not None and not value >= low:
            raise CompareError(f'must be >= {low}, got {value}', flag)


def check_reference(reference, names, num):
    """Before anything trains: CompareError unless `reference` is None or a folder or zip whose first `num` images
    all decode and share one size, and no row `names` is its row's. (Their size against the networks' is checked
    when the row is measured, measure_reference.)"""
    from metrics.images import ImageSet
    from training.dataset import DataError
    if reference is None:
        return
    if REFERENCE_ROW in names:
        raise CompareError(f'the row name {REFERENCE_ROW!r} is the --reference row; name the run otherwise', '--runs')
    try:
        images = ImageSet(reference, limit=num)
        sizes = {}
        for i in range(len(images)):
            sizes.setdefault(images.read(i).shape[:2], images.names[i])
    except (ValueError, DataError) as e:
        raise CompareError(f'{e}; give a folder or zip of held-out real images of the target', '--reference') from None
    if len(sizes) > 1:
        (a, first), (b, other) = list(sizes.items())[:2]
        raise CompareError(f'{reference}: images of different sizes ({first} is {a[1]}x{a[0]}, {other} is '
                           f'{b[1]}x{b[0]}); give images of one size, the networks\' resolution', '--reference')


def setup_compare(outdir, source=None, target_dir=None, shots=10, methods=None, runs=(), kimg=None, batch=None,
                  protocol='paper', seed=0, tick=1.0, snap=5, test_dir=None, num=64, num_test=256, faces=False, trunc=0.8,
                  metrics_trunc=1.0, cols=10, strip_steps=10, device=None, cache_dir=None, inception=True, expect=None,
                  train_options=None, metrics=None, bf16_conv=False, checkpoint_minutes=CHECKPOINT_MINUTES,
                  reference=None):
    """Pure setup: options -> EasyDict(entries=[(name, run_dir or None)], settings, metric_settings, ...).

    train_options: training options (TRAIN_KEYS) for every trained row; a row's own @KEY=VALUE wins.
    metrics: the registered metrics to measure (those that apply, see metric_names) [default: METRICS]; a metric
    that needs the source's images for the same latents (emoji_content) gets them from --source.
    bf16_conv: trained rows run their training steps' convolutions in bfloat16 (train.py --bf16-conv; faster on
    CPUs with AMX or AVX512-BF16); a setting, recorded only when on, so earlier comparisons continue unchanged.
    protocol: the adaptation protocol of every trained row (fsgan.protocol); batch None = the protocol's.
    checkpoint_minutes: trained rows (new and continued) write their checkpoint this often, within ticks too
    (train.py --checkpoint-minutes; 0 = at snapshots only); not a setting, as results do not depend on it.
    reference: a folder or zip of held-out real target images, measured as the extra row REFERENCE_ROW
    (measure_reference); not a setting either: it adds a row and changes no other.
    settings are what the training runs depend on (a resumed comparison must match them);
    metric_settings decide whether cached metrics still hold.
    """
    run_map = parse_runs(runs)
    names = row_names(methods, run_map, source, target_dir)
    check_bounds({'--shots': (shots, 1), '--batch': (batch, 1), '--num': (num, 2), '--cols': (cols, 1),
                  '--strip-steps': (strip_steps, 2), '--num-test': (num_test, 0), '--snap': (snap, 0),
                  '--checkpoint-minutes': (checkpoint_minutes, 0)})
    if (kimg is not None and kimg <= 0) or tick <= 0:
        raise CompareError('--kimg and --tick must be > 0')
    if kimg is None:
        kimg = paper_kimg(shots)
    check_reference(reference, names, num)

    def absolute(path):
        return os.path.abspath(path) if path is not None and os.path.exists(path) else path
    if protocol not in PROTOCOLS:
        raise CompareError(f'{protocol!r}: choose one of {", ".join(PROTOCOLS)}', '--protocol')
    settings = dict(source=absolute(source), target_dir=absolute(target_dir), shots=int(shots), kimg=float(kimg),
                    batch=None if batch is None else int(batch), protocol=protocol, seed=int(seed), tick=float(tick),
                    snap=int(snap))
    if bf16_conv:
        settings['bf16_conv'] = True
    if train_options:
        unknown = sorted(set(train_options) - set(TRAIN_KEYS))
        if unknown:
            raise ValueError(f'train_options: unknown {", ".join(unknown)}; allowed {", ".join(TRAIN_KEYS)}')
        try:
            settings['train'] = {k: check_train_option(k, v) for k, v in sorted(train_options.items())}
        except SetupError as e:
            raise ValueError(f'train_options: {e}') from None
    metric_settings = dict(num=int(num), metrics_trunc=float(metrics_trunc), test_dir=absolute(test_dir),
                           num_test=int(num_test), faces=bool(faces), inception=bool(inception), expect=expect)
    if metrics is not None:  # only when given, so the cached metrics of earlier comparisons still hold
        registry = evaluate.metric_registry()
        unknown = [m for m in metrics if m not in registry]
        if unknown:
            raise ValueError(f'metrics: unknown {", ".join(unknown)}; registered: {", ".join(registry)}')
        metric_settings['metrics'] = list(metrics)
    return EasyDict(outdir=outdir, entries=[(n, run_map.get(n)) for n in names], settings=settings,
                    metric_settings=metric_settings, trunc=float(trunc), cols=int(cols),
                    strip_steps=int(strip_steps), device=device, cache_dir=cache_dir,
                    checkpoint_minutes=float(checkpoint_minutes), reference=absolute(reference))


# ----------------------------------------------------------------------------- state and runs

def read_state(cfg):
    """The recorded state of the comparison in cfg.outdir, or None for a new one (no folder, or an empty one).
    Writes nothing; refuses a folder with other settings or foreign files (CompareError)."""
    path = os.path.join(cfg.outdir, STATE_FILE)
    if os.path.isfile(path):
        try:
            with open(path) as f:
                state = json.load(f)
        except (OSError, ValueError) as e:
            raise CompareError(f'{path}: not readable ({e}); restore it, or start the comparison in a new --outdir')
        if not (isinstance(state, dict) and isinstance(state.get('settings'), dict)
                and isinstance(state.get('methods'), dict)):
            raise CompareError(f'{path}: not a comparison state (no settings and methods); restore it, or start '
                               f'the comparison in a new --outdir')
        old, new = dict(dict(protocol='ours'), **state['settings']), cfg.settings  # comparisons before protocols
        diff = [f'{k}: {old.get(k)!r} there, {new.get(k)!r} now' for k in sorted(set(old) | set(new))
                if old.get(k) != new.get(k)]
        if diff:
            raise CompareError(f'--outdir {cfg.outdir} holds a comparison with other settings ({"; ".join(diff)}); '
                               f'use the same settings to continue it or a new --outdir')
        return state
    if os.path.isdir(cfg.outdir) and set(os.listdir(cfg.outdir)) - {LOCK_FILE}:
        raise CompareError(f'--outdir {cfg.outdir} is not empty and holds no {STATE_FILE}; choose a new folder')
    return None


def load_state(cfg):
    """The comparison's state (created when new, after check_sources); refuses a folder with other settings or
    foreign files."""
    state = read_state(cfg)
    if state is not None:
        return state
    check_sources(cfg)  # before anything is recorded: a typo must not block the corrected command
    os.makedirs(cfg.outdir, exist_ok=True)
    state = dict(version=STATE_VERSION, settings=cfg.settings, methods={})
    atomic_write_json(os.path.join(cfg.outdir, STATE_FILE), state)
    return state


def plan(cfg):
    """What running the comparison `cfg` would do, without writing anything (compare.py --dry-run):
    [dict(name, status, kimg, total, run_dir)] per row in order. status: 'given' (a --runs folder), 'done',
    'partial' (a checkpointed run that train_method continues, at `kimg` of its own `total`) or 'pending' (to
    train from 0 to the comparison's kimg). A new comparison's source and targets are checked first, as the real
    run checks them (CompareError), unless the source is a URL or short name: a dry run fetches nothing."""
    from fsgan.loading import is_remote_source
    state = read_state(cfg)
    if state is None:
        if not is_remote_source(cfg.settings['source']):
            check_sources(cfg)
        state = dict(methods={})
    total = cfg.settings['kimg']
    rows = []
    for name, run_dir in cfg.entries:
        entry = state['methods'].get(name, {})
        if run_dir is not None:
            check_run_dir(name, run_dir, cfg.settings['source'])
            rows.append(dict(name=name, status='given', kimg=None, total=None, run_dir=run_dir))
        elif recorded_done(cfg, entry):
            rows.append(dict(name=name, status='done', kimg=total, total=total, run_dir=run_path(cfg, entry)))
        else:
            partial = partial_run(cfg, name)
            if partial is None:
                rows.append(dict(name=name, status='pending', kimg=0.0, total=total, run_dir=None))
                continue
            run_dir, c, kimg = partial
            rows.append(dict(name=name, status='done' if kimg >= c.kimg else 'partial', kimg=kimg, total=c.kimg,
                             run_dir=run_dir))
    return rows


def kimg_left(rows):
    """kimg still to train over the plan rows that are partial or pending, and how many those are."""
    left = [r['total'] - r['kimg'] for r in rows if r['status'] in ('partial', 'pending')]
    return sum(left), len(left)


def plan_lines(rows):
    """Text of a plan: a line per row ('  tgan  partial  8.2/20 kimg  RUNDIR'), then the kimg left to train."""
    width = max(len(r['name']) for r in rows)
    lines = []
    for r in rows:
        progress = '' if r['kimg'] is None else f'{r["kimg"]:g}/{r["total"]:g} kimg'
        lines.append(f'  {r["name"]:<{width}}  {r["status"]:<7}  {progress:<16} {r["run_dir"] or ""}'.rstrip())
    left, runs = kimg_left(rows)
    lines.append(f'  to train: {left:g} kimg in {runs} run{"s" * (runs != 1)}')
    return lines


def check_sources(cfg):
    """Before the comparison folder is touched: the source network loads and the target images make the shots
    (only when a row is to be trained). Raises CompareError naming --source or --target-dir."""
    if all(run_dir is not None for _name, run_dir in cfg.entries):
        return
    from fsgan.loading import NetworkLoadError, load_network
    from training.dataset import DataError, load_target
    s = cfg.settings
    try:
        net = load_network(s['source'])
    except NetworkLoadError as e:
        raise CompareError(f'--source {e}') from None
    G = net['G_ema'] if net['G_ema'] is not None else net['G']
    if G is None:
        raise CompareError(f'--source {s["source"]}: holds no generator to adapt')
    try:
        load_target(s['target_dir'], G.img_resolution, G.img_channels, shots=s['shots'], seed=s['seed'])
    except DataError as e:
        raise CompareError(str(e)) from None


def save_state(cfg, state):
    atomic_write_json(os.path.join(cfg.outdir, STATE_FILE), state)


def latest(run_dir, prefix, ext):
    """Path of the newest file `prefix*ext` in run_dir by the kimg in its name, or None (fsgan.export)."""
    from fsgan.export import latest_artefact
    return latest_artefact(run_dir, prefix, ext)


def checkpointed_run(parent):
    """The newest numbered run folder under `parent` that has a checkpoint.pt, or None."""
    if not os.path.isdir(parent):
        return None
    runs = sorted(n for n in os.listdir(parent) if re.match(r'^\d+-', n)
                  and os.path.isfile(os.path.join(parent, n, 'checkpoint.pt')))
    return os.path.join(parent, runs[-1]) if runs else None


def recorded_done(cfg, entry):
    """True when a state entry records a run of this comparison as trained and its folder is still there."""
    return bool(entry.get('done') and not entry.get('external') and 'run_dir' in entry
                and os.path.isdir(run_path(cfg, entry)))


def partial_run(cfg, name):
    """(run folder, its options, kimg trained) of the checkpointed run of `name` under outdir/runs/<name>/, or
    None. The options are checked (a hand-edited file fails in one line); the run is finished when kimg >= c.kimg."""
    from fsgan.run import run_kimg
    from fsgan.run_options import load_run_options
    run_dir = checkpointed_run(os.path.join(cfg.outdir, 'runs', name))
    if run_dir is None:
        return None
    c = load_run_options(run_dir)
    return run_dir, c, run_kimg(run_dir, c)


def train_method(cfg, name, progress=True):
    """Train `name` into outdir/runs/<name>/, continuing a checkpointed run there (a finished one is returned as
    it is). Returns the run folder."""
    from fsgan.run import run_training
    from fsgan.run_setup import setup_training_config
    parent = os.path.join(cfg.outdir, 'runs', name)
    partial = partial_run(cfg, name)
    if partial is not None:
        run_dir, c, kimg = partial
        if kimg >= c.kimg:
            print(f'[{name}] {run_dir} is finished')
            return run_dir
        print(f'[{name}] continuing {run_dir}')
        c.checkpoint_minutes = cfg.checkpoint_minutes
        return run_training(c, resume_run=run_dir, progress=progress)
    s = cfg.settings
    method, row_train, options = parse_method(name)
    train = dict(s.get('train', {}), **row_train)
    c = setup_training_config(s['target_dir'], outdir=parent, resume=s['source'], method=method,
                              method_options=options, shots=s['shots'], kimg=s['kimg'], batch=s['batch'],
                              protocol=s.get('protocol', 'ours'),
                              seed=s['seed'], snap=s['snap'], kimg_per_tick=s['tick'], device=cfg.device,
                              bf16_conv=s.get('bf16_conv', False),
                              checkpoint_minutes=cfg.checkpoint_minutes, **train)
    print(f'[{name}] training')
    return run_training(c, progress=progress)


def run_weights(run_dir):
    """(newest network-snapshot-*.pkl, newest adapter-*.pt) of a run folder, each a path or None."""
    return latest(run_dir, 'network-snapshot-', '.pkl'), latest(run_dir, 'adapter-', '.pt')


def check_run_dir(name, run_dir, source=None):
    """A --runs folder must hold target_shots.npy and a network snapshot (a scripts/train.py run), or, when its
    snapshots were not kept, the adapter file of a finished run made for `source`, the comparison's --source (see
    run_generator). Raises CompareError before anything is written."""
    if not os.path.isdir(run_dir):
        raise CompareError(f'--runs {name}={run_dir}: no such folder')
    snapshot, adapter = run_weights(run_dir)
    for what, ok in (('network-snapshot-*.pkl (or adapter-*.pt)', snapshot or adapter),
                     ('target_shots.npy', os.path.isfile(os.path.join(run_dir, 'target_shots.npy')))):
        if not ok:
            raise CompareError(f'--runs {name}={run_dir}: no {what} there; give a run folder of scripts/train.py')
    if snapshot is None:
        check_adapter_run(name, run_dir, adapter, source)


def check_given_runs(cfg):
    """check_run_dir of every --runs entry of the comparison `cfg`."""
    for name, run_dir in cfg.entries:
        if run_dir is not None:
            check_run_dir(name, run_dir, cfg.settings['source'])


def check_adapter_run(name, run_dir, adapter, source):
    """A run folder measured from its newest adapter: it needs --source, the very network it trained from (checked
    by sha256 when --source is a local file), and an adapter at the run's full length (one cut off where it
    trained kept its checkpoint there)."""
    from dnnlib.util import file_sha256
    from fsgan.export import artefact_kimg, load_adapter
    from fsgan.loading import is_remote_source
    from fsgan.options import read_training_options
    if source is None:
        raise CompareError(f'--runs {name}={run_dir} kept adapter files but no network snapshot; give the network '
                           f'its run trained from', '--source')
    if not is_remote_source(source) and not os.path.isfile(source):
        raise CompareError(f'{source}: no such file; give the network --runs {name}={run_dir} trained from',
                           '--source')
    try:  # the length only: the run need not be able to continue here (it may have trained on a GPU)
        total = float(read_training_options(os.path.join(run_dir, 'training_options.json'))['kimg'])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise CompareError(f'--runs {name}={run_dir}: no readable training_options.json with its kimg ({e}); give '
                           f'a run folder of scripts/train.py') from None
    if re.search(r'\.\d{3}\.pt$', adapter):  # names of runs before three-decimal tags round kimg down
        done = artefact_kimg(os.path.basename(adapter))
        if done + 1e-9 < total:
            raise CompareError(f'--runs {name}={run_dir}: its newest adapter is at {done:g} of its {total:g} kimg; '
                               f'finish the run where it trained (scripts/train.py --resume-run) and bring it back')
    made_for = load_adapter(adapter)['source_sha256']
    if os.path.isfile(source) and file_sha256(source) != made_for:
        raise CompareError(f'{source} is not the network --runs {name}={run_dir} trained from (its adapter was made '
                           f'for sha256 {made_for[:12]}...); give that network', '--source')


def run_generator(cfg, run_dir, device):
    """(G_ema in eval mode, the file it came from, a sha256 of its weights' files) of a run folder: its newest
    network snapshot; or, when the folder kept no snapshot (a run trained with --train-only on a device and
    brought back without its pickles), the comparison's --source with the run's newest adapter applied. The
    adapter refuses another source (fsgan.export.AdapterError), so such a row is measured from the very
    network it trained from."""
    from dnnlib.util import file_sha256
    from fsgan.sampling import load_generator
    network, adapter = run_weights(run_dir)
    if network is not None:
        G, sha = load_generator(network, None, device)
        return G, network, sha
    if adapter is None or cfg.settings['source'] is None:
        raise CompareError(f'{run_dir}: no network-snapshot-*.pkl there, nor an adapter-*.pt with a --source to '
                           f'apply it to; give the run folder of a finished scripts/train.py run')
    G, source_sha = load_generator(cfg.settings['source'], adapter, device)
    return G, adapter, hashlib.sha256(f'{source_sha}+{file_sha256(adapter)}'.encode()).hexdigest()


def run_path(cfg, entry):
    """Run folder of a state entry: trained runs are stored relative to the comparison folder."""
    return entry['run_dir'] if entry.get('external') else os.path.join(cfg.outdir, entry['run_dir'])


def ensure_runs(cfg, state, progress=True):
    """Train or continue every method not done; record each finished one in the state file."""
    for name, run_dir in cfg.entries:
        entry = state['methods'].get(name, {})
        if entry.get('external') and run_dir is None:
            entry = {}                                   # was a --runs entry before, now to be trained
        if run_dir is not None:
            entry.update(run_dir=os.path.abspath(run_dir), external=True, done=True)
        elif not recorded_done(cfg, entry):
            run_dir = train_method(cfg, name, progress)
            entry.update(run_dir=os.path.relpath(run_dir, cfg.outdir), external=False, done=True)
        state['methods'][name] = entry
        save_state(cfg, state)


# ----------------------------------------------------------------------------- metrics

def write_shots(outdir, shots):
    """Shots uint8 [N, C, R, R] -> outdir/shots/<content hash>/shotNN.png (once). Returns that folder."""
    from torch_utils.image_grid import save_png
    key = hashlib.sha256(repr(shots.shape).encode() + shots.tobytes()).hexdigest()[:12]
    folder = os.path.join(outdir, 'shots', key)
    os.makedirs(folder, exist_ok=True)
    for i, img in enumerate(shots.transpose(0, 2, 3, 1)):
        path = os.path.join(folder, f'shot{i:02d}.png')
        if not os.path.isfile(path):
            save_png(img, path)
    return folder


def trainable_counts(run_dir):
    """(G, D) numbers the run trained, from its latest adapter file; (None, None) without one."""
    from fsgan.export import load_adapter
    path = latest(run_dir, 'adapter-', '.pt')
    if path is None:
        return None, None
    payload = load_adapter(path)
    return (sum(t.numel() for t in payload['G'].values()), sum(t.numel() for t in payload['D'].values()))


INCEPTION_METRICS = ('fid', 'kid', 'memorization', 'nearest_real', 'intra_inception', 'emoji_content',
                     'emoji_categories')  # off when not ms['inception']


def chosen_metrics(ms):
    """The metrics a comparison with metric settings `ms` was set up to measure (before metric_names' filter)."""
    return ms.get('metrics') or METRICS


def metric_names(ms, num_shots):
    """The metrics (ms['metrics'], default METRICS) that a comparison with metric settings `ms` measures: the
    Inception ones unless ms['inception'] is False, memorisation with >= 2 shots, FQI for ms['faces'], the target
    script's share when ms['expect'] names one; the glyph metrics note themselves as not applicable to images
    other than the glyph classifier's."""
    inception = ms.get('inception', True)
    skip = dict(memorization=num_shots < 2, fqi=not ms['faces'], glyph_script=not ms.get('expect'))
    return [name for name in chosen_metrics(ms)
            if not skip.get(name) and (inception or name not in INCEPTION_METRICS)]


def method_metrics(gen_dir, shots_dir, test_set, ms, device='cpu', cache_dir=None, fig_dir='.', tag='run',
                   shared=None, source_dir=None, progress=False):
    """Table numbers of one method, {metric_columns(chosen_metrics(ms)) key: number or None}: the metrics of
    metric_names() on the first ms['num'] (default all) images of gen_dir (a folder or zip) against the shots in
    shots_dir and the test ImageSet (or None). source_dir: the source network's images for the same seeds (for
    emoji_content). progress: progress bars while Inception features are computed. When gen_dir holds fewer
    than ms['num'] images (a --reference set), the size-dependent metrics (MetricSpec.size_dependent) are left
    out: their numbers would not compare with the methods'.

    shared: dict of intermediates that depend on neither the samples nor the shots (the Inception detector, the
    glyph classifier, test-set features, notes printed), kept between calls.
    """
    from metrics.images import ImageSet
    from metrics.registry import MetricContext, default_cache_dir
    shared = {} if shared is None else shared
    shots = ImageSet(shots_dir)
    ctx = MetricContext(gen=ImageSet(gen_dir, limit=ms.get('num')), data=test_set, shots=shots, device=device,
                        cache_dir=cache_dir or default_cache_dir(), fig_dir=fig_dir, tag=tag,
                        options={'expect': ms['expect']} if ms.get('expect') else {}, memo=dict(shared),
                        progress=progress,
                        source_gen=None if source_dir is None else ImageSet(source_dir, limit=ms.get('num')))
    registry = evaluate.metric_registry()
    short = ms.get('num') is not None and len(ctx.gen) < ms['num']
    names = [n for n in metric_names(ms, len(shots))
             if not ctx.missing(registry[n]) and not (short and registry[n].size_dependent)]
    row = dict.fromkeys(metric_columns(chosen_metrics(ms)))
    row.update(evaluate.row_of(evaluate.run_metrics(ctx, names)), num_gen=len(ctx.gen))
    shared.update({k: v for k, v in ctx.memo.items() if k.startswith('shared/')})
    return row


# ----------------------------------------------------------------------------- outputs

def write_csv(path, rows, fields):
    """rows (dicts) -> CSV with columns `fields` (None -> empty cell), atomically."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator='\n')
    writer.writeheader()
    for r in rows:
        writer.writerow({k: ('' if r.get(k) is None else r[k]) for k in fields})
    atomic_write_bytes(path, buf.getvalue().encode())


def write_tables(outdir, rows, ms, trunc_note, reference=None):
    """metrics.csv (every column) and metrics.md (the columns that have values; headers, formats and legend from
    the metrics' Columns; with `reference`, the path of the REFERENCE_ROW's images, a sentence on that row),
    atomically."""
    metrics = chosen_metrics(ms)
    write_csv(os.path.join(outdir, 'metrics.csv'), rows, RUN_COLUMNS + metric_columns(metrics))
    columns = [TRAINABLE_COLUMN] + evaluate.table_columns(metrics)
    columns = [METHOD_COLUMN] + [c for c in columns if any(evaluate.cell(c, r) for r in rows)]
    lines = evaluate.markdown_table([c.title for c in columns], [[evaluate.cell(c, r) for c in columns] for r in rows])
    lines += ['', f'{ms["num"]} generated images per method (seeds 0..{ms["num"] - 1}, {trunc_note}). FID and FGD '
              'are biased upward for small sets: compare values within this table only.']
    if reference is not None:
        lines.append(reference_note(reference))
    if evaluate.legend(columns):
        lines.append(evaluate.legend(columns))  # only the columns shown
    atomic_write_bytes(os.path.join(outdir, 'metrics.md'), ('\n'.join(lines) + '\n').encode())


def reference_note(reference):
    """The tables' sentence on the REFERENCE_ROW of the images at `reference`."""
    from fsgan.benchmarks.ship import recorded_path
    return (f'{REFERENCE_ROW}: held-out real target images ({recorded_path(reference)}) measured as if they were '
            f'samples, i.e. what each metric gives for target images that copy nothing; size-dependent metrics '
            f'(Fréchet distances) are left out when the set is smaller than the samples.')


def read_json(path):
    """The JSON value in the file at `path`, or None when it is missing or unreadable."""
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


SOURCE_SAMPLES = 'source_samples'   # outdir/source_samples/: the source's metric samples (emoji_content)


def source_samples(cfg, num_shots, device, shared):
    """The folder of the source network's images for the metric seeds and psi (image i is seed i), written once
    per comparison, when a metric to measure needs them and the comparison has a --source; else None."""
    ms = cfg.metric_settings
    registry = evaluate.metric_registry()
    if cfg.settings['source'] is None or not any('source_gen' in registry[n].needs
                                                 for n in metric_names(ms, num_shots)):
        return None
    folder = os.path.join(cfg.outdir, SOURCE_SAMPLES)
    stamp = dict(source=cfg.settings['source'], source_sha256=source_digest(cfg), num=ms['num'],
                 trunc=ms['metrics_trunc'])
    stamp_path = os.path.join(folder, 'samples.json')
    if shared.get('shared/source_samples') != stamp:
        if read_json(stamp_path) != stamp:
            from fsgan.sampling import load_generator
            print(f'[source] {ms["num"]} samples for content preservation')
            if os.path.exists(stamp_path):
                os.remove(stamp_path)  # first: a kill while the samples are rewritten must not leave it standing
            G, _sha = load_generator(cfg.settings['source'], None, device)
            evaluate.write_samples(G, folder, range(ms['num']), trunc=ms['metrics_trunc'], device=device, batch=1)
            atomic_write_json(stamp_path, stamp)
        shared['shared/source_samples'] = stamp
    return folder


def measure_method(cfg, state, name, shots, test_set, device, shared):
    """Metrics of method `name` (cached in the state file while its snapshot and the metric settings hold), on
    ms['num'] samples written to outdir/samples/<name>/ (fsgan.evaluate.write_samples: image i is seed i).
    shots: uint8 [K, C, R, R] as the run saw them. Returns (G, the method's table row)."""
    entry = state['methods'][name]
    ms = cfg.metric_settings
    run_dir = run_path(cfg, entry)
    shots_dir = write_shots(cfg.outdir, shots)
    G, network, sha = run_generator(cfg, run_dir, device)
    key = metrics_key(cfg, shots_dir, len(shots), test_set, network_sha256=sha, source_sha256=source_digest(cfg))
    if entry.get('metrics_key') != key:
        print(f'[{name}] metrics on {ms["num"]} images')
        gen_dir = evaluate.write_samples(G, os.path.join(cfg.outdir, 'samples', name), range(ms['num']),
                                         trunc=ms['metrics_trunc'], device=device, batch=1)
        fig_dir = os.path.join(cfg.outdir, 'figures')
        os.makedirs(fig_dir, exist_ok=True)
        entry['metrics'] = method_metrics(gen_dir, shots_dir, test_set, ms, device=device, cache_dir=cfg.cache_dir,
                                          fig_dir=fig_dir, tag=name, shared=shared,
                                          source_dir=source_samples(cfg, len(shots), device, shared))
        entry['metrics_key'] = key
        save_state(cfg, state)
    g_count, d_count = trainable_counts(run_dir)
    row = dict(entry['metrics'], method=name, run_dir=run_dir, network=network, trainable_G=g_count,
               trainable_D=d_count, trainable_params=None if g_count is None else g_count + d_count)
    return G, row


def metrics_key(cfg, shots_dir, num_shots, test_set, **images):
    """What a row's cached numbers depend on: `images` (what identifies the images measured, e.g. the network's
    sha256), the metric settings, the shots (in shots_dir, num_shots of them), the test set and the metrics'
    networks and versions (metrics.registry.cache_key)."""
    ms = cfg.metric_settings
    return dict(ms, **images, shots_dir=os.path.relpath(shots_dir, cfg.outdir),
                test_sha256=None if test_set is None else test_set.content_hash(),
                **cache_key(metric_names(ms, num_shots), evaluate.metric_registry()))


def measure_reference(cfg, state, shots, test_set, device, shared):
    """The table row REFERENCE_ROW: the metrics of cfg.reference's first ms['num'] images, held-out real target
    images, as if they were a method's samples, against the same shots [K, C, R, R] and test set: what each
    metric gives for images that copy nothing (cached in the state file under 'reference'). Content
    preservation needs a latent and is left out, as are the size-dependent metrics when the set is smaller
    than a method's samples (method_metrics). CompareError when its images are not at the networks'
    resolution."""
    from metrics.images import ImageSet
    ms = cfg.metric_settings
    reference = ImageSet(cfg.reference, limit=ms['num'])     # readable and of one size: check_reference
    size = reference.read(0).shape[:2]
    if size != shots.shape[2:]:
        raise CompareError(f'{cfg.reference}: its images are {size[1]}x{size[0]}, the networks\' '
                           f'{shots.shape[3]}x{shots.shape[2]}; give images at the networks\' resolution',
                           '--reference')
    shots_dir = write_shots(cfg.outdir, shots)
    key = metrics_key(cfg, shots_dir, len(shots), test_set, reference_sha256=reference.content_hash())
    entry = state.setdefault('reference', {})
    if entry.get('metrics_key') != key:
        print(f'[{REFERENCE_ROW}] metrics on {len(reference)} held-out real images ({cfg.reference})')
        fig_dir = os.path.join(cfg.outdir, 'figures')
        os.makedirs(fig_dir, exist_ok=True)
        entry['metrics'] = method_metrics(cfg.reference, shots_dir, test_set, ms, device=device,
                                          cache_dir=cfg.cache_dir, fig_dir=fig_dir, tag=REFERENCE_ROW, shared=shared)
        entry['metrics_key'] = key
        save_state(cfg, state)
    return dict(entry['metrics'], method=REFERENCE_ROW, run_dir=None, network=None, trainable_G=None,
                trainable_D=None, trainable_params=None)


def write_strip(cfg, name, G):
    """outdir/interp_<name>.png: cfg.strip_steps images from seed 0 to seed 1 (lerp in w). Returns its path."""
    from fsgan.tools import interp
    from fsgan.tools.figure import labeled_grid
    from torch_utils.image_grid import save_png
    strip = interp.render(G, interp.strip_ws(G, 0, 1, cfg.strip_steps, space='w', trunc=cfg.trunc))
    path = os.path.join(cfg.outdir, f'interp_{name}.png')
    save_png(labeled_grid([list(strip)]), path)
    return path


@contextlib.contextmanager
def comparison_lock(cfg):
    """Hold the comparison folder for the block: a second process working on it gets FolderLocked (dnnlib.lock)
    instead of training the same rows again or overwriting the state file."""
    from dnnlib.lock import creating_folder_lock
    with creating_folder_lock(cfg.outdir, LOCK_FILE):
        yield


def source_digest(cfg):
    """sha256 of the comparison's source network file (None without a source), computed once per cfg."""
    if 'source_sha256' not in cfg:
        from fsgan.loading import source_sha256
        cfg.source_sha256 = None if cfg.settings['source'] is None else source_sha256(cfg.settings['source'])
    return cfg.source_sha256


def check_same_source(cfg, state):
    """CompareError when the source file changed since the comparison recorded it (e.g. a source shipped again at
    the same path): new rows would train from another network than the done ones. A state from before this
    record takes the current file's."""
    recorded, current = state.get('source_sha256'), source_digest(cfg)
    if recorded is not None and current is not None and recorded != current:
        raise CompareError(f'--source {cfg.settings["source"]} changed since this comparison trained from it '
                           f'(sha256 {recorded[:12]}... then, {current[:12]}... now); put it back, or start the '
                           f'comparison in a new --outdir')
    if recorded is None and current is not None:
        state['source_sha256'] = current
        save_state(cfg, state)


def trained_state(cfg, progress=True):
    """Check the --runs folders and the source, then train or continue every row not done and record it. Returns
    the state."""
    check_given_runs(cfg)
    state = load_state(cfg)
    check_same_source(cfg, state)
    ensure_runs(cfg, state, progress)
    return state


def train_only(cfg, progress=True):
    """compare.py --train-only: what run_compare does first (trained_state), and nothing else: no samples, no
    metrics (e.g. on a device without the metrics' weights). The same comparison without --train-only measures
    it. Returns {row: run folder}."""
    with comparison_lock(cfg):
        state = trained_state(cfg, progress)
    return {name: run_path(cfg, state['methods'][name]) for name, _ in cfg.entries}


def run_compare(cfg, progress=True):
    """Train/continue, generate, measure and draw (holding the comparison's lock). Returns dict(figure, csv,
    markdown, strips, rows)."""
    with comparison_lock(cfg):
        return _run_compare(cfg, progress)


def _run_compare(cfg, progress):
    import numpy as np
    import torch
    from fsgan.sampling import generate_images
    from fsgan.tools.figure import labeled_grid
    from metrics.images import ImageSet
    from torch_utils.image_grid import save_png
    device = cfg.device or ('cuda' if torch.cuda.is_available() else 'cpu')
    state = trained_state(cfg, progress)
    ms = cfg.metric_settings
    test_set = None if ms['test_dir'] is None else ImageSet(ms['test_dir'], limit=ms['num_test'] or None)
    fig_rows, table, strips, shared = [], [], [], {}
    first_shots = None
    for name, _ in cfg.entries:
        shots = np.load(os.path.join(run_path(cfg, state['methods'][name]), 'target_shots.npy'))  # [K, C, R, R]
        if first_shots is None:
            first_shots = shots
        elif not np.array_equal(first_shots, shots):
            print(f'[{name}] warning: its target shots differ from those of {cfg.entries[0][0]}')
        G, row = measure_method(cfg, state, name, shots, test_set, device, shared)
        table.append(row)
        fig_rows.append(list(generate_images(G, list(range(cfg.cols)), trunc=cfg.trunc, device=device)))
        strips.append(write_strip(cfg, name, G))
    if cfg.get('reference') is not None:
        table.append(measure_reference(cfg, state, first_shots, test_set, device, shared))
    figure = labeled_grid([list(first_shots.transpose(0, 2, 3, 1)[:cfg.cols])] + fig_rows,
                          row_labels=['target shots'] + [name for name, _ in cfg.entries])
    figure_path = os.path.join(cfg.outdir, 'comparison.png')
    save_png(figure, figure_path)
    write_tables(cfg.outdir, table, ms, f'psi={ms["metrics_trunc"]:g}', reference=cfg.get('reference'))
    return dict(figure=figure_path, csv=os.path.join(cfg.outdir, 'metrics.csv'),
                markdown=os.path.join(cfg.outdir, 'metrics.md'), strips=strips, rows=table)

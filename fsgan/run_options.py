"""The options a run folder records (training_options.json), checked when the run is resumed.

A hand-edited or damaged file fails in one line that names the file and the key, before anything runs
(otherwise a missing key surfaces as an AttributeError deep in the training loop).
"""
import json
import math
import os

from dnnlib import EasyDict
from fsgan.losses import resolve_losses
from fsgan.methods import METHODS
from fsgan.protocol import PROTOCOLS, STARTS
from fsgan.network_urls import NETWORK_URLS


class RunOptionsError(ValueError):
    """training_options.json of a run folder cannot be used (the message names the file and the key)."""


def _number(value, low=None, high=None, open_low=False):
    """value is a finite JSON number (not a boolean) >= low (> low when open_low) and <= high."""
    if not (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)):
        return False
    above = low is None or (value > low if open_low else value >= low)
    return above and (high is None or value <= high)


def _count(value, low):
    """value is a JSON integer >= low."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= low


# training_options.json keys a resumed run reads: key -> (what it must be, test). A hand-edited file is checked
# against these before anything runs; OPTIONAL_RUN_OPTIONS may be absent or null (older runs).
RUN_OPTIONS = {
    'method': (f'one of {", ".join(sorted(METHODS))}', lambda v: isinstance(v, str) and v in METHODS),
    'method_options': ('an object', lambda v: isinstance(v, dict)),
    'source': ('a network path, URL or short name, or null', lambda v: v is None or isinstance(v, str)),
    'target_dir': ('a path', lambda v: isinstance(v, str)),
    'device': ('"cpu" or "cuda"', lambda v: v in ('cpu', 'cuda')),
    'kimg': ('a number > 0', lambda v: _number(v, 0, open_low=True)),
    'kimg_per_tick': ('a number > 0', lambda v: _number(v, 0, open_low=True)),
    'lr': ('a number > 0', lambda v: _number(v, 0, open_low=True)),
    'gamma': ('a number >= 0', lambda v: _number(v, 0)),
    'pl_weight': ('a number >= 0', lambda v: _number(v, 0)),
    'ema_kimg': ('a number >= 0', lambda v: _number(v, 0)),
    'style_mixing': ('a number in [0, 1]', lambda v: _number(v, 0, 1)),
    'grid_trunc': ('a number', _number),
    'batch': ('an integer >= 1', lambda v: _count(v, 1)),
    'grid_size': ('an integer >= 1', lambda v: _count(v, 1)),
    'resolution': ('an integer >= 1', lambda v: _count(v, 1)),
    'seed': ('an integer >= 0', lambda v: _count(v, 0)),
    'grid_seed': ('an integer >= 0', lambda v: _count(v, 0)),
    'snap': ('an integer >= 0', lambda v: _count(v, 0)),
    'G_reg_interval': ('an integer >= 0', lambda v: _count(v, 0)),
    'D_reg_interval': ('an integer >= 0', lambda v: _count(v, 0)),
    'mirror': ('true or false', lambda v: isinstance(v, bool)),
}
OPTIONAL_RUN_OPTIONS = {
    'shots': ('an integer >= 1', lambda v: _count(v, 1)),
    'num_gpus': ('an integer >= 1', lambda v: _count(v, 1)),
    'dlr': ('a number > 0', lambda v: _number(v, 0, open_low=True)),
    'ema_rampup': ('a number >= 0', lambda v: _number(v, 0)),
    'mode_seeking': ('a number >= 0', lambda v: _number(v, 0)),
    'class_loss': ('a number >= 0', lambda v: _number(v, 0)),
    'nan_policy': ('"stop" or "rollback"', lambda v: v in ('stop', 'rollback')),
    'protocol': (f'one of {", ".join(PROTOCOLS)}, or null', lambda v: v in PROTOCOLS),
    'start': (f'one of {", ".join(STARTS)}, or null', lambda v: v in STARTS),
    'track_w_avg': ('true, false or null', lambda v: isinstance(v, bool)),
    'allow_tf32': ('true or false', lambda v: isinstance(v, bool)),
    'losses': ('an object {term: {weight, options}} of registered loss terms', lambda v: _loss_terms(v)),
}


def _loss_terms(value):
    """value is a {term: {weight, **options}} object that fsgan.losses.resolve_losses accepts."""
    try:
        return isinstance(value, dict) and resolve_losses(value) is not None
    except (ValueError, TypeError, AttributeError):
        return False


def load_run_options(run_dir):
    """The options in run_dir/training_options.json as an EasyDict, checked against RUN_OPTIONS (and that the
    device and a relative source path still work here); RunOptionsError naming the file and the key."""
    import torch
    path = os.path.join(run_dir, 'training_options.json')
    if not os.path.isfile(path):
        raise RunOptionsError(f'--resume-run {run_dir}: no training_options.json there; give a run folder')
    try:
        with open(path, encoding='utf-8') as f:
            c = json.load(f)
    except json.JSONDecodeError as e:
        raise RunOptionsError(f'{path}: not valid JSON ({e.msg} at line {e.lineno}, column {e.colno}); '
                              f'fix it') from None
    except (OSError, UnicodeDecodeError) as e:
        raise RunOptionsError(f'{path}: cannot be read ({e}); restore it') from None
    if not isinstance(c, dict):
        raise RunOptionsError(f'{path}: holds a JSON {type(c).__name__}, not an object of options; restore it')
    rules = dict(RUN_OPTIONS)
    if c.get('source') is None:  # from scratch: the networks' constructor arguments
        rules.update({k: ('an object', lambda v: isinstance(v, dict)) for k in ('G_kwargs', 'D_kwargs')})
    for key, (what, ok) in list(rules.items()) + list(OPTIONAL_RUN_OPTIONS.items()):
        if key in rules and key not in c:
            raise RunOptionsError(f'{path}: "{key}" is missing ({what}); restore it')
        if (key in rules or c.get(key) is not None) and not ok(c.get(key)):
            raise RunOptionsError(f'{path}: "{key}" is {json.dumps(c[key])}, not {what}; fix it')
    unknown = sorted(set(c['method_options']) - set(METHODS[c['method']].options))
    if unknown:
        raise RunOptionsError(f'{path}: "method_options" has {", ".join(unknown)}, which method {c["method"]} does not '
                              f'take ({", ".join(METHODS[c["method"]].options) or "none"}); fix it')
    if c['device'] == 'cuda' and not torch.cuda.is_available():
        raise RunOptionsError(f'{path}: "device" is "cuda", but CUDA is not available here; set "cpu" to go on '
                              f'on the CPU')
    source = c['source']
    if source and not os.path.isabs(source) and source not in NETWORK_URLS and '://' not in source \
            and not os.path.exists(source):  # runs before paths were recorded absolute
        raise RunOptionsError(f'{path}: "source" {source} does not exist from {os.getcwd()}; run from the folder '
                              f'the run was started in, or write the network\'s absolute path there')
    return EasyDict(c)
